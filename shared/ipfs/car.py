"""CAR v1 (content-addressed archives): write and read, streaming, section by section.

Header: varint length + dag-cbor ``{"roots": [CID...], "version": 1}``; then sections of
varint length + binary CID + block bytes. Only the tiny CBOR subset the header uses is
handled here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, Final, Protocol

from framecast.shared.errors import StorageError
from framecast.shared.ipfs.cid import CID, encode_varint

CONTENT_TYPE: Final = "application/vnd.ipld.car"
# A header or CID larger than this is not a CAR file we produced or accept.
_MAX_HEADER: Final = 1 << 20
_MAX_SECTION: Final = 8 << 20  # blocks are ≤ 1 MiB (+ node overhead); 8 MiB is generous
_TRUNCATED_FIX: Final = "the CAR file is incomplete: download or export it again"


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    if value < 256:
        return bytes([major << 5 | 24, value])
    if value < 65536:
        return bytes([major << 5 | 25]) + value.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + value.to_bytes(4, "big")


def encode_header(roots: list[CID]) -> bytes:
    """dag-cbor header (keys in length-then-bytes order: "roots" before "version")."""
    body = bytearray(_cbor_head(5, 2))
    body += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for root in roots:
        raw = b"\0" + bytes(root)  # dag-cbor CIDs: tag 42 over bytes with a 0x00 prefix
        body += b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
    body += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return bytes(encode_varint(len(body))) + bytes(body)


def encode_section(cid: CID, block: bytes | memoryview) -> bytes:
    raw = bytes(cid)
    return bytes(encode_varint(len(raw) + len(block))) + raw


def write_car(out: BinaryIO, roots: list[CID], blocks: Iterable[tuple[CID, bytes]]) -> int:
    """Write a CAR v1; returns the number of blocks written."""
    out.write(encode_header(roots))
    count = 0
    for cid, block in blocks:
        out.write(encode_section(cid, block))
        out.write(block)
        count += 1
    return count


def iter_car_bytes(roots: list[CID], blocks: Iterable[tuple[CID, bytes]]) -> Iterator[bytes]:
    """The same stream as :func:`write_car`, as chunks (for HTTP responses)."""
    yield encode_header(roots)
    for cid, block in blocks:
        yield encode_section(cid, block) + block


class _Cbor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated CBOR")
        self.pos += 1
        return self.data[self.pos - 1]

    def _arg(self, info: int) -> int:
        if info < 24:
            return info
        size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if size is None or self.pos + size > len(self.data):
            raise ValueError("bad CBOR length")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def item(self) -> object:
        head = self._byte()
        major, value = head >> 5, self._arg(head & 31)
        if major == 0:
            return value
        if major in (2, 3):
            raw = self.data[self.pos : self.pos + value]
            if len(raw) != value:
                raise ValueError("truncated CBOR string")
            self.pos += value
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            return [self.item() for _ in range(value)]
        if major == 5:
            out: dict[object, object] = {}
            for _ in range(value):
                key = self.item()
                out[key] = self.item()
            return out
        if major == 6 and value == 42:
            tagged = self.item()
            if not isinstance(tagged, bytes) or not tagged.startswith(b"\0"):
                raise ValueError("bad CID in CBOR")
            return CID.from_bytes(tagged[1:])
        raise ValueError(f"unsupported CBOR item (major type {major})")


class Readable(Protocol):
    """What the CAR reader needs of its source: a file, a socket, a `ChunkReader`."""

    def read(self, size: int = -1, /) -> bytes: ...


class ChunkReader:
    """A minimal ``read(n)`` file object over an iterator of byte chunks (HTTP bodies)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _read_exact(src: Readable, size: int, what: str) -> bytes:
    chunks = []
    left = size
    while left:
        chunk = src.read(left)
        if not chunk:
            raise StorageError(
                f"truncated CAR: {what} ends after {size - left} of {size} bytes",
                fix=_TRUNCATED_FIX,
            )
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_varint(src: Readable, what: str) -> int | None:
    """A varint from the stream; None at a clean end of stream."""
    value = shift = 0
    for i in range(10):
        byte = src.read(1)
        if not byte:
            if i == 0:
                return None
            raise StorageError(f"truncated CAR: {what} length cut short", fix=_TRUNCATED_FIX)
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
    raise StorageError(f"malformed CAR: {what} length varint too long", fix=_TRUNCATED_FIX)


class CarReader:
    """Streams a CAR v1: ``roots`` after construction, then ``blocks()`` (unverified)."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        size = _read_varint(src, "header")
        if size is None or size == 0 or size > _MAX_HEADER:
            raise StorageError("not a CAR file (empty or oversized header)", fix=_TRUNCATED_FIX)
        try:
            header = _Cbor(_read_exact(src, size, "header")).item()
        except ValueError as exc:
            raise StorageError(f"malformed CAR header ({exc})", fix=_TRUNCATED_FIX) from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise StorageError("not a CAR v1 file (header version is not 1)", fix=_TRUNCATED_FIX)
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
            raise StorageError("malformed CAR header (roots)", fix=_TRUNCATED_FIX)
        self.roots: list[CID] = list(roots)

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        """(CID, bytes) per section. Callers verify: ``cid.verify(block)``."""
        while True:
            size = _read_varint(self.src, "section")
            if size is None:
                return
            if size > _MAX_SECTION:
                raise StorageError(f"malformed CAR: a {size}-byte section", fix=_TRUNCATED_FIX)
            section = _read_exact(self.src, size, "section")
            try:
                cid, offset = CID.read(section, 0)
            except ValueError as exc:
                raise StorageError(
                    f"malformed CAR section CID ({exc})", fix=_TRUNCATED_FIX
                ) from None
            yield cid, section[offset:]
