"""Retrieval and verification of job results, levels 1–2 of docs/protocol.md §8, for the client.

The checks themselves live in `framecast.shared.verification` (the arbiter runs the same
ones): this layer turns a `JobDetails` into the `Delivery` they check against, and keeps
the client's handling of downloads. They land in a staging folder; only a result that
passes moves to the output path. One that fails moves to ``<home>/quarantine/<job>``: its
bytes are evidence, never output.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from framecast.client.jobs.views import DELIVERED_STATES, JobDetails, ReplicaDetails
from framecast.shared.chain.bindings import DisputeReason, JobState
from framecast.shared.errors import (
    ContentNotFound,
    FramecastError,
    StorageError,
    StoreUnavailable,
    VerificationFailed,
)
from framecast.shared.ipfs.retrieve import Retriever
from framecast.shared.verification import (
    FRAMES_DIGEST_NOTE,
    LEVEL_NAMES,
    RESULT_FILES,
    Check,
    Delivery,
    VerifyReport,
)
from framecast.shared.verification import verify_dir as verify_delivery

__all__ = [
    "FRAMES_DIGEST_NOTE",
    "LEVEL_NAMES",
    "RESULT_FILES",
    "Check",
    "Delivery",
    "ReplicaCheck",
    "ReplicatedReport",
    "VerifyReport",
    "delivery_of",
    "dispute_seconds_left",
    "fetch_verified",
    "fetch_verified_replicas",
    "quarantine_path",
    "replica_deliveries",
    "verify_dir",
]


def delivery_of(job: JobDetails, *, chain_id: int, market: str) -> Delivery:
    """What ``job``'s delivered result is checked against; refuses an undelivered job."""
    if job.replicated:
        raise VerificationFailed(
            f"job {job.job_id} is replicated ({job.replicas} providers): each replica's result "
            "is its own delivery",
            fix=f"verify them all with `framecast verify {job.job_id}`",
        )
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


def quarantine_path(root: Path, job_id: int, name: str | None = None) -> Path:
    """A fresh ``<root>/<name>`` (name defaults to the job id; ``<name>-2``, ... if an
    earlier one is kept)."""
    root.mkdir(parents=True, exist_ok=True)
    base = name or str(job_id)
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


#: Seconds kept back from the challenge window to send a dispute after a failed fetch.
DISPUTE_MARGIN_S = 3


def dispute_seconds_left(job: JobDetails) -> int | None:
    """Seconds left in ``job``'s challenge window (None when it is not delivered or is
    past it: nothing can be disputed any more)."""
    if job.chain_state is not JobState.DELIVERED or job.challenge_ends is None:
        return None
    left = job.challenge_ends - job.chain_time
    return left if left > 0 else None


def _deadline(job: JobDetails) -> float | None:
    """When retrieval must have an answer (`time.monotonic`): before the window closes."""
    left = dispute_seconds_left(job)
    return None if left is None else time.monotonic() + max(0, left - DISPUTE_MARGIN_S)


def _retrieve(
    retriever: Retriever, job: JobDetails, delivery: Delivery, dest: Path, deadline: float | None
) -> None:
    """The one retrieval path; a failure says how long is left to dispute the job."""
    try:
        retriever.retrieve(delivery.result_cid, dest, provider=delivery.provider, deadline=deadline)
    except (ContentNotFound, StoreUnavailable) as exc:
        left = None if deadline is None else int(deadline - time.monotonic()) + DISPUTE_MARGIN_S
        if left is None or left <= 0:
            raise
        raise type(exc)(
            exc.message,
            fix=f"{left} s left to dispute: `framecast dispute {job.job_id}` (or {exc.fix})",
            **exc.context,
        ) from exc


def fetch_verified(
    job: JobDetails,
    output: Path | None,
    *,
    chain_id: int,
    market: str,
    retriever: Retriever,
    quarantine: Path,
) -> VerifyReport:
    """Retrieve and verify; move to ``output`` only if it passes, else to quarantine.

    ``output=None`` verifies and discards a passing download (`verify JOB`).
    """
    delivery = delivery_of(job, chain_id=chain_id, market=market)
    deadline = _deadline(job)
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
        _retrieve(retriever, job, delivery, download, deadline)
        report = verify_delivery(download, delivery).model_copy(
            update={"dispute_seconds_left": dispute_seconds_left(job)}
        )
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


# --------------------------------------------------------------------------- replicas
class ReplicaCheck(BaseModel):
    """Levels 1–2 of one replica's revealed result, checked as its own delivery."""

    model_config = ConfigDict(frozen=True)

    index: int
    provider: str
    result_cid: str | None
    outcome: str = Field(description="The replica's outcome on chain (see `ReplicaDetails`).")
    ok: bool
    report: VerifyReport | None = Field(None, description="None: not revealed or not fetched.")
    error: str | None = Field(None, description="Why the result could not be retrieved.")
    copied_from: int | None = Field(
        None, description="The replica whose result (CID and receipt) this one delivered."
    )

    def failure_message(self) -> str:
        who = f"replica {self.index} ({self.provider})"
        if self.copied_from is not None:
            text = f"copied result: replica {self.index} delivered replica {self.copied_from}'s CID"
            if self.report is not None and not self.report.ok:
                text += "; " + self.report.failure_message()
            return text
        if self.error is not None:
            return f"{who}: its result could not be retrieved: {self.error}"
        if self.report is not None and not self.report.ok:
            return f"{who}: {self.report.failure_message()}"
        return f"{who}: not revealed"

    def dispute_reason(self) -> DisputeReason:
        if self.error is not None:
            return DisputeReason.NOT_RETRIEVABLE
        if self.report is not None:
            return self.report.dispute_reason()
        return DisputeReason.HASH_MISMATCH


