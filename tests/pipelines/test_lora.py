"""Style LoRA adapters: pinned file verified before use, applied per job, unloaded after,
recorded in the receipt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framecast.runner.serve import JobRunner
from framecast.runner.tiny import build_tiny_lora
from framecast.shared.catalog import check_spec, get_style
from framecast.shared.catalog.weights import file_sha256
from framecast.shared.errors import SpecError
from framecast.shared.ipfs.cid import CID
from tests.pipelines.test_catalog import spec_for
from tests.pipelines.test_runner import run_job

STYLE = "tiny-lora"


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


@pytest.fixture(scope="module")
def lora_model_dir(tiny_cogvideox_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-cogvideox with the style's LoRA in loras/ (a copy: other tests share the model)."""
    model_dir = tmp_path_factory.mktemp("lora") / "tiny-cogvideox"
    shutil.copytree(tiny_cogvideox_dir, model_dir)
    build_tiny_lora(STYLE, model_dir)
    return model_dir


def test_tiny_lora_builds_to_its_pinned_sha256_and_cid(lora_model_dir: Path) -> None:
    lora = get_style(STYLE).lora
    assert lora is not None
    path = lora_model_dir / "loras" / lora.file
    assert file_sha256(path) == lora.sha256, (
        "the tiny LoRA no longer builds to the style's pinned sha256; if intended, update "
        "sha256 and cid of the tiny-lora style in shared/catalog/models.toml"
    )
    assert str(CID.from_block(path.read_bytes())) == lora.cid


@pytest.mark.slow  # four pipeline runs with and without the LoRA
def test_lora_changes_frames_deterministically_and_is_unloaded_after_the_job(
    runner: JobRunner, lora_model_dir: Path, tmp_path: Path
) -> None:
    plain, _ = run_job(runner, lora_model_dir, tmp_path / "plain")
    styled = [
        run_job(runner, lora_model_dir, tmp_path / f"lora{i}", style=STYLE)[0] for i in (1, 2)
    ]
    after, _ = run_job(runner, lora_model_dir, tmp_path / "after")
    digests = []
    for terminal in (plain, *styled, after):
        assert terminal.output is not None, terminal.error
        digests.append(terminal.output.frames_digest)
    # The style's template is the bare prompt: the LoRA is the only difference.
    assert digests[1] == digests[2] != digests[0]
    assert digests[3] == digests[0], "the LoRA outlived its job in the warm runner"
    assert after.metrics["warm"] == 1.0
    lora = get_style(STYLE).lora
    assert lora is not None and styled[0].output is not None
    assert styled[0].output.style == f"{STYLE}+lora:{lora.cid}:{lora.sha256}"


def test_corrupted_or_missing_lora_fails_cleanly(
    runner: JobRunner, lora_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(lora_model_dir, model_dir)
    lora_file = next((model_dir / "loras").iterdir())
    data = bytearray(lora_file.read_bytes())
    data[-1] ^= 0xFF
    lora_file.write_bytes(bytes(data))
    corrupted, events = run_job(runner, model_dir, tmp_path / "corrupted", style=STYLE)
    assert corrupted.error is not None and corrupted.error.kind == "weights"
    assert "corrupted" in corrupted.error.message
    assert not any(e.status == "processing" for e in events), "no step may run"
    lora_file.unlink()
    missing, _ = run_job(runner, model_dir, tmp_path / "missing", style=STYLE)
    assert missing.error is not None and missing.error.kind == "weights"
    assert "missing" in missing.error.message
    plain, _ = run_job(runner, model_dir, tmp_path / "plain")
    assert plain.status == "succeeded", plain.error


def test_lora_style_is_refused_on_other_models() -> None:
    with pytest.raises(SpecError, match="carries a LoRA for tiny-cogvideox"):
        check_spec(spec_for("cogvideox-2b", style=STYLE))
    assert check_spec(spec_for("tiny-cogvideox", style=STYLE)).id == "tiny-cogvideox"
