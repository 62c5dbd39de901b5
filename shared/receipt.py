"""The provider-signed receipt inside every result directory (docs/protocol.md §7).

`receipt.json` sits next to `video.mp4` and `poster.jpg` in the UnixFS result directory.
It binds the job (chain, market, job id, request digest, spec hash), what ran (catalog
entry, weights manifest hash, runner image digest, environment), and what came out
(video CID, video sha256, frames digest, frames/size/fps). The provider signs it with
EIP-712 under the market's domain:

    Receipt(uint256 jobId,address provider,bytes32 requestDigest,bytes32 videoSha256,
            bytes32 framesDigest,bytes32 bodyHash)

where ``bodyHash = keccak256(canonical JSON of the receipt body)``. Wallets display the
job and digests; the body hash binds every other field. The directory's own CID cannot be
inside (it would contain itself): it is what `deliver` puts on chain.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from framecast.shared.errors import VerificationFailed
from framecast.shared.request import EIP712_DOMAIN_FIELDS, Address, Domain
from framecast.shared.spec import canonical_json

RECEIPT_VERSION = 1
Hex32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]


class ReceiptEnvironment(BaseModel):
    """Software and hardware that produced the frames (from the runner's report)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["cpu", "cuda"]
    gpu: str | None = Field(None, max_length=256)
    driver: str | None = Field(None, max_length=64)
    python: str = Field(max_length=64)
    torch: str = Field(max_length=64)
    diffusers: str = Field(max_length=64)
    transformers: str = Field(max_length=64)
    runtime: Literal["process", "docker", "ray"] = Field(
        description="How the runner was run: a local process, a container, a Ray actor."
    )
    image_digest: str | None = Field(
        None, max_length=128, description="Runner image digest (docker runtime)."
    )
    encoder: str = Field(max_length=512, description="Pinned encoder settings.")
    memory_profile: str | None = Field(
        None, max_length=32, description="Catalog memory profile the model ran with."
    )
    numerics: str | None = Field(
        None,
        max_length=64,
        description="Its numerics class: `reference`, or what changed the frames (`int8`).",
    )
    context_parallel: int | None = Field(
        None,
        ge=2,
        le=16,
        description="GPUs one job ran over (context parallelism); None: one device. Left out "
        "of the signed body when None, so receipts from before the field hash as they did.",
    )


class FineTuneRecord(BaseModel):
    """What a fine-tune job trained on and with, and what it made (docs/protocol.md §7).

    The hyperparameters are in the signed spec too (bound through `spec_hash`); they are
    repeated here so a receipt reads on its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_cid: str = Field(max_length=128, description="CID of the dataset directory.")
    lora_cid: str = Field(max_length=128, description="CID of lora.safetensors (use it by CID).")
    lora_sha256: Hex32 = Field(description="sha256 of lora.safetensors: the chain's digest.")
    sample_frames_digest: Hex32 = Field(description="Frames digest of the sample video.")
    rank: int = Field(ge=1)
    alpha: int = Field(ge=1)
    steps: int = Field(ge=1)
    learning_rate_micro: int = Field(ge=1)
    modules: list[str] = Field(min_length=1)
    clips: int = Field(ge=1)
    final_loss_micro: int = Field(ge=0, description="Last step's loss × 10^6 (integer).")


class ReceiptBody(BaseModel):
    """Everything the provider attests to; hashed canonically and signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(default=1)
    chain_id: int = Field(gt=0)
    market: Address
    job_id: int = Field(gt=0)
    provider: Address
    request_digest: Hex32 = Field(description="EIP-712 digest of the client's JobRequest.")
    spec_hash: Hex32 = Field(description="keccak256 of the canonical spec bytes.")
    model: str = Field(max_length=64, description="Catalog id of the model.")
    model_id: Hex32 = Field(description="keccak256 of the catalog id.")
    weights_manifest_hash: Hex32 = Field(description="Hash of the weights manifest used.")
    style: str | None = Field(None, max_length=256, description="Style / LoRA applied.")
    seed: int = Field(ge=0)
    video_cid: str = Field(max_length=128, description="CID of video.mp4 (raw file CID).")
    video_sha256: Hex32
    frames_digest: Hex32 = Field(
        description="sha256 over the decoded RGB frames, in order; for a fine-tune job the "
        "sha256 of lora.safetensors (what the chain and replicas compare)."
    )
    num_frames: int = Field(ge=1)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    fps: int = Field(ge=1)
    environment: ReceiptEnvironment
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per phase.")
    fine_tune: FineTuneRecord | None = Field(None, description="Set for a fine-tune job.")

    def body_hash(self) -> bytes:
        # Timings are floats; they are rounded to milliseconds and written as integers of
        # ms so the signed body stays float-free and canonical.
        data = self.model_dump(mode="json")
        if data.get("fine_tune") is None:
            # Absent, not null: receipts signed before fine-tuning existed keep their hash.
            data.pop("fine_tune", None)
        # Receipts signed before memory profiles existed hash without these fields.
        for key in ("memory_profile", "numerics"):
            if data["environment"].get(key) is None:
                data["environment"].pop(key, None)
        if data["environment"].get("context_parallel") is None:
            data["environment"].pop("context_parallel", None)
        data["timings"] = {k: round(v * 1000) for k, v in self.timings.items()}
        return keccak(canonical_json(data))

    def typed_data(self) -> dict[str, Any]:
        return {
            "types": {
                "EIP712Domain": EIP712_DOMAIN_FIELDS,
                "Receipt": [
                    {"name": "jobId", "type": "uint256"},
                    {"name": "provider", "type": "address"},
                    {"name": "requestDigest", "type": "bytes32"},
                    {"name": "videoSha256", "type": "bytes32"},
                    {"name": "framesDigest", "type": "bytes32"},
                    {"name": "bodyHash", "type": "bytes32"},
                ],
            },
            "primaryType": "Receipt",
            "domain": self.domain().typed_data_domain(),
            "message": {
                "jobId": self.job_id,
                "provider": self.provider,
                "requestDigest": bytes.fromhex(self.request_digest[2:]),
                "videoSha256": bytes.fromhex(self.video_sha256[2:]),
                "framesDigest": bytes.fromhex(self.frames_digest[2:]),
                "bodyHash": self.body_hash(),
            },
        }

    def domain(self) -> Domain:
        return Domain(chain_id=self.chain_id, market=self.market)


class Receipt(BaseModel):
    """`receipt.json`: the body and the provider's signature over it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: ReceiptBody
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{130}$")]

    @classmethod
    def sign(cls, body: ReceiptBody, private_key: bytes) -> Receipt:
        account = Account.from_key(private_key)
        if account.address != body.provider:
            raise VerificationFailed(
                f"receipt names provider {body.provider} but is signed by {account.address}",
                fix="sign receipts with the provider's own key",
            )
        signed = account.sign_message(encode_typed_data(full_message=body.typed_data()))
        return cls(body=body, signature="0x" + bytes(signed.signature).hex())

    def signer(self) -> str:
        message = encode_typed_data(full_message=self.body.typed_data())
        return str(Account.recover_message(message, signature=bytes.fromhex(self.signature[2:])))

    def verify_signature(self) -> None:
        """Raise unless the provider named in the body signed it."""
        signer = self.signer()
        if signer != self.body.provider:
            raise VerificationFailed(
                f"receipt of job {self.body.job_id} is signed by {signer}, "
                f"not by its provider {self.body.provider}",
                fix="the receipt is forged or altered: dispute the job",
            )

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Receipt:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise VerificationFailed(
                f"receipt.json is malformed: {exc.errors()[0]['msg']} at "
                f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}",
                fix="the provider delivered an invalid receipt: dispute the job",
            ) from None
