"""Maintaining the model catalog: pin an entry to a hub commit, and fit entries onto cards.

`pin` resolves a revision (branch, tag or commit) of the entry's Hugging Face repo to its
commit, lists the files the diffusers pipeline loads at that commit (`model_index.json`
and, per component folder it names, the configs, tokenizer files and one weights format),
takes each file's sha256 from the hub's LFS metadata (`paths-info`: `lfs.oid`) or, for
files kept in git rather than LFS (configs), by downloading and hashing them, and writes
the commit into `models.toml` and the manifest into `manifests/ID.json` (components: their
own revision and `manifests/ID/ROLE.json`). `framecast node models pull` then downloads
exactly those files at that commit and verifies every byte.

huggingface_hub is imported inside the functions that talk to the hub (it is light, but
the client's base install does not need it). The hub is reached at `HF_ENDPOINT` (default
https://huggingface.co), read at call time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framecast.shared.catalog import DATA_DIR, CatalogEntry, read_catalog
from framecast.shared.catalog.entry import Component
from framecast.shared.catalog.fit import REFERENCE_CARDS, REFERENCE_SIZES_GB, GpuCard, fit_table
from framecast.shared.catalog.hub import map_hub_error, transport_errors
from framecast.shared.errors import ConfigError, StoreUnavailable, UnknownModel, WeightsInvalid

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx")
#: Files a repo carries that no pipeline loads.
_DOCS = re.compile(
    r"(^|/)(README[^/]*|\.gitattributes|LICENSE[^/]*|[^/]*\.(md|png|jpe?g|gif|mp4))$"
)
#: `name[.variant][-00001-of-00002].ext` (diffusers' variant and shard naming).
_WEIGHT = re.compile(
    r"^(?P<stem>[^.]+)(?:\.(?P<variant>[A-Za-z0-9_]+))?(?P<shard>-\d{5}-of-\d{5})?"
    r"(?P<ext>\.[a-z0-9]+)$"
)
#: `name.safetensors.index[.variant].json`: the shard index of a weights format.
_INDEX = re.compile(
    r"^(?P<stem>[^.]+)(?P<ext>\.[a-z0-9]+)\.index(?:\.(?P<variant>[A-Za-z0-9_]+))?\.json$"
)


def hub_endpoint() -> str:
    """The hub the maintainer pins from: `HF_ENDPOINT`, else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@dataclass(frozen=True)
class HubFile:
    """One file of a repo at a commit: its size and, when LFS keeps it, its sha256."""

    path: str
    size: int
    lfs_sha256: str | None


@dataclass(frozen=True)
class PinnedPart:
    """The entry's own repo, or one component's: commit and manifest."""

    role: str | None
    repo: str
    commit: str
    manifest: dict[str, str]
    size_bytes: int
    hashed_locally: int


@dataclass(frozen=True)
class PinResult:
    """What `pin` wrote for one entry."""

    model: str
    parts: list[PinnedPart]
    manifest_file: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "manifest_file": str(self.manifest_file),
            "parts": [
                {
                    "role": p.role,
                    "repo": p.repo,
                    "revision": p.commit,
                    "files": len(p.manifest),
                    "size_bytes": p.size_bytes,
                    "hashed_locally": p.hashed_locally,
                }
                for p in self.parts
            ],
        }


