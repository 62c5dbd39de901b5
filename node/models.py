"""Model weights on a provider: pull a catalog entry's pinned revision, verify it, list.

Layout (the paths are `framecast.shared.catalog.weights` constants, which the runner
reads too): ``WEIGHTS_ROOT/<entry id>/`` holds exactly the files of the entry's manifest,
each component (a ControlNet) in its folder (``controlnet/``), and the LoRA of every style
made for the entry in ``loras/<file>``. That directory is what the Docker runtime mounts
read-only at ``/weights/<entry id>``. A pull downloads into ``WEIGHTS_ROOT/.partial/<entry
id>`` (the hub's resume metadata lives there), verifies every file against the manifests
and every LoRA against its style's sha256, and only then renames it into place, so a
directory under its final name has been verified at least once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from framecast.shared.catalog import Catalog, CatalogEntry, Style, load_catalog
from framecast.shared.catalog.verify import verify_entry_weights
from framecast.shared.catalog.weights import LORA_DIR, verify_file, verify_weights
from framecast.shared.errors import PipelineError, UnknownModel, WeightsInvalid
from framecast.shared.ipfs.store import ContentStore

#: Called with (files done, files total) while a pull downloads.
ProgressCallback = Callable[[int, int], None]
PARTIAL_DIR = ".partial"
#: The hub's resume metadata inside a download's local_dir; not part of the weights.
HUB_CACHE_DIR = ".cache"


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


#: Writes the file with CID `cid` to `dest` (a LoRA pinned by CID).
CidFetcher = Callable[[str, Path], None]


def store_fetcher(store: ContentStore) -> CidFetcher:
    """A `CidFetcher` reading from the node's content store."""

    def fetch(cid: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            for chunk in store.cat(cid):
                out.write(chunk)

    return fetch


def hub_download(
    repo: str, revision: str, files: Sequence[str], dest: Path, progress: ProgressCallback
) -> None:
    """`huggingface_hub.snapshot_download` of exactly the pinned files at the pinned commit."""
    from huggingface_hub import snapshot_download

    from framecast.shared.catalog.hub import map_hub_error, transport_errors

    try:
        snapshot_download(
            repo_id=repo,
            revision=revision,
            local_dir=dest,
            # Only what the manifest pins: repos carry extra formats (fp16 copies, .bin).
            allow_patterns=list(files),
            tqdm_class=_forwarding_tqdm(progress),
            # Read at call time (huggingface_hub reads it once, at import): a mirror or a
            # local stand-in of the hub set in the environment is honoured.
            endpoint=os.environ.get("HF_ENDPOINT"),
        )
    except transport_errors() as exc:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise map_hub_error(exc, repo=repo, revision=revision, endpoint=endpoint) from exc


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
    """What `models list` shows for one catalog entry.

    `incomplete`: the model's own files verify but a style LoRA made for it is missing
    (jobs with that style would fail); `invalid`: a file or LoRA is corrupted or missing.
    """

    id: str
    path: Path
    state: Literal["verified", "incomplete", "invalid", "missing", "unpinned"]
    files: int
    size_bytes: int
    problem: str | None = None
    #: Styles whose LoRA is present and verified in `loras/`.
    styles: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "state": self.state,
            "files": self.files,
            "size_bytes": self.size_bytes,
            "problem": self.problem,
            "styles": list(self.styles),
        }


def weights_path(weights_root: Path, model_id: str) -> Path:
    """Where the weights of `model_id` live (and where the runtime mounts them from)."""
    return weights_root / model_id


def lora_styles(entry: CatalogEntry, catalog: Catalog | None = None) -> list[Style]:
    """The styles whose LoRA was trained on `entry` (its layer shapes), by id.

    A LoRA fits only its base model, so these are exactly the LoRAs a pull of the entry
    fetches: a node serving the model can then run any style a client may name for it.
    """
    styles = (catalog or load_catalog()).styles.values()
    found = [s for s in styles if s.lora is not None and s.lora.base_model == entry.id]
    return sorted(found, key=lambda s: s.id)


