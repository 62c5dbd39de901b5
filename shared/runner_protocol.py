"""The node ↔ runner protocol (docs/protocol.md §5): JSON lines over the runner's stdio.

The node writes one message per line on the runner's stdin — a `RunRequest`, a
`CancelMessage` or a `ShutdownMessage` — and reads one `RunnerEvent` per line from its
stdout: progress events (one per denoising step), then exactly one terminal event per job
(`succeeded`, `failed` or `canceled`). The runner logs to stderr only. The same bytes flow
through a subprocess pipe (process runtime) and a container's attached stdio (Docker
runtime, `network_mode=none`), so both runtimes share this module and
`framecast.node.runtime.base`.

The JSON Schema of these models is committed in `shared/schemas/runner_protocol.schema.json`
and regenerated with `python -m framecast.shared.runner_protocol --write`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from framecast.shared.spec import GenerationSpec

PROTOCOL_VERSION: Final = 1

JobIdStr = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
JobStatus = Literal["starting", "processing", "succeeded", "failed", "canceled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
ErrorKind = Literal["invalid_input", "weights", "oom", "crash", "timeout", "canceled"]

SCHEMA_PATH = Path(__file__).parent / "schemas" / "runner_protocol.schema.json"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRequest(_Message):
    """One job for the runner: the signed spec and where its files live (runner's view)."""

    type: Literal["run"] = Field("run", description="Message discriminator.")
    protocol: Literal[1] = Field(PROTOCOL_VERSION, description="Runner protocol version.")
    job_id: JobIdStr = Field(description="Job id, echoed in every event of this job.")
    spec: GenerationSpec = Field(description="The generation spec, as signed by the client.")
    model_dir: str = Field(
        min_length=1,
        max_length=4096,
        description="Read-only weights directory as the runner sees it (`from_pretrained`).",
    )
    output_dir: str = Field(
        min_length=1,
        max_length=4096,
        description="Writable directory for video.mp4 and poster.jpg (as the runner sees it).",
    )
    inputs_dir: str | None = Field(
        None,
        max_length=4096,
        description="Directory holding fetched input CIDs, each stored under its CID as name.",
    )
    memory_profile: str | None = Field(
        None,
        max_length=32,
        description="Catalog memory profile to load the model with (None: the entry's first).",
    )


class CancelMessage(_Message):
    """Ask the runner to stop a job at the next denoising step and stay warm."""

    type: Literal["cancel"] = Field("cancel", description="Message discriminator.")
    job_id: JobIdStr = Field(description="The job to cancel.")


class ShutdownMessage(_Message):
    """End the runner after the current job (if any)."""

    type: Literal["shutdown"] = Field("shutdown", description="Message discriminator.")


class RunEnvironment(_Message):
    """What produced the frames; goes into the receipt so a replay can match it."""

    python: str = Field(max_length=64, description="Python version.")
    torch: str = Field(max_length=64, description="torch version.")
    diffusers: str = Field(max_length=64, description="diffusers version.")
    transformers: str = Field(max_length=64, description="transformers version.")
    device: Literal["cpu", "cuda"] = Field(description="Device the pipeline ran on.")
    gpu: str | None = Field(None, max_length=256, description="GPU name, None on CPU.")
    driver: str | None = Field(
        None, max_length=64, description="CUDA runtime version torch was built with."
    )
    deterministic_algorithms: bool = Field(description="torch.use_deterministic_algorithms.")
    tf32: bool = Field(description="Whether TF32 matmul/cudnn was allowed (always False).")
    cudnn_benchmark: bool = Field(description="cudnn autotuning (always False).")
    cublas_workspace_config: str | None = Field(
        None, max_length=32, description="CUBLAS_WORKSPACE_CONFIG the runner ran with."
    )
    torch_threads: int = Field(ge=1, le=4096, description="torch intra-op threads.")
    context_parallel: int | None = Field(
        None, ge=2, le=16, description="GPUs the job ran over (context parallelism), else None."
    )
    encoder: str = Field(max_length=512, description="Pinned encoder settings of video.mp4.")
    memory_profile: str | None = Field(
        None, max_length=32, description="Catalog memory profile the model ran with."
    )
    numerics: str | None = Field(
        None,
        max_length=64,
        description="Numerics class of that profile (`reference`, `int8`, `vae-tiling`, ...).",
    )


class FineTuneOutput(_Message):
    """What a fine-tune job made besides the sample video (files relative to output_dir)."""

    lora: Literal["lora.safetensors"] = Field(
        "lora.safetensors", description="The trained adapter, diffusers LoRA format."
    )
    log: Literal["train_log.jsonl"] = Field(
        "train_log.jsonl", description="One JSON line per optimiser step: step, loss."
    )
    lora_sha256: Sha256Hex = Field(description="sha256 of lora.safetensors' bytes.")
    sample_frames_digest: Sha256Hex = Field(
        description="Frames digest of the sample video generated with the new LoRA."
    )
    steps: int = Field(ge=1, le=1_000_000, description="Optimiser steps run.")
    clips: int = Field(ge=1, le=1_000_000, description="Clips in the dataset.")
    final_loss: float = Field(ge=0.0, description="Loss of the last step.")


class RunOutput(_Message):
    """A finished job's files (relative to output_dir) and their digests."""

    video: Literal["video.mp4"] = Field("video.mp4", description="The encoded video.")
    poster: Literal["poster.jpg"] = Field("poster.jpg", description="First frame as JPEG.")
    video_sha256: Sha256Hex = Field(description="sha256 of video.mp4's bytes.")
    frames_digest: Sha256Hex = Field(
        description=(
            "sha256 over the raw uint8 RGB frames fed to the encoder, in order, row-major "
            "HxWx3 each: independent of the encoder build. For a fine-tune job: the sha256 "
            "of lora.safetensors (the trained artifact is what replicas and replays compare)."
        )
    )
    num_frames: int = Field(ge=1, le=100_000, description="Frames in the video.")
    width: int = Field(ge=1, le=16_384, description="Frame width in pixels.")
    height: int = Field(ge=1, le=16_384, description="Frame height in pixels.")
    fps: int = Field(ge=1, le=1000, description="Frames per second.")
    style: str | None = Field(
        None,
        max_length=256,
        description="Style preset / LoRA applied (id@revision:sha256), for the receipt.",
    )
    environment: RunEnvironment = Field(description="Software and hardware that ran the job.")
    fine_tune: FineTuneOutput | None = Field(None, description="Set for a fine-tune job only.")


class RunError(_Message):
    """Why a job did not succeed; `fix` tells the user what to do."""

    kind: ErrorKind = Field(description="Failure class; the node maps it to a job state.")
    message: str = Field(max_length=8192, description="What went wrong, with context.")
    fix: str | None = Field(None, max_length=1024, description="What to do about it.")


class RunnerEvent(_Message):
    """The versioned envelope the runner writes, one per line."""

    protocol: Literal[1] = Field(PROTOCOL_VERSION, description="Runner protocol version.")
    job_id: JobIdStr = Field(description="The job this event belongs to.")
    status: JobStatus = Field(description="Job status after this event.")
    progress: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of denoising done.")
    output: RunOutput | None = Field(None, description="Set on `succeeded` only.")
    error: RunError | None = Field(None, description="Set on `failed` and `canceled`.")
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Timings in seconds (load_s, run_s, encode_s, total_s) and counters.",
    )

    @property
    def terminal(self) -> bool:
        """True for the one last event of a job."""
        return self.status in TERMINAL_STATUSES


