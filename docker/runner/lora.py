"""A style's LoRA: its pinned file checked, loaded for one job, unloaded afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from framecast.shared.catalog import Style
from framecast.shared.catalog.weights import LORA_DIR, verify_file
from framecast.shared.errors import SpecError


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


@contextmanager
def lora_applied(pipeline: Any, path: Path, style: Style) -> Iterator[None]:
    """Load the style's LoRA into `pipeline` for one job; always unload it afterwards.

    A warm runner serves the next job with the same pipeline, so the adapter must not
    outlive the job (unloading restores the original modules; nothing was fused).
    """
    assert style.lora is not None
    if not hasattr(pipeline, "load_lora_weights"):
        raise SpecError(
            f"style {style.id} has a LoRA but {type(pipeline).__name__} cannot load one",
            field="style",
            fix="choose a style without a LoRA for this model",
        )
    try:
        pipeline.load_lora_weights(str(path), adapter_name="style")
        pipeline.set_adapters(["style"], adapter_weights=[style.lora.scale_milli / 1000])
        yield
    finally:
        pipeline.unload_lora_weights()
