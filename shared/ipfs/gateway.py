"""An IPFS trustless gateway over a content store (``GET|HEAD /ipfs/{cid}[/{path}]``).

Implements the Trustless Gateway spec (specs.ipfs.tech/http-gateways/trustless-gateway):

* ``?format=raw`` / ``Accept: application/vnd.ipld.raw``: one block, addressed by CID
  alone (a path under a raw request is 400, as the spec allows only ``/ipfs/{cid}``);
* ``?format=car`` / ``Accept: application/vnd.ipld.car``: CAR v1 (``order=dfs``,
  ``dups=n``) whose header root is the requested CID and which holds the blocks needed to
  resolve the path, then the terminal element by ``dag-scope``: ``block`` (its block only),
  ``entity`` (a whole file; a directory's own node, or all shards of a HAMT directory,
  without the children) or ``all`` (the whole DAG below it, the default). ``entity-bytes``
  is validated and answered with the whole entity: the spec lets a gateway send more
  blocks than asked, and every client verifies what it gets;
* CIDs in any multibase :class:`CID` parses (base32 ``b…``, base36 ``k…``, base58 ``z…``,
  v0 ``Qm…``);
* 400 for a malformed CID, path or parameter; 404 for content not in the store; 406 when
  the request asks for nothing verifiable (deserialized content is not served: clients
  verify what they receive).

Standard library only, so the client can serve without extra dependencies. The handler
class is open for extension: the node's HTTP server routes its own paths and hands
``/ipfs/`` to :meth:`GatewayHandler.serve_ipfs`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from framecast.shared.errors import ContentNotFound, FramecastError, InvalidCid, RequestRefused
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.car import iter_car_bytes
from framecast.shared.ipfs.cid import CID, DAG_PB, RAW
from framecast.shared.ipfs.dag import walk_blocks
from framecast.shared.ipfs.store import ContentStore
from framecast.shared.ipfs.unixfs import NodeType, PBNode, decode_node

RAW_TYPE: Final = "application/vnd.ipld.raw"
_IMMUTABLE: Final = "public, max-age=29030400, immutable"
_SCOPES: Final = ("block", "entity", "all")
_ENTITY_BYTES: Final = re.compile(r"(-?[0-9]{1,19}):(-?[0-9]{1,19}|\*)")
_log = logging.getLogger(__name__)


def _negotiate(query: dict[str, list[str]], accept: str) -> str | None:
    """'raw', 'car', None (nothing verifiable asked for); 400 for an unknown format."""
    formats = query.get("format")
    if formats:
        if formats[0] in ("raw", "car"):
            return formats[0]
        raise RequestRefused(
            HTTPStatus.BAD_REQUEST, f"unsupported format {formats[0]!r} (use raw or car)"
        )
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media == RAW_TYPE:
            return "raw"
        if media == CAR_TYPE and all(p.replace(" ", "") != "version=2" for p in params):
            return "car"
    return None


def _path_segments(raw_path: str) -> tuple[str, list[str]]:
    """(CID text, path segments) of ``/ipfs/{cid}[/{path}]``; 400 for anything else."""
    parts = raw_path.split("/")
    if len(parts) < 3 or parts[0] or parts[1] != "ipfs" or not parts[2]:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "expected /ipfs/{cid}[/{path}]")
    segments = [unquote(p) for p in parts[3:] if p]
    for segment in segments:
        if segment in (".", "..") or "\0" in segment or "/" in segment:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"path segment {segment!r} is not allowed")
    return unquote(parts[2]), segments


def _check_entity_bytes(query: dict[str, list[str]]) -> None:
    value = query.get("entity-bytes", [None])[0]
    if value is not None and not _ENTITY_BYTES.fullmatch(value):
        raise RequestRefused(
            HTTPStatus.BAD_REQUEST, f"entity-bytes {value!r} is not FROM:TO (TO may be *)"
        )


class _Resolver:
    """Reads blocks from a store, remembering which ones a response needs."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store

    def block(self, cid: CID) -> bytes:
        return self.store.get_block(cid)

    def node(self, cid: CID, block: bytes) -> PBNode | None:
        if cid.codec != DAG_PB:
            return None
        try:
            return decode_node(block)
        except ValueError:
            return None

    def resolve(self, root: CID, segments: list[str]) -> tuple[CID, list[tuple[CID, bytes]]]:
        """The CID at ``root/segments`` and every block read to get there (in order)."""
        visited: list[tuple[CID, bytes]] = []
        current = root
        for segment in segments:
            block = self.block(current)
            visited.append((current, block))
            node = self.node(current, block)
            meta = node.unixfs if node else None
            if node is None or meta is None:
                raise RequestRefused(
                    HTTPStatus.BAD_REQUEST, f"{current} is not a directory: cannot resolve path"
                )
            if meta.type == NodeType.DIRECTORY:
                found = next((link.cid for link in node.links if link.name == segment), None)
            elif meta.type == NodeType.HAMT_SHARD:
                found = self._in_shard(node, meta.fanout or 256, segment, visited)
            else:
                raise RequestRefused(
                    HTTPStatus.BAD_REQUEST, f"{current} is not a directory: cannot resolve path"
                )
            if found is None:
                raise RequestRefused(
                    HTTPStatus.NOT_FOUND, f"no link named {segment!r} under {current}"
                )
            current = found
        return current, visited

    def _in_shard(
        self, node: PBNode, fanout: int, name: str, visited: list[tuple[CID, bytes]]
    ) -> CID | None:
        # Scans the shard's own blocks (the response then holds them all: more blocks than
        # strictly needed is allowed, and it spares re-deriving the HAMT hash path here).
        width = len(f"{fanout - 1:X}")
        for link in node.links:
            if len(link.name) == width:
                sub_block = self.block(link.cid)
                visited.append((link.cid, sub_block))
                sub = self.node(link.cid, sub_block)
                if (
                    sub is not None
                    and (found := self._in_shard(sub, fanout, name, visited)) is not None
                ):
                    return found
            elif link.name[width:] == name:
                return link.cid
        return None

    def scoped(self, cid: CID, scope: str) -> Iterator[tuple[CID, bytes]]:
        """The terminal element's blocks for a ``dag-scope``."""
        if scope == "all":
            yield from walk_blocks(self.block, cid)
            return
        block = self.block(cid)
        if scope == "block" or cid.codec == RAW:
            yield cid, block
            return
        node = self.node(cid, block)
        meta = node.unixfs if node else None
        if node is None or meta is None or meta.type in (NodeType.FILE, NodeType.RAW):
            yield from walk_blocks(self.block, cid)  # a file is its whole DAG
        elif meta.type == NodeType.HAMT_SHARD:
            yield from self._shard_blocks(cid, block, node, meta.fanout or 256)
        else:
            yield cid, block  # a directory (or symlink): its own node, not the children

    def _shard_blocks(
        self, cid: CID, block: bytes, node: PBNode, fanout: int
    ) -> Iterator[tuple[CID, bytes]]:
        yield cid, block
        width = len(f"{fanout - 1:X}")
        for link in node.links:
            if len(link.name) == width:
                sub_block = self.block(link.cid)
                sub = self.node(link.cid, sub_block)
                if sub is not None:
                    yield from self._shard_blocks(link.cid, sub_block, sub, fanout)


