"""A scripted JSON-RPC endpoint on loopback for fault tests: per method, forward to anvil
or misbehave (hang, garbage, an HTTP status, a JSON-RPC error, a block without base fee)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.conftest import free_port

#: What the server does with a request: None forwards it; otherwise one of
#: ("hang",), ("garbage",), ("status", N), ("rpc_error", code, message), ("no_basefee",).
Behaviour = tuple[Any, ...] | None


class ScriptedRpc:
    def __init__(self, upstream: str | None) -> None:
        self.upstream = upstream
        #: method -> behaviour; "*" applies to methods not named.
        self.script: dict[str, Behaviour] = {}
        self.seen: list[str] = []
        self.release = threading.Event()
        rpc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                method = str(request.get("method"))
                rpc.seen.append(method)
                how = rpc.script.get(method, rpc.script.get("*"))
                if how is None or how == ("no_basefee",):
                    answer = rpc._forward(body)
                    if how == ("no_basefee",) and isinstance(answer.get("result"), dict):
                        answer["result"].pop("baseFeePerGas", None)
                    self._reply(200, json.dumps(answer).encode())
                elif how[0] == "hang":
                    rpc.release.wait(30)  # the client gives up long before
                elif how[0] == "garbage":
                    self._reply(200, b"<html>502 Bad Gateway</html>")
                elif how[0] == "status":
                    self._reply(int(how[1]), b'{"error": "busy"}')
                elif how[0] == "rpc_error":
                    error = {"code": how[1], "message": how[2]}
                    reply = {"jsonrpc": "2.0", "id": request["id"], "error": error}
                    self._reply(200, json.dumps(reply).encode())

            def _reply(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client hung up

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _forward(self, body: bytes) -> dict[str, Any]:
        assert self.upstream is not None
        answer = requests.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        result: dict[str, Any] = answer.json()
        return result

    def set(self, method: str, how: Behaviour) -> None:
        self.script[method] = how

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def no_library_exception(action: Callable[[], Any]) -> BaseException:
    """Run ``action``; return what it raised, failing the test if it raised nothing."""
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an error")
