"""Levels 1–2 of docs/protocol.md §8 for one delivery, shared by `framecast verify` and the arbiter.

Level 1 (integrity): the directory holds exactly the result files, its recomputed CID is
the one delivered on chain, and `video.mp4` hashes to the chain's `videoSha256`.
Level 2 (provenance): `receipt.json` is signed by the provider that delivered this result,
and every field it binds matches the signed request (digest rebuilt from `JobSubmitted`),
the spec, the catalog entry (weights manifest hash, GPU requirement), the chain and the
files; the environment is well-formed; the MP4's own frame count, size and frame rate
match the spec.

The frames digest is *not* recomputed: it is sha256 over the RGB frames fed to the
encoder, and lossy H.264 does not decode back to them. Replay (level 3) checks it.

What a result is checked against is a `Delivery`: the chain's view of one provider's
result. A single job has one; a replicated job has one per replica (each claimer delivers
its own CID and digests), so a replica that copies another's result CID fails here: the
directory carries a receipt signed by the provider that made it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from framecast.shared.catalog import get_entry, get_style, weights_manifest_hash
from framecast.shared.chain.bindings import DisputeReason
from framecast.shared.errors import FramecastError, VerificationFailed
from framecast.shared.ipfs import cid_of_path, parse_cid
from framecast.shared.mp4 import read_video_info
from framecast.shared.receipt import (
    RECEIPT_VERSION,
    Hex32,
    Receipt,
    ReceiptBody,
    ReceiptEnvironment,
)
from framecast.shared.request import Address
from framecast.shared.spec import GenerationSpec, decode_spec

#: The result directory of docs/protocol.md §6, sorted (the order `files` reports them in).
RESULT_FILES = ("poster.jpg", "receipt.json", "video.mp4")
#: A fine-tune job's result directory: the LoRA, its training log and the sample video.
FINE_TUNE_FILES = ("lora.safetensors", "poster.jpg", "receipt.json", "train_log.jsonl", "video.mp4")
LEVEL_NAMES = {1: "integrity", 2: "provenance"}
FRAMES_DIGEST_NOTE = (
    "not recomputed: it covers the frames fed to the encoder, which lossy H.264 does not "
    "decode back to; replay (level 3) checks it"
)
#: A Docker image ID as the node records it (`docker image inspect` → `Id`).
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SIGNER_DETAIL = "claiming provider (JobClaimed)"


class Delivery(BaseModel):
    """Everything one delivered result is checked against, read from the chain.

    ``provider`` is the claimer that delivered *this* result (with replicas a job has
    several); ``result_cid``, ``video_sha256`` and ``frames_digest`` are what it put on
    chain; the rest is the client's signed request (`JobSubmitted`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int = Field(gt=0)
    market: Address
    job_id: int = Field(gt=0)
    provider: Address = Field(description="The claimer whose result this is.")
    result_cid: str = Field(max_length=256, description="The result directory's CID.")
    video_sha256: Hex32
    frames_digest: Hex32
    request_digest: Hex32 = Field(description="EIP-712 digest of the client's JobRequest.")
    spec_hex: Annotated[str, StringConstraints(pattern=r"^0x([0-9a-f]{2})*$")] = Field(
        description="The spec bytes as submitted (canonical JSON), hex."
    )
    spec_hash: Hex32 = Field(description="The signed specHash.")
    model_id: Hex32 = Field(description="The signed modelId.")

    @field_validator("result_cid")
    @classmethod
    def _canonical_cid(cls, value: str) -> str:
        # One string form, so comparing with a recomputed CID compares CIDs.
        try:
            return str(parse_cid(value))
        except FramecastError as exc:
            raise ValueError(f"not a CID: {exc}") from None

    def spec_bytes(self) -> bytes:
        return bytes.fromhex(self.spec_hex[2:])


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
    dispute_seconds_left: int | None = Field(
        None, description="Seconds left in the challenge window when checked (None: closed)."
    )

    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)

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
        """Level 1 failures are hash mismatches; everything else breaks the spec."""
        failed = self.first_failure()
        if failed is None or failed.level == 1:
            return DisputeReason.HASH_MISMATCH
        return DisputeReason.SPEC_MISMATCH


