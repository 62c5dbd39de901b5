"""The kubo adapter: a ``ContentStore`` over kubo's HTTP RPC (``/api/v0``) with httpx.

Every call is a POST (kubo's RPC rejects GET). Errors come back as HTTP 500 with
``{"Message": ..., "Code": ..., "Type": "error"}``; they and every httpx exception are
mapped into framecast's error tree here, with the CID and URL.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import quote

import httpx

from framecast.shared.errors import (
    ContentNotFound,
    StorageError,
    StoreUnavailable,
    VerificationFailed,
)
from framecast.shared.ipfs.car import CarReader, ChunkReader, encode_header, encode_section
from framecast.shared.ipfs.cid import CID, RAW, parse_cid
from framecast.shared.ipfs.importer import UNIXFS_V1_2025, import_path

#: ``ipfs add`` parameters that select the unixfs-v1-2025 layout for files.
ADD_PARAMS: Final[dict[str, str]] = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "chunker": f"size-{UNIXFS_V1_2025.chunk_size}",
    "pin": "true",
    "hidden": "true",  # framecast imports dotfiles too
    "progress": "false",
    "wrap-with-directory": "false",
}
_PROFILE_FIX: Final = (
    "run `ipfs config profile apply unixfs-v1-2025` on the kubo node (kubo ≥ 0.38), or set "
    "{settings} to the profile's values, then add again"
)
_NOT_FOUND_HINTS: Final = ("not found", "could not find", "no link named", "not pinned")


class KuboStore:
    """``ContentStore`` backed by a kubo node."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=f"{self.url}/api/v0", timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    # -- plumbing -------------------------------------------------------------------------

    def _fail(self, response: httpx.Response, action: str, cid: CID | None) -> StorageError:
        try:
            message = str(json.loads(response.read()).get("Message", ""))
        except (ValueError, AttributeError):
            message = response.text[:200] if response.is_closed else ""
        context: dict[str, Any] = {"url": self.url, "cid": str(cid) if cid else None}
        if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
            return ContentNotFound(
                f"kubo at {self.url} cannot {action}: {message}",
                fix="check the CID; add or pin the content on that node first",
                **context,
            )
        return StorageError(
            f"kubo at {self.url} cannot {action}: HTTP {response.status_code} {message}".rstrip(),
            fix="check the kubo node's logs",
            **context,
        )

    def _unavailable(self, exc: httpx.HTTPError, action: str, cid: CID | None) -> StoreUnavailable:
        return StoreUnavailable(
            f"kubo at {self.url} did not answer ({action}): {exc.__class__.__name__}: {exc}",
            fix="start kubo (`ipfs daemon`) or fix `kubo_url`",
            url=self.url,
            cid=str(cid) if cid else None,
        )

    def _post(
        self,
        endpoint: str,
        action: str,
        *,
        cid: CID | None = None,
        params: dict[str, str] | None = None,
        files: Any = None,
    ) -> httpx.Response:
        try:
            response = self._client.post(endpoint, params=params, files=files)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, action, cid) from exc
        if response.status_code != 200:
            raise self._fail(response, action, cid)
        return response

    def _json(self, response: httpx.Response, action: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise StorageError(
                f"kubo at {self.url} sent malformed JSON ({action})",
                fix="check that `kubo_url` points at kubo's RPC API (port 5001)",
                url=self.url,
            ) from exc

    def _ndjson(self, response: httpx.Response, action: str) -> list[Any]:
        try:
            return [json.loads(line) for line in response.text.splitlines() if line.strip()]
        except ValueError as exc:
            raise StorageError(
                f"kubo at {self.url} sent malformed JSON lines ({action})",
                fix="check that `kubo_url` points at kubo's RPC API (port 5001)",
                url=self.url,
            ) from exc

    def _cid(self, text: object, action: str) -> CID:
        if isinstance(text, dict):
            text = text.get("/")
        if not isinstance(text, str):
            raise StorageError(
                f"kubo at {self.url} sent no CID ({action})",
                fix="check the kubo version (framecast needs kubo ≥ 0.38)",
                url=self.url,
            )
        return CID.parse(text)

    # -- content --------------------------------------------------------------------------

    def add_path(self, path: str | os.PathLike[str]) -> CID:
        """``ipfs add`` (pinned) and check kubo's CID against the local computation."""
        root = Path(path)
        expected = import_path(root)  # also validates the path, before upload
        with ExitStack() as stack:
            files = list(_multipart_entries(root, stack))
            response = self._post(
                "add", f"add {root}", params=ADD_PARAMS | {"quieter": "true"}, files=files
            )
        lines = self._ndjson(response, f"add {root}")
        if not lines or "Hash" not in lines[-1]:
            raise StorageError(
                f"kubo at {self.url} returned no root CID for {root}",
                fix="check the kubo node's logs",
                url=self.url,
            )
        got = self._cid(lines[-1]["Hash"], f"add {root}").to_v1()
        if got != expected.cid:
            settings = _suspect_settings(root, expected.cid)
            raise VerificationFailed(
                f"kubo at {self.url} gave {got} for {root}, framecast computes {expected.cid} "
                "(unixfs-v1-2025): the node imports with other settings",
                fix=_PROFILE_FIX.format(settings=settings),
                cid=str(expected.cid),
                url=self.url,
            )
        return got

    def cat(self, cid: CID | str) -> Iterator[bytes]:
        root = parse_cid(cid)
        request = self._client.build_request("POST", "cat", params={"arg": str(root)})
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, f"cat {root}", root) from exc
        if response.status_code != 200:
            response.read()
            response.close()
            raise self._fail(response, f"cat {root}", root)
        return self._stream(response, root)

    def _stream(self, response: httpx.Response, cid: CID) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, f"cat {cid}", cid) from exc
        finally:
            response.close()

    def get_block(self, cid: CID | str) -> bytes:
        block_cid = parse_cid(cid)
        response = self._post(
            "block/get",
            f"get block {block_cid}",
            cid=block_cid,
            params={"arg": str(block_cid), "offline": "true"},
        )
        block_cid.verify(response.content)  # kubo is trusted to store, not to answer
        return response.content

    def put_block(self, cid: CID, data: bytes | memoryview) -> None:
        cid.verify(data)
        codec = "raw" if cid.codec == RAW else "dag-pb"
        response = self._post(
            "block/put",
            f"put block {cid}",
            cid=cid,
            params={"cid-codec": codec, "mhtype": "sha2-256", "pin": "false"},
            files={"data": ("block", bytes(data), "application/octet-stream")},
        )
        got = self._cid(self._json(response, f"put block {cid}").get("Key"), "block/put")
        if got.to_v1() != cid.to_v1():
            raise VerificationFailed(
                f"kubo at {self.url} stored block {cid} as {got}",
                fix="check the kubo version (block/put with cid-codec needs kubo ≥ 0.18)",
                cid=str(cid),
                url=self.url,
            )

    def has(self, cid: CID | str) -> bool:
        block_cid = parse_cid(cid)
        try:
            self._post(
                "block/stat",
                f"stat block {block_cid}",
                cid=block_cid,
                params={"arg": str(block_cid), "offline": "true"},
            )
        except ContentNotFound:
            return False
        return True

    # -- pins -----------------------------------------------------------------------------

    def pin(self, cid: CID | str) -> None:
        root = parse_cid(cid)
        self._post(
            "pin/add",
            f"pin {root}",
            cid=root,
            params={"arg": str(root), "recursive": "true", "progress": "false"},
        )

    def unpin(self, cid: CID | str) -> None:
        root = parse_cid(cid)
        self._post(
            "pin/rm", f"unpin {root}", cid=root, params={"arg": str(root), "recursive": "true"}
        )

    def pins(self) -> list[CID]:
        response = self._post("pin/ls", "list pins", params={"type": "recursive"})
        keys = self._json(response, "list pins").get("Keys") or {}
        return sorted((CID.parse(key).to_v1() for key in keys), key=str)

    def gc(self) -> int:
        response = self._post("repo/gc", "collect garbage", params={"quiet": "false"})
        lines = self._ndjson(response, "collect garbage")
        errors = [line["Error"] for line in lines if line.get("Error")]
        if errors:
            raise StorageError(
                f"kubo at {self.url} failed to collect garbage: {errors[0]}",
                fix="check the kubo node's logs",
                url=self.url,
            )
        return sum(1 for line in lines if line.get("Key"))

    # -- CAR ------------------------------------------------------------------------------

    def export_car(self, cid: CID | str, out: BinaryIO) -> int:
        """``ipfs dag export``; every block is verified while it is copied to ``out``."""
        root = parse_cid(cid)
        request = self._client.build_request("POST", "dag/export", params={"arg": str(root)})
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, f"export {root}", root) from exc
        try:
            if response.status_code != 200:
                response.read()
                raise self._fail(response, f"export {root}", root)
            reader = CarReader(ChunkReader(response.iter_bytes()))
            out.write(encode_header(reader.roots))
            count = 0
            for block_cid, block in reader.blocks():
                block_cid.verify(block)
                out.write(encode_section(block_cid, block) + block)
                count += 1
            return count
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, f"export {root}", root) from exc
        finally:
            response.close()

    def import_car(self, src: BinaryIO) -> list[CID]:
        """``ipfs dag import`` with the roots pinned."""
        response = self._post(
            "dag/import",
            "import CAR",
            params={"pin-roots": "true"},
            files={"file": ("import.car", src, "application/vnd.ipld.car")},
        )
        roots = []
        for line in self._ndjson(response, "import CAR"):
            root = line.get("Root")
            if not root:
                continue
            if root.get("PinErrorMsg"):
                raise StorageError(
                    f"kubo at {self.url} imported the CAR but could not pin a root: "
                    f"{root['PinErrorMsg']}",
                    fix="the CAR is incomplete: export it again with every block",
                    url=self.url,
                )
            roots.append(self._cid(root.get("Cid"), "dag/import").to_v1())
        return roots


