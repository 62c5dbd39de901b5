"""A stand-in for kubo's RPC behind ``httpx.MockTransport``: kubo cannot be installed here.

Responses are shaped as kubo documents them (https://docs.ipfs.tech/reference/kubo/rpc/):
POST only, NDJSON for add/dag import/repo gc, JSON objects for pins and block/put, HTTP 500
with ``{"Message", "Code", "Type": "error"}`` on failure. State lives in a LocalStore.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import tempfile
from pathlib import Path
from urllib.parse import unquote

import httpx

from framecast.shared.errors import FramecastError
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.local import LocalStore


def _error(message: str) -> httpx.Response:
    return httpx.Response(500, json={"Message": message, "Code": 0, "Type": "error"})


def _ndjson(items: list[dict[str, object]]) -> httpx.Response:
    body = "".join(json.dumps(item) + "\n" for item in items)
    return httpx.Response(200, content=body.encode(), headers={"Content-Type": "application/json"})


class FakeKubo:
    """Handles /api/v0 calls; ``cid_override`` makes ``add`` answer another CID."""

    def __init__(self, root: Path) -> None:
        self.store = LocalStore(root / "kubo-repo")
        self.scratch = root / "kubo-uploads"
        self.scratch.mkdir()
        self.cid_override: str | None = None
        self.calls: list[str] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _parts(self, request: httpx.Request) -> list[tuple[str, str | None, bytes]]:
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            head + request.read()
        )
        parts = []
        for part in message.iter_parts():
            payload = part.get_payload(decode=True)
            parts.append(
                (part.get_content_type(), part.get_filename(), payload if payload else b"")
            )
        return parts

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(405, text="405 - Method Not Allowed")
        endpoint = request.url.path.removeprefix("/api/v0/")
        self.calls.append(endpoint)
        arg = request.url.params.get("arg", "")
        try:
            return self._dispatch(endpoint, arg, request)
        except FramecastError as exc:
            return _error(exc.message)

    def _dispatch(self, endpoint: str, arg: str, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if endpoint == "add":
            upload = Path(tempfile.mkdtemp(dir=self.scratch))
            top = None
            for content_type, name, payload in self._parts(request):
                assert name is not None
                rel = unquote(name)
                top = top or rel
                target = upload / rel
                if content_type == "application/x-directory":
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.write_bytes(payload)
            assert top is not None
            # kubo honours these; the fake only supports the profile's values.
            assert params["cid-version"] == "1" and params["raw-leaves"] == "true"
            cid = str(self.store.add_path(upload / top))
            return _ndjson([{"Name": top, "Hash": self.cid_override or cid, "Size": "0"}])
        if endpoint == "cat":
            if not self.store.has(arg):
                return _error(f"block was not found locally (offline): ipld: could not find {arg}")
            return httpx.Response(200, content=b"".join(self.store.cat(arg)))
        if endpoint == "block/get":
            if not self.store.has(arg):
                return _error(f"block was not found locally (offline): ipld: could not find {arg}")
            return httpx.Response(200, content=self.store.get_block(arg))
        if endpoint == "block/stat":
            if not self.store.has(arg):
                return _error(f"block was not found locally (offline): ipld: could not find {arg}")
            return httpx.Response(200, json={"Key": arg, "Size": len(self.store.get_block(arg))})
        if endpoint == "block/put":
            (_, _, data), *_ = self._parts(request)
            codec = 0x55 if params["cid-codec"] == "raw" else 0x70
            cid = CID.from_block(data, codec)
            self.store.put_block(cid, data)
            return httpx.Response(200, json={"Key": str(cid), "Size": len(data)})
        if endpoint == "pin/add":
            self.store.pin(arg)
            return httpx.Response(200, json={"Pins": [arg]})
        if endpoint == "pin/rm":
            if CID.parse(arg).to_v1() not in self.store.pins():
                return _error("not pinned or pinned indirectly")
            self.store.unpin(arg)
            return httpx.Response(200, json={"Pins": [arg]})
        if endpoint == "pin/ls":
            keys = {str(c): {"Type": "recursive"} for c in self.store.pins()}
            return httpx.Response(200, json={"Keys": keys})
        if endpoint == "repo/gc":
            before = {p.name for p in (self.store.root / "blocks").rglob("b*")}
            self.store.gc()
            after = {p.name for p in (self.store.root / "blocks").rglob("b*")}
            return _ndjson([{"Key": {"/": name}} for name in sorted(before - after)])
        if endpoint == "dag/export":
            out = io.BytesIO()
            self.store.export_car(arg, out)
            return httpx.Response(200, content=out.getvalue())
        if endpoint == "dag/import":
            (_, _, data), *_ = self._parts(request)
            roots = self.store.import_car(io.BytesIO(data))
            return _ndjson([{"Root": {"Cid": {"/": str(r)}, "PinErrorMsg": ""}} for r in roots])
        return httpx.Response(404, text="404 page not found")
