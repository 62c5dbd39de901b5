"""dag-pb nodes and the UnixFS ``Data`` message, encoded and decoded by hand.

Both are a handful of protobuf fields; the byte layout follows what the IPFS importers
write (links before data, fields in number order, empty link names kept), because the
CID is the hash of exactly these bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from framecast.shared.ipfs.cid import CID, decode_varint, encode_varint

# protobuf wire types
_VARINT: Final = 0
_LEN: Final = 2
_I32: Final = 5
_I64: Final = 1


class NodeType(IntEnum):
    """``Data.Type`` of the UnixFS protobuf."""

    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


#: Multihash code of murmur3-x64-64 as UnixFS records it for HAMT shards.
HAMT_HASH_MURMUR3: Final = 0x22


@dataclass(frozen=True, slots=True)
class Link:
    """A dag-pb link: target CID, name (empty for file chunks) and cumulative size."""

    cid: CID
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """The fields of the UnixFS ``Data`` message that framecast reads and writes."""

    type: NodeType
    data: bytes = b""
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    """A decoded dag-pb node."""

    links: tuple[Link, ...]
    data: bytes | None = None
    unixfs: UnixFSData | None = field(default=None, compare=False)


def _key(number: int, wire_type: int) -> bytes:
    return bytes(encode_varint(number << 3 | wire_type))


def _len_field(number: int, payload: bytes) -> bytes:
    return bytes(_key(number, _LEN) + encode_varint(len(payload)) + payload)


def encode_unixfs(meta: UnixFSData) -> bytes:
    """Serialize the ``Data`` message (no mode/mtime: the profile leaves them out)."""
    out = bytearray(_key(1, _VARINT) + encode_varint(meta.type))
    if meta.data:
        out += _len_field(2, meta.data)
    if meta.filesize is not None:
        out += _key(3, _VARINT) + encode_varint(meta.filesize)
    for size in meta.blocksizes:
        out += _key(4, _VARINT) + encode_varint(size)
    if meta.hash_type is not None:
        out += _key(5, _VARINT) + encode_varint(meta.hash_type)
    if meta.fanout is not None:
        out += _key(6, _VARINT) + encode_varint(meta.fanout)
    return bytes(out)


def encode_link(link: Link) -> bytes:
    """One ``PBLink``: Hash, Name (always written, even empty), Tsize."""
    return bytes(
        _len_field(1, bytes(link.cid))
        + _len_field(2, link.name.encode("utf-8"))
        + _key(3, _VARINT)
        + encode_varint(link.tsize)
    )


def link_sort_key(link: Link) -> bytes:
    """dag-pb orders links by the bytes of their names."""
    return link.name.encode("utf-8")


def encode_node(links: list[Link] | tuple[Link, ...], data: bytes | None) -> bytes:
    """A dag-pb node: links (in the order given; callers sort) then Data."""
    out = bytearray()
    for link in links:
        out += _len_field(2, encode_link(link))
    if data is not None:
        out += _len_field(1, data)
    return bytes(out)


def link_serialized_size(name_bytes: int, cid_bytes: int, tsize: int) -> int:
    """Size of one link as it sits inside a node, without building it (sharding estimate)."""
    inner = 1 + len(encode_varint(cid_bytes)) + cid_bytes
    inner += 1 + len(encode_varint(name_bytes)) + name_bytes
    inner += 1 + len(encode_varint(tsize))
    return 1 + len(encode_varint(inner)) + inner


def _fields(buf: bytes | memoryview) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (number, wire type, value) triples."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = decode_varint(buf, pos)
        elif wire_type == _LEN:
            length, pos = decode_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated protobuf field")
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire_type == _I32:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire_type == _I64:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        out.append((number, wire_type, value))
    if pos != len(buf):
        raise ValueError("truncated protobuf message")
    return out


def decode_unixfs(buf: bytes) -> UnixFSData:
    """Parse a UnixFS ``Data`` message; raises ValueError on malformed input."""
    kind: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    for number, _wire, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4:
            if isinstance(value, bytes):  # packed encoding, allowed by protobuf
                pos = 0
                while pos < len(value):
                    size, pos = decode_varint(value, pos)
                    blocksizes.append(size)
            else:
                blocksizes.append(value)
        elif number == 5 and isinstance(value, int):
            hash_type = value
        elif number == 6 and isinstance(value, int):
            fanout = value
    if kind is None:
        raise ValueError("UnixFS Data without a Type")
    return UnixFSData(NodeType(kind), data, filesize, tuple(blocksizes), hash_type, fanout)


def decode_node(buf: bytes | memoryview) -> PBNode:
    """Parse a dag-pb node (and its UnixFS Data when present); raises ValueError."""
    links: list[Link] = []
    data: bytes | None = None
    for number, _wire, value in _fields(buf):
        if number == 2 and isinstance(value, bytes):
            cid: CID | None = None
            name = ""
            tsize = 0
            for lnum, _lw, lval in _fields(value):
                if lnum == 1 and isinstance(lval, bytes):
                    cid = CID.from_bytes(lval)
                elif lnum == 2 and isinstance(lval, bytes):
                    name = lval.decode("utf-8")
                elif lnum == 3 and isinstance(lval, int):
                    tsize = lval
            if cid is None:
                raise ValueError("dag-pb link without a Hash")
            links.append(Link(cid, name, tsize))
        elif number == 1 and isinstance(value, bytes):
            data = value
        else:
            raise ValueError(f"unexpected dag-pb field {number}")
    meta = decode_unixfs(data) if data is not None else None
    return PBNode(tuple(links), data, meta)
