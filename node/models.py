"""Model weights on a provider: pull a catalog entry's pinned revision, verify it, list.

Layout: ``WEIGHTS_ROOT/<entry id>/`` holds exactly the files of the entry's manifest; that
directory is what the Docker runtime mounts read-only at ``/weights/<entry id>``. A pull
downloads into ``WEIGHTS_ROOT/.partial/<entry id>`` (the hub's resume metadata lives
there), verifies every file against the manifest, and only then renames it into place, so
a directory under its final name has been verified at least once.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from framecast.shared.catalog import CatalogEntry, get_entry, load_catalog
from framecast.shared.catalog.weights import verify_weights
from framecast.shared.errors import PipelineError, StoreUnavailable, WeightsInvalid

#: Called with (files done, files total) while a pull downloads.
ProgressCallback = Callable[[int, int], None]
PARTIAL_DIR = ".partial"


class Downloader(Protocol):
    """Fetches `files` of `repo` at `revision` into `dest` (the hub, or a fake in tests)."""

    def __call__(
        self,
        repo: str,
        revision: str,
        files: Sequence[str],
        dest: Path,
        progress: ProgressCallback,
    ) -> None: ...


def hub_download(
    repo: str, revision: str, files: Sequence[str], dest: Path, progress: ProgressCallback
) -> None:
    """`huggingface_hub.snapshot_download` of exactly the pinned files at the pinned commit."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        snapshot_download(
            repo_id=repo,
            revision=revision,
            local_dir=dest,
            # Only what the manifest pins: repos carry extra formats (fp16 copies, .bin).
            allow_patterns=list(files),
            tqdm_class=_forwarding_tqdm(progress),
        )
    except (HfHubHTTPError, OSError) as exc:
        raise StoreUnavailable(
            f"downloading {repo}@{revision[:12]} failed: {exc}",
            fix="check the network and retry `framecast node models pull`; finished files "
            "are kept and resumed",
        ) from exc


def _forwarding_tqdm(progress: ProgressCallback) -> Any:
    """A tqdm class for the hub's overall (files) bar that reports to `progress` instead."""
    from tqdm.auto import tqdm

    class _Forwarding(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # the CLI draws its own bar
            super().__init__(*args, **kwargs)
            self._done = 0

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            progress(self._done, int(self.total or 0))
            return None

    return _Forwarding


@dataclass(frozen=True)
class ModelWeights:
    """What `models list` shows for one catalog entry."""

    id: str
    path: Path
    state: Literal["verified", "invalid", "missing", "unpinned"]
    files: int
    size_bytes: int
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "state": self.state,
            "files": self.files,
            "size_bytes": self.size_bytes,
            "problem": self.problem,
        }


def weights_path(weights_root: Path, model_id: str) -> Path:
    """Where the weights of `model_id` live (and where the runtime mounts them from)."""
    return weights_root / model_id


def pull(
    model_id: str,
    weights_root: Path,
    *,
    download: Downloader | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download the entry's pinned revision, verify every file, move it into place.

    `download` defaults to the Hugging Face hub (`hub_download`, looked up at call time).
    """
    entry = get_entry(model_id)
    final = weights_path(weights_root, entry.id)
    _require_downloadable(entry)
    assert entry.repo is not None and entry.revision is not None  # _require_downloadable
    partial = weights_root / PARTIAL_DIR / entry.id
    partial.mkdir(parents=True, exist_ok=True)
    fetch = download or hub_download
    fetch(entry.repo, entry.revision, sorted(entry.manifest), partial, progress or _quiet)
    # The hub keeps resume metadata in local_dir/.cache; it is not part of the weights.
    shutil.rmtree(partial / ".cache", ignore_errors=True)
    verify_weights(partial, entry.manifest)
    make_readable(partial)
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(final)
    return final


def make_readable(path: Path) -> None:
    """`chmod -R a+rX`: runner containers read the weights as an unprivileged user."""
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        extra = 0o555 if item.is_dir() else 0o444
        item.chmod((mode | extra) & 0o7777)


def check_pullable(model_id: str) -> CatalogEntry:
    """The entry of `model_id` if it can be pulled; `PipelineError` saying why not."""
    entry = get_entry(model_id)
    _require_downloadable(entry)
    return entry


def _require_downloadable(entry: CatalogEntry) -> None:
    if entry.tiny is not None:
        raise PipelineError(
            f"{entry.id} is a tiny test model: it is built locally, not downloaded",
            fix=f"build it with `python -m framecast.runner tiny build --family {entry.tiny} "
            f"--out WEIGHTS_ROOT/{entry.id}`",
        )
    if not entry.pinned or entry.repo is None or entry.revision is None:
        raise PipelineError(
            f"{entry.id} has no pinned revision and weights manifest yet",
            fix=f"pin it in shared/catalog (revision + manifests/{entry.id}.json) first",
        )


def _quiet(_done: int, _total: int) -> None:
    return None


def check(model_id: str, weights_root: Path) -> ModelWeights:
    """Verify the weights of one entry on disk against its manifest."""
    entry = get_entry(model_id)
    path = weights_path(weights_root, entry.id)
    if not path.is_dir():
        return ModelWeights(entry.id, path, "missing", 0, 0)
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    if not entry.manifest:
        return ModelWeights(entry.id, path, "unpinned", len(files), size, "no manifest pinned")
    try:
        verify_weights(path, entry.manifest)
    except WeightsInvalid as exc:
        return ModelWeights(entry.id, path, "invalid", len(files), size, exc.message)
    return ModelWeights(entry.id, path, "verified", len(files), size)


def list_models(weights_root: Path, *, include_missing: bool = False) -> list[ModelWeights]:
    """Every catalog entry with weights under `weights_root` (all entries if asked), verified."""
    statuses = [check(model_id, weights_root) for model_id in sorted(load_catalog().models)]
    return [s for s in statuses if include_missing or s.state != "missing"]
