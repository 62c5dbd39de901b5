"""The result directory of docs/protocol.md §6: `video.mp4`, `poster.jpg`, a provider-signed
`receipt.json` — pinned as one UnixFS directory whose CID goes on chain."""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount

from framecast.shared.catalog import get_entry, weights_manifest_hash
from framecast.shared.deployment import Deployment
from framecast.shared.errors import NodeError
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.store import ContentStore
from framecast.shared.receipt import FineTuneRecord, Receipt, ReceiptBody, ReceiptEnvironment
from framecast.shared.runner_protocol import RunEnvironment, RunOutput
from framecast.shared.spec import GenerationSpec

RESULT_FILES = frozenset({"video.mp4", "poster.jpg", "receipt.json"})
#: A fine-tune job's result adds the trained LoRA and its training log (the video is the
#: sample generated with the LoRA).
FINE_TUNE_FILES = RESULT_FILES | {"lora.safetensors", "train_log.jsonl"}


def write_receipt(
    *,
    out_dir: Path,
    output: RunOutput,
    spec: GenerationSpec,
    job_id: int,
    request_digest: str,
    deployment: Deployment,
    provider: LocalAccount,
    runtime: str,
    image_digest: str | None,
    timings: dict[str, float],
) -> Receipt:
    """Sign and write `receipt.json` next to the runner's outputs."""
    entry = get_entry(spec.model)
    env = output.environment
    body = ReceiptBody(
        chain_id=deployment.chain_id,
        market=deployment.market,
        job_id=job_id,
        provider=provider.address,
        request_digest=request_digest,
        spec_hash="0x" + spec.spec_hash().hex(),
        model=spec.model,
        model_id="0x" + spec.model_id().hex(),
        weights_manifest_hash="0x" + weights_manifest_hash(entry).removeprefix("0x"),
        style=output.style,
        seed=spec.seed,
        video_cid=cid_of_path(out_dir / output.video),
        video_sha256="0x" + output.video_sha256,
        frames_digest="0x" + output.frames_digest,
        num_frames=output.num_frames,
        width=output.width,
        height=output.height,
        fps=output.fps,
        environment=receipt_environment(env, runtime, image_digest),
        timings=timings,
        fine_tune=fine_tune_record(out_dir, output, spec),
    )
    receipt = Receipt.sign(body, bytes(provider.key))
    (out_dir / "receipt.json").write_bytes(receipt.to_json())
    return receipt


def fine_tune_record(
    out_dir: Path, output: RunOutput, spec: GenerationSpec
) -> FineTuneRecord | None:
    """What a fine-tune receipt binds: dataset, LoRA (CID and sha256), sample, hyperparameters."""
    made, params = output.fine_tune, spec.fine_tune
    if made is None or params is None or spec.inputs.dataset is None:
        return None
    return FineTuneRecord(
        dataset_cid=spec.inputs.dataset,
        lora_cid=cid_of_path(out_dir / made.lora),
        lora_sha256="0x" + made.lora_sha256,
        sample_frames_digest="0x" + made.sample_frames_digest,
        rank=params.rank,
        alpha=params.alpha,
        steps=made.steps,
        learning_rate_micro=params.learning_rate_micro,
        modules=list(params.modules),
        clips=made.clips,
        final_loss_micro=round(made.final_loss * 1_000_000),
    )


def receipt_environment(
    env: RunEnvironment, runtime: str, image_digest: str | None
) -> ReceiptEnvironment:
    """The environment record a receipt carries for a run (the agent's and a replay's)."""
    return ReceiptEnvironment(
        device=env.device,
        gpu=env.gpu,
        driver=env.driver,
        python=env.python,
        torch=env.torch,
        diffusers=env.diffusers,
        transformers=env.transformers,
        runtime=runtime if runtime in ("docker", "ray") else "process",
        image_digest=image_digest,
        encoder=env.encoder,
        memory_profile=env.memory_profile,
        numerics=env.numerics,
        context_parallel=env.context_parallel,
    )


def pin_result(store: ContentStore, out_dir: Path, *, fine_tune: bool = False) -> str:
    """Add and pin the result directory; only the result files may be in it."""
    present = {p.name for p in out_dir.iterdir()}
    expected = FINE_TUNE_FILES if fine_tune else RESULT_FILES
    if present != expected:
        raise NodeError(
            f"result directory {out_dir} holds {sorted(present)}, expected {sorted(expected)}",
            fix="the runner wrote unexpected files; check its output_dir handling",
        )
    return str(store.add_path(out_dir))