InboundMessage = Annotated[
    RunRequest | CancelMessage | ShutdownMessage, Field(discriminator="type")
]
_INBOUND: TypeAdapter[RunRequest | CancelMessage | ShutdownMessage] = TypeAdapter(InboundMessage)


def encode_line(message: BaseModel) -> bytes:
    """One protocol message as a JSON line (no embedded newlines: JSON escapes them)."""
    return message.model_dump_json(exclude_none=False).encode("utf-8") + b"\n"


def decode_inbound(line: bytes | str) -> RunRequest | CancelMessage | ShutdownMessage:
    """Parse one line the node wrote (raises pydantic.ValidationError on bad input)."""
    return _INBOUND.validate_json(line)


def decode_event(line: bytes | str) -> RunnerEvent:
    """Parse one line the runner wrote (raises pydantic.ValidationError on bad input)."""
    return RunnerEvent.model_validate_json(line)


def failed_event(
    job_id: str, kind: ErrorKind, message: str, fix: str | None = None, **metrics: float
) -> RunnerEvent:
    """A terminal event for a job that did not succeed (`canceled` for kind=canceled)."""
    return RunnerEvent(
        job_id=job_id,
        status="canceled" if kind == "canceled" else "failed",
        error=RunError(kind=kind, message=message[-8192:], fix=fix),
        metrics=metrics,
    )


def json_schema() -> dict[str, Any]:
    """One JSON Schema document covering every message in both directions."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "framecast runner protocol",
        "description": __doc__.split("\n\n")[0] if __doc__ else "",
        "x-protocol-version": PROTOCOL_VERSION,
        "oneOf": [
            {"$ref": "#/$defs/RunRequest"},
            {"$ref": "#/$defs/CancelMessage"},
            {"$ref": "#/$defs/ShutdownMessage"},
            {"$ref": "#/$defs/RunnerEvent"},
        ],
        "$defs": _collect_defs(),
    }


def _collect_defs() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in (RunRequest, CancelMessage, ShutdownMessage, RunnerEvent):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return dict(sorted(defs.items()))


def schema_text() -> str:
    """The committed schema file's exact contents."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m framecast.shared.runner_protocol --write|--check`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the schema file")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
        return 0
    current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
    if current != schema_text():
        print(
            f"{SCHEMA_PATH} is stale; run `python -m framecast.shared.runner_protocol --write`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