def sha256_file(path: Path) -> str:
    """``0x`` + sha256 of a file, read in 1 MiB chunks (videos can be large)."""
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


def _entries(path: Path) -> tuple[str, ...]:
    # A folder where a file belongs is marked, so `files` fails on it rather than later.
    if not path.is_dir():
        return ()
    return tuple(sorted(p.name if p.is_file() else p.name + "/" for p in path.iterdir()))


def verify_dir(path: Path, delivery: Delivery) -> VerifyReport:
    """Run every level 1–2 check of the result folder ``path`` against ``delivery``.

    Never raises on a mismatch: each comparison is a `Check` of the report.
    """
    checks: list[Check] = []
    fine_tune = _is_fine_tune(delivery)
    expected_files = FINE_TUNE_FILES if fine_tune else RESULT_FILES
    checks.append(
        _eq(
            1, "files", ", ".join(expected_files), ", ".join(_entries(path)), "the result directory"
        )
    )
    checks.append(_eq(1, "result_cid", delivery.result_cid, _cid_or_error(path), "JobDelivered"))
    video = path / "video.mp4"
    video_sha = sha256_file(video) if video.is_file() else None
    checks.append(
        _eq(1, "video_sha256", delivery.video_sha256, video_sha, "JobDelivered vs video.mp4")
    )
    if fine_tune:
        lora = path / "lora.safetensors"
        checks.append(
            _eq(
                1,
                "lora_sha256",
                delivery.frames_digest,
                sha256_file(lora) if lora.is_file() else None,
                "JobDelivered's digest slot vs lora.safetensors",
            )
        )
    checks.extend(_provenance(path, delivery))
    level = 0
    for candidate in (1, 2):
        if all(c.ok for c in checks if c.level == candidate):
            level = candidate
        else:
            break
    return VerifyReport(
        job_id=delivery.job_id,
        path=str(path),
        result_cid=delivery.result_cid,
        ok=all(c.ok for c in checks),
        level_passed=level,
        checks=checks,
    )


def _is_fine_tune(delivery: Delivery) -> bool:
    try:
        return decode_spec(delivery.spec_bytes()).fine_tune is not None
    except FramecastError:
        return False  # reported by the spec check of level 2


def _fine_tune_checks(path: Path, spec: GenerationSpec, body: ReceiptBody) -> list[Check]:
    """A fine-tune receipt binds the dataset, the LoRA and every hyperparameter of the spec."""
    record, params = body.fine_tune, spec.fine_tune
    if params is None:
        return [_eq(2, "fine_tune", None, "present" if record else None, "not a fine-tune job")]
    if record is None:
        return [
            Check(
                level=2,
                name="fine_tune",
                ok=False,
                expected="a fine_tune record",
                actual=None,
                detail="the receipt of a fine-tune job must bind it",
            )
        ]
    lora = path / "lora.safetensors"
    return [
        _eq(2, "fine_tune.dataset_cid", spec.inputs.dataset, record.dataset_cid, "spec"),
        _eq(2, "fine_tune.lora_sha256", body.frames_digest, record.lora_sha256, "digest slot"),
        _eq(
            2,
            "fine_tune.lora_cid",
            cid_of_path(lora) if lora.is_file() else None,
            record.lora_cid,
            "lora.safetensors",
        ),
        _eq(2, "fine_tune.rank", params.rank, record.rank, "spec"),
        _eq(2, "fine_tune.alpha", params.alpha, record.alpha, "spec"),
        _eq(2, "fine_tune.steps", spec.steps, record.steps, "spec"),
        _eq(
            2,
            "fine_tune.learning_rate_micro",
            params.learning_rate_micro,
            record.learning_rate_micro,
            "spec",
        ),
        _eq(2, "fine_tune.modules", ",".join(params.modules), ",".join(record.modules), "spec"),
    ]


