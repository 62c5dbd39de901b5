"""The generation spec and its canonical encoding (docs/protocol.md §3).

The spec travels in calldata as canonical JSON — sorted keys, no whitespace, UTF-8, no
floats — and the client signs ``keccak256`` of those bytes. Canonical means unique: parsing
rejects any byte string that does not re-encode to itself, so one spec has exactly one
signed form. Bounds here are the protocol's outer limits; a model's catalog entry narrows
them (``framecast.shared.catalog``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from eth_utils.crypto import keccak
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from framecast.shared.errors import SpecError

SPEC_VERSION = 1
#: The contract rejects longer specs (JobMarket.MAX_SPEC_BYTES).
MAX_SPEC_BYTES = 4096
#: Seeds stay within 2^53 so every JSON implementation reads them exactly.
MAX_SEED = 2**53 - 1

Task = Literal["text-to-video", "image-to-video", "video-edit", "long-video", "fine-tune"]
TASKS: tuple[str, ...] = (
    "text-to-video",
    "image-to-video",
    "video-edit",
    "long-video",
    "fine-tune",
)
#: The one task that trains instead of generating (its result is a LoRA plus a sample).
FINE_TUNE = "fine-tune"
#: Denoiser modules a fine-tune job may adapt (attention projections and the feed-forward).
LoraModule = Literal["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"]
LORA_MODULES: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")

ModelIdStr = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
# A CID string (base32 CIDv1 or base58btc CIDv0); content verification happens on fetch.
CidStr = Annotated[
    str, StringConstraints(pattern=r"^(b[a-z2-7]{20,120}|Qm[1-9A-HJ-NP-Za-km-z]{44})$")
]


class SpecInputs(BaseModel):
    """Content-addressed inputs of a job: init image, source video, control frames."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    image: CidStr | None = Field(None, description="CID of the init image (image-to-video).")
    video: CidStr | None = Field(None, description="CID of the source video (video-edit).")
    control: CidStr | None = Field(
        None, description="CID of the control frames (pose or edge maps) for controlled models."
    )
    dataset: CidStr | None = Field(
        None,
        description="CID of the UnixFS dataset directory (clips + captions.jsonl) a fine-tune "
        "job trains on (`framecast dataset pack`).",
    )

    def cids(self) -> list[str]:
        """The CIDs a runner needs fetched before it starts, in a fixed order."""
        return [c for c in (self.image, self.video, self.control, self.dataset) if c]


class LoraStyle(BaseModel):
    """A generation style that is a LoRA named by the CID of its `.safetensors` file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    lora: CidStr = Field(description="CID of the LoRA file (e.g. a fine-tune job's result).")
    scale_milli: int = Field(1000, ge=0, le=10_000, description="LoRA scale × 1000.")


class FineTuneParams(BaseModel):
    """The hyperparameters of a fine-tune job beyond the shared fields.

    The shared fields keep their meaning where they can: `steps` are optimiser steps,
    `num_frames`/`width`/`height` the size of every clip (and of the sample video), `seed`
    seeds the adapter's initialisation, the data order and the noise, and `prompt` is the
    sample video's prompt. Bounds per model: the catalog entry's `fine_tune` table.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    rank: int = Field(ge=1, le=256, description="LoRA rank r.")
    alpha: int = Field(ge=1, le=1024, description="LoRA alpha (the update is scaled alpha/r).")
    learning_rate_micro: int = Field(
        ge=1,
        le=100_000,
        description="AdamW learning rate × 10^6 (integers only: 100 is 1e-4).",
    )
    modules: list[LoraModule] = Field(
        min_length=1, max_length=6, description="Denoiser modules the LoRA adapts, sorted."
    )

    @model_validator(mode="after")
    def _sorted_modules(self) -> FineTuneParams:
        # One spelling per set of modules, so equal jobs have equal signed bytes.
        if self.modules != sorted(set(self.modules)):
            raise ValueError("fine_tune.modules must be sorted and without repeats")
        return self


