"""The tiny manifests hold for the library versions they were pinned with, and say so.

A tiny model's configs carry the version of the diffusers / transformers that saved them,
so a new release on the index changes the bytes of a fresh build. CI once installed a newer
transformers and 134 tests failed with "corrupted, re-download": the checks below make the
lock, the record of the pinning versions and the error agree.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from framecast.node import models
from framecast.shared.catalog import get_entry
from framecast.shared.catalog.verify import (
    library_drift,
    library_stamps,
    tiny_libraries,
    verify_entry_weights,
)
from framecast.shared.errors import PipelineError, WeightsInvalid

REPO = Path(__file__).resolve().parents[2]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_the_lock_the_pin_record_and_this_venv_agree() -> None:
    """constraints.txt (what `make setup` installs) pins every library the tiny manifests
    were made with at the version recorded by `tiny pin`, and this venv runs those."""
    locked, recorded = _locked(), tiny_libraries()
    assert {"diffusers", "transformers"} <= set(recorded)
    for library, version in recorded.items():
        if library == "torch":
            continue  # pinned by the Makefile/pyproject, not the lock (CPU vs CUDA builds)
        assert locked.get(library) == version, (
            f"constraints.txt pins {library} {locked.get(library)} but the tiny manifests were "
            f"pinned with {version}: run `make lock` (it re-pins both together)"
        )
        assert metadata.version(library) == version, f"run `make setup` ({library})"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("tiny") / "tiny-cogvideox"
    return models.build_tiny("tiny-cogvideox", target)  # a subprocess, verified on the way


def test_a_build_is_stamped_with_the_recorded_versions(built: Path) -> None:
    stamps = library_stamps(built)
    recorded = tiny_libraries()
    assert stamps == {lib: {recorded[lib]} for lib in ("diffusers", "transformers")}
    assert library_drift(built) == []


def _with_stamp(built: Path, tmp_path: Path, version: str) -> Path:
    copy = tmp_path / "tiny-cogvideox"
    shutil.copytree(built, copy)
    config = copy / "text_encoder" / "config.json"
    data = json.loads(config.read_text())
    data["transformers_version"] = version
    config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return copy


def test_another_transformers_version_is_named_not_called_corruption(
    built: Path, tmp_path: Path
) -> None:
    drifted = _with_stamp(built, tmp_path, "9.9.9")
    with pytest.raises(WeightsInvalid) as info:
        verify_entry_weights(get_entry("tiny-cogvideox"), drifted)
    pinned = tiny_libraries()["transformers"]
    assert f"transformers 9.9.9 (manifests pinned with {pinned})" in info.value.message
    assert "make setup" in info.value.fix and "tiny build --family cogvideox" in info.value.fix
    assert "models pull" not in info.value.fix  # tiny models cannot be pulled
    assert info.value.context["file"] == "text_encoder/config.json"


def test_a_damaged_tiny_file_with_the_right_stamps_is_rebuilt(built: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "tiny-cogvideox"
    shutil.copytree(built, damaged)
    (damaged / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(WeightsInvalid) as info:
        verify_entry_weights(get_entry("tiny-cogvideox"), damaged)
    assert "vae/diffusion_pytorch_model.safetensors" in info.value.message
    assert info.value.fix.startswith("rebuild it: `rm -rf ")
    assert "make setup" not in info.value.fix


def test_a_build_that_misses_its_manifest_is_removed(tmp_path: Path) -> None:
    entry = get_entry("tiny-cogvideox")
    off = dict(entry.manifest, **{"model_index.json": "0" * 64})
    target = tmp_path / "tiny-cogvideox"
    with pytest.raises(WeightsInvalid, match=r"model_index\.json"):
        models.build_tiny(entry.model_copy(update={"manifest": off}), target)
    assert not target.exists(), "unverified weights were left in place"


def test_only_tiny_entries_are_built() -> None:
    pulled = next(e for e in models.load_catalog().models.values() if e.tiny is None)
    with pytest.raises(PipelineError, match="not a tiny test model") as info:
        models.build_tiny(pulled, Path("/nonexistent"))
    assert f"models pull {pulled.id}" in info.value.fix
