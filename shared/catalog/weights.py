"""Weights manifests: every file of a model directory with its sha256.

A catalog entry pins its weights by manifest; the runner refuses to load a directory that
does not match it byte for byte (before any GPU work), and `node models` uses the same
check after a pull. Hashing streams in 1 MiB blocks so multi-GB shards stay in constant
memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from framecast.shared.errors import WeightsInvalid

_BLOCK = 1 << 20

# Where things live inside a model directory (``WEIGHTS_ROOT/<entry id>``). The puller
# (`framecast node models pull`) writes these paths and the runner reads them: both import
# the constants from here, so the layout has exactly one definition.

#: Style LoRA adapters live in this subdirectory of a model directory. They are pinned by
#: the styles that name them (each file checked against its own sha256 before use), not by
#: the model's manifest, so they are not "extra" files of the model.
LORA_DIR = "loras"
#: A ControlNet component (pose / edge control) lives here, next to the base model's
#: folders; its files are pinned by the entry's component manifest.
CONTROLNET_DIR = "controlnet"
#: Component role (the diffusers pipeline argument it is passed as) -> its subdirectory.
COMPONENT_DIRS: dict[str, str] = {"controlnet": CONTROLNET_DIR}


def lora_relpath(file: str) -> str:
    """A style LoRA file's path relative to the model directory, e.g. `loras/x.safetensors`."""
    return f"{LORA_DIR}/{file}"


def verify_file(path: Path, expected: str, *, label: str, fix: str) -> None:
    """Raise `WeightsInvalid` naming `label`, expected and actual sha256 unless they match."""
    if not path.is_file():
        raise WeightsInvalid(
            f"{label} is missing: {path} (expected sha256 {expected})",
            fix=fix,
            file=str(path),
            expected=expected,
            actual=None,
        )
    actual = file_sha256(path)
    if actual != expected:
        raise WeightsInvalid(
            f"{label} is corrupted: {path} has sha256 {actual}, expected {expected}",
            fix=fix,
            file=str(path),
            expected=expected,
            actual=actual,
        )


def file_sha256(path: Path) -> str:
    """Hex sha256 of one file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def compute_manifest(model_dir: Path) -> dict[str, str]:
    """`{relative posix path: sha256}` of every regular file under `model_dir`, sorted."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    return {p.relative_to(model_dir).as_posix(): file_sha256(p) for p in files}


def manifest_hash(manifest: Mapping[str, str]) -> str:
    """sha256 of the manifest's canonical JSON: the one value a receipt records."""
    body = json.dumps(dict(sorted(manifest.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def verify_weights(
    model_dir: Path | str, manifest: Mapping[str, str], *, allow_extra: bool = False
) -> None:
    """Raise `WeightsInvalid` unless `model_dir` holds exactly the manifest's files and bytes.

    Extra files are refused by default: `from_pretrained` may read a file the manifest does
    not pin (a config, a second shard), and then the manifest would not describe what ran.
    The folders of separately pinned parts (`LORA_DIR`, `COMPONENT_DIRS`) are exempt unless
    the manifest names a file in them: a base manifest then accepts a directory that also
    holds its ControlNet, while the full manifest (`CatalogEntry.full_manifest`) checks
    that folder file for file too.
    """
    root = Path(model_dir)
    if not manifest:
        raise WeightsInvalid(
            f"the weights manifest for {root} is empty",
            fix="pin the model's files in the catalog entry before running it",
        )
    if not root.is_dir():
        raise WeightsInvalid(
            f"weights directory {root} does not exist",
            fix="run `framecast node models pull MODEL` (or build the tiny model) first",
            model_dir=str(root),
        )
    for name, expected in sorted(manifest.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise WeightsInvalid(
                f"manifest entry {name!r} escapes the weights directory",
                fix="fix the catalog entry's manifest",
            )
        path = root / relative
        if not path.is_file():
            raise WeightsInvalid(
                f"weights file {name} is missing from {root} (expected sha256 {expected})",
                fix="re-download the model with `framecast node models pull MODEL`",
                file=name,
                expected=expected,
                actual=None,
            )
        actual = file_sha256(path)
        if actual != expected:
            raise WeightsInvalid(
                f"weights file {name} in {root} is corrupted: expected sha256 {expected}, "
                f"actual {actual}",
                fix="delete it and re-download with `framecast node models pull MODEL`",
                file=name,
                expected=expected,
                actual=actual,
            )
    if not allow_extra:
        pinned_folders = {name.split("/", 1)[0] for name in manifest}
        exempt = {LORA_DIR, *COMPONENT_DIRS.values()} - pinned_folders
        names = (n for n in compute_manifest_names(root) if n.split("/", 1)[0] not in exempt)
        extra = sorted(set(names) - set(manifest))
        if extra:
            raise WeightsInvalid(
                f"weights directory {root} holds files the manifest does not pin: "
                + ", ".join(extra[:5])
                + (" …" if len(extra) > 5 else ""),
                fix="remove them, or pull the model again into an empty directory",
                extra=extra,
            )


def compute_manifest_names(model_dir: Path) -> list[str]:
    """Relative posix paths of every regular file under `model_dir` (no hashing)."""
    return sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
