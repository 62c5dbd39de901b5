"""HAMT-sharded UnixFS directories, as the IPFS importers lay them out.

A directory whose node would outgrow the profile's threshold is split into a hash array
mapped trie: each level consumes ``fanout_bits`` of the 64-bit murmur3-x64 hash of the
entry name (MSB first; when 64 bits run out, the name plus a depth byte is re-hashed), a
slot holds either one entry (link name = hex slot label + entry name) or a sub-shard (link
name = hex slot label alone). Without deletions the trie is canonical: the same names
give the same blocks whatever the insertion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from framecast.shared.ipfs.cid import CID, DAG_PB
from framecast.shared.ipfs.unixfs import (
    HAMT_HASH_MURMUR3,
    Link,
    NodeType,
    UnixFSData,
    encode_node,
    encode_unixfs,
    link_sort_key,
)

_M64: Final = (1 << 64) - 1
_C1: Final = 0x87C37B91114253D5
_C2: Final = 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_x64_128(data: bytes, seed: int = 0) -> bytes:
    """MurmurHash3 x64 128-bit; returns h1 then h2, each big-endian (as multiformats prints it)."""
    h1 = h2 = seed
    nblocks = len(data) // 16
    for i in range(nblocks):
        k1 = int.from_bytes(data[16 * i : 16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8 : 16 * i + 16], "little")
        h1 ^= (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64
        h1 = (_rotl(h1, 27) + h2) & _M64
        h1 = (h1 * 5 + 0x52DCE729) & _M64
        h2 ^= (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64
        h2 = (_rotl(h2, 31) + h1) & _M64
        h2 = (h2 * 5 + 0x38495AB5) & _M64
    tail = data[nblocks * 16 :]
    if len(tail) > 8:
        h2 ^= (_rotl((int.from_bytes(tail[8:], "little") * _C2) & _M64, 33) * _C1) & _M64
    if tail:
        h1 ^= (_rotl((int.from_bytes(tail[:8], "little") * _C1) & _M64, 31) * _C2) & _M64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    return h1.to_bytes(8, "big") + h2.to_bytes(8, "big")


def slot_index(name: bytes, level: int, bits: int) -> int:
    """The slot of ``name`` at ``level``: bits [level*bits, (level+1)*bits) of its hash stream."""
    pos, end, result = level * bits, (level + 1) * bits, 0
    while pos < end:
        block = pos // 64
        # Only the first 64 bits (h1) of each murmur3 digest are used, as in go-unixfs.
        word = int.from_bytes(murmur3_x64_128(name if block == 0 else name + bytes([block]))[:8])
        offset = pos % 64
        take = min(64 - offset, end - pos)
        result = (result << take) | ((word >> (64 - offset - take)) & ((1 << take) - 1))
        pos += take
    return result


@dataclass(slots=True)
class _Bucket:
    slots: dict[int, _Bucket | tuple[str, Link]] = field(default_factory=dict)


BlockWriter = Callable[[CID, bytes], None]


def _insert(bucket: _Bucket, name: str, link: Link, level: int, bits: int) -> None:
    index = slot_index(name.encode("utf-8"), level, bits)
    current = bucket.slots.get(index)
    if current is None:
        bucket.slots[index] = (name, link)
    elif isinstance(current, _Bucket):
        _insert(current, name, link, level + 1, bits)
    else:
        child = _Bucket()
        bucket.slots[index] = child
        _insert(child, current[0], current[1], level + 1, bits)
        _insert(child, name, link, level + 1, bits)


def _flush(bucket: _Bucket, bits: int, write: BlockWriter) -> tuple[CID, int]:
    width = len(f"{(1 << bits) - 1:X}")
    links: list[Link] = []
    bitfield = 0
    for index in sorted(bucket.slots):
        bitfield |= 1 << index
        label = f"{index:0{width}X}"
        value = bucket.slots[index]
        if isinstance(value, _Bucket):
            cid, tsize = _flush(value, bits, write)
            links.append(Link(cid, label, tsize))
        else:
            name, target = value
            links.append(Link(target.cid, label + name, target.tsize))
    meta = UnixFSData(
        NodeType.HAMT_SHARD,
        data=bitfield.to_bytes(max(1, (bitfield.bit_length() + 7) // 8), "big"),
        hash_type=HAMT_HASH_MURMUR3,
        fanout=1 << bits,
    )
    links.sort(key=link_sort_key)
    block = encode_node(links, encode_unixfs(meta))
    cid = CID.from_block(block, DAG_PB)
    write(cid, block)
    return cid, len(block) + sum(link.tsize for link in links)


def build_shard(entries: Iterable[Link], bits: int, write: BlockWriter) -> tuple[CID, int]:
    """Write the HAMT for a directory's entries; returns the root CID and cumulative size."""
    root = _Bucket()
    for link in entries:
        _insert(root, link.name, link, 0, bits)
    return _flush(root, bits, write)