class GenerationSpec(BaseModel):
    """What the client asks for; signed as canonical JSON."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1] = Field(default=1, description="Spec format version.")
    task: Task = Field("text-to-video", description="What kind of generation.")
    model: ModelIdStr = Field(description="Catalog id of the model, e.g. `cogvideox-2b`.")
    prompt: str = Field(min_length=1, max_length=2000, description="Text prompt.")
    negative_prompt: str = Field("", max_length=2000, description="What to avoid.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Generator seed; same seed, same frames.")
    num_frames: int = Field(ge=1, le=1024, description="Frames in the output video.")
    fps: int = Field(ge=1, le=120, description="Frames per second of the output video.")
    width: int = Field(ge=16, le=4096, description="Output width in pixels.")
    height: int = Field(ge=16, le=4096, description="Output height in pixels.")
    steps: int = Field(ge=1, le=500, description="Denoising steps.")
    guidance_milli: int = Field(
        ge=0, le=100_000, description="Classifier-free guidance scale × 1000 (integers only)."
    )
    style: ModelIdStr | LoraStyle | None = Field(
        None, description="Named catalog style, or `{lora: CID, scale_milli}` for a LoRA by CID."
    )
    inputs: SpecInputs = Field(default_factory=SpecInputs, description="Input CIDs.")
    fine_tune: FineTuneParams | None = Field(
        None, description="Hyperparameters of a fine-tune job (task `fine-tune` only)."
    )

    @model_validator(mode="after")
    def _task_fields(self) -> GenerationSpec:
        if self.task == FINE_TUNE:
            if self.fine_tune is None:
                raise ValueError("a fine-tune job needs fine_tune (rank, alpha, ...)")
            if self.inputs.dataset is None:
                raise ValueError("a fine-tune job needs inputs.dataset (a dataset CID)")
            if self.style is not None:
                raise ValueError("a fine-tune job takes no style")
        else:
            if self.fine_tune is not None:
                raise ValueError("fine_tune is for task fine-tune only")
            if self.inputs.dataset is not None:
                raise ValueError("inputs.dataset is for task fine-tune only")
        return self

    @property
    def style_id(self) -> str | None:
        """The named catalog style, if the style is one (not a LoRA by CID)."""
        return self.style if isinstance(self.style, str) else None

    @property
    def lora_style(self) -> LoraStyle | None:
        """The LoRA-by-CID style, if the style is one."""
        return self.style if isinstance(self.style, LoraStyle) else None

    def input_cids(self) -> list[str]:
        """Every CID the provider must hold before claiming: inputs, then a style's LoRA."""
        lora = self.lora_style
        return [*self.inputs.cids(), *([lora.lora] if lora is not None else [])]

    def canonical_json(self) -> bytes:
        """The unique signed encoding: sorted keys, no whitespace, UTF-8, nulls omitted."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    def spec_hash(self) -> bytes:
        """keccak256 of the canonical JSON: the `specHash` the client signs."""
        return keccak(self.canonical_json())

    def model_id(self) -> bytes:
        """keccak256 of the model's catalog id: the `modelId` the client signs."""
        return model_id(self.model)

    @property
    def work_units(self) -> int:
        """frames × width × height × steps: what providers price against."""
        return self.num_frames * self.width * self.height * self.steps


def model_id(catalog_id: str) -> bytes:
    """`modelId = keccak256(id)` (docs/protocol.md §4)."""
    return keccak(catalog_id.encode("utf-8"))


def canonical_json(value: Any) -> bytes:
    """RFC 8785-style JSON for values without floats: sorted keys, no whitespace, UTF-8.

    Floats are refused outright: a signed number must be an integer, so NaN, Infinity and
    the many spellings of one float cannot exist in a signed spec.
    """
    _reject_floats(value, "$")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _reject_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise SpecError(
            f"{path} is a float ({value!r}); signed numbers must be integers",
            field=path,
            fix="use an integer field such as guidance_milli (guidance × 1000)",
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(f"{path} has a non-string key {key!r}", field=path)
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def parse_spec(data: Mapping[str, Any]) -> GenerationSpec:
    """Validate a spec from plain data, turning pydantic's errors into one `SpecError`."""
    try:
        spec = GenerationSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise spec_error_from(exc) from None
    _check_size(spec)
    return spec


def decode_spec(raw: bytes) -> GenerationSpec:
    """Parse spec bytes from calldata, accepting only the canonical encoding."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            f"spec is {len(raw)} bytes; the limit is {MAX_SPEC_BYTES}",
            field="spec",
            fix="shorten the prompt or negative_prompt",
        )
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=_float_refused)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"spec is not UTF-8 JSON: {exc}", field="spec") from None
    if not isinstance(data, dict):
        raise SpecError("spec must be a JSON object", field="spec")
    spec = parse_spec(data)
    if spec.canonical_json() != raw:
        raise SpecError(
            "spec bytes are not in canonical form (sorted keys, no whitespace, nulls omitted)",
            field="spec",
            fix="encode the spec with GenerationSpec.canonical_json()",
        )
    return spec


def _float_refused(text: str) -> Any:
    raise SpecError(
        f"spec contains the float {text}; signed numbers must be integers", field="spec"
    )


def _check_size(spec: GenerationSpec) -> None:
    size = len(spec.canonical_json())
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"canonical spec is {size} bytes; the contract accepts at most {MAX_SPEC_BYTES}",
            field="prompt",
            fix="shorten the prompt or negative_prompt",
        )


def spec_error_from(exc: ValidationError) -> SpecError:
    """One readable `SpecError` from pydantic's list: the first field, its value and bound."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "spec"
    bound = first.get("ctx") or {}
    detail = first["msg"]
    if bound:
        detail += " (" + ", ".join(f"{k}={v}" for k, v in bound.items() if k != "error") + ")"
    more = f" and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return SpecError(f"spec field `{field}`: {detail}{more}", field=field)
