"""The maintained control and editing routes (Wan VACE, Wan video-to-video) and Wan 2.2's
two experts, on tiny real pipelines: inputs read from the job's inputs directory and
checked against the spec before any step, like the Text2Video-Zero routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framecast.runner import pipelines
from framecast.runner.families.wan_edit import EDIT_STRENGTH, schedule_steps
from framecast.runner.serve import JobRunner
from framecast.shared.catalog import check_spec, get_entry
from framecast.shared.errors import SpecError
from framecast.shared.spec import parse_spec
from tests.pipelines.test_control import put_video
from tests.pipelines.test_runner import decoded_frames, run_job
from tests.runtime.conformance import TINY_SPEC

MISSING_CID = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


def sliding_bar(count: int = 9, size: int = 32, offset: int = 0) -> np.ndarray:
    """A white bar moving over black: a control-map-like video."""
    frames = np.zeros((count, size, size, 3), np.uint8)
    for index in range(count):
        x = (offset + 2 * index) % (size - 8)
        frames[index, 4:28, x : x + 8] = 255
    return frames


def vace_job(runner: JobRunner, model_dir: Path, out: Path, cid: str, **changes: Any) -> Any:
    return run_job(
        runner,
        model_dir,
        out,
        out.parent / "inputs",
        **{"model": "tiny-wan-vace", "inputs": {"control": cid}, **changes},
    )


def edit_job(runner: JobRunner, model_dir: Path, out: Path, cid: str, **changes: Any) -> Any:
    return run_job(
        runner,
        model_dir,
        out,
        out.parent / "inputs",
        **{"model": "tiny-wan-v2v", "task": "video-edit", "inputs": {"video": cid}, **changes},
    )


@pytest.mark.slow  # three VACE runs
def test_vace_control_video_conditions_the_frames(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    first, second = put_video(inputs, sliding_bar()), put_video(inputs, sliding_bar(offset=11))
    model_dir = tiny_dirs["wan-vace"]
    terminal, events = vace_job(runner, model_dir, tmp_path / "a", first)
    assert terminal.status == "succeeded", terminal.error
    assert [e.metrics["step"] for e in events if e.status == "processing"] == [1.0, 2.0]
    assert terminal.output is not None and terminal.output.num_frames == 9
    assert decoded_frames(tmp_path / "a" / "video.mp4") == 9
    again, _ = vace_job(runner, model_dir, tmp_path / "b", first)
    other, _ = vace_job(runner, model_dir, tmp_path / "c", second)
    assert again.output is not None and other.output is not None
    assert again.output.frames_digest == terminal.output.frames_digest
    assert other.output.frames_digest != terminal.output.frames_digest


@pytest.mark.slow  # two video-to-video runs
def test_video_to_video_edits_the_source(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "inputs"
    source = put_video(inputs, rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8))
    other_source = put_video(inputs, sliding_bar())
    terminal, events = edit_job(runner, tiny_dirs["wan"], tmp_path / "edit", source, steps=3)
    assert terminal.status == "succeeded", terminal.error
    # The signed steps are what runs: the schedule is lengthened so 3/4 of it is 3 steps.
    assert [e.metrics["step"] for e in events if e.status == "processing"] == [1.0, 2.0, 3.0]
    assert terminal.output is not None and terminal.output.num_frames == 9
    other, _ = edit_job(runner, tiny_dirs["wan"], tmp_path / "other", other_source, steps=3)
    assert other.output is not None
    assert other.output.frames_digest != terminal.output.frames_digest


@pytest.mark.parametrize("steps", range(1, 60))
def test_edit_schedule_runs_exactly_the_signed_steps(steps: int) -> None:
    # diffusers' WanVideoToVideoPipeline runs int(n * strength) of n steps.
    assert int(schedule_steps(steps) * EDIT_STRENGTH) == steps


def test_wan22_runs_both_experts(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    entry = get_entry("tiny-wan2.2")
    model = pipelines.load_model(entry, str(tiny_dirs["wan2.2"]), "cpu")
    pipe = model.main
    assert pipe.transformer_2 is not None and pipe.config.boundary_ratio == 0.875
    calls = {"transformer": 0, "transformer_2": 0}
    for name in calls:

        def count(*_args: Any, name: str = name) -> None:
            calls[name] += 1

        getattr(pipe, name).register_forward_hook(count)
    spec = parse_spec({**TINY_SPEC, "model": "tiny-wan2.2", "steps": 4, "guidance_milli": 0})
    frames = pipelines.generate(
        model, entry=entry, spec=spec, style=None, inputs_dir=None, on_step=lambda: None
    )
    assert frames.shape == (9, 32, 32, 3) and frames.dtype == np.uint8
    # High-noise steps on one expert, low-noise steps on the other: both denoise.
    assert calls["transformer"] >= 1 and calls["transformer_2"] >= 1
    assert sum(calls.values()) == 4


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (sliding_bar(count=5), "has 5 frames of 32x32; the spec asks for 9 frames of 32x32"),
        (sliding_bar(size=48), "has 9 frames of 48x48"),
    ],
)
def test_wrong_control_video_is_refused_before_any_step(
    runner: JobRunner,
    tiny_dirs: dict[str, Path],
    tmp_path: Path,
    frames: np.ndarray,
    message: str,
) -> None:
    cid = put_video(tmp_path / "inputs", frames)
    terminal, events = vace_job(runner, tiny_dirs["wan-vace"], tmp_path / "bad", cid)
    assert terminal.error is not None and terminal.error.kind == "invalid_input"
    assert message in terminal.error.message and "inputs.control" in terminal.error.message
    assert not any(e.status == "processing" for e in events)


def test_wrong_source_video_is_refused_naming_the_field(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    cid = put_video(tmp_path / "inputs", sliding_bar(count=13))
    terminal, events = edit_job(runner, tiny_dirs["wan"], tmp_path / "bad", cid)
    assert terminal.error is not None and terminal.error.kind == "invalid_input"
    assert "inputs.video" in terminal.error.message and "has 13 frames" in terminal.error.message
    assert not any(e.status == "processing" for e in events)
    (tmp_path / "inputs").mkdir(exist_ok=True)
    missing, _ = edit_job(runner, tiny_dirs["wan"], tmp_path / "missing", MISSING_CID)
    assert missing.error is not None and missing.error.kind == "invalid_input"
    assert "inputs.video" in missing.error.message
    assert "not in the job's inputs directory" in missing.error.message


@pytest.mark.parametrize(
    ("model", "task", "field"),
    [
        ("tiny-wan-vace", "text-to-video", "inputs.control"),
        ("wan2.1-vace-1.3b", "text-to-video", "inputs.control"),
        ("tiny-wan-v2v", "video-edit", "inputs.video"),
        ("wan2.1-v2v-1.3b", "video-edit", "inputs.video"),
    ],
)
def test_a_job_without_its_control_or_source_video_is_refused(
    model: str, task: str, field: str
) -> None:
    defaults = get_entry(model).defaults.model_dump()
    spec = parse_spec({**TINY_SPEC, **defaults, "model": model, "task": task})
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    assert info.value.context["field"] == field
    assert f"needs {field}" in info.value.message
