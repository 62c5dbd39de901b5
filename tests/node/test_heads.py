"""New-head wake-ups by subscription, against a real anvil; polling stays the fallback."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

from framecast.client.devnet import start_anvil
from framecast.node.heads import HeadWatch, wait_subscribed, ws_url_for
from tests.conftest import free_port


def test_ws_url_is_the_rpc_url_with_the_socket_scheme() -> None:
    assert ws_url_for("http://10.0.0.1:8545") == "ws://10.0.0.1:8545"
    assert ws_url_for("https://rpc.example.org/v2/key") == "wss://rpc.example.org/v2/key"
    assert ws_url_for("ipc:///tmp/geth.ipc") is None


def test_a_new_block_wakes_the_watch(anvil_url: str) -> None:
    from web3 import Web3

    wake = threading.Event()
    watch = HeadWatch(str(ws_url_for(anvil_url)), wake).start()
    try:
        assert wait_subscribed(watch, 10)
        wake.clear()
        Web3(Web3.HTTPProvider(anvil_url)).provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert wake.wait(5)
        assert watch.heads >= 1
    finally:
        watch.close()


def test_an_endpoint_without_websockets_leaves_polling_alone() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wake = threading.Event()
    watch = HeadWatch(f"ws://127.0.0.1:{server.server_address[1]}", wake, timeout_s=1).start()
    try:
        assert not wait_subscribed(watch, 1.5)
        assert not wake.is_set()
    finally:
        watch.close()
        server.shutdown()


def test_the_subscription_comes_back_after_the_rpc_restarts(tmp_path: Path) -> None:
    from web3 import Web3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil = start_anvil(port, tmp_path / "a.log", detach=False)
    wake = threading.Event()
    watch = HeadWatch(str(ws_url_for(url)), wake, timeout_s=2).start()
    try:
        assert wait_subscribed(watch, 10)
        anvil.terminate()
        anvil.wait(10)
        deadline = time.monotonic() + 10
        while watch.subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not watch.subscribed.is_set()
        anvil = start_anvil(port, tmp_path / "b.log", detach=False)
        assert wait_subscribed(watch, 15)
        wake.clear()
        Web3(Web3.HTTPProvider(url)).provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert wake.wait(5)
    finally:
        watch.close()
        anvil.terminate()
