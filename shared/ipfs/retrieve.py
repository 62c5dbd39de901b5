"""The one retrieval path: a CID into a folder, from the first source that has it, verified.

Client (fetch, verify, status, dispute), arbiter, replay and the node's inputs all fetch
through `Retriever.retrieve`. Sources are tried in this order (docs/protocol.md §12):

1. the configured content store (embedded blockstore or kubo, through `open_store`);
2. the gateway URL the user configured;
3. the delivering provider's advertised gateway (the ``gateway`` of its on-chain offer; for
   a replicated job each replica's own provider), checked by `check_remote_url` first:
   a URL taken from the chain that is refused is named and never fetched;
4. the configured public gateways;
5. a kubo node, if one is configured as a fallback.

Every block is hashed against its CID on the way in (`retrieval.fetch`, `write_tree` over a
store's verified `get_block`), staged next to the destination and renamed onto it only when
complete: a lying, unreachable or slow source leaves nothing behind, the next one is tried,
and the final error names each source and why it failed.

Per-source timeouts are cut from the time left (``deadline``): a client must learn that a
result is not retrievable while it can still dispute the job.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.endpoints import check_remote_url
from framecast.shared.errors import (
    ConfigError,
    ContentNotFound,
    FramecastError,
    StorageError,
    StoreUnavailable,
    VerificationFailed,
)
from framecast.shared.ipfs.cid import CID, parse_cid
from framecast.shared.ipfs.dag import write_tree
from framecast.shared.ipfs.retrieval import fetch as gateway_fetch
from framecast.shared.ipfs.retrieval import staging_beside, write_failed
from framecast.shared.ipfs.store import (
    ContentStore,
    StoreSettings,
    open_existing_store,
    open_store,
)

#: No source gets less than this, however little time is left (a TCP connect and one block).
MIN_SOURCE_TIMEOUT_S = 1.0

#: Fetches ``cid`` into ``dest`` (which must not exist) within ``timeout`` seconds per
#: operation and before the ``time.monotonic`` ``deadline``.
Fetch = Callable[[CID, Path, float, float], None]


class RetrievalSettings(BaseModel):
    """Where results and inputs are fetched from besides the store (client and node)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway_url: str | None = Field(
        None, pattern=r"^https?://", description="A gateway the user configured (tried 2nd)."
    )
    public_gateways: tuple[str, ...] = Field(
        (), description="Trustless gateways tried after the provider's own (tried 4th)."
    )
    kubo_url: str | None = Field(
        None, pattern=r"^https?://", description="A kubo RPC tried last (its pinned blocks)."
    )
    source_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Most seconds one source may take per operation."
    )


@dataclass(frozen=True)
class Source:
    """One place a CID may be fetched from; ``label`` names it in errors."""

    label: str
    fetch: Fetch


def store_source(store: ContentStore, label: str) -> Source:
    """A content store: its blocks are verified by `get_block`, written through staging."""

    def fetch(cid: CID, dest: Path, _timeout: float, _deadline: float) -> None:
        if not store.has(cid):
            raise ContentNotFound(f"{cid} not found", fix="try another source", cid=str(cid))
        staging = staging_beside(dest)
        try:
            write_tree(store.get_block, cid, staging / "content")
            (staging / "content").replace(dest)
        except OSError as exc:
            raise write_failed(dest, exc) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    return Source(label, fetch)


def gateway_source(url: str, label: str | None = None) -> Source:
    """A trustless gateway: the DAG as one CAR, every block verified (`retrieval.fetch`)."""

    def fetch(cid: CID, dest: Path, timeout: float, deadline: float) -> None:
        gateway_fetch(cid, dest, url, timeout=timeout, deadline=deadline)

    return Source(label or url, fetch)


