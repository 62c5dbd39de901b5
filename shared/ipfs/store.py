"""The ``ContentStore`` port, its settings, and the one factory that picks an adapter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.errors import ConfigError
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.kubo import KuboStore
from framecast.shared.ipfs.local import LocalStore


@runtime_checkable
class ContentStore(Protocol):
    """What framecast needs from a content store (embedded blockstore or kubo)."""

    def add_path(self, path: str | os.PathLike[str]) -> CID:
        """Import a file or directory under unixfs-v1-2025, pin it, return its root CID."""
        ...

    def cat(self, cid: CID | str) -> Iterator[bytes]:
        """A file's bytes, in chunks."""
        ...

    def get_block(self, cid: CID | str) -> bytes:
        """One block, verified against its CID."""
        ...

    def put_block(self, cid: CID, data: bytes | memoryview) -> None:
        """Store one block (verified before it is kept)."""
        ...

    def has(self, cid: CID | str) -> bool: ...

    def pin(self, cid: CID | str) -> None: ...

    def unpin(self, cid: CID | str) -> None: ...

    def pins(self) -> list[CID]:
        """Recursive pins."""
        ...

    def gc(self) -> int:
        """Remove unpinned blocks; returns how many."""
        ...

    def export_car(self, cid: CID | str, out: BinaryIO) -> int:
        """Write the DAG as CAR v1; returns the block count."""
        ...

    def import_car(self, src: BinaryIO) -> list[CID]:
        """Import (and pin the roots of) a CAR v1; returns the roots."""
        ...


class StoreSettings(BaseModel):
    """Where content lives. The client and node settings embed this model."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    store: Literal["local", "kubo"] = Field(
        "local",
        description="`local`: the embedded on-disk blockstore (default); `kubo`: a kubo node "
        "reached over its HTTP RPC.",
    )
    store_path: Path = Field(
        Path("~/.framecast/blocks"),
        description="Directory of the embedded blockstore (store = local).",
    )
    kubo_url: str = Field(
        "http://127.0.0.1:5001",
        pattern=r"^https?://",
        description="Base URL of kubo's RPC API, without /api/v0 (store = kubo).",
    )
    gateway_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://",
        description="Trustless gateway used to fetch content that is not in the store.",
    )
    timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Timeout of one request to kubo or a gateway."
    )


def open_store(settings: StoreSettings) -> ContentStore:
    """The only place that chooses an adapter from configuration."""
    if settings.store == "local":
        local: ContentStore = LocalStore(settings.store_path)
        return local
    if settings.store == "kubo":
        kubo: ContentStore = KuboStore(settings.kubo_url, timeout=settings.timeout_s)
        return kubo
    raise ConfigError(  # unreachable through pydantic; kept for callers that bypass it
        f"unknown store {settings.store!r}", fix='set store = "local" or "kubo"'
    )


def open_existing_store(settings: StoreSettings) -> ContentStore | None:
    """The configured store to read from, or None when an embedded one was never created.

    Readers (retrieval) must not create an empty blockstore as a side effect of looking.
    """
    if settings.store == "local" and not Path(settings.store_path).expanduser().is_dir():
        return None
    return open_store(settings)
