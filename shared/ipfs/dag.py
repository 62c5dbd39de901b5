"""Walking UnixFS DAGs through any block source: block order, file bytes, directory trees.

Every block comes from a ``get_block`` callable that has already checked its hash, so the
walkers only add structure checks (a link must lead to a node of the kind expected).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from framecast.shared.errors import VerificationFailed
from framecast.shared.ipfs.cid import CID, DAG_PB, RAW
from framecast.shared.ipfs.unixfs import NodeType, PBNode, decode_node

GetBlock = Callable[[CID], bytes]


def _decode(cid: CID, block: bytes) -> PBNode:
    try:
        return decode_node(block)
    except ValueError as exc:
        raise VerificationFailed(
            f"block {cid} is not a valid dag-pb node ({exc})",
            fix="the content was not produced by an IPFS importer; re-add it",
            cid=str(cid),
        ) from None


def links_of(cid: CID, block: bytes) -> list[CID]:
    """The CIDs a block links to (none for raw leaves)."""
    if cid.codec == RAW:
        return []
    if cid.codec != DAG_PB:
        raise VerificationFailed(
            f"block {cid} uses codec 0x{cid.codec:x}, not raw or dag-pb",
            fix="framecast stores UnixFS content only",
            cid=str(cid),
        )
    return [link.cid for link in _decode(cid, block).links]


def walk_blocks(get_block: GetBlock, root: CID) -> Iterator[tuple[CID, bytes]]:
    """Every block of the DAG under ``root``, depth-first pre-order (CAR ``order=dfs``)."""
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue  # identical chunks share one block; emit it once (dups=n)
        seen.add(cid)
        block = get_block(cid)
        yield cid, block
        stack.extend(reversed(links_of(cid, block)))


def _not_a(kind: str, cid: CID) -> VerificationFailed:
    return VerificationFailed(
        f"{cid} is not a UnixFS {kind}",
        fix="check the CID: it names other content than expected",
        cid=str(cid),
    )


def iter_file(get_block: GetBlock, cid: CID) -> Iterator[bytes]:
    """The bytes of a UnixFS file, chunk by chunk, in order."""
    stack = [cid]
    while stack:
        current = stack.pop()
        block = get_block(current)
        if current.codec == RAW:
            yield block
            continue
        node = _decode(current, block)
        meta = node.unixfs
        if meta is None or meta.type not in (NodeType.FILE, NodeType.RAW):
            raise _not_a("file", current)
        if meta.data:
            yield meta.data
        stack.extend(link.cid for link in reversed(node.links))


def directory_entries(get_block: GetBlock, cid: CID) -> Iterator[tuple[str, CID]]:
    """(name, CID) of a directory's entries, flat or HAMT-sharded."""
    node = _decode(cid, get_block(cid))
    meta = node.unixfs
    if meta is None:
        raise _not_a("directory", cid)
    if meta.type == NodeType.DIRECTORY:
        for link in node.links:
            yield link.name, link.cid
    elif meta.type == NodeType.HAMT_SHARD:
        width = len(f"{(meta.fanout or 256) - 1:X}")
        for link in node.links:
            if len(link.name) == width:
                yield from directory_entries(get_block, link.cid)  # a sub-shard
            else:
                yield link.name[width:], link.cid
    else:
        raise _not_a("directory", cid)


def is_directory(get_block: GetBlock, cid: CID) -> bool:
    if cid.codec == RAW:
        return False
    meta = _decode(cid, get_block(cid)).unixfs
    return meta is not None and meta.type in (NodeType.DIRECTORY, NodeType.HAMT_SHARD)


def _safe_name(name: str, cid: CID) -> str:
    # Names come from the network: never let one escape the destination directory.
    if not name or name in (".", "..") or "/" in name or "\0" in name or os.sep in name:
        raise VerificationFailed(
            f"directory {cid} has an unsafe entry name {name!r}",
            fix="refuse this content; a well-formed UnixFS directory never holds such names",
            cid=str(cid),
        )
    return name


def write_tree(get_block: GetBlock, cid: CID, dest: Path) -> None:
    """Materialize a file or directory at ``dest`` (which must not exist)."""
    if is_directory(get_block, cid):
        dest.mkdir()
        for name, child in directory_entries(get_block, cid):
            write_tree(get_block, child, dest / _safe_name(name, cid))
        return
    with dest.open("xb") as out:
        for chunk in iter_file(get_block, cid):
            out.write(chunk)
