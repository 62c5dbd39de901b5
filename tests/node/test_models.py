"""`framecast node models`: pull verifies every file, list shows what is present and valid.

Downloads cannot run here, so the hub is replaced by a `Downloader` that copies a local
directory laid out like the repo; the verification, staging and CLI paths are the real ones.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from framecast.node import models
from framecast.node.cli import node_group
from framecast.shared.catalog import CatalogEntry, get_entry
from framecast.shared.catalog.weights import compute_manifest
from framecast.shared.errors import PipelineError, WeightsInvalid

MODEL = "cogvideox-2b"
REVISION = "1" * 40


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A stand-in for the hub repo: a few files, one of them a multi-block shard."""
    repo = tmp_path / "repo"
    (repo / "transformer").mkdir(parents=True)
    (repo / "model_index.json").write_text('{"_class_name": "CogVideoXPipeline"}')
    (repo / "transformer" / "config.json").write_text("{}")
    (repo / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(
        bytes(range(256)) * 10_000
    )
    return repo


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch, repo_dir: Path) -> CatalogEntry:
    """The real catalog entry, pinned to the stand-in repo's manifest and a revision."""
    entry = get_entry(MODEL).model_copy(
        update={"revision": REVISION, "manifest": compute_manifest(repo_dir)}
    )

    def get(model: str) -> CatalogEntry:
        return entry if model == MODEL else get_entry(model)

    monkeypatch.setattr(models, "get_entry", get)
    return entry


class LocalDownloader:
    """Copies the pinned files like snapshot_download(local_dir=...) would, with progress."""

    def __init__(self, source: Path, corrupt: str | None = None) -> None:
        self.source = source
        self.corrupt = corrupt
        self.calls: list[tuple[str, str]] = []
        self.progress: list[tuple[int, int]] = []

    def __call__(
        self,
        repo: str,
        revision: str,
        files: Sequence[str],
        dest: Path,
        progress: models.ProgressCallback,
    ) -> None:
        self.calls.append((repo, revision))
        (dest / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)  # hub metadata
        for done, name in enumerate(files, start=1):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.source / name, target)
            target.chmod(0o600)
            if name == self.corrupt:
                data = bytearray(target.read_bytes())
                data[len(data) // 2] ^= 0x01  # one flipped bit
                target.write_bytes(bytes(data))
            progress(done, len(files))
            self.progress.append((done, len(files)))


def test_pull_downloads_the_pinned_revision_and_verifies(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry
) -> None:
    download = LocalDownloader(repo_dir)
    path = models.pull(MODEL, tmp_path / "weights", download=download)
    assert path == tmp_path / "weights" / MODEL
    assert download.calls == [(pinned.repo, REVISION)]
    assert download.progress[-1] == (3, 3)
    assert compute_manifest(path) == pinned.manifest  # the hub's .cache is not left inside
    assert not (tmp_path / "weights" / ".partial" / MODEL).exists()
    # Runner containers read the weights as an unprivileged user.
    assert all(p.stat().st_mode & 0o004 for p in path.rglob("*"))
    assert models.check(MODEL, tmp_path / "weights").state == "verified"


def test_pull_refuses_a_corrupted_file_naming_it_and_both_hashes(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry
) -> None:
    name = "transformer/diffusion_pytorch_model.safetensors"
    with pytest.raises(WeightsInvalid) as info:
        models.pull(MODEL, tmp_path / "weights", download=LocalDownloader(repo_dir, corrupt=name))
    message = str(info.value)
    assert name in message
    assert pinned.manifest[name] in message  # expected
    staged = tmp_path / "weights" / ".partial" / MODEL / name
    assert hashlib.sha256(staged.read_bytes()).hexdigest() in message  # actual
    assert "framecast node models pull" in message  # the fix
    assert not (tmp_path / "weights" / MODEL).exists(), "unverified weights were put in place"


def test_missing_file_after_download_is_refused(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry
) -> None:
    (repo_dir / "transformer" / "config.json").unlink()

    def partial_download(
        repo: str, revision: str, files: Sequence[str], dest: Path, progress: object
    ) -> None:
        for name in files:
            if (repo_dir / name).exists():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(repo_dir / name, dest / name)

    with pytest.raises(WeightsInvalid, match=r"transformer/config\.json is missing"):
        models.pull(MODEL, tmp_path / "weights", download=partial_download)


def test_tiny_and_unpinned_entries_cannot_be_pulled(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="built locally") as info:
        models.pull("tiny-cogvideox", tmp_path, download=LocalDownloader(tmp_path))
    assert "tiny build --family cogvideox" in str(info.value)
    unpinned = next(
        (e for e in models.load_catalog().models.values() if not e.tiny and not e.pinned), None
    )
    if unpinned is not None:
        with pytest.raises(PipelineError, match="no pinned revision"):
            models.pull(unpinned.id, tmp_path, download=LocalDownloader(tmp_path))


def test_check_reports_verified_corrupted_and_missing(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry
) -> None:
    root = tmp_path / "weights"
    assert models.check(MODEL, root).state == "missing"
    models.pull(MODEL, root, download=LocalDownloader(repo_dir))
    shard = root / MODEL / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(shard.read_bytes())
    data[0] ^= 0xFF
    shard.write_bytes(bytes(data))
    status = models.check(MODEL, root)
    assert status.state == "invalid"
    assert status.problem is not None and "diffusion_pytorch_model.safetensors" in status.problem


def test_cli_list_and_pull(
    tmp_path: Path, repo_dir: Path, pinned: CatalogEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "weights"
    runner = CliRunner()
    empty = runner.invoke(node_group, ["models", "list", "--weights-dir", str(root)])
    assert empty.exit_code == 0 and "no models" in empty.output

    monkeypatch.setattr(models, "hub_download", LocalDownloader(repo_dir))
    pulled = runner.invoke(node_group, ["models", "pull", MODEL, "--weights-dir", str(root)])
    assert pulled.exit_code == 0, pulled.output
    assert "verified" in pulled.output

    listed = runner.invoke(node_group, ["models", "list", "--json", "--weights-dir", str(root)])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["id"], r["state"], r["files"]) for r in rows] == [(MODEL, "verified", 3)]

    table = runner.invoke(node_group, ["models", "list", "--all", "--weights-dir", str(root)])
    assert "verified" in table.output and "missing" in table.output
