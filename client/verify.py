"""Retrieval and verification of job results, levels 1–2 of DESIGN §8.

Level 1 (integrity): the directory's recomputed CID is the one delivered on chain, and
`video.mp4` hashes to the chain's `videoSha256`.
Level 2 (provenance): `receipt.json` is signed by the provider that claimed the job, and
its fields match the signed request (digest rebuilt from `JobSubmitted`), the spec, the
catalog entry (weights manifest hash) and the chain; the MP4's own frame count, size and
frame rate match the spec.

The frames digest is *not* recomputed: it is sha256 over the RGB frames fed to the
encoder, and lossy H.264 does not decode back to them. Replay (level 3) checks it.

Downloads land in a staging folder; only a result that passes moves to the output path.
One that fails moves to ``<home>/quarantine/<job>``: its bytes are evidence, never output.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framecast.client.jobs import DELIVERED_STATES, JobDetails
from framecast.client.mp4 import read_video_info
from framecast.shared.catalog import get_entry, get_style, weights_manifest_hash
from framecast.shared.chain.bindings import DisputeReason
from framecast.shared.errors import (
    ContentNotFound,
    FramecastError,
    StorageError,
    VerificationFailed,
)
from framecast.shared.ipfs import cid_of_path, parse_cid
from framecast.shared.receipt import Receipt
from framecast.shared.spec import decode_spec

RESULT_FILES = ("poster.jpg", "receipt.json", "video.mp4")
LEVEL_NAMES = {1: "integrity", 2: "provenance"}
FRAMES_DIGEST_NOTE = (
    "not recomputed: it covers the frames fed to the encoder, which lossy H.264 does not "
    "decode back to; replay (level 3) checks it"
)


class Check(BaseModel):
    """One comparison; ``expected`` is what the chain / request / spec says."""

    model_config = ConfigDict(frozen=True)

    level: Literal[1, 2]
    name: str
    ok: bool
    expected: str | None = None
    actual: str | None = None
    detail: str = ""


class VerifyReport(BaseModel):
    """`framecast verify --json`."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    path: str = Field(description="Where the verified (or quarantined) files are.")
    result_cid: str | None
    ok: bool
    level_passed: int = Field(ge=0, le=2, description="Highest level whose checks all passed.")
    checks: list[Check]
    frames_digest: str = FRAMES_DIGEST_NOTE
    quarantined: bool = False

    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def failure_message(self) -> str:
        failed = self.first_failure()
        assert failed is not None
        text = (
            f"job {self.job_id} fails verification at level {failed.level} "
            f"({LEVEL_NAMES[failed.level]}): {failed.name}"
        )
        if failed.expected is not None or failed.actual is not None:
            text += f" expected {failed.expected} but got {failed.actual}"
        if failed.detail:
            text += f" ({failed.detail})"
        return text

    def dispute_reason(self) -> DisputeReason:
        failed = self.first_failure()
        if failed is None or failed.level == 1:
            return DisputeReason.HASH_MISMATCH
        return DisputeReason.SPEC_MISMATCH


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "0x" + digest.hexdigest()


def _eq(
    level: Literal[1, 2], name: str, expected: object, actual: object, detail: str = ""
) -> Check:
    return Check(
        level=level,
        name=name,
        ok=expected == actual,
        expected=None if expected is None else str(expected),
        actual=None if actual is None else str(actual),
        detail=detail,
    )


def verify_dir(path: Path, job: JobDetails, *, chain_id: int, market: str) -> VerifyReport:
    """Run every level 1–2 check of ``path`` against ``job``; never raises on a mismatch."""
    if job.chain_state not in DELIVERED_STATES or job.result_cid is None:
        raise VerificationFailed(
            f"job {job.job_id} is {job.state}: there is no delivered result to verify",
            fix=f"wait for delivery (`framecast status {job.job_id} --wait`)",
        )
    checks: list[Check] = []
    present = tuple(sorted(p.name for p in path.iterdir())) if path.is_dir() else ()
    checks.append(
        _eq(1, "files", ", ".join(RESULT_FILES), ", ".join(present), "the result directory")
    )
    checks.append(
        _eq(1, "result_cid", str(parse_cid(job.result_cid)), cid_of_path(path), "JobDelivered")
    )
    video = path / "video.mp4"
    video_sha = _sha256_file(video) if video.is_file() else None
    checks.append(_eq(1, "video_sha256", job.video_sha256, video_sha, "JobDelivered vs video.mp4"))
    checks.extend(_provenance(path, job, chain_id=chain_id, market=market, video_sha=video_sha))
    level = 0
    for candidate in (1, 2):
        if all(c.ok for c in checks if c.level == candidate):
            level = candidate
        else:
            break
    return VerifyReport(
        job_id=job.job_id,
        path=str(path),
        result_cid=job.result_cid,
        ok=all(c.ok for c in checks),
        level_passed=level,
        checks=checks,
    )


