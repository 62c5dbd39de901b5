"""The embedded content store: an on-disk blockstore with pins, GC and CAR import/export.

Layout under ``root``: ``blocks/<xy>/<cid>`` (``xy`` = the CID's last two characters, so no
directory grows huge), ``pins/<cid>`` (one empty file per recursive pin), ``tmp/`` (blocks
being written). A block is written to ``tmp/`` and renamed into place, so a crash or a full
disk never leaves a half-written block under its CID.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from framecast.shared.errors import ContentNotFound, StorageError
from framecast.shared.ipfs.car import CarReader, write_car
from framecast.shared.ipfs.cid import CID, parse_cid
from framecast.shared.ipfs.dag import iter_file, walk_blocks, write_tree
from framecast.shared.ipfs.importer import Importer


def _os_error(action: str, path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(
            f"disk full while {action} ({path})",
            fix=f"free space on the disk holding {path} and retry",
            path=str(path),
        )
    return StorageError(
        f"cannot {action} at {path} ({exc.strerror or exc})",
        fix="check that the store directory exists and is writable (`store_path`)",
        path=str(path),
    )


class LocalStore:
    """On-disk blockstore; thread-safe for concurrent puts (writes are atomic renames)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._blocks = self.root / "blocks"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        # Folders are made on the first write, not here: opening a store to read it, or for
        # a command that then refuses its input, leaves nothing on disk.
        self._made = False

    def _make(self) -> None:
        if self._made:
            return
        try:
            for directory in (self._blocks, self._pins, self._tmp):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error("create the store", self.root, exc) from exc
        self._made = True

    # -- blocks ---------------------------------------------------------------------------

    def _path(self, cid: CID) -> Path:
        key = str(cid.to_v1())
        return self._blocks / key[-2:] / key

    def _write(self, cid: CID, data: bytes | memoryview) -> None:
        """Store a block whose hash the caller has checked (importer, verified CAR)."""
        final = self._path(cid)
        if final.exists():
            return
        self._make()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="block-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            final.parent.mkdir(exist_ok=True)
            tmp.replace(final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _os_error(f"writing block {cid}", self.root, exc) from exc

    def put_block(self, cid: CID, data: bytes | memoryview) -> None:
        """Store a block after checking that ``data`` hashes to ``cid``."""
        cid.verify(data)
        self._write(cid, data)

    def get_block(self, cid: CID | str) -> bytes:
        """A block's bytes, re-verified (a flipped bit on disk is caught here)."""
        cid = parse_cid(cid)
        path = self._path(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(
                f"block {cid} is not in the local store {self.root}",
                fix="add the content first or fetch it from a gateway",
                cid=str(cid),
            ) from None
        except OSError as exc:
            raise _os_error(f"reading block {cid}", path, exc) from exc
        cid.verify(data)
        return data

    def has(self, cid: CID | str) -> bool:
        return self._path(parse_cid(cid)).exists()

    # -- content --------------------------------------------------------------------------

    def add_path(self, path: str | os.PathLike[str]) -> CID:
        """Import a file or directory and pin its root."""

        store = self

        class _Sink:
            def put_block(self, cid: CID, data: bytes | memoryview) -> None:
                store._write(cid, data)  # the importer just hashed these bytes

        with Importer(_Sink()) as importer:
            root = importer.import_path(path).cid
        self.pin(root)
        return root

    def cat(self, cid: CID | str) -> Iterator[bytes]:
        """A file's bytes, chunk by chunk."""
        chunks: Iterator[bytes] = iter_file(self.get_block, parse_cid(cid))
        return chunks

    def get(self, cid: CID | str, dest: str | os.PathLike[str]) -> None:
        """Write a file or directory to ``dest`` (via a temp path, renamed at the end)."""
        cid = parse_cid(cid)
        dest = Path(dest)
        staging = Path(tempfile.mkdtemp(prefix=".framecast-get-", dir=dest.parent))
        try:
            write_tree(self.get_block, cid, staging / "content")
            (staging / "content").replace(dest)
        except OSError as exc:
            raise _os_error(f"writing {cid}", dest, exc) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- pins and garbage collection ------------------------------------------------------

    def pin(self, cid: CID | str) -> None:
        """Pin recursively; every block of the DAG must be present."""
        cid = parse_cid(cid).to_v1()
        for _ in walk_blocks(self.get_block, cid):
            pass
        self._make()
        (self._pins / str(cid)).touch()

    def unpin(self, cid: CID | str) -> None:
        cid = parse_cid(cid).to_v1()
        try:
            (self._pins / str(cid)).unlink()
        except FileNotFoundError:
            raise ContentNotFound(
                f"{cid} is not pinned in {self.root}", fix="list pins with `pins()`", cid=str(cid)
            ) from None

    def pins(self) -> list[CID]:
        if not self._pins.is_dir():
            return []  # nothing written yet
        return sorted((CID.parse(p.name) for p in self._pins.iterdir()), key=str)

    def gc(self) -> int:
        """Delete every block no pin reaches; returns how many were removed."""
        live: set[CID] = set()
        for root in self.pins():
            live.update(cid for cid, _ in walk_blocks(self.get_block, root))
        removed = 0
        if not self._blocks.is_dir():
            return removed  # nothing written yet
        for shard in self._blocks.iterdir():
            for path in shard.iterdir():
                if CID.parse(path.name) not in live:
                    path.unlink(missing_ok=True)
                    removed += 1
        for leftover in self._tmp.iterdir():  # blocks of interrupted writes
            leftover.unlink(missing_ok=True)
        return removed

    # -- CAR ------------------------------------------------------------------------------

    def export_car(self, cid: CID | str, out: BinaryIO) -> int:
        """Write the DAG under ``cid`` as a CAR v1; returns the block count."""
        root = parse_cid(cid)
        return int(write_car(out, [root], walk_blocks(self.get_block, root)))

    def import_car(self, src: BinaryIO) -> list[CID]:
        """Import a CAR v1, verifying every block; pins its roots once all blocks are in."""
        reader = CarReader(src)
        for cid, block in reader.blocks():
            self.put_block(cid, block)
        for root in reader.roots:
            self.pin(root)
        roots: list[CID] = reader.roots
        return roots
