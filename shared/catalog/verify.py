"""Checking a model directory against its catalog entry, with the fix that fits the entry.

`weights.verify_weights` knows files and hashes only; this module knows what an entry is.
A pulled entry that does not match is re-pulled. A tiny entry is built here, and its
pinned bytes include the version stamps (`transformers_version`, `_diffusers_version`) the
libraries write into every config. The usual reason a fresh tiny build does not match is
therefore a different library version, not corruption; the error then names the library,
the version that wrote the files and the version the manifests were pinned with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from framecast.shared.catalog.entry import CatalogEntry
from framecast.shared.catalog.weights import verify_weights
from framecast.shared.errors import WeightsInvalid

#: The versions of the libraries that wrote the tiny models when their manifests were
#: pinned (`python -m framecast.runner tiny pin` writes it next to the manifests).
TINY_LIBRARIES_PATH = Path(__file__).parent / "tiny-libraries.json"

#: Config key -> the distribution that writes it into every config it saves.
_STAMP_KEYS: dict[str, str] = {
    "transformers_version": "transformers",
    "_diffusers_version": "diffusers",
}


def library_stamps(model_dir: Path | str) -> dict[str, set[str]]:
    """`{library: versions}` stamped into the JSON configs under `model_dir`."""
    stamps: dict[str, set[str]] = {}
    for path in sorted(Path(model_dir).rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # not a config (or unreadable): the hash check reports it
        if not isinstance(data, dict):
            continue
        for key, library in _STAMP_KEYS.items():
            value = data.get(key)
            if isinstance(value, str):
                stamps.setdefault(library, set()).add(value)
    return stamps


def tiny_libraries(path: Path = TINY_LIBRARIES_PATH) -> dict[str, str]:
    """`{library: version}` the tiny manifests were pinned with; empty if never recorded."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def library_drift(model_dir: Path | str, pinned: Mapping[str, str] | None = None) -> list[str]:
    """`"transformers 5.25.0 (manifests pinned with 5.24.0)"` for each stamped library whose
    version differs from the one the tiny manifests were pinned with."""
    pinned = tiny_libraries() if pinned is None else pinned
    drift = []
    for library, versions in sorted(library_stamps(model_dir).items()):
        want = pinned.get(library)
        for version in sorted(versions - {want}) if want else ():
            drift.append(f"{library} {version} (manifests pinned with {want})")
    return drift


def fetch_fix(entry: CatalogEntry, model_dir: Path | str) -> str:
    """How `model_dir` gets `entry`'s weights: a pull, or for a tiny entry a local build."""
    if entry.tiny is None:
        return f"pull it: `framecast node models pull {entry.id}`"
    return (
        f"build it: `python -m framecast.runner tiny build --family {entry.tiny} "
        f"--out {model_dir}` (`framecast node init` builds the tiny models it serves)"
    )


def verify_entry_weights(
    entry: CatalogEntry, model_dir: Path | str, manifest: Mapping[str, str] | None = None
) -> None:
    """`verify_weights` against `manifest` (default: the entry's full manifest); a mismatch
    is re-raised with the fix for this kind of entry."""
    root = Path(model_dir)
    try:
        verify_weights(root, entry.full_manifest() if manifest is None else manifest)
    except WeightsInvalid as exc:
        if entry.tiny is None:
            fix = f"delete {root} and pull it again: `framecast node models pull {entry.id}`"
            raise WeightsInvalid(exc.message, fix=fix, **exc.context) from None
        rebuild = (
            f"rm -rf {root} && python -m framecast.runner tiny build --family {entry.tiny} "
            f"--out {root}"
        )
        drift = library_drift(root) if root.is_dir() else []
        if drift:
            differs = exc.context.get("file")
            detail = (
                f"{differs} differs: expected sha256 {exc.context.get('expected')}, actual "
                f"{exc.context.get('actual')}"
                if differs
                else exc.message
            )
            raise WeightsInvalid(
                f"the tiny model {entry.id} in {root} does not match its manifest: it was "
                f"written by {', '.join(drift)}; {detail}",
                fix="install the pinned versions (`make setup` installs from "
                f"constraints.txt), then rebuild: `{rebuild}`",
                drift=drift,
                **exc.context,
            ) from None
        raise WeightsInvalid(exc.message, fix=f"rebuild it: `{rebuild}`", **exc.context) from None
