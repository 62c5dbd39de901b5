"""Fixtures for the content tests: the IPFS project's importer (npm ipfs-unixfs-importer) as
the independent reference, reached through the `reference` fixture (no imports between test
modules, so the layout of tests/ does not matter)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from framecast.shared.ipfs.importer import Profile

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("reference_importer.mjs")


def _require_node() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "ipfs-unixfs-importer").is_dir():
        pytest.skip("needs node and node_modules (run `make setup`)")
    return node


def run_reference(
    paths: list[Path], profile: Profile | None = None, **extra: Any
) -> dict[str, Any]:
    """Root CIDs of ``paths`` as the JS importer computes them, configured like ``profile``."""
    args: dict[str, Any] = {"paths": [str(p) for p in paths], **extra}
    if profile is not None:
        args |= {
            "chunkSize": profile.chunk_size,
            "maxChildrenPerNode": profile.max_links,
            "shardSplitThresholdBytes": profile.shard_threshold,
            "shardFanoutBits": profile.shard_fanout_bits,
        }
    done = subprocess.run(
        [_require_node(), str(SCRIPT), json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class Reference:
    """The JS reference importer, called through node."""

    def cids(self, paths: list[Path], profile: Profile | None = None) -> list[str]:
        cids: list[str] = run_reference(paths, profile)["cids"]
        return cids

    def murmur(self, names: list[str]) -> list[str]:
        hashes: list[str] = run_reference([], murmur=names)["murmur"]
        return hashes


@pytest.fixture(scope="session")
def reference() -> Reference:
    _require_node()
    return Reference()
