"""Text2Video-Zero pose/edge control and instruction editing: input videos read from the
job's inputs directory, checked against the spec before any step, then run frame-batched
with cross-frame attention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framecast.runner.serve import JobRunner
from framecast.runner.video import write_video
from framecast.shared.ipfs.cid import CID
from tests.pipelines.test_runner import decoded_frames, run_job

CONTROL = {"num_frames": 4, "fps": 4, "guidance_milli": 7500}


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


def put_video(inputs: Path, frames: np.ndarray) -> str:
    """Encode `frames` with the project's writer and store it under its CID, as the node does."""
    inputs.mkdir(exist_ok=True)
    scratch = inputs / "scratch.mp4"
    write_video(frames, scratch, fps=4)
    cid = str(CID.from_block(scratch.read_bytes()))
    scratch.rename(inputs / cid)
    return cid


def moving_square(count: int = 4, size: int = 32, offset: int = 0) -> np.ndarray:
    """A white square sliding over black: an edge-map-like control video."""
    frames = np.zeros((count, size, size, 3), np.uint8)
    for index in range(count):
        x = offset + 2 * index
        frames[index, 8:20, x : x + 12] = 255
    return frames


def control_job(
    runner: JobRunner, model_dir: Path, tmp_path: Path, name: str, cid: str, **changes: Any
) -> Any:
    return run_job(
        runner,
        model_dir,
        tmp_path / name,
        tmp_path / "inputs",
        **{"model": "tiny-t2v-zero-pose", "inputs": {"control": cid}, **CONTROL, **changes},
    )


@pytest.mark.slow  # a ControlNet build and three runs per model
@pytest.mark.parametrize("model", ["tiny-t2v-zero-pose", "tiny-t2v-zero-edge"])
def test_control_video_conditions_the_frames(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path, model: str
) -> None:
    model_dir = tiny_dirs["t2v-zero-controlnet"]
    inputs = tmp_path / "inputs"
    first, second = put_video(inputs, moving_square()), put_video(inputs, moving_square(offset=9))
    terminal, events = control_job(runner, model_dir, tmp_path, "a", first, model=model)
    assert terminal.status == "succeeded", terminal.error
    assert [e.metrics["step"] for e in events if e.status == "processing"] == [1.0, 2.0]
    assert terminal.output is not None and terminal.output.num_frames == 4
    assert decoded_frames(tmp_path / "a" / "video.mp4") == 4
    again, _ = control_job(runner, model_dir, tmp_path, "b", first, model=model)
    other, _ = control_job(runner, model_dir, tmp_path, "c", second, model=model)
    assert again.output is not None and other.output is not None
    assert again.output.frames_digest == terminal.output.frames_digest
    assert other.output.frames_digest != terminal.output.frames_digest


def test_instruction_edit_of_a_source_video(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    source = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    cid = put_video(tmp_path / "inputs", source)
    terminal, events = run_job(
        runner,
        tiny_dirs["t2v-zero-pix2pix"],
        tmp_path / "edit",
        tmp_path / "inputs",
        model="tiny-t2v-zero-edit",
        task="video-edit",
        prompt="make the sky red",
        inputs={"video": cid},
        **CONTROL,
    )
    assert terminal.status == "succeeded", terminal.error
    assert sum(e.status == "processing" for e in events) == 2
    assert terminal.output is not None and terminal.output.num_frames == 4


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (moving_square(count=6), "has 6 frames of 32x32; the spec asks for 4 frames of 32x32"),
        (moving_square(size=48), "has 4 frames of 48x48"),
        (None, "not a readable video"),
    ],
)
def test_bad_control_video_is_refused_before_any_step(
    runner: JobRunner,
    tiny_dirs: dict[str, Path],
    tmp_path: Path,
    frames: np.ndarray | None,
    message: str,
) -> None:
    if frames is None:
        cid = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        (tmp_path / "inputs").mkdir()
        (tmp_path / "inputs" / cid).write_bytes(b"not a video at all")
    else:
        cid = put_video(tmp_path / "inputs", frames)
    terminal, events = control_job(runner, tiny_dirs["t2v-zero-controlnet"], tmp_path, "bad", cid)
    assert terminal.error is not None and terminal.error.kind == "invalid_input"
    assert message in terminal.error.message and "inputs.control" in terminal.error.message
    assert not any(e.status == "processing" for e in events)


def test_missing_source_video_is_refused(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    cid = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    terminal, _ = run_job(
        runner,
        tiny_dirs["t2v-zero-pix2pix"],
        tmp_path / "missing",
        tmp_path,
        model="tiny-t2v-zero-edit",
        task="video-edit",
        inputs={"video": cid},
        **CONTROL,
    )
    assert terminal.error is not None and terminal.error.kind == "invalid_input"
    assert "not in the job's inputs directory" in terminal.error.message
