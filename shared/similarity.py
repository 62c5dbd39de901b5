"""Per-frame similarity of two videos: the report format and the perceptual threshold.

Replay (docs/protocol.md §8 level 3) compares a delivered `video.mp4` with a re-run of the same
job. On the same image and GPU class the frames digests must be equal; across hardware
classes floating-point kernels differ and the frames drift a little, so the videos are
decoded and compared frame by frame. The comparison itself runs in the runner package
(`python -m framecast.runner.compare`: it needs numpy and ffmpeg); this module is the
report both sides parse, and the threshold the verdict is judged against.

Threshold (`PERCEPTUAL_THRESHOLD`): every frame must reach SSIM ≥ 0.95 (luma, Gaussian
11×11 window, σ = 1.5) and PSNR ≥ 30 dB (RGB). Why these numbers:

- 30 dB is the usual floor of "visually the same" for 8-bit video (RMS differences of
  about 8 levels); 0.95 SSIM is where structural differences (moved edges, other
  objects) start to show.
- Measured on the tiny CogVideoX model, whose random-weight frames are noise-like (the
  hardest case for a codec): the same frames re-encoded at CRF 12 instead of 18 give a
  least PSNR of 34.0 dB and SSIM of 0.998 (within); at CRF 23, 26.8 dB (below: a lossier
  copy is not accepted as the same video); another seed gives SSIM 0.03 and 10 dB.
- The *minimum* over frames is judged, not the mean: a provider that replaces a few
  frames of an otherwise honest video must not pass on the average.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIMILARITY_VERSION: Literal[1] = 1


class PerceptualThreshold(BaseModel):
    """The bar every frame must clear for two videos to count as the same generation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_ssim: float = Field(
        ge=0.0, le=1.0, description="Least SSIM (luma BT.601, 11-tap Gaussian σ=1.5) per frame."
    )
    min_psnr_db: float = Field(ge=0.0, le=100.0, description="Least PSNR (RGB, dB) per frame.")

    def describe(self) -> str:
        return f"every frame SSIM ≥ {self.min_ssim:g} and PSNR ≥ {self.min_psnr_db:g} dB"


#: The stated threshold of replay verdicts (see the module docstring for why).
PERCEPTUAL_THRESHOLD = PerceptualThreshold(min_ssim=0.95, min_psnr_db=30.0)


class VideoGeometry(BaseModel):
    """What a decoded video holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_frames: int = Field(ge=0, le=100_000, description="Decoded frames.")
    width: int = Field(ge=0, le=16_384, description="Frame width in pixels.")
    height: int = Field(ge=0, le=16_384, description="Frame height in pixels.")


class FrameSimilarity(BaseModel):
    """One frame pair."""

    # PSNR of identical frames is +inf; JSON has no infinity, so it travels as "Infinity".
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    index: int = Field(ge=0, description="Frame index (0-based).")
    psnr_db: float = Field(ge=0.0, description="PSNR over RGB in dB; inf for identical frames.")
    ssim: float = Field(ge=-1.0, le=1.0, description="SSIM of the luma planes.")


SimilarityVerdict = Literal["identical", "within_threshold", "below_threshold", "incomparable"]


class SimilarityReport(BaseModel):
    """`python -m framecast.runner.compare REF CAND --json`."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    version: Literal[1] = Field(SIMILARITY_VERSION, description="Report format version.")
    reference: VideoGeometry = Field(description="The first video (the delivered one).")
    candidate: VideoGeometry = Field(description="The second video (the replay).")
    comparable: bool = Field(description="Same frame count and size: compared frame by frame.")
    problem: str | None = Field(None, max_length=1024, description="Why not comparable.")
    frames: list[FrameSimilarity] = Field(
        default_factory=list, description="Per-frame metrics (empty when not comparable)."
    )
    min_ssim: float | None = Field(None, description="Least per-frame SSIM.")
    mean_ssim: float | None = Field(None, description="Mean per-frame SSIM.")
    min_psnr_db: float | None = Field(None, description="Least per-frame PSNR (dB).")
    mean_psnr_db: float | None = Field(
        None, description="Mean per-frame PSNR (dB; inf if every frame is identical)."
    )
    threshold: PerceptualThreshold = Field(description="The bar the verdict is judged against.")
    verdict: SimilarityVerdict = Field(description="identical, within / below threshold.")

    @property
    def passes(self) -> bool:
        """The two videos count as the same generation (identical or within threshold)."""
        return self.verdict in ("identical", "within_threshold")

    def summary(self) -> str:
        if not self.comparable:
            return f"not comparable: {self.problem}"
        assert self.min_ssim is not None and self.min_psnr_db is not None
        psnr = "inf" if math.isinf(self.min_psnr_db) else f"{self.min_psnr_db:.2f}"
        return (
            f"{len(self.frames)} frames, min SSIM {self.min_ssim:.4f}, min PSNR {psnr} dB "
            f"(threshold: {self.threshold.describe()})"
        )


def judge(
    reference: VideoGeometry,
    candidate: VideoGeometry,
    frames: list[FrameSimilarity],
    threshold: PerceptualThreshold = PERCEPTUAL_THRESHOLD,
) -> SimilarityReport:
    """Summarize per-frame metrics into a report with its verdict."""
    problem = None
    if (reference.width, reference.height) != (candidate.width, candidate.height):
        problem = (
            f"frame size differs: {reference.width}x{reference.height} vs "
            f"{candidate.width}x{candidate.height}"
        )
    elif reference.num_frames != candidate.num_frames:
        problem = f"frame count differs: {reference.num_frames} vs {candidate.num_frames}"
    elif reference.num_frames == 0:
        problem = "no frames to compare"
    if problem is not None:
        return SimilarityReport(
            reference=reference,
            candidate=candidate,
            comparable=False,
            problem=problem,
            threshold=threshold,
            verdict="incomparable",
        )
    ssims = [f.ssim for f in frames]
    psnrs = [f.psnr_db for f in frames]
    min_ssim, min_psnr = min(ssims), min(psnrs)
    if math.isinf(min_psnr):
        verdict: SimilarityVerdict = "identical"
    elif min_ssim >= threshold.min_ssim and min_psnr >= threshold.min_psnr_db:
        verdict = "within_threshold"
    else:
        verdict = "below_threshold"
    return SimilarityReport(
        reference=reference,
        candidate=candidate,
        comparable=True,
        frames=frames,
        min_ssim=min_ssim,
        mean_ssim=sum(ssims) / len(ssims),
        min_psnr_db=min_psnr,
        mean_psnr_db=sum(psnrs) / len(psnrs),
        threshold=threshold,
        verdict=verdict,
    )
