"""The result of a replay (docs/protocol.md §8 level 3): `framecast node replay JOB --json`.

The node re-runs the job's signed spec with the same catalog entry and weights manifest
(and, with the Docker runtime, its own runner image) and compares frames digests:

- ``exact``: the replay's frames digest equals the delivered one (the chain's).
- ``perceptual``: the digests differ, the environments differ in a way that may change
  floating-point results (another image, GPU class, driver or library version), and every
  frame is within `PERCEPTUAL_THRESHOLD` of the replay.
- ``mismatch``: the frames are below the threshold (or not comparable), or they differ at
  all although the replay ran in the same environment, where an exact match is required.

The client runs the node command in a subprocess and parses this model from its stdout,
so it lives in `shared` and imports nothing heavy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.receipt import Hex32, ReceiptEnvironment
from framecast.shared.similarity import PERCEPTUAL_THRESHOLD, PerceptualThreshold, SimilarityReport

REPLAY_REPORT_VERSION: Literal[1] = 1
ReplayVerdict = Literal["exact", "perceptual", "mismatch"]

#: Environment fields whose difference means bit-identical frames are not to be expected.
#: Not `runtime`: process, Docker and Ray run the same runner, and what could change the
#: numbers (the image, the libraries, the device) is in the other fields; a Ray delivery
#: replayed in a process on the same hardware must be held to an exact match.
EXACT_FIELDS = (
    "image_digest",
    "device",
    "gpu",
    "driver",
    "python",
    "torch",
    "diffusers",
    "transformers",
)


class ReplayCheck(BaseModel):
    """One comparison between the delivery and what the replay used or produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(max_length=64, description="What was compared.")
    ok: bool = Field(description="Equal.")
    delivered: str | None = Field(None, max_length=256, description="The delivery's value.")
    replay: str | None = Field(None, max_length=256, description="The replay's value.")
    detail: str = Field("", max_length=512, description="Where the values come from.")


class ReplayReport(BaseModel):
    """`framecast node replay JOB --json`, parsed by `framecast verify JOB --replay`."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    version: Literal[1] = Field(REPLAY_REPORT_VERSION, description="Report format version.")
    job_id: int = Field(gt=0, description="The replayed job.")
    verdict: ReplayVerdict = Field(description="exact, perceptual or mismatch.")
    reason: str = Field(max_length=2048, description="Why this verdict, in one sentence.")
    model: str = Field(max_length=64, description="Catalog id the replay ran.")
    seed: int = Field(ge=0, description="Seed of the signed spec.")
    chain_frames_digest: Hex32 | None = Field(
        None, description="framesDigest delivered on chain (None when not read from a chain)."
    )
    receipt_frames_digest: Hex32 = Field(description="framesDigest in the signed receipt.")
    replay_frames_digest: Hex32 = Field(description="framesDigest of the replay's frames.")
    exact_expected: bool = Field(
        description="The replay ran in the delivery's environment: only an exact match passes."
    )
    environment_differences: list[str] = Field(
        default_factory=list, description="Environment fields that differ (see EXACT_FIELDS)."
    )
    delivered_environment: ReceiptEnvironment = Field(description="From the signed receipt.")
    replay_environment: ReceiptEnvironment = Field(description="What ran the replay.")
    checks: list[ReplayCheck] = Field(
        default_factory=list, description="Receipt vs spec, catalog and replay."
    )
    similarity: SimilarityReport | None = Field(
        None, description="Per-frame PSNR/SSIM (only when the digests differ)."
    )
    threshold: PerceptualThreshold = Field(
        PERCEPTUAL_THRESHOLD, description="The bar of a perceptual match."
    )
    replay_seconds: float = Field(ge=0, description="Wall time of the replay run.")
    result_dir: str = Field(max_length=4096, description="The delivered result directory.")
    replay_dir: str = Field(max_length=4096, description="Where the replay's files are kept.")

    @property
    def passed(self) -> bool:
        """An exact or perceptual match."""
        return self.verdict != "mismatch"