def _reason(exc: FramecastError, timeout: float) -> str:
    """A short why for the final error: "not found", "timed out after 5 s", the lie."""
    cause = exc.__cause__
    if isinstance(cause, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(cause, httpx.ConnectError):
        return "unreachable (connection refused or no route)"
    if isinstance(exc, VerificationFailed):
        return f"sent bytes that do not match the CID ({exc.message})"
    if isinstance(exc, ContentNotFound) and " does not have " in exc.message:
        return "not found (404)"
    return exc.message


class Retriever:
    """Builds the ordered sources for one CID and fetches from the first that works."""

    def __init__(
        self,
        *,
        store: StoreSettings | None,
        settings: RetrievalSettings,
        provider_gateways: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        allow_loopback: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self._gateways = provider_gateways
        self._resolved: Mapping[str, str] | None = None
        self.allow_loopback = allow_loopback

    def gateway_of(self, provider: str) -> str | None:
        """The provider's advertised gateway (unchecked), read once from the chain."""
        if self._resolved is None:
            gateways = self._gateways() if callable(self._gateways) else self._gateways
            self._resolved = {k.lower(): v for k, v in (gateways or {}).items()}
        return self._resolved.get(provider.lower())

    def sources(self, provider: str | None = None) -> tuple[list[Source], list[str]]:
        """The sources in order, and the ones refused before any fetch (with why)."""
        sources: list[Source] = []
        refused: list[str] = []
        if self.store is not None:
            store = open_existing_store(self.store)
            where = (
                f"local store {self.store.store_path}"
                if self.store.store == "local"
                else f"kubo store {self.store.kubo_url}"
            )
            if store is None:
                refused.append(f"{where}: not found (no store there)")
            else:
                sources.append(store_source(store, where))
        if self.settings.gateway_url:
            sources.append(gateway_source(self.settings.gateway_url.rstrip("/")))
        if provider is not None:
            advertised = self.gateway_of(provider)
            short = f"provider {provider[:6]}…{provider[-4:]}"
            if advertised is None:
                refused.append(f"{short}: advertises no gateway")
            else:
                try:
                    url = check_remote_url(
                        advertised,
                        field=f"gateway of {short}",
                        allow_loopback=self.allow_loopback,
                    )
                except ConfigError as exc:
                    refused.append(f"{advertised} ({short}): refused, {exc.message}")
                else:
                    sources.append(gateway_source(url, f"{url} ({short})"))
        sources.extend(gateway_source(url.rstrip("/")) for url in self.settings.public_gateways)
        if self.settings.kubo_url:
            kubo = open_store(StoreSettings(store="kubo", kubo_url=self.settings.kubo_url))
            sources.append(store_source(kubo, f"kubo {self.settings.kubo_url}"))
        return sources, refused

    def retrieve(
        self,
        cid: CID | str,
        dest: Path,
        *,
        provider: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """Fetch ``cid`` into ``dest`` (must not exist), verified; returns the source's label.

        ``deadline`` (a `time.monotonic` value) is when the caller must know the answer:
        each source gets an equal share of the time left, at most ``source_timeout_s``.
        Raises `ContentNotFound` naming every source tried and why it failed, or
        `StoreUnavailable` when one of them did not answer (no proof the content is gone).
        """
        root = parse_cid(cid)
        if dest.exists() or dest.is_symlink():
            raise StorageError(
                f"{dest} already exists", fix="choose a new destination path", path=str(dest)
            )
        sources, failures = self.sources(provider)
        unavailable = False  # a source that did not answer: its absence is not proven
        cap = self.settings.source_timeout_s
        for position, source in enumerate(sources):
            left = len(sources) - position
            timeout = cap
            if deadline is not None:
                share = (deadline - time.monotonic()) / left
                timeout = max(MIN_SOURCE_TIMEOUT_S, min(cap, share))
            try:
                source.fetch(root, dest, timeout, time.monotonic() + timeout)
            except FramecastError as exc:
                if type(exc) is StorageError and "path" in exc.context:
                    raise  # our own destination is unwritable: no other source can help
                unavailable = unavailable or isinstance(exc, StoreUnavailable)
                failures.append(f"{source.label}: {_reason(exc, timeout)}")
            else:
                return source.label
        # Every source answered "no" (or lied): not retrievable, which is evidence. When
        # one did not answer at all, that is StoreUnavailable: maybe our network is down.
        error = StoreUnavailable if unavailable else ContentNotFound
        raise error(
            f"{root} is not retrievable: " + ("; ".join(failures) or "no source is configured"),
            fix="configure a gateway that has it (--gateway / FRAMECAST_GATEWAY_URL, or "
            "public_gateways), or point the store at where the provider pins it",
            cid=str(root),
        )
