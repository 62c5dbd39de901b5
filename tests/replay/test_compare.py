"""The frame comparison tool: SSIM and PSNR properties, the verdicts, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framecast.runner.compare import compare_frames, gaussian_window, luma, psnr, ssim
from framecast.runner.video import write_video
from framecast.shared.similarity import SimilarityReport


def scene(frames: int = 6, size: tuple[int, int] = (48, 64), shift: int = 0) -> np.ndarray:
    """Smooth moving gradients with an edge: structure SSIM can see."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    stack = []
    for index in range(frames):
        r = 128 + 100 * np.sin((x + 3 * index + shift) / 9)
        g = 128 + 100 * np.cos((y - 2 * index) / 7)
        b = np.where(x + index > width / 2, 220.0, 30.0)
        stack.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.stack(stack), 0, 255).round().astype(np.uint8)


def noisy(frames: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frames.shape)
    return np.clip(frames + noise, 0, 255).round().astype(np.uint8)


def test_the_window_is_a_normalized_symmetric_gaussian() -> None:
    taps = gaussian_window()
    assert taps.shape == (11,) and math.isclose(taps.sum(), 1.0)
    assert np.allclose(taps, taps[::-1]) and taps.argmax() == 5
    assert math.isclose(taps[5] / taps[6], math.exp(1 / (2 * 1.5**2)))


def test_ssim_of_identical_images_is_one_and_it_is_symmetric() -> None:
    a = luma(scene()[0])
    b = luma(noisy(scene(), 12)[0])
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert ssim(a, b) < 1.0


def test_ssim_and_psnr_fall_as_noise_grows() -> None:
    clean = scene()[0]
    ssims, psnrs = [], []
    for sigma in (2, 8, 20, 50):
        frame = noisy(clean[None], sigma)[0]
        ssims.append(ssim(luma(clean), luma(frame)))
        psnrs.append(psnr(clean, frame))
    assert ssims == sorted(ssims, reverse=True) and len(set(ssims)) == 4
    assert psnrs == sorted(psnrs, reverse=True)
    assert ssims[0] > 0.95 > ssims[-1]


def test_psnr_is_infinite_for_identical_frames_and_exact_for_a_known_error() -> None:
    frame = scene()[0]
    assert psnr(frame, frame) == math.inf
    shifted = frame.astype(np.int16) + 1
    shifted[frame == 255] -= 2  # keep every pixel exactly one level away
    assert psnr(frame, shifted.astype(np.uint8)) == pytest.approx(10 * math.log10(255**2))


def test_ssim_agrees_with_scikit_image_when_it_is_installed() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    a, b = luma(scene()[2]), luma(noisy(scene(), 15)[2])
    expected = metrics.structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)


def test_ssim_equals_the_definition_computed_window_by_window() -> None:
    # An independent oracle: the 2-D weighted statistics of every window, by brute force.
    a, b = luma(scene(1, (16, 18))[0]), luma(noisy(scene(1, (16, 18)), 20)[0])
    taps = gaussian_window()
    weights = np.outer(taps, taps)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for top in range(a.shape[0] - 10):
        for left in range(a.shape[1] - 10):
            x, y = a[top : top + 11, left : left + 11], b[top : top + 11, left : left + 11]
            mx, my = (weights * x).sum(), (weights * y).sum()
            vx, vy = (weights * (x - mx) ** 2).sum(), (weights * (y - my) ** 2).sum()
            cov = (weights * (x - mx) * (y - my)).sum()
            values.append(
                (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    assert ssim(a, b) == pytest.approx(float(np.mean(values)), abs=1e-9)


def test_ssim_handles_frames_smaller_than_the_window() -> None:
    small = scene(1, (8, 9))[0]
    assert ssim(luma(small), luma(small)) == pytest.approx(1.0)


def test_verdicts_identical_within_below() -> None:
    frames = scene()
    assert compare_frames(frames, frames).verdict == "identical"
    slight = compare_frames(frames, noisy(frames, 1.5))
    assert slight.verdict == "within_threshold" and slight.passes
    other = compare_frames(frames, scene(shift=40))
    assert other.verdict == "below_threshold" and not other.passes
    assert other.min_ssim is not None and other.mean_ssim is not None
    assert other.min_ssim <= other.mean_ssim
    assert len(other.frames) == 6


def test_one_replaced_frame_fails_on_the_minimum_not_the_mean() -> None:
    frames = scene(30)
    tampered = frames.copy()
    tampered[7] = scene(1, shift=40)[0]
    report = compare_frames(frames, tampered)
    assert report.verdict == "below_threshold"
    # On the mean this video would pass the threshold.
    assert report.mean_ssim is not None and report.mean_ssim > report.threshold.min_ssim
    assert [f.index for f in report.frames if f.ssim < 0.95] == [7]


def test_mismatched_frame_count_or_size_is_a_verdict_not_a_crash() -> None:
    count = compare_frames(scene(6), scene(5))
    assert count.verdict == "incomparable" and not count.comparable and count.frames == []
    assert count.problem == "frame count differs: 6 vs 5"
    size = compare_frames(scene(6, (48, 64)), scene(6, (32, 64)))
    assert size.verdict == "incomparable" and size.problem is not None
    assert "64x48 vs 64x32" in size.problem


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framecast.runner.compare", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_reports_json_for_real_videos(tmp_path: Path) -> None:
    frames = scene(8)
    write_video(frames, tmp_path / "a.mp4", fps=8)
    write_video(frames, tmp_path / "same.mp4", fps=8)
    write_video(scene(8, shift=40), tmp_path / "other.mp4", fps=8)
    write_video(frames[:5], tmp_path / "short.mp4", fps=8)

    same = run_cli(str(tmp_path / "a.mp4"), str(tmp_path / "same.mp4"), "--json")
    assert same.returncode == 0, same.stderr
    report = SimilarityReport.model_validate_json(same.stdout)
    assert report.verdict == "identical" and report.min_psnr_db == math.inf
    assert json.loads(same.stdout)["min_psnr_db"] == "Infinity"
    assert report.reference.num_frames == 8 and report.reference.width == 64

    other = run_cli(str(tmp_path / "a.mp4"), str(tmp_path / "other.mp4"), "--json")
    assert other.returncode == 1
    assert SimilarityReport.model_validate_json(other.stdout).verdict == "below_threshold"

    short = run_cli(str(tmp_path / "a.mp4"), str(tmp_path / "short.mp4"), "--json")
    assert short.returncode == 1
    parsed = SimilarityReport.model_validate_json(short.stdout)
    assert parsed.verdict == "incomparable" and parsed.candidate.num_frames == 5

    text = run_cli(str(tmp_path / "a.mp4"), str(tmp_path / "other.mp4"))
    assert text.stdout.startswith("below_threshold: 8 frames, min SSIM")


def test_cli_refuses_missing_and_undecodable_input(tmp_path: Path) -> None:
    missing = run_cli(str(tmp_path / "nope.mp4"), str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    junk = run_cli(str(tmp_path / "junk.mp4"), str(tmp_path / "junk.mp4"))
    assert junk.returncode == 2 and "junk.mp4" in junk.stderr