def _provenance(
    path: Path, job: JobDetails, *, chain_id: int, market: str, video_sha: str | None
) -> list[Check]:
    checks: list[Check] = []
    receipt_path = path / "receipt.json"
    try:
        receipt = Receipt.from_json(receipt_path.read_bytes())
    except (OSError, VerificationFailed) as exc:
        return [Check(level=2, name="receipt", ok=False, detail=str(exc))]
    body = receipt.body
    try:
        signer = receipt.signer()
    except Exception as exc:  # any recovery failure means: not a valid signature
        signer = f"no signer ({type(exc).__name__})"
    checks.append(_eq(2, "receipt_signer", job.provider, signer, "claiming provider (JobClaimed)"))
    checks.append(_eq(2, "receipt_provider", job.provider, body.provider))
    checks.append(_eq(2, "receipt_chain_id", chain_id, body.chain_id))
    checks.append(_eq(2, "receipt_market", market, body.market))
    checks.append(_eq(2, "receipt_job_id", job.job_id, body.job_id))
    checks.append(
        _eq(2, "request_digest", job.request_digest, body.request_digest, "EIP-712 JobRequest")
    )
    checks.append(_eq(2, "spec_hash", job.spec_hash, body.spec_hash))
    checks.append(_eq(2, "model_id", job.model_id, body.model_id))
    checks.append(_eq(2, "receipt_video_sha256", job.video_sha256, body.video_sha256))
    checks.append(_eq(2, "receipt_frames_digest", job.frames_digest, body.frames_digest))
    video = path / "video.mp4"
    if video.is_file():
        checks.append(_eq(2, "receipt_video_cid", cid_of_path(video), body.video_cid))
    try:
        spec = decode_spec(bytes.fromhex(job.spec_hex[2:]))
    except FramecastError as exc:
        checks.append(Check(level=2, name="spec", ok=False, detail=str(exc)))
        return checks
    checks.append(_eq(2, "model", spec.model, body.model))
    checks.append(_eq(2, "seed", spec.seed, body.seed))
    try:
        entry = get_entry(spec.model)
        manifest = "0x" + weights_manifest_hash(entry).removeprefix("0x")
        checks.append(_eq(2, "weights_manifest_hash", manifest, body.weights_manifest_hash))
        style = get_style(spec.style).receipt_id() if spec.style else None
        checks.append(_eq(2, "style", style, body.style))
    except FramecastError as exc:
        checks.append(Check(level=2, name="catalog_entry", ok=False, detail=str(exc)))
    if video.is_file():
        try:
            info = read_video_info(video)
        except VerificationFailed as exc:
            checks.append(Check(level=2, name="video_decode", ok=False, detail=exc.message))
            return checks
        checks.append(_eq(2, "video_frames", spec.num_frames, info.num_frames, "MP4 stsz"))
        checks.append(
            _eq(
                2,
                "video_size",
                f"{spec.width}x{spec.height}",
                f"{info.width}x{info.height}",
                "MP4 sample entry",
            )
        )
        checks.append(_eq(2, "video_fps", spec.fps, info.fps, "MP4 stts"))
        checks.append(
            _eq(
                2,
                "receipt_geometry",
                f"{info.num_frames}f {info.width}x{info.height} @{info.fps}",
                f"{body.num_frames}f {body.width}x{body.height} @{body.fps}",
            )
        )
    return checks


# --------------------------------------------------------------------------- retrieval
def retrieve(
    job: JobDetails, dest: Path, *, gateway_url: str | None, blocks: Path, timeout: float = 60.0
) -> str:
    """Download the result of ``job`` into ``dest`` (must not exist), every block verified.

    From ``gateway_url`` when given (the user's or the provider's); else from the embedded
    store at ``blocks`` through a loopback gateway, so the same verified path is used
    (on the devnet, the node pins into that store). Returns where it came from.
    """
    from framecast.shared.ipfs.gateway import serve_gateway
    from framecast.shared.ipfs.local import LocalStore
    from framecast.shared.ipfs.retrieval import fetch

    assert job.result_cid is not None
    if gateway_url:
        fetch(job.result_cid, dest, gateway_url, timeout=timeout)
        return gateway_url
    if blocks.is_dir():
        store = LocalStore(blocks)
        if store.has(job.result_cid):
            with serve_gateway(store) as gateway:
                fetch(job.result_cid, dest, gateway.url, timeout=timeout)
            return str(blocks)
    raise ContentNotFound(
        f"result {job.result_cid} of job {job.job_id} is not in the local store {blocks} "
        "and no gateway is configured",
        fix="set FRAMECAST_GATEWAY_URL (or --gateway) to a gateway that has it, or "
        "FRAMECAST_STORE_PATH to the store the provider pins into",
    )


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
        retrieve(job, download, gateway_url=gateway_url, blocks=blocks)
        report = verify_dir(download, job, chain_id=chain_id, market=market)
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
