"""New-head wake-ups by subscription, against a real anvil; polling stays the fallback."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

from framecast.client.devnet import start_anvil
from framecast.node.heads import HeadWatch, wait_subscribed, ws_url_for
from tests.conftest import Chain, free_port
from tests.node.conftest import AgentFactory


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


def test_the_agent_notices_a_job_by_subscription_long_before_its_poll(
    make_agent: AgentFactory, market_ready: Chain
) -> None:
    """With a 60 s poll interval only the head subscription can wake the loop in time."""
    from tests.node.test_agent import submit_tiny

    agent = make_agent(poll_interval_s=60)
    agent.startup()
    stop = threading.Event()
    loop = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        time.sleep(1.0)  # the first round has run; the loop now waits up to 60 s
        job_id = submit_tiny(market_ready)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            record = agent.state.get(job_id)
            if record is not None and record.state not in {"seen"}:
                break
            time.sleep(0.1)
        record = agent.state.get(job_id)
        assert record is not None and record.state != "seen", record
    finally:
        stop.set()
        loop.join(timeout=30)


def test_without_subscriptions_the_agent_waits_for_its_poll(
    make_agent: AgentFactory, market_ready: Chain
) -> None:
    from tests.node.test_agent import submit_tiny

    agent = make_agent(poll_interval_s=60, subscribe_heads=False)
    agent.startup()
    stop = threading.Event()
    loop = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        time.sleep(1.0)
        job_id = submit_tiny(market_ready)
        time.sleep(3.0)
        assert agent.state.get(job_id) is None
    finally:
        stop.set()
        loop.join(timeout=30)