class HubClient:
    """The hub's HTTP API through huggingface_hub, errors mapped into ours."""

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        from huggingface_hub import HfApi

        self.endpoint = endpoint or hub_endpoint()
        self._api = HfApi(endpoint=self.endpoint, token=token)
        self._token = token

    def _guard(self, repo: str, revision: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except transport_errors() as exc:
            raise map_hub_error(exc, repo=repo, revision=revision, endpoint=self.endpoint) from None

    def resolve(self, repo: str, revision: str) -> tuple[str, list[str]]:
        """(commit, every file path) of `repo` at `revision`."""
        info = self._guard(repo, revision, lambda: self._api.model_info(repo, revision=revision))
        if not info.sha or not re.fullmatch(r"[0-9a-f]{40}", info.sha):
            raise StoreUnavailable(
                f"the hub answered no commit for {repo}@{revision}",
                fix="check HF_ENDPOINT points at a Hugging Face hub",
            )
        return info.sha, sorted(s.rfilename for s in info.siblings or [])

    def files(self, repo: str, commit: str, paths: Sequence[str]) -> dict[str, HubFile]:
        """Size and LFS sha256 of `paths` at `commit` (paths the hub does not know are left out)."""
        from huggingface_hub.hf_api import RepoFile

        found = self._guard(
            repo, commit, lambda: self._api.get_paths_info(repo, list(paths), revision=commit)
        )
        return {
            f.path: HubFile(f.path, int(f.size), f.lfs.sha256 if f.lfs else None)
            for f in found
            if isinstance(f, RepoFile)
        }

    def download(self, repo: str, commit: str, path: str, dest: Path) -> Path:
        """One file of `repo` at `commit` under `dest`."""
        from huggingface_hub import hf_hub_download

        return Path(
            self._guard(
                repo,
                commit,
                lambda: hf_hub_download(
                    repo,
                    path,
                    revision=commit,
                    local_dir=dest,
                    endpoint=self.endpoint,
                    token=self._token,
                ),
            )
        )


def select_files(
    listing: Sequence[str], model_index: dict[str, Any] | None, variant: str | None, *, label: str
) -> list[str]:
    """The files `from_pretrained` loads out of `listing` (paths relative to the folder).

    With a `model_index.json` (a diffusers pipeline): it, and for every component it names
    (not `[null, null]`) that component's folder: the non-weight files (configs,
    tokenizer) and one weights format. Without one (a single model such as a ControlNet):
    the same rule on the folder itself. Docs, images and other formats are left out.
    """
    if model_index is None:
        return _folder_files(listing, "", variant, label=label)
    chosen = ["model_index.json"]
    for name, value in sorted(model_index.items()):
        if name.startswith("_") or not isinstance(value, list) or value == [None, None]:
            continue
        folder_files = _folder_files(listing, name, variant, label=label)
        if not folder_files:
            raise WeightsInvalid(
                f"model_index.json of {label} names component {name!r}, but the hub "
                f"listing has no {name}/ files",
                fix="pin a revision whose listing holds every component (the repo may be "
                "half uploaded), or fix the repo",
                file=f"{name}/",
            )
        chosen += folder_files
    return sorted(chosen)


def _folder_files(
    listing: Sequence[str], folder: str, variant: str | None, *, label: str
) -> list[str]:
    prefix = f"{folder}/" if folder else ""
    # Direct children only: from_pretrained does not read nested folders of a component.
    inside = [
        p[len(prefix) :] for p in listing if p.startswith(prefix) and "/" not in p[len(prefix) :]
    ]
    inside = [p for p in inside if not _DOCS.search(p)]
    other = [p for p in inside if not p.endswith(WEIGHT_SUFFIXES) and not _INDEX.match(p)]
    weights = [p for p in inside if p.endswith(WEIGHT_SUFFIXES) or _INDEX.match(p)]
    picked = _pick_format(weights, variant)
    if weights and not picked:
        raise WeightsInvalid(
            f"{label}: {folder or 'the repo root'} has no weights in variant {variant or 'plain'} "
            f"(it has {', '.join(sorted(weights)[:4])})",
            fix="set the entry's `variant` to one the repo has, or pin another revision",
        )
    return [prefix + p for p in sorted(other + picked)]


def _pick_format(names: Sequence[str], variant: str | None) -> list[str]:
    """safetensors before .bin, the requested variant only (None: no variant)."""
    for ext in (".safetensors", ".bin"):
        files = []
        for name in names:
            index = _INDEX.match(name)
            if index:
                if index["ext"] == ext and index["variant"] == variant:
                    files.append(name)
                continue
            weight = _WEIGHT.match(name)
            if weight and weight["ext"] == ext and weight["variant"] == variant:
                files.append(name)
        if any(not _INDEX.match(f) for f in files):
            return sorted(files)
    return []


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pin_part(
    hub: HubClient,
    repo: str,
    revision: str,
    *,
    variant: str | None,
    subdir: str = "",
    role: str | None = None,
) -> PinnedPart:
    """Resolve `repo`@`revision`, select the pipeline's files, hash them."""
    commit, listing = hub.resolve(repo, revision)
    label = f"{repo}@{commit[:12]}"
    prefix = f"{subdir}/" if subdir else ""
    local = [p[len(prefix) :] for p in listing if p.startswith(prefix)]
    with tempfile.TemporaryDirectory(prefix="framecast-pin-") as tmp:
        work = Path(tmp)
        model_index = None
        if "model_index.json" in local:
            index_file = hub.download(repo, commit, prefix + "model_index.json", work)
            model_index = json.loads(index_file.read_text(encoding="utf-8"))
        names = select_files(local, model_index, variant, label=label)
        if not names:
            raise WeightsInvalid(
                f"{label} lists no files a pipeline loads under {subdir or 'its root'}",
                fix="check the entry's repo and subdir",
            )
        repo_paths = [prefix + n for n in names]
        meta = hub.files(repo, commit, repo_paths)
        missing = [p for p in repo_paths if p not in meta]
        if missing:
            raise WeightsInvalid(
                f"{label}: the hub's paths-info does not know {', '.join(missing[:5])}, "
                "though the listing names them",
                fix="pin again (the repo changed under us) or pin a commit",
                file=missing[0],
            )
        manifest: dict[str, str] = {}
        hashed = 0
        for name, path in zip(names, repo_paths, strict=True):
            info = meta[path]
            if info.lfs_sha256 is not None:
                manifest[name] = info.lfs_sha256
            else:
                # Kept in git, not LFS: the hub gives a git blob id, not a sha256.
                manifest[name] = _hash(hub.download(repo, commit, path, work))
                hashed += 1
    return PinnedPart(
        role=role,
        repo=repo,
        commit=commit,
        manifest=dict(sorted(manifest.items())),
        size_bytes=sum(meta[p].size for p in repo_paths),
        hashed_locally=hashed,
    )


def pin(
    model: str,
    *,
    revision: str | None = None,
    catalog_dir: Path = DATA_DIR,
    hub: HubClient | None = None,
) -> PinResult:
    """Pin entry `model` of the catalog in `catalog_dir` (components at their own pinned
    revision, else main) and write revision, size and manifests there."""
    catalog = read_catalog(catalog_dir)
    entry = catalog.models.get(model)
    if entry is None:
        raise UnknownModel(
            f"unknown model {model!r}; known models: {', '.join(sorted(catalog.models))}",
            fix="pick one of the listed ids",
            model=model,
        )
    _require_pinnable(entry)
    assert entry.repo is not None  # _require_pinnable
    client = hub or HubClient()
    parts = [pin_part(client, entry.repo, revision or "main", variant=entry.variant)]
    for role, component in entry.components.items():
        parts.append(_pin_component(client, role, component))
    size = sum(p.size_bytes for p in parts)
    text = (catalog_dir / "models.toml").read_text(encoding="utf-8")
    text = set_keys(text, model, None, {"revision": parts[0].commit, "weights_bytes": size})
    manifests = catalog_dir / "manifests"
    manifest_file = manifests / f"{model}.json"
    writes = {manifest_file: parts[0].manifest}
    for part in parts[1:]:
        assert part.role is not None
        text = set_keys(text, model, part.role, {"revision": part.commit})
        writes[manifests / model / f"{part.role}.json"] = part.manifest
    # Everything is computed before the first write: a failure leaves the catalog as it was.
    for path, manifest in writes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (catalog_dir / "models.toml").write_text(text, encoding="utf-8")
    read_catalog(catalog_dir)  # what was written validates
    return PinResult(model=model, parts=parts, manifest_file=manifest_file)


def _pin_component(hub: HubClient, role: str, component: Component) -> PinnedPart:
    assert component.repo is not None  # CatalogEntry validation (non-tiny)
    return pin_part(
        hub,
        component.repo,
        component.revision or "main",
        variant=None,
        subdir=component.subdir,
        role=role,
    )


def _require_pinnable(entry: CatalogEntry) -> None:
    if entry.tiny is not None:
        raise ConfigError(
            f"{entry.id} is a tiny test model, built locally: there is no repo to pin",
            fix=f"pin it with `python -m framecast.runner tiny pin --family {entry.tiny}`",
        )
    if entry.repo is None:
        raise ConfigError(f"{entry.id} names no repo", fix="add `repo = ...` to its entry")
    if entry.mode == "long":
        raise ConfigError(
            f"{entry.id} is a long-video entry whose weights directory joins two repos "
            "(t2v/, i2v/); pin does not lay that out yet",
            fix="pin its base entries and commit the joined manifest by hand",
        )


def pinnable(entries: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    """The entries `pin --all` pins: every hub entry but tiny and long-video ones."""
    return [e for e in entries if e.tiny is None and e.repo is not None and e.mode != "long"]


def pin_all(
    *, catalog_dir: Path = DATA_DIR, hub: HubClient | None = None
) -> list[tuple[str, PinResult | str]]:
    """Pin every pinnable entry at its current revision (unpinned: main); errors per entry."""
    from framecast.shared.errors import FramecastError

    client = hub or HubClient()
    done: list[tuple[str, PinResult | str]] = []
    for entry in pinnable(read_catalog(catalog_dir).models.values()):
        try:
            done.append(
                (
                    entry.id,
                    pin(entry.id, revision=entry.revision, catalog_dir=catalog_dir, hub=client),
                )
            )
        except FramecastError as exc:
            done.append((entry.id, str(exc)))
    return done


# ------------------------------------------------------------------ models.toml editing
def set_keys(text: str, model: str, table: str | None, values: dict[str, object]) -> str:
    """`text` (models.toml) with `values` set in entry `model`'s own keys (table None) or in
    its `[model.components.TABLE]`; comments and layout elsewhere stay as they are."""
    lines = text.split("\n")
    start, end = _entry_block(lines, model)
    if table is None:
        section_start = start
        section_end = next(
            (i for i in range(start + 1, end) if lines[i].lstrip().startswith("[")), end
        )
    else:
        header = f"[model.components.{table}]"
        found = [i for i in range(start, end) if lines[i].strip() == header]
        if not found:
            raise ConfigError(f"entry {model} has no {header} table", fix="add it to models.toml")
        section_start = found[0]
        section_end = next(
            (i for i in range(section_start + 1, end) if lines[i].lstrip().startswith("[")), end
        )
    for key, value in values.items():
        rendered = f"{key} = {json.dumps(value)}"
        pattern = re.compile(rf"^{re.escape(key)}\s*=")
        hit = next((i for i in range(section_start, section_end) if pattern.match(lines[i])), None)
        if hit is not None:
            lines[hit] = rendered
            continue
        anchor = next(
            (i for i in range(section_start, section_end) if lines[i].startswith("repo =")),
            section_start,
        )
        lines.insert(anchor + 1, rendered)
        section_end += 1
        end += 1
    result = "\n".join(lines)
    tomllib.loads(result)  # still TOML
    return result


def _entry_block(lines: list[str], model: str) -> tuple[int, int]:
    """(index of the entry's `[[model]]` line, index after its last line)."""
    # Arrays of tables nested in an entry (`[[model.x]]`) belong to it; others start blocks.
    headers = [
        i
        for i, line in enumerate(lines)
        if line.startswith("[[") and not line.startswith("[[model.")
    ] + [len(lines)]
    for here, after in itertools.pairwise(headers):
        if lines[here].strip() != "[[model]]":
            continue
        if any(lines[i].strip() == f"id = {json.dumps(model)}" for i in range(here, after)):
            return here, after
    raise UnknownModel(f"models.toml has no entry with id {model!r}", fix="check the id")


# ------------------------------------------------------------------ fit
@dataclass(frozen=True)
class FitTable:
    """The profile each entry runs on each card (None: it does not fit)."""

    cards: list[GpuCard]
    sizes: list[str]
    rows: dict[str, list[str | None]] = field(default_factory=dict)
    numerics: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "cards": [
                {"size": size, **card.model_dump()}
                for size, card in zip(self.sizes, self.cards, strict=True)
            ],
            "models": {
                model: {
                    size: (
                        None
                        if name is None
                        else {"profile": name, "numerics": self.numerics[model][name]}
                    )
                    for size, name in zip(self.sizes, row, strict=True)
                }
                for model, row in self.rows.items()
            },
        }


def fit(
    *, memory_mib: Sequence[int] = (), catalog_dir: Path = DATA_DIR, include_tiny: bool = False
) -> FitTable:
    """The fit table for the reference cards (8–80 GB), or for cards of `memory_mib`."""
    if memory_mib:
        cards = [GpuCard(name=f"{m} MiB", memory_mib=m) for m in memory_mib]
        sizes = [f"{m / 1024:.0f}G" for m in memory_mib]
    else:
        cards = list(REFERENCE_CARDS)
        sizes = [f"{s}G" for s in REFERENCE_SIZES_GB]
    entries = [
        e for e in read_catalog(catalog_dir).models.values() if include_tiny or e.tiny is None
    ]
    numerics = {e.id: {p.name: p.numerics for p in e.memory_profiles()} for e in entries}
    return FitTable(cards=cards, sizes=sizes, rows=fit_table(entries, cards), numerics=numerics)


__all__ = [
    "FitTable",
    "HubClient",
    "PinResult",
    "PinnedPart",
    "fit",
    "hub_endpoint",
    "pin",
    "pin_all",
    "pin_part",
    "pinnable",
    "select_files",
    "set_keys",
]
