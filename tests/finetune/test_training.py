"""Fine-tune jobs in the runner on the tiny real CogVideoX: a peft LoRA trained from a
dataset CID, deterministic, sampled with, and used again by CID in a generation job."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from framecast.runner import finetune
from framecast.runner.pipelines import load_model
from framecast.runner.serve import JobRunner
from framecast.shared.catalog import TINY_PROMPT, default_spec, get_entry
from framecast.shared.errors import SpecError
from framecast.shared.ipfs import cid_of_path
from tests.finetune.conftest import Dataset, execute, fine_tune_spec


def test_fine_tune_is_deterministic_and_its_lora_generates_by_cid(
    runner: JobRunner, tiny_cogvideox_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    spec = fine_tune_spec(dataset.cid)
    first, events = execute(runner, tiny_cogvideox_dir, spec, tmp_path / "ft1", dataset.inputs_dir)
    assert first.status == "succeeded" and first.output is not None, first.error
    made = first.output.fine_tune
    assert made is not None and made.steps == 6 and made.clips == 3
    out = tmp_path / "ft1"
    assert sorted(p.name for p in out.iterdir()) == [
        "lora.safetensors", "poster.jpg", "train_log.jsonl", "video.mp4",
    ]  # fmt: skip
    lora = out / "lora.safetensors"
    # The chain's digest slot carries the LoRA's sha256.
    assert (
        first.output.frames_digest
        == made.lora_sha256
        == hashlib.sha256(lora.read_bytes()).hexdigest()
    )
    # Per-step progress with the loss, and the log has one line per step.
    losses = [e.metrics["loss"] for e in events if "loss" in e.metrics]
    assert len(losses) == 6 and all(loss > 0 for loss in losses)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, 7))
    assert [row["loss"] for row in log] == losses
    # The adapter covers exactly the modules asked for, at the rank asked for.
    tensors = load_file(lora)
    assert tensors and all(k.startswith("transformer.") for k in tensors)
    assert {k.split(".lora_")[0].rsplit(".", 1)[1] for k in tensors} == {"to_q", "to_v"}
    assert all(4 in t.shape for t in tensors.values())

    # Same spec, same weights, same machine: the same LoRA bytes and sample frames.
    again, _ = execute(runner, tiny_cogvideox_dir, spec, tmp_path / "ft2", dataset.inputs_dir)
    assert again.output is not None and again.output.fine_tune is not None
    assert again.output.frames_digest == first.output.frames_digest
    assert again.output.fine_tune.sample_frames_digest == made.sample_frames_digest
    # Another seed trains another LoRA.
    other, _ = execute(
        runner, tiny_cogvideox_dir, fine_tune_spec(dataset.cid, seed=8), tmp_path / "ft3",
        dataset.inputs_dir,
    )  # fmt: skip
    assert other.output is not None and other.output.frames_digest != made.lora_sha256

    # Generation naming the LoRA by CID: the sample's frames; without it, the base model's.
    lora_cid = cid_of_path(lora)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copyfile(lora, inputs / lora_cid)
    bounds = get_entry("tiny-cogvideox").fine_tune
    assert bounds is not None
    sample_steps = bounds.sample_steps
    base_spec = default_spec("tiny-cogvideox", TINY_PROMPT, seed=7, steps=sample_steps)
    styled_spec = default_spec(
        "tiny-cogvideox", TINY_PROMPT, seed=7, steps=sample_steps,
        style={"lora": lora_cid, "scale_milli": 1000},
    )  # fmt: skip
    base, _ = execute(runner, tiny_cogvideox_dir, base_spec, tmp_path / "base", None)
    styled, _ = execute(runner, tiny_cogvideox_dir, styled_spec, tmp_path / "styled", inputs)
    after, _ = execute(runner, tiny_cogvideox_dir, base_spec, tmp_path / "after", None)
    assert base.output and styled.output and after.output, (base.error, styled.error)
    assert styled.output.frames_digest == made.sample_frames_digest
    assert styled.output.frames_digest != base.output.frames_digest
    assert after.output.frames_digest == base.output.frames_digest, "the LoRA outlived its job"
    sha = made.lora_sha256
    assert styled.output.style == f"lora:{lora_cid}:{sha}:scale=1000"


def test_a_lora_that_does_not_fit_names_the_module_and_shapes(
    runner: JobRunner, tiny_cogvideox_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    trained, _ = execute(
        runner, tiny_cogvideox_dir, fine_tune_spec(dataset.cid, steps=1), tmp_path / "ft",
        dataset.inputs_dir,
    )  # fmt: skip
    assert trained.status == "succeeded", trained.error
    tensors = load_file(tmp_path / "ft" / "lora.safetensors")
    key = sorted(k for k in tensors if "lora_A" in k)[0]
    tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] * 2)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cid = cid_of_path(bad)
    shutil.copyfile(bad, inputs / cid)
    spec = default_spec(
        "tiny-cogvideox", TINY_PROMPT, seed=1, style={"lora": cid, "scale_milli": 1000}
    )
    failed, events = execute(runner, tiny_cogvideox_dir, spec, tmp_path / "gen", inputs)
    assert failed.error is not None and failed.error.kind == "invalid_input"
    module = key.removeprefix("transformer.").split(".lora_A.")[0]
    assert f"does not fit module {module}" in failed.error.message
    assert "expected shape (4, 32), got (4, 64)" in failed.error.message
    assert not any(e.status == "processing" for e in events), "no compute for a bad LoRA"
    # A file that is not the CID's content is refused as well.
    (inputs / cid).write_bytes(b"not a lora")
    again, _ = execute(runner, tiny_cogvideox_dir, spec, tmp_path / "gen2", inputs)
    assert again.error is not None and "has another CID" in again.error.message


def test_bad_datasets_fail_before_training_naming_the_clip(
    runner: JobRunner, tiny_cogvideox_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    # Packed for 9 frames, trained as 5: the runner re-checks what the client may skip.
    spec = fine_tune_spec(dataset.cid, num_frames=5)
    failed, events = execute(runner, tiny_cogvideox_dir, spec, tmp_path / "a", dataset.inputs_dir)
    assert failed.error is not None and failed.error.kind == "invalid_input"
    assert "clip0.mp4 is 9 frames of 32x32; the job trains on 5 frames" in failed.error.message
    assert not any("loss" in e.metrics for e in events)
    # A dataset CID that is a file, not a directory.
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / dataset.cid).write_bytes(b"a file")
    missing, _ = execute(runner, tiny_cogvideox_dir, fine_tune_spec(dataset.cid), tmp_path / "b",
                         inputs)  # fmt: skip
    assert missing.error is not None and "not fetched as a directory" in missing.error.message


def test_a_diverging_run_fails_cleanly_and_leaves_the_model_as_it_was(
    tiny_cogvideox_dir: Path, dataset: Dataset, tmp_path: Path
) -> None:
    entry = get_entry("tiny-cogvideox")
    model = load_model(entry, str(tiny_cogvideox_dir), "cpu")
    pipe = model.main
    # Broken weights stand in for a run that diverges: the loss is not finite.
    with torch.no_grad():
        pipe.transformer.proj_out.weight.fill_(float("inf"))
    spec = fine_tune_spec(dataset.cid)
    clips = finetune.load_dataset(dataset.inputs_dir / dataset.cid, spec, entry)
    steps: list[int] = []
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SpecError, match="training diverged at step 1") as raised:
        finetune.train_lora(pipe, entry=entry, spec=spec, clips=clips, out_dir=out,
                            device="cpu", on_step=lambda s, _l: steps.append(s))  # fmt: skip
    assert raised.value.field == "fine_tune.learning_rate_micro"
    assert steps == [] and list(out.iterdir()) == []
    assert not any("lora_" in name for name, _ in pipe.transformer.named_parameters())
