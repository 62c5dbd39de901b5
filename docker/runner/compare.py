"""Frame-by-frame similarity of two videos: `python -m framecast.runner.compare REF CAND`.

Replay (docs/protocol.md §8 level 3) uses it when the frames digests differ: both MP4s are decoded
to RGB and every frame pair gets a PSNR (over RGB) and an SSIM (over BT.601 luma). SSIM
is the Wang et al. (2004) index with an 11-tap Gaussian window (σ = 1.5), K1 = 0.01,
K2 = 0.03, L = 255, averaged over the window positions that fit inside the frame — the
usual reference definition, written here with numpy only. The verdict and its threshold
live in `framecast.shared.similarity`, where the node and the client can read them.

Frames of different count or size are not an error: the report says "incomparable".
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from framecast.runner.video import read_video
from framecast.shared.similarity import (
    PERCEPTUAL_THRESHOLD,
    FrameSimilarity,
    PerceptualThreshold,
    SimilarityReport,
    VideoGeometry,
    judge,
)

WINDOW = 11
SIGMA = 1.5
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0
C1 = (K1 * DATA_RANGE) ** 2
C2 = (K2 * DATA_RANGE) ** 2
#: ITU-R BT.601 luma weights (what SSIM on "Y" conventionally means for RGB video).
BT601 = np.array([0.299, 0.587, 0.114])


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian taps; SSIM's 2-D window is their outer product."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return np.asarray(taps / taps.sum(), dtype=np.float64)


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter, keeping only positions where the window fits ("valid")."""
    rows = sliding_window_view(image, taps.size, axis=1) @ taps
    return np.asarray(sliding_window_view(rows, taps.size, axis=0) @ taps, dtype=np.float64)


def luma(frame: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB → H×W float64 luma in [0, 255]."""
    return np.asarray(np.asarray(frame, dtype=np.float64) @ BT601, dtype=np.float64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equally sized grayscale images with values in [0, 255].

    Frames smaller than the 11-pixel window use the largest odd window that fits.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two equal 2-D images, got {a.shape} and {b.shape}")
    size = min(WINDOW, *a.shape)
    size -= 1 - size % 2  # odd, so the window has a centre
    taps = gaussian_window(size, SIGMA)
    x, y = a.astype(np.float64), b.astype(np.float64)
    mu_x, mu_y = _filter_valid(x, taps), _filter_valid(y, taps)
    # Population (biased) moments under the window, as in the reference definition.
    var_x = _filter_valid(x * x, taps) - mu_x * mu_x
    var_y = _filter_valid(y * y, taps) - mu_y * mu_y
    cov = _filter_valid(x * y, taps) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    denominator = (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    return float(np.mean(numerator / denominator))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two equally shaped uint8 arrays; +inf when they are identical."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def _geometry(frames: np.ndarray) -> VideoGeometry:
    return VideoGeometry(
        num_frames=int(frames.shape[0]), width=int(frames.shape[2]), height=int(frames.shape[1])
    )


def compare_frames(
    reference: np.ndarray,
    candidate: np.ndarray,
    threshold: PerceptualThreshold = PERCEPTUAL_THRESHOLD,
) -> SimilarityReport:
    """Compare two F×H×W×3 uint8 frame stacks frame by frame."""
    ref, cand = _geometry(reference), _geometry(candidate)
    frames: list[FrameSimilarity] = []
    if reference.shape == candidate.shape:
        frames = [
            FrameSimilarity(index=i, psnr_db=psnr(r, c), ssim=ssim(luma(r), luma(c)))
            for i, (r, c) in enumerate(zip(reference, candidate, strict=True))
        ]
    return judge(ref, cand, frames, threshold)


def compare_videos(
    reference: Path, candidate: Path, threshold: PerceptualThreshold = PERCEPTUAL_THRESHOLD
) -> SimilarityReport:
    """Decode both videos (rgb24) and compare them; raises ValueError if one is undecodable."""
    return compare_frames(read_video(reference), read_video(candidate), threshold)


def main(argv: list[str] | None = None) -> int:
    """CLI: exit 0 when the videos pass the threshold, 1 when not, 2 on unreadable input."""
    parser = argparse.ArgumentParser(
        prog="python -m framecast.runner.compare",
        description="Per-frame PSNR and SSIM of two videos, judged against the replay threshold.",
    )
    parser.add_argument("reference", type=Path, help="the delivered video")
    parser.add_argument("candidate", type=Path, help="the replayed video")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--min-ssim", type=float, default=PERCEPTUAL_THRESHOLD.min_ssim)
    parser.add_argument("--min-psnr", type=float, default=PERCEPTUAL_THRESHOLD.min_psnr_db)
    args = parser.parse_args(argv)
    threshold = PerceptualThreshold(min_ssim=args.min_ssim, min_psnr_db=args.min_psnr)
    for path in (args.reference, args.candidate):
        if not path.is_file():
            print(f"error: {path} does not exist or is not a file", file=sys.stderr)
            return 2
    try:
        report = compare_videos(args.reference, args.candidate, threshold)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(f"{report.verdict}: {report.summary()}")
        for frame in report.frames:
            print(f"  frame {frame.index:4d}  psnr {frame.psnr_db:7.2f} dB  ssim {frame.ssim:.4f}")
    return 0 if report.passes else 1


if __name__ == "__main__":
    raise SystemExit(main())