class ReplicatedReport(BaseModel):
    """`framecast verify JOB --json` for a replicated job: one check per revealed replica."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    replicated: bool = True
    ok: bool = Field(description="Every revealed replica passes levels 1–2.")
    digests_agree: bool | None
    path: str | None = Field(None, description="Where the first passing replica was written.")
    kept_replica: int | None = Field(None, description="The replica written to `path`.")
    replicas: list[ReplicaCheck]
    dispute_seconds_left: int | None = Field(
        None, description="Seconds left in the challenge window when checked (None: closed)."
    )

    def failures(self) -> list[ReplicaCheck]:
        return [r for r in self.replicas if not r.ok]

    def failure_message(self) -> str:
        return f"job {self.job_id}: " + "; ".join(r.failure_message() for r in self.failures())


def replica_deliveries(
    job: JobDetails, *, chain_id: int, market: str
) -> list[tuple[ReplicaDetails, Delivery]]:
    """Each revealed replica's result as its own `Delivery`: its provider, its CID and
    digests from its `ResultRevealed`; refuses a job with nothing revealed."""
    found = [
        (
            r,
            Delivery(
                chain_id=chain_id,
                market=market,
                job_id=job.job_id,
                provider=r.provider,
                result_cid=r.result_cid,
                video_sha256=r.video_sha256,
                frames_digest=r.frames_digest,
                request_digest=job.request_digest,
                spec_hex=job.spec_hex,
                spec_hash=job.spec_hash,
                model_id=job.model_id,
            ),
        )
        for r in job.replica_list
        if r.result_cid is not None and r.video_sha256 is not None and r.frames_digest is not None
    ]
    if not found:
        raise VerificationFailed(
            f"job {job.job_id} is {job.state}: no replica has revealed a result yet "
            f"({len(job.replica_list)} of {job.replicas} claimed)",
            fix=f"wait for the reveals (`framecast status {job.job_id} --wait`)",
        )
    return found


def fetch_verified_replicas(
    job: JobDetails,
    output: Path | None,
    *,
    chain_id: int,
    market: str,
    retriever: Retriever,
    quarantine: Path,
) -> ReplicatedReport:
    """Retrieve and verify every revealed replica; the first that passes moves to
    ``output`` (the others that pass are discarded, the ones that fail are quarantined as
    ``<quarantine>/<job>-replica-<i>``: evidence). Flags a replica that delivered another
    replica's CID (its receipt is signed by that other provider)."""
    deliveries = replica_deliveries(job, chain_id=chain_id, market=market)
    if output is not None and output.exists() and any(output.iterdir()):
        raise StorageError(
            f"{output} exists and is not empty",
            fix="choose a new output folder with -o",
            path=str(output),
        )
    quarantine.mkdir(parents=True, exist_ok=True)
    checks: list[ReplicaCheck] = []
    kept: int | None = None
    deadline = _deadline(job)
    for position, (replica, delivery) in enumerate(deliveries):
        # Each replica gets its share of the time left, from its own provider's gateway.
        share = None
        if deadline is not None:
            share = time.monotonic() + (deadline - time.monotonic()) / (len(deliveries) - position)
        staging = Path(
            tempfile.mkdtemp(prefix=f".incoming-{job.job_id}-{replica.index}-", dir=quarantine)
        )
        try:
            download = staging / "result"
            try:
                retriever.retrieve(
                    delivery.result_cid, download, provider=delivery.provider, deadline=share
                )
            except FramecastError as exc:
                checks.append(_replica_check(replica, None, error=str(exc)))
                continue
            report = verify_delivery(download, delivery)
            if not report.ok:
                name = f"{job.job_id}-replica-{replica.index}"
                where = quarantine_path(quarantine, job.job_id, name)
                download.replace(where)
                report = report.model_copy(update={"path": str(where), "quarantined": True})
            elif output is not None and kept is None:
                output.parent.mkdir(parents=True, exist_ok=True)
                if output.exists():
                    output.rmdir()
                shutil.move(str(download), str(output))
                report = report.model_copy(update={"path": str(output)})
                kept = replica.index
            checks.append(_replica_check(replica, report))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    checks = _flag_copies(checks)
    return ReplicatedReport(
        job_id=job.job_id,
        ok=all(c.ok for c in checks),
        digests_agree=job.digests_agree,
        path=str(output) if kept is not None and output is not None else None,
        kept_replica=kept,
        replicas=checks,
        dispute_seconds_left=dispute_seconds_left(job),
    )


def _replica_check(
    replica: ReplicaDetails, report: VerifyReport | None, *, error: str | None = None
) -> ReplicaCheck:
    return ReplicaCheck(
        index=replica.index,
        provider=replica.provider,
        result_cid=replica.result_cid,
        outcome=replica.outcome,
        ok=report is not None and report.ok,
        report=report,
        error=error,
    )


def _flag_copies(checks: list[ReplicaCheck]) -> list[ReplicaCheck]:
    """A replica whose CID another replica also revealed, and whose receipt is not its own,
    copied it: from the replica whose provider signed the receipt (else the other one)."""
    flagged = []
    for check in checks:
        twins = [c for c in checks if c.index != check.index and c.result_cid == check.result_cid]
        signer = check.report.check("receipt_signer") if check.report else None
        if twins and signer is not None and not signer.ok:
            source = next((t for t in twins if t.provider == signer.actual), twins[0])
            flagged.append(check.model_copy(update={"copied_from": source.index, "ok": False}))
        else:
            flagged.append(check)
    return flagged
