"""Receipts: signed by the provider, any change to the body breaks the signature."""

from __future__ import annotations

import pytest
from eth_account import Account

from framecast.shared.errors import VerificationFailed
from framecast.shared.receipt import Receipt, ReceiptBody, ReceiptEnvironment

PROVIDER = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)
H = "0x" + "ab" * 32


def body(**overrides: object) -> ReceiptBody:
    fields: dict[str, object] = {
        "chain_id": 31337,
        "market": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        "job_id": 7,
        "provider": PROVIDER.address,
        "request_digest": H,
        "spec_hash": H,
        "model": "tiny-cogvideox",
        "model_id": H,
        "weights_manifest_hash": H,
        "seed": 42,
        "video_cid": "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        "video_sha256": H,
        "frames_digest": H,
        "num_frames": 9,
        "width": 32,
        "height": 32,
        "fps": 8,
        "environment": ReceiptEnvironment(
            device="cpu",
            python="3.11.7",
            torch="2.13.0",
            diffusers="0.42.1",
            transformers="5.0",
            runtime="process",
            encoder="libx264 crf=18",
        ),
        "timings": {"run_s": 0.123456},
    }
    fields.update(overrides)
    return ReceiptBody.model_validate(fields)


def test_round_trip_and_signature() -> None:
    receipt = Receipt.sign(body(), PROVIDER.key)
    again = Receipt.from_json(receipt.to_json())
    again.verify_signature()
    assert again.signer() == PROVIDER.address


def test_altered_body_fails_verification() -> None:
    receipt = Receipt.sign(body(), PROVIDER.key)
    forged = Receipt(body=body(frames_digest="0x" + "cd" * 32), signature=receipt.signature)
    with pytest.raises(VerificationFailed, match="not by its provider"):
        forged.verify_signature()


def test_receipt_for_another_job_fails() -> None:
    receipt = Receipt.sign(body(job_id=8), PROVIDER.key)
    moved = Receipt(body=body(job_id=7), signature=receipt.signature)
    with pytest.raises(VerificationFailed):
        moved.verify_signature()


def test_cannot_sign_for_another_provider() -> None:
    with pytest.raises(VerificationFailed, match="signed by"):
        Receipt.sign(body(), OTHER.key)


def test_malformed_receipt_names_the_field() -> None:
    with pytest.raises(VerificationFailed, match=r"body\.seed"):
        Receipt.from_json(
            Receipt.sign(body(), PROVIDER.key).to_json().replace(b'"seed": 42', b'"seed": -1')
        )


def test_context_parallel_is_signed_when_set_and_absent_bodies_hash_as_before() -> None:
    from eth_utils.crypto import keccak

    from framecast.shared.spec import canonical_json

    plain = body()
    # A body from before the field existed: the hash of exactly the old fields.
    old = plain.model_dump(mode="json")
    # ...and before the other later optional fields (memory profile, fine-tune record).
    for key in ("context_parallel", "memory_profile", "numerics"):
        old["environment"].pop(key)
    old.pop("fine_tune", None)
    old["timings"] = {k: round(v * 1000) for k, v in plain.timings.items()}
    assert plain.body_hash() == keccak(canonical_json(old))
    env = plain.environment.model_copy(update={"context_parallel": 2, "runtime": "ray"})
    parallel = body(environment=env)
    assert parallel.body_hash() != plain.body_hash()
    signed = Receipt.sign(parallel, PROVIDER.key)
    again = Receipt.from_json(signed.to_json())
    again.verify_signature()
    assert again.body.environment.context_parallel == 2