def _dedup(blocks: Iterator[tuple[CID, bytes]]) -> Iterator[tuple[CID, bytes]]:
    seen: set[CID] = set()
    for cid, block in blocks:
        if cid not in seen:
            seen.add(cid)
            yield cid, block


class GatewayHandler(BaseHTTPRequestHandler):
    """Serves ``/ipfs/`` from ``self.server.store``; subclasses route further paths."""

    server: GatewayHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s - %s", self.address_string(), format % args)

    def send_text(self, status: HTTPStatus | int, message: str) -> None:
        body = (message + "\n").encode()
        self.send_body(status, body, "text/plain; charset=utf-8")

    def send_body(self, status: HTTPStatus | int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if urlsplit(self.path).path.startswith("/ipfs/"):
            self.serve_ipfs()
        else:
            self.send_text(HTTPStatus.NOT_FOUND, "only /ipfs/{cid} is served here")

    def serve_ipfs(self) -> None:
        try:
            self._serve_ipfs(self.server.store)
        except RequestRefused as exc:
            self.send_text(exc.status, exc.message)
        except ContentNotFound as exc:
            self.send_text(HTTPStatus.NOT_FOUND, str(exc))
        except FramecastError as exc:
            self.send_text(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    def _serve_ipfs(self, store: ContentStore) -> None:
        url = urlsplit(self.path)
        cid_text, segments = _path_segments(url.path)
        try:
            cid = CID.parse(cid_text)
        except InvalidCid as exc:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, str(exc)) from None
        query = parse_qs(url.query)
        kind = _negotiate(query, self.headers.get("Accept", ""))
        if kind is None:
            raise RequestRefused(
                HTTPStatus.NOT_ACCEPTABLE,
                f"this is a trustless gateway: ask for {RAW_TYPE} or {CAR_TYPE} (or ?format=)",
            )
        scope = query.get("dag-scope", ["all"])[0]
        if scope not in _SCOPES:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"unsupported dag-scope {scope!r}")
        _check_entity_bytes(query)
        if kind == "raw" and segments:
            raise RequestRefused(
                HTTPStatus.BAD_REQUEST,
                "raw blocks are requested by CID alone (/ipfs/{cid}); use a CAR for paths",
            )
        resolver = _Resolver(store)
        terminal, path_blocks = resolver.resolve(cid, segments)
        terminal_block = resolver.block(terminal)  # 404 here, before any header is sent
        full_path = "/".join([f"/ipfs/{cid}", *segments])
        etag = f'"{cid}.raw"' if kind == "raw" else f'"{full_path}.car.{scope}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("Etag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Etag", etag)
        self.send_header("Cache-Control", _IMMUTABLE)
        self.send_header("X-Ipfs-Path", full_path)
        self.send_header(
            "X-Ipfs-Roots", ",".join(str(c) for c in [*(c for c, _ in path_blocks), terminal])
        )
        self.send_header("X-Content-Type-Options", "nosniff")
        # Verifiable blocks are public by nature: any page may fetch and check them (the
        # explorer verifies results in the browser, from another origin).
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Vary", "Accept")
        if kind == "raw":
            self.send_header("Content-Type", RAW_TYPE)
            self.send_header("Content-Length", str(len(terminal_block)))
            self.send_header("Content-Disposition", f'attachment; filename="{cid}.bin"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(terminal_block)
            return
        self.send_header("Content-Type", f"{CAR_TYPE}; version=1; order=dfs; dups=n")
        self.send_header("Content-Disposition", f'attachment; filename="{cid}.car"')
        # The CAR's length is unknown up front: stream it and close the connection at the end.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return

        def blocks() -> Iterator[tuple[CID, bytes]]:
            yield from path_blocks
            yield from resolver.scoped(terminal, scope)

        try:
            for chunk in iter_car_bytes([cid], _dedup(blocks())):
                self.wfile.write(chunk)
        except FramecastError as exc:
            # Headers are gone already: cutting the stream short is how the client learns.
            _log.warning("CAR stream for %s aborted: %s", full_path, exc)
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("client went away while streaming %s", full_path)


class GatewayHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that carries the store its handlers read."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: ContentStore,
        handler: type[GatewayHandler] = GatewayHandler,
    ) -> None:
        self.store = store
        super().__init__(address, handler)


class Gateway:
    """A running gateway on a background thread; use as a context manager."""

    def __init__(self, store: ContentStore, host: str = "127.0.0.1", port: int = 0) -> None:
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


def serve_gateway(store: ContentStore, host: str = "127.0.0.1", port: int = 0) -> Gateway:
    """Start a trustless gateway for ``store`` (port 0: an ephemeral port; see ``.url``)."""
    return Gateway(store, host, port).start()