def _entry(model_id: str, catalog: Catalog | None) -> CatalogEntry:
    models = (catalog or load_catalog()).models
    if model_id not in models:
        raise UnknownModel(
            f"unknown model {model_id!r}; known models: {', '.join(sorted(models))}",
            fix="pick one of the listed ids (`framecast node models list --all`)",
            model=model_id,
        )
    return models[model_id]


def pull(
    model_id: str,
    weights_root: Path,
    *,
    download: Downloader | None = None,
    fetch_cid: CidFetcher | None = None,
    progress: ProgressCallback | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """Download the entry's pinned revision, its components and its styles' LoRAs, verify
    every file, move the whole model directory into place.

    `download` defaults to the Hugging Face hub (`hub_download`, looked up at call time);
    `fetch_cid` fetches LoRAs pinned by CID (needed only when a style pins one). `catalog`
    defaults to the packaged one. On any failure nothing changes under the final name.
    """
    entry = _entry(model_id, catalog)
    _require_downloadable(entry)
    assert entry.repo is not None and entry.revision is not None  # _require_downloadable
    styles = lora_styles(entry, catalog)
    if fetch_cid is None:
        needs_cid = [s.id for s in styles if s.lora is not None and s.lora.repo is None]
        if needs_cid:
            raise PipelineError(
                f"the LoRAs of styles {', '.join(needs_cid)} are pinned by CID and no content "
                "store was given to fetch them from",
                fix="configure the node's store (the `store` table of node.toml)",
            )
    fetch = download or hub_download
    final = weights_path(weights_root, entry.id)
    partial = weights_root / PARTIAL_DIR / entry.id
    partial.mkdir(parents=True, exist_ok=True)
    report = _Overall(progress or _quiet, _file_count(entry, styles))

    fetch(entry.repo, entry.revision, sorted(entry.manifest), partial, report.part())
    for role, component in entry.components.items():
        assert component.repo is not None and component.revision is not None  # pinned
        folder = partial / entry.component_dir(role)
        folder.mkdir(parents=True, exist_ok=True)
        fetch(component.repo, component.revision, component.repo_files(), folder, report.part())
        if component.subdir:
            # The repo keeps the component in a subfolder; the runner reads the folder itself.
            for name in component.manifest:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                (folder / component.subdir / name).replace(target)
            shutil.rmtree(folder / component.subdir.split("/", 1)[0], ignore_errors=True)
        shutil.rmtree(folder / HUB_CACHE_DIR, ignore_errors=True)
    loras = partial / LORA_DIR
    for style in styles:
        lora = style.lora
        assert lora is not None  # lora_styles
        on_file = report.part()
        if lora.repo is not None and lora.revision is not None:
            fetch(lora.repo, lora.revision, [lora.file], loras, on_file)
        else:
            assert lora.cid is not None and fetch_cid is not None  # LoraAdapter, check above
            fetch_cid(lora.cid, loras / lora.file)
            on_file(1, 1)
    shutil.rmtree(loras / HUB_CACHE_DIR, ignore_errors=True)
    shutil.rmtree(partial / HUB_CACHE_DIR, ignore_errors=True)

    verify_weights(partial, entry.full_manifest())
    for style in styles:
        _verify_lora(partial, style)
    make_readable(partial)
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(final)
    return final


def _verify_lora(model_dir: Path, style: Style) -> None:
    lora = style.lora
    assert lora is not None
    verify_file(
        model_dir / LORA_DIR / lora.file,
        lora.sha256,
        label=f"LoRA {LORA_DIR}/{lora.file} of style {style.id}",
        fix=f"pull the model again: `framecast node models pull {lora.base_model}`",
    )


def _file_count(entry: CatalogEntry, styles: Sequence[Style]) -> int:
    components = sum(len(c.manifest) for c in entry.components.values())
    return len(entry.manifest) + components + len(styles)


class _Overall:
    """Turns each download's own (done, total) into progress over all files of the pull."""

    def __init__(self, progress: ProgressCallback, total: int) -> None:
        self._progress = progress
        self._total = total
        self._finished = 0  # files of the downloads before the current one

    def part(self) -> ProgressCallback:
        base = self._finished
        seen = [0]

        def report(done: int, _total: int) -> None:
            self._finished += done - seen[0]
            seen[0] = done
            self._progress(base + done, self._total)

        return report


def build_tiny(model_id: str | CatalogEntry, target: Path) -> Path:
    """Build tiny entry `model_id`'s weights into `target` and verify them as a pull would.

    The build runs in a subprocess (`python -m framecast.runner tiny build`), so the caller
    never imports torch. Its output is captured and shown only when the build fails. A
    build that does not match the pinned manifest (another diffusers or transformers
    version) is removed, and the error names the library versions.
    """
    import subprocess
    import sys

    entry = model_id if isinstance(model_id, CatalogEntry) else _entry(model_id, None)
    if entry.tiny is None:
        raise PipelineError(
            f"{entry.id} is not a tiny test model: its weights are pulled, not built",
            fix=f"pull it with `framecast node models pull {entry.id}`",
        )
    command = [sys.executable, "-m", "framecast.runner", "tiny", "build"]
    command += ["--family", entry.tiny, "--out", str(target)]  # seed 0: what is pinned
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PipelineError(
            f"building the tiny model {entry.id} failed (exit {done.returncode}): {tail}",
            fix="install the pipelines extra (`make setup`, or "
            "pip install 'framecast[node,pipelines]')",
        )
    try:
        verify_entry_weights(entry, target)
    except WeightsInvalid:
        shutil.rmtree(target, ignore_errors=True)  # never leave unmatched weights in place
        raise
    return target


def make_readable(path: Path) -> None:
    """`chmod -R a+rX`: runner containers read the weights as an unprivileged user."""
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        extra = 0o555 if item.is_dir() else 0o444
        item.chmod((mode | extra) & 0o7777)


def check_pullable(model_id: str, catalog: Catalog | None = None) -> CatalogEntry:
    """The entry of `model_id` if it can be pulled; `PipelineError` saying why not."""
    entry = _entry(model_id, catalog)
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
        unpinned = [
            f"component {role} ({c.repo})"
            for role, c in entry.components.items()
            if not c.manifest or c.revision is None
        ]
        what = f" (nor its {', '.join(unpinned)})" if unpinned else ""
        raise PipelineError(
            f"{entry.id} has no pinned revision and weights manifest yet{what}",
            fix=f"pin it in shared/catalog (revision + manifests/{entry.id}.json"
            + "".join(f", manifests/{entry.id}/{role}.json" for role in entry.components)
            + ") first",
        )


def _quiet(_done: int, _total: int) -> None:
    return None


def check(model_id: str, weights_root: Path, *, catalog: Catalog | None = None) -> ModelWeights:
    """Verify the weights of one entry on disk: its manifest, components and style LoRAs."""
    entry = _entry(model_id, catalog)
    path = weights_path(weights_root, entry.id)
    if not path.is_dir():
        return ModelWeights(entry.id, path, "missing", 0, 0)
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    if not entry.manifest:
        return ModelWeights(entry.id, path, "unpinned", len(files), size, "no manifest pinned")
    try:
        verify_entry_weights(entry, path)
    except WeightsInvalid as exc:
        return ModelWeights(entry.id, path, "invalid", len(files), size, exc.message)
    verified: list[str] = []
    missing: list[str] = []
    for style in lora_styles(entry, catalog):
        try:
            _verify_lora(path, style)
        except WeightsInvalid as exc:
            if exc.context.get("actual") is not None:  # present but corrupted
                return ModelWeights(entry.id, path, "invalid", len(files), size, exc.message)
            missing.append(exc.message)
        else:
            verified.append(style.id)
    if missing:
        return ModelWeights(
            entry.id, path, "incomplete", len(files), size, "; ".join(missing), tuple(verified)
        )
    return ModelWeights(entry.id, path, "verified", len(files), size, styles=tuple(verified))


def list_models(
    weights_root: Path, *, include_missing: bool = False, catalog: Catalog | None = None
) -> list[ModelWeights]:
    """Every catalog entry with weights under `weights_root` (all entries if asked), verified."""
    ids = sorted((catalog or load_catalog()).models)
    statuses = [check(model_id, weights_root, catalog=catalog) for model_id in ids]
    return [s for s in statuses if include_missing or s.state != "missing"]
