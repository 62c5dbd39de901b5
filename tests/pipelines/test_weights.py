"""Weights manifests: exact files, exact bytes, errors that name file and hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.shared.catalog.weights import (
    CONTROLNET_DIR,
    LORA_DIR,
    compute_manifest,
    manifest_hash,
    verify_weights,
)
from framecast.shared.errors import WeightsInvalid


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "vae").mkdir()
    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "vae" / "w.safetensors").write_bytes(b"\x00" * 2_000_000)
    return tmp_path


def test_matching_directory_passes(model_dir: Path) -> None:
    manifest = compute_manifest(model_dir)
    assert list(manifest) == ["model_index.json", "vae/w.safetensors"]
    verify_weights(model_dir, manifest)
    assert manifest_hash(manifest) == manifest_hash(dict(reversed(manifest.items())))


def test_corrupted_file_names_file_expected_and_actual(model_dir: Path) -> None:
    manifest = compute_manifest(model_dir)
    (model_dir / "vae" / "w.safetensors").write_bytes(b"\x01" * 10)
    with pytest.raises(WeightsInvalid) as info:
        verify_weights(model_dir, manifest)
    message = str(info.value)
    assert "vae/w.safetensors" in message
    assert manifest["vae/w.safetensors"] in message
    assert info.value.context["actual"] in message
    assert "pull" in message


def test_missing_and_extra_files_are_refused(model_dir: Path) -> None:
    manifest = compute_manifest(model_dir)
    (model_dir / "extra.bin").write_bytes(b"x")
    with pytest.raises(WeightsInvalid, match=r"extra\.bin"):
        verify_weights(model_dir, manifest)
    verify_weights(model_dir, manifest, allow_extra=True)
    (model_dir / "model_index.json").unlink()
    with pytest.raises(WeightsInvalid, match=r"model_index\.json is missing"):
        verify_weights(model_dir, manifest, allow_extra=True)
    with pytest.raises(WeightsInvalid, match="does not exist"):
        verify_weights(model_dir / "nope", manifest)


def test_separately_pinned_folders_are_checked_only_by_a_manifest_naming_them(
    model_dir: Path,
) -> None:
    base = compute_manifest(model_dir)
    (model_dir / CONTROLNET_DIR).mkdir()
    (model_dir / CONTROLNET_DIR / "config.json").write_text("{}")
    (model_dir / LORA_DIR).mkdir()
    (model_dir / LORA_DIR / "style.safetensors").write_bytes(b"lora")
    verify_weights(model_dir, base)  # the base manifest leaves the ControlNet to its own
    full = compute_manifest(model_dir)
    del full[f"{LORA_DIR}/style.safetensors"]
    verify_weights(model_dir, full)
    (model_dir / CONTROLNET_DIR / "stray.bin").write_bytes(b"x")
    verify_weights(model_dir, base)
    with pytest.raises(WeightsInvalid, match=r"controlnet/stray\.bin"):
        verify_weights(model_dir, full)
