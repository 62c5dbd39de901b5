"""The runner on tiny real pipelines: every family end to end, determinism across
processes, failures that leave the runner usable."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
import torch
from PIL import Image

from framecast.runner import pipelines
from framecast.runner.serve import JobRunner
from framecast.runner.tiny import build_tiny
from framecast.shared.catalog import get_entry
from framecast.shared.catalog.weights import compute_manifest
from framecast.shared.runner_protocol import RunnerEvent, RunRequest, decode_event
from framecast.shared.spec import GenerationSpec, parse_spec
from tests.pipelines.test_catalog import IMAGE_CID
from tests.runtime.conformance import TINY_SPEC, tiny_spec


def run_job(
    runner: JobRunner, model_dir: Path, out: Path, inputs_dir: Path | None = None, **changes: Any
) -> tuple[RunnerEvent, list[RunnerEvent]]:
    events: list[RunnerEvent] = []
    request = RunRequest(
        job_id=out.name,
        spec=parse_spec({**TINY_SPEC, **changes}),
        model_dir=str(model_dir),
        output_dir=str(out),
        inputs_dir=str(inputs_dir) if inputs_dir else None,
    )
    return runner.execute(request, events.append), events


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


def decoded_frames(video: Path) -> int:
    reader = imageio_ffmpeg.read_frames(str(video))
    next(reader)
    return sum(1 for _ in reader)


def test_image_to_video_conditions_on_the_input_image(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (48, 48), (220, 30, 30)).save(inputs / IMAGE_CID, format="PNG")
    terminal, _events = run_job(
        runner,
        tiny_dirs["cogvideox-i2v"],
        tmp_path / "i2v",
        inputs,
        model="tiny-cogvideox-i2v",
        task="image-to-video",
        inputs={"image": IMAGE_CID},
    )
    assert terminal.status == "succeeded", terminal.error
    assert terminal.output is not None and terminal.output.num_frames == 9
    missing, _ = run_job(
        runner,
        tiny_dirs["cogvideox-i2v"],
        tmp_path / "i2v-missing",
        None,
        model="tiny-cogvideox-i2v",
        task="image-to-video",
        inputs={"image": IMAGE_CID},
    )
    assert missing.error is not None and missing.error.kind == "invalid_input"
    assert IMAGE_CID in missing.error.message


def test_text2video_zero(runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    terminal, _events = run_job(
        runner,
        tiny_dirs["t2v-zero"],
        tmp_path / "t2vz",
        model="tiny-t2v-zero",
        num_frames=4,
        fps=4,
        guidance_milli=7500,
    )
    assert terminal.status == "succeeded", terminal.error
    assert terminal.output is not None and terminal.output.num_frames == 4
    assert decoded_frames(tmp_path / "t2vz" / "video.mp4") == 4


@pytest.mark.parametrize(("family", "model"), [("ltx", "tiny-ltx-video"), ("wan", "tiny-wan")])
def test_flow_match_family_runs_from_pretrained(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path, family: str, model: str
) -> None:
    terminal, events = run_job(runner, tiny_dirs[family], tmp_path / family, model=model)
    assert terminal.status == "succeeded", terminal.error
    steps = [e.metrics["step"] for e in events if e.status == "processing"]
    assert steps == [1.0, 2.0]
    assert terminal.output is not None
    assert (terminal.output.num_frames, terminal.output.width) == (9, 32)
    assert decoded_frames(tmp_path / family / "video.mp4") == 9


def test_ltx_frame_rate_conditions_the_frames(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    # LTX feeds the frame rate into its positional embedding: fps is part of the content.
    digests = set()
    for fps in (8, 24):
        terminal, _ = run_job(
            runner, tiny_dirs["ltx"], tmp_path / f"fps{fps}", model="tiny-ltx-video", fps=fps
        )
        assert terminal.output is not None, terminal.error
        digests.add(terminal.output.frames_digest)
    assert len(digests) == 2


@pytest.mark.slow  # several segments, each a pipeline run
def test_long_video_chains_segments_on_the_last_frame(
    runner: JobRunner, tiny_dirs: dict[str, Path], tmp_path: Path
) -> None:
    # 25 frames = a 9-frame text-to-video segment + two 8-frame image-to-video continuations.
    terminal, events = run_job(
        runner,
        tiny_dirs["cogvideox-long"],
        tmp_path / "long",
        model="tiny-cogvideox-long",
        task="long-video",
        num_frames=25,
    )
    assert terminal.status == "succeeded", terminal.error
    assert terminal.output is not None and terminal.output.num_frames == 25
    assert sum(e.status == "processing" for e in events) == 3 * TINY_SPEC["steps"]
    assert decoded_frames(tmp_path / "long" / "video.mp4") == 25


def test_style_is_applied_and_recorded(
    runner: JobRunner, tiny_cogvideox_dir: Path, tmp_path: Path
) -> None:
    plain, _ = run_job(runner, tiny_cogvideox_dir, tmp_path / "plain")
    styled, _ = run_job(
        runner, tiny_cogvideox_dir, tmp_path / "styled", style="anime", prompt="a cat"
    )
    assert styled.output is not None and plain.output is not None
    assert styled.output.style == "anime"
    assert styled.output.frames_digest != plain.output.frames_digest


def test_out_of_memory_fails_cleanly_and_the_next_job_runs(
    runner: JobRunner,
    tiny_cogvideox_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = pipelines._CALLS["CogVideoXPipeline"]

    def exhausted(*_args: Any, **_kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setitem(pipelines._CALLS, "CogVideoXPipeline", exhausted)
    terminal, _ = run_job(runner, tiny_cogvideox_dir, tmp_path / "oom")
    assert terminal.status == "failed" and terminal.error is not None
    assert terminal.error.kind == "oom" and "lower frames" in (terminal.error.fix or "")
    monkeypatch.setitem(pipelines._CALLS, "CogVideoXPipeline", real)
    terminal, _ = run_job(runner, tiny_cogvideox_dir, tmp_path / "after-oom")
    assert terminal.status == "succeeded" and terminal.metrics["warm"] == 1.0


def test_gpu_model_on_cpu_is_refused_before_loading(runner: JobRunner, tmp_path: Path) -> None:
    entry = get_entry("cogvideox-2b")
    events: list[RunnerEvent] = []
    request = RunRequest(
        job_id="gpu",
        model_dir=str(tmp_path / "none"),
        output_dir=str(tmp_path / "gpu"),
        spec=parse_spec({"model": entry.id, "prompt": "a cat", **entry.defaults.model_dump()}),
    )
    terminal = runner.execute(request, events.append)
    assert terminal.error is not None and "needs a GPU" in terminal.error.message


@pytest.mark.parametrize(
    ("entry_id", "family"),
    [
        ("tiny-cogvideox", "cogvideox"),
        ("tiny-t2v-zero", "t2v-zero"),
        ("tiny-t2v-zero-pose", "t2v-zero-controlnet"),
        ("tiny-t2v-zero-edit", "t2v-zero-pix2pix"),
        ("tiny-ltx-video", "ltx"),
        ("tiny-wan", "wan"),
    ],
)
def test_tiny_builds_are_deterministic_and_match_the_pinned_manifests(
    tmp_path: Path, entry_id: str, family: str
) -> None:
    built = compute_manifest(build_tiny(family, tmp_path / family))
    assert built == get_entry(entry_id).full_manifest(), (
        f"{entry_id} no longer builds to its pinned manifest; if that is intended run "
        "`.venv/bin/python -m framecast.runner tiny pin` and commit the manifests"
    )


def run_in_two_processes(model_dir: Path, spec: GenerationSpec, tmp_path: Path) -> None:
    """Same spec + weights + runner, two separate interpreters → byte-identical outputs."""
    results = []
    procs = []
    for name in ("first", "second"):
        request = RunRequest(
            job_id=name, spec=spec, model_dir=str(model_dir), output_dir=str(tmp_path / name)
        )
        path = tmp_path / f"{name}.json"
        path.write_text(request.model_dump_json())
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "framecast.runner", "run", "--request", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        )
    for proc in procs:
        stdout, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0
        results.append(decode_event(stdout.strip().splitlines()[-1]))
    first, second = (r.output for r in results)
    assert first is not None and second is not None
    assert first.frames_digest == second.frames_digest
    assert first.video_sha256 == second.video_sha256
    videos = [(tmp_path / n / "video.mp4").read_bytes() for n in ("first", "second")]
    assert videos[0] == videos[1]
    assert hashlib.sha256(videos[0]).hexdigest() == first.video_sha256
    assert json.loads(first.environment.model_dump_json())["deterministic_algorithms"]


@pytest.mark.slow  # two fresh runner processes, each loading the model
def test_two_processes_give_identical_frames_and_video(
    tiny_cogvideox_dir: Path, tmp_path: Path
) -> None:
    run_in_two_processes(tiny_cogvideox_dir, tiny_spec(), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "model"), [("ltx", "tiny-ltx-video"), ("wan", "tiny-wan")])
def test_flow_match_family_is_identical_across_processes(
    tiny_dirs: dict[str, Path], tmp_path: Path, family: str, model: str
) -> None:
    run_in_two_processes(tiny_dirs[family], tiny_spec(model=model), tmp_path)
