"""LoRAs: a style's pinned file or a spec's LoRA by CID, checked, loaded for one job,
unloaded afterwards."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framecast.shared.catalog import Style
from framecast.shared.catalog.weights import LORA_DIR, verify_file
from framecast.shared.errors import SpecError
from framecast.shared.ipfs import cid_of_path
from framecast.shared.ipfs.cid import CID
from framecast.shared.spec import LoraStyle


@dataclass(frozen=True)
class Adapter:
    """A LoRA file to apply for one job: where, at what scale, and what the receipt says."""

    path: Path
    scale: float
    label: str
    receipt_id: str


def lora_path(model_dir: str, style: Style) -> Path:
    """The style's LoRA file, checked against its pinned sha256 (before any compute)."""
    assert style.lora is not None
    path = Path(model_dir) / LORA_DIR / style.lora.file
    pin = style.lora.cid or f"{style.lora.repo}@{style.lora.revision}"
    verify_file(
        path,
        style.lora.sha256,
        label=f"LoRA {style.lora.file} of style {style.id}",
        fix=f"fetch {pin} to {path}: `framecast node models pull {style.lora.base_model}` "
        "pulls the LoRAs of every style made for the model",
    )
    return path


def style_adapter(model_dir: str, style: Style) -> Adapter:
    """The catalog style's LoRA as an `Adapter`."""
    assert style.lora is not None
    return Adapter(
        path=lora_path(model_dir, style),
        scale=style.lora.scale_milli / 1000,
        label=f"style {style.id}",
        receipt_id=style.receipt_id(),
    )


def cid_adapter(inputs_dir: str | None, lora: LoraStyle, denoiser: Any) -> Adapter:
    """The spec's LoRA by CID, fetched by the node into the inputs directory: its bytes
    re-hashed to the CID, its tensors checked against the base model's modules."""
    path = Path(inputs_dir or "") / lora.lora
    if inputs_dir is None or not path.is_file():
        raise SpecError(
            f"LoRA {lora.lora} was not fetched as a file",
            field="style.lora",
            fix="name the CID of a lora.safetensors file (a fine-tune job's `lora_cid`)",
        )
    # The store verified every block; recomputing the CID also rules out a wrong file here.
    if CID.parse(cid_of_path(path)).to_v1() != CID.parse(lora.lora).to_v1():
        raise SpecError(
            f"the file fetched for LoRA {lora.lora} has another CID",
            field="style.lora",
            fix="the node's store is corrupt; re-fetch the LoRA",
        )
    check_lora_shapes(path, denoiser)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Adapter(
        path=path,
        scale=lora.scale_milli / 1000,
        label=f"LoRA {lora.lora}",
        receipt_id=f"lora:{lora.lora}:{sha}:scale={lora.scale_milli}",
    )


def check_lora_shapes(path: Path, denoiser: Any) -> None:
    """Raise `SpecError` naming the module and both shapes unless every LoRA matrix in
    ``path`` fits a linear layer of ``denoiser`` (the pipeline's transformer)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise SpecError(
            f"LoRA {path.name} is not a safetensors file ({exc})",
            field="style.lora",
            fix="name the CID of a lora.safetensors file",
        ) from None
    if not shapes:
        raise SpecError(f"LoRA {path.name} holds no tensors", field="style.lora")
    modules = dict(denoiser.named_modules())
    for key, shape in sorted(shapes.items()):
        prefix, _, rest = key.partition(".")
        part = "lora_A" if ".lora_A." in rest else "lora_B" if ".lora_B." in rest else None
        if prefix != "transformer" or part is None:
            raise SpecError(
                f"LoRA tensor {key} is not a transformer LoRA matrix",
                field="style.lora",
                fix="use a LoRA trained on this model's transformer (a fine-tune job's)",
            )
        name = rest.split(f".{part}.", 1)[0]
        module = modules.get(name)
        module = getattr(module, "base_layer", module)  # a layer peft wrapped earlier
        if module is None or not hasattr(module, "in_features"):
            raise SpecError(
                f"LoRA adapts module {name}, which the base model does not have as a linear layer",
                field="style.lora",
                fix="use a LoRA trained on this base model",
            )
        if len(shape) != 2:
            raise SpecError(
                f"LoRA tensor {key} has shape {shape}, not a matrix", field="style.lora"
            )
        rank = shape[0] if part == "lora_A" else shape[1]
        expected = (rank, module.in_features) if part == "lora_A" else (module.out_features, rank)
        if shape != expected:
            raise SpecError(
                f"LoRA does not fit module {name}: {part} expected shape {expected}, got {shape}",
                field="style.lora",
                fix="use a LoRA trained on this base model (same architecture)",
            )


@contextmanager
def adapter_applied(pipeline: Any, adapter: Adapter) -> Iterator[None]:
    """Load a LoRA into `pipeline` for one job; always unload it afterwards.

    A warm runner serves the next job with the same pipeline, so the adapter must not
    outlive the job (unloading restores the original modules; nothing was fused).
    """
    if not hasattr(pipeline, "load_lora_weights"):
        raise SpecError(
            f"{adapter.label} is a LoRA but {type(pipeline).__name__} cannot load one",
            field="style",
            fix="choose a style without a LoRA for this model",
        )
    try:
        pipeline.load_lora_weights(str(adapter.path), adapter_name="style")
        pipeline.set_adapters(["style"], adapter_weights=[adapter.scale])
        yield
    finally:
        pipeline.unload_lora_weights()


@contextmanager
def lora_applied(pipeline: Any, path: Path, style: Style) -> Iterator[None]:
    """A catalog style's LoRA for one job (see `adapter_applied`)."""
    assert style.lora is not None
    adapter = Adapter(
        path=path,
        scale=style.lora.scale_milli / 1000,
        label=f"style {style.id}",
        receipt_id=style.receipt_id(),
    )
    with adapter_applied(pipeline, adapter):
        yield
