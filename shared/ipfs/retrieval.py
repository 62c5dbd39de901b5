"""Verified retrieval from any IPFS trustless gateway.

The DAG arrives as one CAR stream; every block is hashed against its CID before it is kept
(in a staging blockstore next to the destination), the file or directory is assembled in
the staging area from verified blocks only, and renamed onto the destination at the end.
On any failure the staging area is removed: nothing partial is left at the destination.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from framecast.shared.errors import (
    ContentNotFound,
    InvalidCid,
    StorageError,
    StoreUnavailable,
)
from framecast.shared.ipfs.car import CONTENT_TYPE as CAR_TYPE
from framecast.shared.ipfs.car import CarReader, ChunkReader
from framecast.shared.ipfs.cid import CID, parse_cid
from framecast.shared.ipfs.dag import write_tree
from framecast.shared.ipfs.local import LocalStore

# Big reads: a CAR section is up to ~1 MiB, and small network chunks cost a copy each.
_READ_SIZE = 1 << 20


def _check_status(response: httpx.Response, cid: CID, url: str) -> None:
    if response.status_code == 200:
        return
    if response.status_code == 404:
        raise ContentNotFound(
            f"gateway {url} does not have {cid}",
            fix="check the CID or try another gateway (`gateway_url`)",
            cid=str(cid),
            url=url,
        )
    if response.status_code == 400:
        raise InvalidCid(f"gateway {url} rejected {cid}", fix="check the CID", cid=str(cid))
    raise StoreUnavailable(
        f"gateway {url} answered HTTP {response.status_code} for {cid}",
        fix="retry later or use another gateway (`gateway_url`)",
        cid=str(cid),
        url=url,
    )


def staging_beside(target: Path) -> Path:
    """A fresh staging directory next to ``target`` (same file system: the final move is a
    rename, so nothing partial ever stands at ``target``)."""
    try:
        return Path(tempfile.mkdtemp(prefix=".framecast-fetch-", dir=target.parent))
    except OSError as exc:
        raise StorageError(
            f"cannot create a staging directory next to {target} ({exc.strerror})",
            fix="check that the destination's parent exists and is writable",
            path=str(target),
        ) from exc


def write_failed(target: Path, exc: OSError) -> StorageError:
    """The tree's error for a failed write of a retrieved tree to ``target``."""
    return StorageError(
        f"cannot write {target} ({exc.strerror or exc})",
        fix="check free space and permissions at the destination",
        path=str(target),
    )


@contextmanager
def gateway_car(
    http: httpx.Client,
    gateway_url: str,
    root: CID,
    *,
    timeout: float,
    deadline: float | None = None,
) -> Iterator[Iterator[tuple[CID, bytes]]]:
    """The (cid, block) pairs of ``root``'s CAR (``dag-scope=all``) from a trustless gateway.

    Blocks are not verified here: each consumer checks them as it stores them. A bad
    status, a transport failure or passing ``deadline`` (a `time.monotonic` value; a
    gateway that trickles bytes) raises the tree's StorageError naming the gateway, also
    when it happens while the caller iterates.
    """
    url = f"{gateway_url.rstrip('/')}/ipfs/{root}"

    def until_deadline(blocks: Iterator[tuple[CID, bytes]]) -> Iterator[tuple[CID, bytes]]:
        for pair in blocks:
            yield pair
            if deadline is not None and time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"the download took longer than {timeout:g} s")

    try:
        with http.stream(
            "GET",
            url,
            params={"format": "car", "dag-scope": "all"},
            headers={"Accept": f"{CAR_TYPE}; version=1"},
        ) as response:
            _check_status(response, root, url)
            reader = CarReader(ChunkReader(response.iter_bytes(chunk_size=_READ_SIZE)))
            yield until_deadline(iter(reader.blocks()))
    except httpx.HTTPError as exc:
        raise StoreUnavailable(
            f"gateway {url} failed: {exc.__class__.__name__}: {exc}",
            fix="check that the gateway is running and reachable (`gateway_url`)",
            cid=str(root),
            url=url,
        ) from exc


def fetch(
    cid: CID | str,
    dest: str | os.PathLike[str],
    gateway_url: str,
    *,
    timeout: float = 60.0,
    client: httpx.Client | None = None,
    deadline: float | None = None,
) -> None:
    """Download ``cid`` from a trustless gateway into ``dest`` (which must not exist).

    ``timeout`` bounds each network operation; ``deadline`` (a `time.monotonic` value) the
    whole download, so a gateway that trickles bytes cannot hold the caller past it.
    """
    root = parse_cid(cid)
    target = Path(dest)
    if target.exists() or target.is_symlink():
        raise StorageError(
            f"{target} already exists", fix="choose a new destination path", path=str(target)
        )
    url = f"{gateway_url.rstrip('/')}/ipfs/{root}"
    staging = staging_beside(target)
    own_client = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        blocks = LocalStore(staging / "blocks")
        with gateway_car(http, gateway_url, root, timeout=timeout, deadline=deadline) as car:
            for block_cid, block in car:
                blocks.put_block(block_cid, block)  # raises VerificationFailed on a lie
        try:
            write_tree(blocks.get_block, root, staging / "content")
        except ContentNotFound as exc:
            raise ContentNotFound(
                f"gateway {url} sent an incomplete DAG for {root} ({exc.message})",
                fix="retry, or use another gateway (`gateway_url`)",
                cid=str(root),
                url=url,
            ) from None
        (staging / "content").replace(target)
    except OSError as exc:
        raise write_failed(target, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if own_client:
            http.close()
