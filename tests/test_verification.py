"""Levels 1–2 (`framecast.shared.verification`) against real result directories.

Each result is what a node delivers: a real H.264 MP4 written by the runner's encoder, a
JPEG poster, and a receipt signed with a devnet provider key; the `Delivery` is what the
chain would hold for it (the directory's CID and the hashes the provider put on chain).
No chain is needed: the checks compare files, signatures and the signed request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from pydantic import ValidationError

from framecast.runner.video import frames_digest, write_poster, write_video
from framecast.shared.catalog import TINY_PROMPT, default_spec, get_entry, weights_manifest_hash
from framecast.shared.chain.devnet import DEVNET_CHAIN_ID, devnet_account
from framecast.shared.ipfs import cid_of_path
from framecast.shared.receipt import Receipt, ReceiptBody, ReceiptEnvironment
from framecast.shared.request import Domain, JobRequest
from framecast.shared.spec import GenerationSpec
from framecast.shared.verification import Delivery, VerifyReport, sha256_file, verify_dir

MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DOMAIN = Domain(chain_id=DEVNET_CHAIN_ID, market=MARKET)
#: The tiny entry's defaults: 9 frames, 32×32, 8 fps.
SPEC = default_spec("tiny-cogvideox", TINY_PROMPT, seed=42)
CPU = ReceiptEnvironment(
    device="cpu", python="3.11.7", torch="2.13.0", diffusers="0.42.1", transformers="5.0",
    runtime="process", encoder="ffmpeg libx264 crf=18",
)  # fmt: skip
DOCKER_GPU = CPU.model_copy(
    update={"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "driver": "12.8",
            "runtime": "docker", "image_digest": "sha256:" + "5e" * 32}
)  # fmt: skip


@dataclass
class Result:
    path: Path
    delivery: Delivery
    receipt: Receipt


def request_of(spec: GenerationSpec, nonce: int) -> JobRequest:
    return JobRequest.for_spec(
        spec, client=devnet_account("alice").address, max_price=10**18,
        claim_deadline=2_000_000_000, delivery_window=600, nonce=nonce,
    )  # fmt: skip


def frames(count: int, size: int = 32) -> np.ndarray:
    # Distinct frames (a gradient that moves), so the encoder writes every one.
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for index in range(count):
        out[index] = ((ramp[None, :, None] + 17 * index) % 256).astype(np.uint8)
    return out


def make_result(
    root: Path,
    *,
    job_id: int = 7,
    provider: str = "provider-1",
    encoded: int = 9,
    nonce: int = 0,
    **receipt: Any,
) -> Result:
    """A result folder as `provider` delivers it for ``job_id``, and its chain record.

    ``encoded`` frames are encoded (the spec asks for 9) and the receipt says so;
    ``receipt`` overrides body fields before signing, so the signature is genuine.
    """
    out = root / f"job-{job_id}-{provider}"
    out.mkdir(parents=True)
    pixels = frames(encoded)
    video_sha = "0x" + write_video(pixels, out / "video.mp4", SPEC.fps)
    write_poster(pixels, out / "poster.jpg")
    digest = "0x" + frames_digest(pixels)
    account = devnet_account(provider)
    request = request_of(SPEC, nonce)
    fields: dict[str, Any] = {
        "chain_id": DEVNET_CHAIN_ID, "market": MARKET, "job_id": job_id,
        "provider": account.address, "request_digest": "0x" + request.digest(DOMAIN).hex(),
        "spec_hash": "0x" + SPEC.spec_hash().hex(), "model": SPEC.model,
        "model_id": "0x" + SPEC.model_id().hex(),
        "weights_manifest_hash": "0x"
        + weights_manifest_hash(get_entry(SPEC.model)).removeprefix("0x"),
        "seed": SPEC.seed, "video_cid": cid_of_path(out / "video.mp4"),
        "video_sha256": video_sha, "frames_digest": digest, "num_frames": encoded,
        "width": SPEC.width, "height": SPEC.height, "fps": SPEC.fps, "environment": CPU,
        "timings": {"run_s": 1.5},
    }  # fmt: skip
    fields.update(receipt)
    signed = Receipt.sign(ReceiptBody.model_validate(fields), bytes(account.key))
    (out / "receipt.json").write_bytes(signed.to_json())
    return Result(out, delivery_for(out, job_id, provider, nonce), signed)


def delivery_for(path: Path, job_id: int, provider: str, nonce: int = 0) -> Delivery:
    """What the chain holds when ``provider`` delivers the folder ``path`` as it is now."""
    receipt = Receipt.from_json((path / "receipt.json").read_bytes())
    return Delivery(
        chain_id=DEVNET_CHAIN_ID, market=MARKET, job_id=job_id,
        provider=devnet_account(provider).address, result_cid=cid_of_path(path),
        video_sha256=sha256_file(path / "video.mp4"),
        frames_digest=receipt.body.frames_digest,
        request_digest="0x" + request_of(SPEC, nonce).digest(DOMAIN).hex(),
        spec_hex="0x" + SPEC.canonical_json().hex(), spec_hash="0x" + SPEC.spec_hash().hex(),
        model_id="0x" + SPEC.model_id().hex(),
    )  # fmt: skip


def failed(report: VerifyReport) -> list[str]:
    return [c.name for c in report.checks if not c.ok]


def test_genuine_result_passes_every_check(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    report = verify_dir(result.path, result.delivery)
    assert failed(report) == []
    assert report.ok and report.level_passed == 2
    names = {c.name for c in report.checks}
    # Every field the receipt binds is compared with something outside it.
    assert {
        "files", "result_cid", "video_sha256", "receipt_version", "receipt_signer",
        "receipt_provider", "receipt_chain_id", "receipt_market", "receipt_job_id",
        "request_digest", "spec_hash", "model_id", "receipt_video_sha256",
        "receipt_frames_digest", "receipt_video_cid", "receipt_gpu", "receipt_image_digest",
        "receipt_software", "spec_bytes", "spec_model_id", "model", "seed",
        "receipt_num_frames", "receipt_size", "receipt_fps", "weights_manifest_hash", "style",
        "video_frames", "video_size", "video_fps", "receipt_geometry",
    } <= names  # fmt: skip


def test_gpu_container_receipt_passes(tmp_path: Path) -> None:
    result = make_result(tmp_path, environment=DOCKER_GPU)
    assert verify_dir(result.path, result.delivery).ok


def test_receipt_signed_by_another_key_fails_receipt_signer(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    # provider-2 signs the exact body that names provider-1.
    message = encode_typed_data(full_message=result.receipt.body.typed_data())
    signature = Account.sign_message(message, devnet_account("provider-2").key).signature
    forged = Receipt(body=result.receipt.body, signature="0x" + bytes(signature).hex())
    (result.path / "receipt.json").write_bytes(forged.to_json())
    delivery = delivery_for(result.path, 7, "provider-1")

    report = verify_dir(result.path, delivery)
    assert report.level_passed == 1 and failed(report) == ["receipt_signer"]
    signer = report.check("receipt_signer")
    assert signer is not None
    assert signer.actual == devnet_account("provider-2").address
    assert "forged or altered" in signer.detail
    assert report.failure_message().startswith(
        "job 7 fails verification at level 2 (provenance): receipt_signer expected "
        f"{devnet_account('provider-1').address} but got {devnet_account('provider-2').address}"
    )


def test_genuine_receipt_of_another_job_fails_job_and_request(tmp_path: Path) -> None:
    ours = make_result(tmp_path, job_id=7, nonce=0)
    theirs = make_result(tmp_path, job_id=8, nonce=1)
    # Same provider, same frames (same seed and spec): only the job binding differs.
    (ours.path / "receipt.json").write_bytes((theirs.path / "receipt.json").read_bytes())
    delivery = delivery_for(ours.path, 7, "provider-1", nonce=0)

    report = verify_dir(ours.path, delivery)
    assert report.level_passed == 1
    assert failed(report) == ["receipt_job_id", "request_digest"]
    assert report.first_failure() == report.check("receipt_job_id")
    job = report.check("receipt_job_id")
    assert job is not None and (job.expected, job.actual) == ("7", "8")


def test_right_hashes_wrong_frame_count_passes_level_1_fails_video_frames(
    tmp_path: Path,
) -> None:
    # The provider encoded 5 frames of a 9-frame job, put that file's hashes on chain and
    # claims 9 frames in its receipt: integrity holds, provenance does not.
    result = make_result(tmp_path, encoded=5, num_frames=9)
    report = verify_dir(result.path, result.delivery)
    assert report.level_passed == 1 and not report.ok
    assert all(c.ok for c in report.checks if c.level == 1)
    assert report.first_failure() == report.check("video_frames")
    frames_check = report.check("video_frames")
    assert frames_check is not None and (frames_check.expected, frames_check.actual) == ("9", "5")
    assert failed(report) == ["video_frames", "receipt_geometry"]


def test_honest_receipt_of_too_few_frames_fails_against_the_spec(tmp_path: Path) -> None:
    result = make_result(tmp_path, encoded=5)  # the receipt says 5, as encoded
    report = verify_dir(result.path, result.delivery)
    assert report.level_passed == 1
    assert failed(report) == ["receipt_num_frames", "video_frames"]


def test_replica_copying_another_providers_result_fails_signer_and_provider(
    tmp_path: Path,
) -> None:
    made = make_result(tmp_path, provider="provider-1")
    # provider-2 delivers provider-1's CID and hashes as its own replica result.
    copied = made.delivery.model_copy(update={"provider": devnet_account("provider-2").address})

    report = verify_dir(made.path, copied)
    assert report.level_passed == 1
    assert failed(report) == ["receipt_signer", "receipt_provider"]
    maker = devnet_account("provider-1").address
    signer, named = report.check("receipt_signer"), report.check("receipt_provider")
    assert signer is not None and named is not None
    assert "the result was made by another provider" in signer.detail
    assert maker in signer.detail and signer.actual == maker
    assert named.detail == f"the receipt names another provider: the result was made by {maker}"
    assert "made by another provider" in report.failure_message()


@pytest.mark.parametrize(
    ("environment", "check"),
    [
        (DOCKER_GPU.model_copy(update={"gpu": None}), "receipt_gpu"),
        (DOCKER_GPU.model_copy(update={"driver": ""}), "receipt_gpu"),
        (CPU.model_copy(update={"gpu": "NVIDIA H100"}), "receipt_gpu"),
        (DOCKER_GPU.model_copy(update={"image_digest": None}), "receipt_image_digest"),
        (DOCKER_GPU.model_copy(update={"image_digest": "runner:latest"}), "receipt_image_digest"),
        (DOCKER_GPU.model_copy(update={"image_digest": "sha256:" + "5E" * 32}),
         "receipt_image_digest"),
        (CPU.model_copy(update={"image_digest": "sha256:" + "5e" * 32}), "receipt_image_digest"),
        (CPU.model_copy(update={"torch": " "}), "receipt_software"),
    ],
)  # fmt: skip
def test_malformed_environment_fails_its_check(
    tmp_path: Path, environment: ReceiptEnvironment, check: str
) -> None:
    result = make_result(tmp_path, environment=environment)
    report = verify_dir(result.path, result.delivery)
    assert failed(report) == [check]


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("seed", 43, "seed"),
        ("width", 48, "receipt_size"),
        ("height", 16, "receipt_size"),
        ("fps", 24, "receipt_fps"),
        ("style", "anime", "style"),
        ("weights_manifest_hash", "0x" + "00" * 32, "weights_manifest_hash"),
        ("video_cid", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
         "receipt_video_cid"),
        ("frames_digest", "0x" + "cd" * 32, "receipt_frames_digest"),
        ("chain_id", 1, "receipt_chain_id"),
    ],
)  # fmt: skip
def test_each_receipt_field_is_checked(
    tmp_path: Path, field: str, value: object, check: str
) -> None:
    # The provider signed a receipt that disagrees with the spec / chain in one field.
    result = make_result(tmp_path, **{field: value})
    delivery = result.delivery.model_copy(
        update={"frames_digest": "0x" + "ab" * 32} if field == "frames_digest" else {}
    )
    report = verify_dir(result.path, delivery)
    assert check in failed(report)
    if check not in {"receipt_size", "receipt_fps"}:
        assert failed(report) == [check]


def test_other_receipt_version_is_named(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    data = json.loads((result.path / "receipt.json").read_text())
    data["body"]["version"] = 2
    (result.path / "receipt.json").write_text(json.dumps(data))
    delivery = result.delivery.model_copy(update={"result_cid": cid_of_path(result.path)})
    report = verify_dir(result.path, delivery)
    assert failed(report) == ["receipt_version"]
    version = report.check("receipt_version")
    assert version is not None and (version.expected, version.actual) == ("1", "2")


def test_extra_file_in_the_delivered_directory_fails_files(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    (result.path / "notes.txt").write_text("not part of a result")
    # The provider pinned the folder with the extra file: the CID on chain covers it.
    report = verify_dir(result.path, delivery_for(result.path, 7, "provider-1"))
    assert failed(report) == ["files"]
    assert report.level_passed == 0


def test_directory_not_matching_the_chain_cid_fails_level_1(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    (result.path / "poster.jpg").write_bytes(b"\xff\xd8another poster")
    report = verify_dir(result.path, result.delivery)
    assert failed(report) == ["result_cid"]
    assert report.level_passed == 0


def test_spec_bytes_that_do_not_hash_to_the_signed_spec_hash_fail(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    other = SPEC.model_copy(update={"seed": 43}).canonical_json()
    delivery = result.delivery.model_copy(update={"spec_hex": "0x" + other.hex()})
    report = verify_dir(result.path, delivery)
    assert failed(report) == ["spec_bytes", "seed"]


def test_delivery_refuses_a_malformed_chain_record() -> None:
    with pytest.raises(ValidationError, match="result_cid"):
        Delivery(
            chain_id=DEVNET_CHAIN_ID, market=MARKET, job_id=7,
            provider=devnet_account("provider-1").address, result_cid="not-a-cid",
            video_sha256="0x" + "ab" * 32, frames_digest="0x" + "ab" * 32,
            request_digest="0x" + "ab" * 32, spec_hex="0x", spec_hash="0x" + "ab" * 32,
            model_id="0x" + "ab" * 32,
        )  # fmt: skip
