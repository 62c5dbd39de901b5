"""New-block wake-ups by WebSocket subscription (``eth_subscribe("newHeads")``).

Polling every ``poll_interval_s`` puts half an interval, on average, between a job's block
and the node noticing it. Where the RPC offers subscriptions (anvil and geth do, on a
``ws://`` URL; most public providers do on a separate one) a thread holds one subscription
and sets an event the moment a head arrives; the agent loop waits on that event instead
of sleeping, then reads logs exactly as a poll does. The subscription is only a wake-up:
every event is still read, confirmed and reorg-checked by the intake, so a missed or
duplicated notification changes nothing but latency, and polling goes on underneath as
the fallback when the socket is refused, dropped or never offered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

#: A dropped subscription is retried after this long at first, doubling to the cap.
RETRY_S = 0.5
RETRY_CAP_S = 10.0


def ws_url_for(rpc_url: str) -> str | None:
    """The WebSocket URL that serves subscriptions beside an HTTP RPC (same host and port).

    anvil and geth's shared listener answer both on one port; a provider with a separate
    WebSocket endpoint is configured with ``ws_url`` instead.
    """
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        return None
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


class HeadWatch:
    """A thread that sets ``wake`` on every new head while a subscription is open."""

    def __init__(self, ws_url: str, wake: threading.Event, *, timeout_s: float = 5.0) -> None:
        self.ws_url = ws_url
        self.wake = wake
        self.timeout_s = timeout_s
        self.heads = 0
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heads", daemon=True)
        self._socket: object | None = None

    def start(self) -> HeadWatch:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        socket = self._socket
        if socket is not None:
            socket.close()  # type: ignore[attr-defined]
        self._thread.join(timeout=self.timeout_s)

    def _run(self) -> None:
        retry = RETRY_S
        announced_down = False
        while not self._stop.is_set():
            try:
                refusal = self._subscribe_and_listen()
                if refusal is not None:
                    log.info("no head subscriptions at %s (%s): polling only", self.ws_url, refusal)
                    return
                retry = RETRY_S
            except Exception as exc:  # the socket library's errors, OSError, bad JSON
                if not announced_down and not self._stop.is_set():
                    log.info("head subscription at %s unavailable (%s): polling", self.ws_url, exc)
                    announced_down = True
            self.subscribed.clear()
            if self._stop.wait(retry):
                return
            retry = min(RETRY_CAP_S, retry * 2)

    def _subscribe_and_listen(self) -> str | None:
        """Listen until the socket closes; the refusal when the endpoint has no newHeads."""
        from websockets.sync.client import connect

        with connect(self.ws_url, open_timeout=self.timeout_s, max_size=2**20) as socket:
            self._socket = socket
            socket.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                )
            )
            answer = json.loads(socket.recv(timeout=self.timeout_s))
            if "error" in answer or not isinstance(answer.get("result"), str):
                return str(answer.get("error", answer))
            self.subscribed.set()
            log.info("following new heads by subscription at %s", self.ws_url)
            while not self._stop.is_set():
                message = socket.recv()
                if '"eth_subscription"' in str(message):
                    self.heads += 1
                    self.wake.set()
        return None


def wait_subscribed(watch: HeadWatch, timeout_s: float) -> bool:
    """True once the watch holds a subscription (tests and start-up logging)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if watch.subscribed.wait(0.05):
            return True
    return False
