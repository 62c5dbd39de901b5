"""The model catalog (docs/protocol.md §4): entries and styles as package data, validated on load.

The data is `models.toml` plus one `manifests/ID.json` per pinned entry (and one
`manifests/ID/ROLE.json` per pinned component, e.g. a ControlNet). The client imports
this package to validate a spec before signing, so it must never import torch.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framecast.shared.catalog.entry import (
    Bound,
    CatalogEntry,
    Component,
    ComponentRole,
    Defaults,
    LoraAdapter,
    Style,
    validate_spec,
)
from framecast.shared.catalog.weights import manifest_hash
from framecast.shared.errors import ConfigError, SpecError, UnknownModel
from framecast.shared.spec import GenerationSpec, parse_spec

DATA_DIR = Path(__file__).parent
MANIFESTS_DIR = DATA_DIR / "manifests"


class Catalog(BaseModel):
    """All entries and styles, keyed by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, CatalogEntry] = Field(description="Entries by id.")
    styles: dict[str, Style] = Field(description="Styles by id.")


def manifest_path(model: str) -> Path:
    """Where the weights manifest of `model` is committed."""
    return MANIFESTS_DIR / f"{model}.json"


def component_manifest_path(model: str, role: str) -> Path:
    """Where the manifest of component `role` (e.g. controlnet) of `model` is committed."""
    return MANIFESTS_DIR / model / f"{role}.json"


def _load(
    data: Mapping[str, Any],
    manifests: Mapping[str, dict[str, str]],
    component_manifests: Mapping[tuple[str, str], dict[str, str]] | None = None,
) -> Catalog:
    models: dict[str, CatalogEntry] = {}
    parts = component_manifests or {}
    for raw in data.get("model", []):
        components = {
            role: {**fields, "manifest": parts.get((raw["id"], role), {})}
            for role, fields in raw.get("components", {}).items()
        }
        entry = CatalogEntry.model_validate(
            {**raw, "components": components, "manifest": manifests.get(raw["id"], {})}
        )
        if entry.id in models:
            raise ConfigError(f"catalog lists model {entry.id} twice")
        models[entry.id] = entry
    styles = {s.id: s for s in (Style.model_validate(raw) for raw in data.get("style", []))}
    clash = set(models) & set(styles)
    if clash:
        raise ConfigError(f"catalog ids used for both a model and a style: {sorted(clash)}")
    return Catalog(models=models, styles=styles)


@cache
def load_catalog() -> Catalog:
    """The packaged catalog, parsed and validated once per process."""
    return read_catalog(DATA_DIR)


def read_catalog(data_dir: Path) -> Catalog:
    """The catalog in `data_dir` (`models.toml` + `manifests/`): the packaged one, or a copy
    a maintainer pins into (`framecast catalog pin --catalog-dir`)."""
    try:
        data = tomllib.loads((data_dir / "models.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read the model catalog {data_dir / 'models.toml'}: {exc}",
            fix="pass the folder holding models.toml and manifests/ (--catalog-dir)",
        ) from None
    manifests_dir = data_dir / "manifests"
    manifests = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(manifests_dir.glob("*.json"))
    }
    component_manifests = {
        (path.parent.name, path.stem): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(manifests_dir.glob("*/*.json"))
    }
    try:
        return _load(data, manifests, component_manifests)
    except ValidationError as exc:
        raise ConfigError(
            f"the model catalog in {data_dir} is invalid: {exc}",
            fix=f"fix {data_dir / 'models.toml'}",
        ) from None


def get_entry(model: str) -> CatalogEntry:
    """The entry for `model`; `UnknownModel` lists the known ids."""
    catalog = load_catalog()
    try:
        return catalog.models[model]
    except KeyError:
        known = ", ".join(sorted(catalog.models))
        raise UnknownModel(
            f"unknown model {model!r}; known models: {known}",
            fix="pick one of the listed ids",
            model=model,
        ) from None


def get_style(style: str) -> Style:
    """The style preset `style`; `SpecError` lists the known ones."""
    catalog = load_catalog()
    try:
        return catalog.styles[style]
    except KeyError:
        known = ", ".join(sorted(catalog.styles))
        raise SpecError(
            f"unknown style {style!r}; known styles: {known}",
            field="style",
            fix="pick one of the listed styles or drop --style",
        ) from None


#: A prompt inside every tiny model's 16-token vocabulary (tests, benches, the demo).
TINY_PROMPT = "a red cat walks in the city"


def default_spec(model: str, prompt: str, **fields: Any) -> GenerationSpec:
    """A checked spec for ``model``: the entry's defaults for every field not given.

    The task is the first the entry serves without inputs (else its first), so a plain
    prompt works for text-to-video entries. Raises `UnknownModel` / `SpecError`.
    """
    entry = get_entry(model)
    task = next((t for t in entry.tasks if not entry.task_inputs.get(t)), entry.tasks[0])
    data: dict[str, Any] = {
        "task": task,
        "model": entry.id,
        "prompt": prompt,
        **entry.defaults.model_dump(exclude_none=True),
        **fields,
    }
    spec = parse_spec(data)
    check_spec(spec)
    return spec


def check_spec(spec: GenerationSpec) -> CatalogEntry:
    """Validate `spec` against its catalog entry (and style); return the entry."""
    entry = get_entry(spec.model)
    style = get_style(spec.style_id) if spec.style_id is not None else None
    validate_spec(spec, entry, style)
    return entry


def weights_manifest_hash(entry: CatalogEntry) -> str:
    """sha256 of the entry's canonical manifest, recorded in receipts.

    Components count: the manifest hashed is `full_manifest()`, every file the runner loads
    (a different ControlNet is a different model), under the folder it is loaded from.
    """
    if not entry.manifest:
        raise UnknownModel(
            f"model {entry.id} has no pinned weights manifest",
            fix=f"pin it: commit shared/catalog/manifests/{entry.id}.json",
        )
    digest: str = manifest_hash(entry.full_manifest())
    return digest


__all__ = [
    "Bound",
    "Catalog",
    "CatalogEntry",
    "Component",
    "ComponentRole",
    "Defaults",
    "LoraAdapter",
    "Style",
    "check_spec",
    "component_manifest_path",
    "get_entry",
    "get_style",
    "load_catalog",
    "manifest_path",
    "read_catalog",
    "validate_spec",
    "weights_manifest_hash",
]
