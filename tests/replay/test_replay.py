"""Replay (docs/protocol.md §8 level 3) on real parts: the tiny CogVideoX model run by a provider's
process runtime, replayed in a fresh runner process, compared by the runner's tool."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framecast.node.replay import replay_job
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.errors import PipelineError, WeightsInvalid
from framecast.shared.replay_report import ReplayReport
from tests.replay.conftest import Delivery, Provider, reencode, resign
from tests.runtime.conformance import tiny_spec

pytestmark = pytest.mark.slow

H100 = {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "driver": "12.8"}


def replay(
    delivery: Delivery, tmp_path: Path, weights_root: Path, chain_digest: str | None = None
) -> tuple[ReplayReport, int | None]:
    """Replay in a runner process of its own (not the provider's)."""
    runtime = ProcessRuntime(log_dir=tmp_path / "replay-runner")
    try:
        report = replay_job(
            job_id=delivery.job_id,
            spec_bytes=delivery.spec.canonical_json(),
            result_dir=delivery.result_dir,
            runtime=runtime,
            runtime_name="process",
            image_digest=None,
            weights_root=weights_root,
            work_dir=tmp_path / "replay",
            chain_frames_digest=chain_digest or delivery.receipt.body.frames_digest,
            timeout_s=120,
        )
        return report, runtime.pid
    finally:
        runtime.close()


def copy_delivery(delivery: Delivery, tmp_path: Path) -> Delivery:
    target = tmp_path / "delivered"
    shutil.copytree(delivery.result_dir, target)
    return Delivery(delivery.job_id, delivery.spec, target, delivery.receipt, delivery.output)


def test_honest_replay_matches_the_frames_digest_exactly(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    delivery = provider.deliver(tiny_spec(seed=7, prompt="a lighthouse at dusk"))
    report, replay_pid = replay(delivery, tmp_path, weights_root)
    assert replay_pid is not None and replay_pid != provider.runtime.pid
    assert report.verdict == "exact" and report.passed, report.reason
    assert report.exact_expected and report.environment_differences == []
    assert report.replay_frames_digest == "0x" + delivery.output.frames_digest
    assert report.similarity is None
    assert all(check.ok for check in report.checks), report.checks
    assert (tmp_path / "replay" / "out" / "video.mp4").read_bytes() == (
        delivery.result_dir / "video.mp4"
    ).read_bytes()


def test_a_ray_delivery_replayed_in_a_process_is_held_to_an_exact_match(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    """The runtime that started the runner is not an environment difference: a job a Ray
    actor ran, replayed by the process runtime with the same libraries and device, must
    match exactly (a drift there is a mismatch, not a perceptual pass)."""
    delivery = copy_delivery(provider.deliver(tiny_spec(seed=5)), tmp_path)
    env = delivery.receipt.body.environment.model_copy(update={"runtime": "ray"})
    resign(delivery, environment=env)
    report, _ = replay(delivery, tmp_path, weights_root)
    assert report.delivered_environment.runtime == "ray"
    assert report.replay_environment.runtime == "process"
    assert report.exact_expected and report.environment_differences == []
    assert report.verdict == "exact" and report.passed, report.reason


def test_a_delivery_of_another_seed_is_a_mismatch_with_low_ssim(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    # The provider ran seed 43 but signs a receipt for the job's seed 42.
    delivery = provider.deliver(tiny_spec(seed=42), ran=tiny_spec(seed=43))
    report, _ = replay(delivery, tmp_path, weights_root)
    assert report.verdict == "mismatch" and not report.passed
    assert report.similarity is not None and report.similarity.verdict == "below_threshold"
    assert report.similarity.min_ssim is not None and report.similarity.min_ssim < 0.5
    assert report.replay_frames_digest != report.chain_frames_digest


def test_other_hardware_with_slightly_different_frames_is_a_perceptual_match(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    # What a GPU of another class delivers: other frames digest, frames within a few levels.
    delivery = copy_delivery(provider.deliver(tiny_spec(seed=11)), tmp_path)
    reencode(delivery.result_dir / "video.mp4", crf=12)
    other = "0x" + "5a" * 32
    env = delivery.receipt.body.environment.model_copy(update=H100)
    resign(delivery, frames_digest=other, environment=env)
    report, _ = replay(delivery, tmp_path, weights_root, chain_digest=other)
    assert report.verdict == "perceptual" and report.passed, report.reason
    assert not report.exact_expected
    assert {"device", "gpu", "driver"} <= set(report.environment_differences)
    assert report.similarity is not None and report.similarity.verdict == "within_threshold"
    assert report.similarity.min_ssim is not None and report.similarity.min_ssim >= 0.95
    assert report.threshold.min_ssim == 0.95 and report.threshold.min_psnr_db == 30.0


def test_the_same_drift_in_the_same_environment_is_a_mismatch(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    # Same image/hardware/libraries: determinism means any drift is not an honest run.
    delivery = copy_delivery(provider.deliver(tiny_spec(seed=11)), tmp_path)
    reencode(delivery.result_dir / "video.mp4", crf=12)
    other = "0x" + "5a" * 32
    resign(delivery, frames_digest=other)
    report, _ = replay(delivery, tmp_path, weights_root, chain_digest=other)
    assert report.exact_expected
    assert report.verdict == "mismatch", report.reason
    assert report.similarity is not None and report.similarity.passes
    assert "exact match is required" in report.reason


def test_an_honest_digest_with_another_video_is_a_mismatch(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    honest = provider.deliver(tiny_spec(seed=5))
    other = provider.deliver(tiny_spec(seed=6))
    delivery = copy_delivery(honest, tmp_path)
    shutil.copy(other.result_dir / "video.mp4", delivery.result_dir / "video.mp4")
    resign(delivery)  # the receipt keeps the honest frames digest
    report, _ = replay(delivery, tmp_path, weights_root)
    assert report.replay_frames_digest == report.chain_frames_digest
    assert report.verdict == "mismatch", report.reason
    assert "not an encoding of those frames" in report.reason


def test_missing_weights_say_how_to_build_them(provider: Provider, tmp_path: Path) -> None:
    delivery = provider.deliver(tiny_spec(seed=3))
    with pytest.raises(WeightsInvalid) as raised:
        replay(delivery, tmp_path, tmp_path / "no-weights")
    assert raised.value.fix is not None and "tiny build --family cogvideox" in raised.value.fix


def test_a_delivery_in_a_tiled_profile_is_replayed_in_the_same_numerics(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    delivery = provider.deliver(tiny_spec(seed=5), profile="vae-tiling")
    env = delivery.receipt.body.environment
    assert (env.memory_profile, env.numerics) == ("vae-tiling", "vae-tiling")
    report, _ = replay(delivery, tmp_path, weights_root)
    assert report.replay_environment.numerics == "vae-tiling"
    assert report.verdict == "exact" and report.exact_expected, report.reason
    assert next(c for c in report.checks if c.name == "environment.numerics").ok


def test_a_delivery_whose_numerics_this_host_cannot_run_is_refused_not_judged(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    # int8 weights need a CUDA device: a CPU replay would compare other numerics.
    delivery = copy_delivery(provider.deliver(tiny_spec(seed=6)), tmp_path)
    env = delivery.receipt.body.environment.model_copy(
        update={"memory_profile": "int8", "numerics": "int8"}
    )
    resign(delivery, environment=env)
    with pytest.raises(PipelineError, match=r"cannot replay tiny-cogvideox like with like.*int8"):
        replay(delivery, tmp_path, weights_root)


def test_a_receipt_from_before_memory_profiles_replays_as_reference_numerics(
    provider: Provider, weights_root: Path, tmp_path: Path
) -> None:
    delivery = copy_delivery(provider.deliver(tiny_spec(seed=8)), tmp_path)
    env = delivery.receipt.body.environment.model_copy(
        update={"memory_profile": None, "numerics": None}
    )
    receipt = resign(delivery, environment=env)
    assert b"numerics" not in receipt.body.model_dump_json(exclude_none=True).encode()
    report, _ = replay(delivery, tmp_path, weights_root)
    assert report.verdict == "exact" and report.exact_expected, report.reason
