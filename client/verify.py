"""Retrieval and verification of job results, levels 1–2 of DESIGN §8, for the client.

The checks themselves live in `framecast.shared.verification` (the arbiter runs the same
ones): this layer turns a `JobDetails` into the `Delivery` they check against, and keeps
the client's handling of downloads. They land in a staging folder; only a result that
passes moves to the output path. One that fails moves to ``<home>/quarantine/<job>``: its
bytes are evidence, never output.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from framecast.client.jobs import DELIVERED_STATES, JobDetails
from framecast.shared.errors import StorageError, VerificationFailed
from framecast.shared.verification import (
    FRAMES_DIGEST_NOTE,
    LEVEL_NAMES,
    RESULT_FILES,
    Check,
    Delivery,
    VerifyReport,
)
from framecast.shared.verification import retrieve as retrieve_delivery
from framecast.shared.verification import verify_dir as verify_delivery

__all__ = [
    "FRAMES_DIGEST_NOTE",
    "LEVEL_NAMES",
    "RESULT_FILES",
    "Check",
    "Delivery",
    "VerifyReport",
    "delivery_of",
    "fetch_verified",
    "quarantine_path",
    "verify_dir",
]


def delivery_of(job: JobDetails, *, chain_id: int, market: str) -> Delivery:
    """What ``job``'s delivered result is checked against; refuses an undelivered job."""
    if (
        job.chain_state not in DELIVERED_STATES
        or job.result_cid is None
        or job.provider is None
        or job.video_sha256 is None
        or job.frames_digest is None
    ):
        raise VerificationFailed(
            f"job {job.job_id} is {job.state}: there is no delivered result to verify",
            fix=f"wait for delivery (`framecast status {job.job_id} --wait`)",
        )
    return Delivery(
        chain_id=chain_id,
        market=market,
        job_id=job.job_id,
        provider=job.provider,
        result_cid=job.result_cid,
        video_sha256=job.video_sha256,
        frames_digest=job.frames_digest,
        request_digest=job.request_digest,
        spec_hex=job.spec_hex,
        spec_hash=job.spec_hash,
        model_id=job.model_id,
    )


def verify_dir(path: Path, job: JobDetails, *, chain_id: int, market: str) -> VerifyReport:
    """Run every level 1–2 check of ``path`` against ``job``; never raises on a mismatch."""
    return verify_delivery(path, delivery_of(job, chain_id=chain_id, market=market))


def quarantine_path(root: Path, job_id: int) -> Path:
    """A fresh ``<root>/<job>`` (``<job>-2``, ... if an earlier one is kept)."""
    root.mkdir(parents=True, exist_ok=True)
    candidate, n = root / str(job_id), 1
    while candidate.exists():
        n += 1
        candidate = root / f"{job_id}-{n}"
    return candidate


def fetch_verified(
    job: JobDetails,
    output: Path | None,
    *,
    chain_id: int,
    market: str,
    gateway_url: str | None,
    blocks: Path,
    quarantine: Path,
) -> VerifyReport:
    """Retrieve and verify; move to ``output`` only if it passes, else to quarantine.

    ``output=None`` verifies and discards a passing download (`verify JOB`).
    """
    delivery = delivery_of(job, chain_id=chain_id, market=market)
    if output is not None and output.exists() and any(output.iterdir()):
        raise StorageError(
            f"{output} exists and is not empty",
            fix="choose a new output folder with -o",
            path=str(output),
        )
    quarantine.mkdir(parents=True, exist_ok=True)
    # Stage next to the quarantine so a failed result moves there with a rename.
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{job.job_id}-", dir=quarantine))
    try:
        download = staging / "result"
        retrieve_delivery(delivery, download, gateway_url=gateway_url, blocks=blocks)
        report = verify_delivery(download, delivery)
        if not report.ok:
            kept = quarantine_path(quarantine, job.job_id)
            download.replace(kept)
            return report.model_copy(update={"path": str(kept), "quarantined": True})
        if output is None:
            return report
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists():
            output.rmdir()
        shutil.move(str(download), str(output))
        return report.model_copy(update={"path": str(output)})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
