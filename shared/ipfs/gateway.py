"""An IPFS trustless gateway over the embedded store (``GET /ipfs/{cid}``, raw blocks and CAR).

Implements the verifiable subset of the HTTP gateway specs: ``?format=raw`` /
``Accept: application/vnd.ipld.raw`` answers one block, ``?format=car`` /
``Accept: application/vnd.ipld.car`` answers the DAG as CAR v1 (``order=dfs``,
``dups=n``; ``dag-scope=block`` gives the root block only, ``entity`` and ``all`` the whole
DAG). Requests for deserialized content get 406: clients verify what they receive.
Standard library only, so the client can serve without extra dependencies.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final
from urllib.parse import parse_qs, urlsplit

from framecast.shared.errors import ContentNotFound, FramecastError, InvalidCid
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.car import iter_car_bytes
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.dag import walk_blocks
from framecast.shared.ipfs.local import LocalStore

RAW_TYPE: Final = "application/vnd.ipld.raw"
_IMMUTABLE: Final = "public, max-age=29030400, immutable"
_log = logging.getLogger(__name__)


def _negotiate(query: dict[str, list[str]], accept: str) -> str | None:
    """'raw', 'car', None (nothing verifiable asked for); ValueError for an unknown format."""
    formats = query.get("format")
    if formats:
        if formats[0] in ("raw", "car"):
            return formats[0]
        raise ValueError(f"unsupported format {formats[0]!r} (use raw or car)")
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media == RAW_TYPE:
            return "raw"
        if media == CAR_TYPE and all(p.replace(" ", "") != "version=2" for p in params):
            return "car"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: GatewayHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s - %s", self.address_string(), format % args)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.split("/")
        if len(parts) < 3 or parts[1] != "ipfs" or not parts[2]:
            self._error(HTTPStatus.NOT_FOUND, "only /ipfs/{cid} is served here")
            return
        if any(parts[3:]):
            self._error(HTTPStatus.BAD_REQUEST, "paths under a CID are not supported")
            return
        try:
            cid = CID.parse(parts[2])
        except InvalidCid as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        query = parse_qs(url.query)
        try:
            kind = _negotiate(query, self.headers.get("Accept", ""))
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        if kind is None:
            self._error(
                HTTPStatus.NOT_ACCEPTABLE,
                f"this is a trustless gateway: ask for {RAW_TYPE} or {CAR_TYPE} (or ?format=)",
            )
            return
        store = self.server.store
        try:
            root = store.get_block(cid)
        except ContentNotFound as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
            return
        except FramecastError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
            return
        scope = query.get("dag-scope", ["all"])[0]
        if scope not in ("block", "entity", "all"):
            self._error(HTTPStatus.BAD_REQUEST, f"unsupported dag-scope {scope!r}")
            return
        etag = f'"{cid}.{kind}"' if scope == "all" or kind == "raw" else f'"{cid}.car.{scope}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("Etag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Etag", etag)
        self.send_header("Cache-Control", _IMMUTABLE)
        self.send_header("X-Ipfs-Path", f"/ipfs/{cid}")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Vary", "Accept")
        if kind == "raw":
            self.send_header("Content-Type", RAW_TYPE)
            self.send_header("Content-Length", str(len(root)))
            self.send_header("Content-Disposition", f'attachment; filename="{cid}.bin"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(root)
            return
        self.send_header("Content-Type", f"{CAR_TYPE}; version=1; order=dfs; dups=n")
        self.send_header("Content-Disposition", f'attachment; filename="{cid}.car"')
        # The CAR's length is unknown up front: stream it and close the connection at the end.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        blocks = [(cid, root)] if scope == "block" else walk_blocks(store.get_block, cid)
        try:
            for chunk in iter_car_bytes([cid], blocks):
                self.wfile.write(chunk)
        except FramecastError as exc:
            # Headers are gone already: cutting the stream short is how the client learns.
            _log.warning("CAR stream for %s aborted: %s", cid, exc)
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("client went away while streaming %s", cid)


class GatewayHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that carries the store its handlers read."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: LocalStore) -> None:
        self.store = store
        super().__init__(address, _Handler)


class Gateway:
    """A running gateway on a background thread; use as a context manager."""

    def __init__(self, store: LocalStore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = GatewayHTTPServer((host, port), store)
        # A short poll interval keeps shutdown() prompt (tests, CLI exit).
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="framecast-gateway",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Gateway:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_gateway(store: LocalStore, host: str = "127.0.0.1", port: int = 0) -> Gateway:
    """Start a trustless gateway for ``store`` (port 0: an ephemeral port; see ``.url``)."""
    return Gateway(store, host, port).start()
