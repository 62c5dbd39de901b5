"""Streaming UnixFS importer: a file or directory → its root CID under ``unixfs-v1-2025``.

The profile (IPIP-499): CIDv1, sha2-256, raw leaves, fixed 1 MiB chunks, balanced layout
with 1024 links per node, directories HAMT-sharded once their node would exceed 256 KiB.
The reference is the IPFS project's own importer (npm ``ipfs-unixfs-importer``); the tests
compare against it.

Memory stays constant whatever the file size: chunks are read into a fixed ring of reused
buffers and hashed by a thread pool (hashlib releases the GIL), and the balanced tree is
built bottom-up keeping at most ``max_links`` pending links per level.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from framecast.shared.errors import StorageError
from framecast.shared.ipfs.cid import CID, DAG_PB, RAW
from framecast.shared.ipfs.hamt import build_shard
from framecast.shared.ipfs.unixfs import (
    Link,
    NodeType,
    UnixFSData,
    encode_node,
    encode_unixfs,
    link_serialized_size,
    link_sort_key,
)


@dataclass(frozen=True, slots=True)
class Profile:
    """Importer parameters. Only :data:`UNIXFS_V1_2025` is used outside tests."""

    chunk_size: int = 1 << 20
    max_links: int = 1024
    shard_threshold: int = 256 * 1024
    shard_fanout_bits: int = 8


UNIXFS_V1_2025 = Profile()

#: Serialized size of a directory's ``Data`` field (type only): the sharding estimate's base.
_DIR_DATA_FIELD_SIZE = 4


class BlockSink(Protocol):
    """Where the importer writes blocks; called from worker threads, so thread-safe."""

    def put_block(self, cid: CID, data: bytes | memoryview) -> None: ...


@dataclass(frozen=True, slots=True)
class ImportedNode:
    """A node of the imported DAG: its CID, cumulative DAG size and (for files) byte size."""

    cid: CID
    tsize: int
    filesize: int = 0


def _path_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ELOOP:
        return StorageError(
            f"{path} is a symlink loop", fix="remove or repoint the symlink", path=str(path)
        )
    if isinstance(exc, FileNotFoundError):
        return StorageError(
            f"{path} does not exist (or is a dangling symlink)",
            fix="check the path",
            path=str(path),
        )
    if isinstance(exc, PermissionError):
        return StorageError(
            f"{path} is not readable ({exc.strerror})",
            fix="fix its permissions or run as a user who can read it",
            path=str(path),
        )
    return StorageError(
        f"cannot read {path} ({exc.strerror or exc})", fix="check the path", path=str(path)
    )


class _ChunkHasher:
    """Reads chunks into a ring of reused buffers and hashes them on a thread pool."""

    def __init__(self, profile: Profile, sink: BlockSink | None, workers: int | None) -> None:
        self.chunk_size = profile.chunk_size
        self.sink = sink
        self.workers = workers or max(2, os.cpu_count() or 2)
        # Enough chunks in flight to keep every worker busy while the next one is read.
        self.depth = 2 * self.workers + 1
        self.buffers: list[bytearray] = []
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="framecast-cid")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _leaf(self, view: memoryview) -> ImportedNode:
        cid = CID.from_block(view, RAW)
        if self.sink is not None:
            self.sink.put_block(cid, view)
        return ImportedNode(cid, len(view), len(view))

    def _fill(self, source: BinaryIO, view: memoryview) -> int:
        total = 0
        while total < len(view):
            count = source.readinto(view[total:])  # type: ignore[attr-defined]
            if not count:
                break
            total += count
        return int(total)

    def leaves(self, source: BinaryIO) -> Iterator[ImportedNode]:
        """Raw leaves of ``source`` in order; an empty source yields one empty leaf."""
        pending: deque[Future[ImportedNode]] = deque()
        index = 0
        while True:
            if len(pending) == self.depth:
                yield pending.popleft().result()
            slot = index % self.depth
            if slot == len(self.buffers):
                self.buffers.append(bytearray(self.chunk_size))
            view = memoryview(self.buffers[slot])
            count = self._fill(source, view)
            if count == 0 and index > 0:
                break
            pending.append(self.pool.submit(self._leaf, view[:count]))
            index += 1
            if count < self.chunk_size:
                break
        while pending:
            yield pending.popleft().result()


class _BalancedFile:
    """Balanced layout built bottom-up: the same tree as batching leaves level by level."""

    def __init__(self, max_links: int, sink: BlockSink | None) -> None:
        self.max_links = max_links
        self.sink = sink
        self.levels: list[list[ImportedNode]] = []
        self.leaf_count = 0

    def add_leaf(self, leaf: ImportedNode) -> None:
        self.leaf_count += 1
        self._push(0, leaf)

    def _push(self, level: int, node: ImportedNode) -> None:
        while len(self.levels) <= level:
            self.levels.append([])
        self.levels[level].append(node)
        if len(self.levels[level]) == self.max_links:
            parent = self._reduce(self.levels[level])
            self.levels[level] = []
            self._push(level + 1, parent)

    def _reduce(self, children: list[ImportedNode]) -> ImportedNode:
        meta = UnixFSData(
            NodeType.FILE,
            filesize=sum(child.filesize for child in children),
            blocksizes=tuple(child.filesize for child in children),
        )
        links = [Link(child.cid, "", child.tsize) for child in children]
        block = encode_node(links, encode_unixfs(meta))
        cid = CID.from_block(block, DAG_PB)
        if self.sink is not None:
            self.sink.put_block(cid, block)
        return ImportedNode(cid, len(block) + sum(c.tsize for c in children), meta.filesize or 0)

    def finish(self) -> ImportedNode:
        if self.leaf_count == 1:
            # A one-chunk file is its raw leaf: no UnixFS node around it.
            return self.levels[0][0]
        level = 0
        while level < len(self.levels):
            items = self.levels[level]
            higher = any(self.levels[k] for k in range(level + 1, len(self.levels)))
            if len(items) == 1 and not higher:
                return items[0]
            if items:
                self.levels[level] = []
                self._push(level + 1, self._reduce(items))
            level += 1
        raise AssertionError("unreachable: a file has at least one leaf")


class Importer:
    """Imports files and directories; reuse one instance to share its thread pool."""

    def __init__(
        self,
        sink: BlockSink | None = None,
        *,
        profile: Profile = UNIXFS_V1_2025,
        workers: int | None = None,
    ) -> None:
        self.sink = sink
        self.profile = profile
        self._hasher = _ChunkHasher(profile, sink, workers)

    def __enter__(self) -> Importer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hasher.close()

    def _write(self, cid: CID, block: bytes) -> None:
        if self.sink is not None:
            self.sink.put_block(cid, block)

    def import_stream(self, source: BinaryIO) -> ImportedNode:
        """Import one file's bytes from a binary stream (anything with ``readinto``)."""
        layout = _BalancedFile(self.profile.max_links, self.sink)
        for leaf in self._hasher.leaves(source):
            layout.add_leaf(leaf)
        return layout.finish()

    def import_path(self, path: str | os.PathLike[str]) -> ImportedNode:
        """Import a file or a directory tree (symlinks followed, loops rejected)."""
        root = Path(path)
        try:
            info = root.stat()
        except OSError as exc:
            raise _path_error(root, exc) from exc
        if stat.S_ISDIR(info.st_mode):
            node, _ = self._import_dir(root, frozenset({(info.st_dev, info.st_ino)}))
            return node
        return self._import_file(root, info)

    def _import_file(self, path: Path, info: os.stat_result) -> ImportedNode:
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(
                f"{path} is not a regular file or directory",
                fix="import regular files and directories only",
                path=str(path),
            )
        try:
            with path.open("rb", buffering=0) as source:
                return self.import_stream(source)
        except OSError as exc:
            raise _path_error(path, exc) from exc

    def _import_dir(
        self, path: Path, ancestors: frozenset[tuple[int, int]]
    ) -> tuple[ImportedNode, bool]:
        """Returns the directory node and whether it is empty."""
        try:
            with os.scandir(path) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            raise _path_error(path, exc) from exc
        links: list[Link] = []
        # Mirrors ipfs-unixfs-importer's 'block-bytes' estimate: a non-empty subdirectory is
        # still unflushed when the parent's size is checked, so its link does not count.
        estimate = _DIR_DATA_FIELD_SIZE
        for name in names:
            child = path / name
            encoded = _utf8_name(child, name)
            try:
                info = child.stat()
            except OSError as exc:
                raise _path_error(child, exc) from exc
            counts = True
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    raise StorageError(
                        f"{child} leads back to one of its parent directories (symlink loop)",
                        fix="remove or repoint the symlink",
                        path=str(child),
                    )
                node, counts = self._import_dir(child, ancestors | {key})
            else:
                node = self._import_file(child, info)
            links.append(Link(node.cid, name, node.tsize))
            if counts:
                estimate += link_serialized_size(len(encoded), len(bytes(node.cid)), node.tsize)
        if estimate > self.profile.shard_threshold:
            cid, tsize = build_shard(links, self.profile.shard_fanout_bits, self._write)
            return ImportedNode(cid, tsize), False
        links.sort(key=link_sort_key)
        block = encode_node(links, encode_unixfs(UnixFSData(NodeType.DIRECTORY)))
        cid = CID.from_block(block, DAG_PB)
        self._write(cid, block)
        return ImportedNode(cid, len(block) + sum(link.tsize for link in links)), not links


def _utf8_name(path: Path, name: str) -> bytes:
    try:
        return name.encode("utf-8")
    except UnicodeEncodeError:
        raise StorageError(
            f"{path!s} has a name that is not valid UTF-8 (UnixFS names are UTF-8)",
            fix="rename the file",
            path=os.fsdecode(bytes(path)),
        ) from None


def import_path(
    path: str | os.PathLike[str],
    sink: BlockSink | None = None,
    *,
    profile: Profile = UNIXFS_V1_2025,
    workers: int | None = None,
) -> ImportedNode:
    """Import a file or directory, writing every block to ``sink`` when given."""
    with Importer(sink, profile=profile, workers=workers) as importer:
        return importer.import_path(path)


def cid_of_path(path: str | os.PathLike[str], *, profile: Profile = UNIXFS_V1_2025) -> str:
    """The root CID (CIDv1 base32) that IPFS gives ``path`` under ``unixfs-v1-2025``."""
    return str(import_path(path, profile=profile).cid)