def _multipart_entries(root: Path, stack: ExitStack) -> Iterator[tuple[str, Any]]:
    """Multipart parts as kubo's ``add`` expects: directories before their contents,
    names URL-encoded relative paths, symlinks followed (as the local importer does)."""
    base = root.parent

    def walk(path: Path) -> Iterator[tuple[str, Any]]:
        name = quote(str(path.relative_to(base)), safe="")
        if stat.S_ISDIR(path.stat().st_mode):
            yield "file", (name, b"", "application/x-directory")
            for child in sorted(path.iterdir()):
                yield from walk(child)
        else:
            yield "file", (name, stack.enter_context(path.open("rb")), "application/octet-stream")

    return walk(root)


def _suspect_settings(root: Path, cid: CID) -> str:
    """Name the kubo Import.* settings most likely behind a CID mismatch."""
    if root.is_dir():
        return (
            "Import.UnixFSHAMTDirectorySizeThreshold (256KiB), "
            "Import.UnixFSHAMTDirectorySizeEstimation (block) and Import.UnixFSFileMaxLinks (1024)"
        )
    if cid.codec == RAW:
        return "Import.CidVersion (1), Import.UnixFSRawLeaves (true), Import.UnixFSChunker"
    if root.stat().st_size > 174 * UNIXFS_V1_2025.chunk_size:
        return "Import.UnixFSFileMaxLinks (1024)"
    return "Import.UnixFSChunker (size-1048576) and Import.UnixFSRawLeaves (true)"
