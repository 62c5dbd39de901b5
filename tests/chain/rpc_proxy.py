"""A real JSON-RPC proxy on 127.0.0.1 in front of anvil that behaves like a public RPC:
it refuses eth_getLogs ranges above a limit in a provider's own words, and it can be taken
down and brought back on the same port (an outage)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: How public RPCs refuse a range (code, message, HTTP status), from their documentation
#: and issue trackers.
REFUSALS: dict[str, tuple[int, str, int]] = {
    "infura": (-32602, "range {span} exceeds limit of {limit}", 200),
    "infura-results": (-32005, "query returned more than 10000 results", 200),
    "alchemy": (
        -32602,
        "Log response size exceeded. You can make eth_getLogs requests with up to a "
        "{limit} block range and no limit on the response size.",
        200,
    ),
    "quicknode": (-32614, "eth_getLogs is limited to a {limit} range", 413),
    "erigon": (-32005, "block range too large, max range: {limit}", 200),
}


class RangeLimitedProxy:
    """Forwards JSON-RPC to ``upstream``; eth_getLogs over more than ``limit`` blocks is
    refused the way ``style`` does it."""

    def __init__(self, upstream: str, *, limit: int, style: str = "infura") -> None:
        self.upstream = upstream
        self.limit = limit
        self.style = style
        self.refused: list[int] = []  # spans refused
        self.served: list[int] = []  # spans answered
        #: Methods to answer with HTTP 503 the next N times (an RPC just back from an outage).
        self.fail_next: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        method = str(body.get("method"))
        if self.fail_next.get(method, 0) > 0:
            self.fail_next[method] -= 1
            return 503, {"error": "service unavailable"}
        if body.get("method") == "eth_getLogs":
            params = body["params"][0]
            span = int(params["toBlock"], 16) - int(params["fromBlock"], 16) + 1
            if span > self.limit:
                self.refused.append(span)
                code, message, status = REFUSALS[self.style]
                error = {"code": code, "message": message.format(span=span, limit=self.limit)}
                return status, {"jsonrpc": "2.0", "id": body.get("id"), "error": error}
            self.served.append(span)
        reply = httpx.post(self.upstream, json=body, timeout=10)
        return 200, reply.json()

    def start(self) -> RangeLimitedProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                status, payload = proxy._answer(json.loads(raw))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RangeLimitedProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
