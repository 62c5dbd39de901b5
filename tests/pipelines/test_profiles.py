"""Memory profiles in the runner on the CPU: the numerics-neutral ones (VAE slicing) give the
same frames as the full profile, every run records its profile and numerics class, and a
profile that needs a GPU (quantized weights) is refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.runner.serve import JobRunner
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from tests.runtime.conformance import tiny_spec


def run(runner: JobRunner, model_dir: Path, out: Path, profile: str | None) -> RunnerEvent:
    request = RunRequest(
        job_id=out.name,
        spec=tiny_spec(seed=3),
        model_dir=str(model_dir),
        output_dir=str(out),
        memory_profile=profile,
    )
    return runner.execute(request, lambda _event: None)


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner(device="cpu")


def test_vae_slicing_keeps_the_frames_and_is_recorded(
    runner: JobRunner, tiny_cogvideox_dir: Path, tmp_path: Path
) -> None:
    full = run(runner, tiny_cogvideox_dir, tmp_path / "full", None)
    sliced = run(runner, tiny_cogvideox_dir, tmp_path / "sliced", "vae-slicing")
    assert full.output is not None and sliced.output is not None
    assert (full.output.environment.memory_profile, full.output.environment.numerics) == (
        "full",
        "reference",
    )
    assert sliced.output.environment.memory_profile == "vae-slicing"
    assert sliced.output.environment.numerics == "reference"
    assert sliced.output.frames_digest == full.output.frames_digest
    assert sliced.metrics["warm"] == 0.0  # another profile is another load


def test_vae_tiling_is_its_own_numerics_class(
    runner: JobRunner, tiny_cogvideox_dir: Path, tmp_path: Path
) -> None:
    tiled = run(runner, tiny_cogvideox_dir, tmp_path / "tiled", "vae-tiling")
    assert tiled.status == "succeeded" and tiled.output is not None
    assert tiled.output.environment.numerics == "vae-tiling"


def test_a_gpu_profile_on_the_cpu_fails_naming_the_profile(
    runner: JobRunner, tiny_cogvideox_dir: Path, tmp_path: Path
) -> None:
    failed = run(runner, tiny_cogvideox_dir, tmp_path / "int8", "int8")
    assert failed.status == "failed" and failed.error is not None
    assert "memory profile int8 of tiny-cogvideox" in failed.error.message
    assert "needs a CUDA device" in failed.error.message
    unknown = run(runner, tiny_cogvideox_dir, tmp_path / "nope", "nope")
    assert unknown.error is not None and "has no memory profile 'nope'" in unknown.error.message
