"""TxSender against real anvil: nonce ownership under concurrency, retries through a flaky
RPC, and clear errors when the RPC is gone or serves another chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from framecast.shared.chain.bindings import Credits
from framecast.shared.chain.connection import connect
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import ChainMismatch, RpcUnavailable
from tests.conftest import Chain, free_port


class FlakyProxy:
    """JSON-RPC proxy on loopback that answers 503 to the first `failures` requests."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.upstream = upstream
        self.failures = failures
        self.seen = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    proxy.seen += 1
                    fail = proxy.seen <= proxy.failures
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = requests.post(
                    proxy.upstream,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(anvil_url: str) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(anvil_url, failures=0)
    yield proxy
    proxy.close()


def test_concurrent_sends_use_distinct_nonces(chain: Chain) -> None:
    sender = chain.sender("alice")
    credits = Credits(chain.w3, chain.deployment.credits, sender)
    bob = chain.account("bob").address
    before = credits.balance_of(bob)
    errors: list[BaseException] = []

    def send_one() -> None:
        try:
            credits.transfer(bob, 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert credits.balance_of(bob) == before + 8


def test_send_survives_a_flaky_rpc(chain: Chain, flaky: FlakyProxy) -> None:
    w3 = connect(flaky.url, expected_chain_id=chain.deployment.chain_id)
    sender = TxSender(w3, chain.account("alice"), sleep=lambda _s: None)
    credits = Credits(w3, chain.deployment.credits, sender)
    bob = chain.account("bob").address
    before = credits.balance_of(bob)
    flaky.failures = flaky.seen + 3  # the next three requests fail
    credits.transfer(bob, 5)
    assert credits.balance_of(bob) == before + 5


def test_rpc_down_for_too_long_raises_rpc_unavailable(chain: Chain, flaky: FlakyProxy) -> None:
    w3 = connect(flaky.url, expected_chain_id=chain.deployment.chain_id)
    sender = TxSender(w3, chain.account("alice"), retries=2, sleep=lambda _s: None)
    flaky.failures = 10**9
    with pytest.raises(RpcUnavailable) as info:
        Credits(w3, chain.deployment.credits, sender).transfer(chain.account("bob").address, 1)
    assert flaky.url in str(info.value)
    assert "framecast devnet up" in str(info.value)


def test_unreachable_rpc_names_url_and_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RpcUnavailable) as info:
        connect(url, timeout=0.5)
    assert url in str(info.value)
    assert "framecast devnet up" in str(info.value)


def test_chain_id_mismatch_is_refused(anvil_url: str) -> None:
    with pytest.raises(ChainMismatch) as info:
        connect(anvil_url, expected_chain_id=1)
    assert "31337" in str(info.value)