def _style_check(spec: GenerationSpec, body: ReceiptBody) -> Check:
    lora = spec.lora_style
    if lora is None:
        style = get_style(spec.style_id).receipt_id() if spec.style_id else None
        return _eq(2, "style", style, body.style)
    # The LoRA's sha256 is the runner's own hash of the file the CID names: the CID binds it.
    shape = f"lora:{lora.lora}:<sha256>:scale={lora.scale_milli}"
    got = body.style or ""
    ok = got.startswith(f"lora:{lora.lora}:") and got.endswith(f":scale={lora.scale_milli}")
    return Check(level=2, name="style", ok=ok, expected=shape, actual=body.style)


def _cid_or_error(path: Path) -> str:
    try:
        return cid_of_path(path)
    except (OSError, FramecastError) as exc:
        return f"no CID ({exc})"


def _read_receipt(path: Path) -> Receipt | Check:
    """The receipt, or the failed check that says why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Check(level=2, name="receipt", ok=False, detail=str(exc))
    # A receipt of another format version is named as such, not as a malformed field.
    try:
        version = json.loads(raw).get("body", {}).get("version", RECEIPT_VERSION)
    except (ValueError, AttributeError):
        version = RECEIPT_VERSION
    # Only a well-typed other version gets its own check; anything else is malformed below.
    if isinstance(version, int) and version != RECEIPT_VERSION:
        return _eq(2, "receipt_version", RECEIPT_VERSION, version, "the format this verifier reads")
    try:
        return Receipt.from_json(raw)
    except VerificationFailed as exc:
        return Check(level=2, name="receipt", ok=False, detail=str(exc))


def _signer_check(receipt: Receipt, delivery: Delivery) -> Check:
    body = receipt.body
    try:
        signer = receipt.signer()
    except Exception as exc:  # any recovery failure means: not a valid signature
        signer = f"no signer ({type(exc).__name__})"
    if signer == delivery.provider:
        detail = SIGNER_DETAIL
    elif signer == body.provider:
        # A valid signature by someone else: a genuine receipt of a result this provider
        # did not make (a replica that copied another's CID, or a relayed result).
        detail = (
            f"{SIGNER_DETAIL}; the result was made by another provider: its receipt is "
            f"validly signed by {signer}, not by the provider that delivered it"
        )
    else:
        detail = (
            f"{SIGNER_DETAIL}; the signature does not recover to the receipt's own "
            f"provider {body.provider} either: the receipt is forged or altered"
        )
    return _eq(2, "receipt_signer", delivery.provider, signer, detail)


def _provenance(path: Path, delivery: Delivery) -> list[Check]:
    read = _read_receipt(path / "receipt.json")
    if isinstance(read, Check):
        return [read]
    body = read.body
    checks = [
        _eq(2, "receipt_version", RECEIPT_VERSION, body.version),
        _signer_check(read, delivery),
        _eq(
            2,
            "receipt_provider",
            delivery.provider,
            body.provider,
            ""
            if body.provider == delivery.provider
            else f"the receipt names another provider: the result was made by {body.provider}",
        ),
        _eq(2, "receipt_chain_id", delivery.chain_id, body.chain_id),
        _eq(2, "receipt_market", delivery.market, body.market),
        _eq(2, "receipt_job_id", delivery.job_id, body.job_id),
        _eq(
            2,
            "request_digest",
            delivery.request_digest,
            body.request_digest,
            "EIP-712 JobRequest",
        ),
        _eq(2, "spec_hash", delivery.spec_hash, body.spec_hash),
        _eq(2, "model_id", delivery.model_id, body.model_id),
        _eq(2, "receipt_video_sha256", delivery.video_sha256, body.video_sha256),
        _eq(2, "receipt_frames_digest", delivery.frames_digest, body.frames_digest),
    ]
    video = path / "video.mp4"
    if video.is_file():
        checks.append(_eq(2, "receipt_video_cid", cid_of_path(video), body.video_cid))
    checks.extend(_environment(body.environment))
    spec_bytes = delivery.spec_bytes()
    checks.append(
        _eq(
            2,
            "spec_bytes",
            delivery.spec_hash,
            "0x" + keccak(spec_bytes).hex(),
            "keccak256 of the JobSubmitted spec bytes vs the signed specHash",
        )
    )
    try:
        spec = decode_spec(spec_bytes)
    except FramecastError as exc:
        checks.append(Check(level=2, name="spec", ok=False, detail=str(exc)))
        return checks
    checks.append(
        _eq(2, "spec_model_id", delivery.model_id, "0x" + spec.model_id().hex(), "spec model")
    )
    checks.append(_eq(2, "model", spec.model, body.model))
    checks.append(_eq(2, "seed", spec.seed, body.seed))
    checks.append(_eq(2, "receipt_num_frames", spec.num_frames, body.num_frames, "spec"))
    checks.append(
        _eq(2, "receipt_size", f"{spec.width}x{spec.height}", f"{body.width}x{body.height}", "spec")
    )
    checks.append(_eq(2, "receipt_fps", spec.fps, body.fps, "spec"))
    try:
        entry = get_entry(spec.model)
        manifest = "0x" + weights_manifest_hash(entry).removeprefix("0x")
        checks.append(_eq(2, "weights_manifest_hash", manifest, body.weights_manifest_hash))
        checks.append(_style_check(spec, body))
        if entry.requires_gpu:
            checks.append(
                _eq(2, "receipt_device", "cuda", body.environment.device, "the catalog entry")
            )
    except FramecastError as exc:
        checks.append(Check(level=2, name="catalog_entry", ok=False, detail=str(exc)))
    checks.extend(_fine_tune_checks(path, spec, body))
    if video.is_file():
        checks.extend(_video(video, spec, body.num_frames, body.width, body.height, body.fps))
    return checks


def _environment(env: ReceiptEnvironment) -> list[Check]:
    """The environment must say what ran: a GPU run names it, a container names its image."""
    checks: list[Check] = []
    gpu = f"gpu={env.gpu or '-'} driver={env.driver or '-'}"
    if env.device == "cuda":
        ok = bool(env.gpu and env.driver)
        expected = "gpu=<name> driver=<version>"
    else:
        ok = env.gpu is None and env.driver is None
        expected = "gpu=- driver=-"
    checks.append(
        Check(
            level=2,
            name="receipt_gpu",
            ok=ok,
            expected=expected,
            actual=gpu,
            detail=f"environment.device = {env.device}",
        )
    )
    if env.runtime == "docker":
        image_ok = env.image_digest is not None and bool(IMAGE_DIGEST.match(env.image_digest))
        image_expected = "sha256:<64 hex>"
    else:
        image_ok = env.image_digest is None
        image_expected = "-"
    checks.append(
        Check(
            level=2,
            name="receipt_image_digest",
            ok=image_ok,
            expected=image_expected,
            actual=env.image_digest or "-",
            detail=f"environment.runtime = {env.runtime}",
        )
    )
    named = {
        "python": env.python,
        "torch": env.torch,
        "diffusers": env.diffusers,
        "transformers": env.transformers,
        "encoder": env.encoder,
    }
    missing = [name for name, value in named.items() if not value.strip()]
    checks.append(
        Check(
            level=2,
            name="receipt_software",
            ok=not missing,
            expected=", ".join(named),
            actual=", ".join(n for n in named if n not in missing),
            detail=f"environment leaves {', '.join(missing)} empty" if missing else "",
        )
    )
    return checks


def _video(
    video: Path, spec: GenerationSpec, frames: int, width: int, height: int, fps: int
) -> list[Check]:
    """The MP4's own track against the spec, and the receipt's geometry against the MP4."""
    try:
        info = read_video_info(video)
    except VerificationFailed as exc:
        return [Check(level=2, name="video_decode", ok=False, detail=exc.message)]
    return [
        _eq(2, "video_frames", spec.num_frames, info.num_frames, "MP4 stsz"),
        _eq(
            2,
            "video_size",
            f"{spec.width}x{spec.height}",
            f"{info.width}x{info.height}",
            "MP4 sample entry",
        ),
        _eq(2, "video_fps", spec.fps, info.fps, "MP4 stts"),
        _eq(
            2,
            "receipt_geometry",
            f"{info.num_frames}f {info.width}x{info.height} @{info.fps}",
            f"{frames}f {width}x{height} @{fps}",
        ),
    ]
