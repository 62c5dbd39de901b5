"""A job's conditioning inputs, read from its inputs directory and checked against the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from framecast.runner.video import read_video
from framecast.shared.catalog import CatalogEntry
from framecast.shared.errors import SpecError
from framecast.shared.spec import GenerationSpec


def check_prompt_tokens(pipeline: Any, entry: CatalogEntry, field_name: str, text: str) -> None:
    """Refuse prompts longer than the text encoder takes: no silent truncation."""
    if not text:
        return
    count = len(pipeline.tokenizer(text, add_special_tokens=True)["input_ids"])
    if count > entry.max_prompt_tokens:
        raise SpecError(
            f"{field_name} is {count} tokens; the text encoder of {entry.id} takes at most "
            f"{entry.max_prompt_tokens} (it would be truncated)",
            field=field_name,
            fix=f"shorten the {field_name.replace('_', ' ')}",
            tokens=count,
            max_tokens=entry.max_prompt_tokens,
        )


def load_input_image(inputs_dir: str | None, cid: str, width: int, height: int) -> Image.Image:
    """The init image fetched under its CID, as RGB at the spec's size."""
    if inputs_dir is None or not (Path(inputs_dir) / cid).is_file():
        raise SpecError(
            f"input {cid} is not in the job's inputs directory",
            field="inputs",
            fix="the node must fetch every input CID before running the job",
        )
    with Image.open(Path(inputs_dir) / cid) as image:
        rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
    return rgb


def load_input_video(
    inputs_dir: str | None, cid: str, field_name: str, spec: GenerationSpec
) -> np.ndarray:
    """A control / source video fetched under its CID, checked frame for frame vs the spec.

    No resampling in time or space: one input frame per output frame at the output size,
    so what the signed spec asks for is exactly what conditions the generation.
    """
    path = Path(inputs_dir) / cid if inputs_dir is not None else None
    if path is None or not path.is_file():
        raise SpecError(
            f"input {cid} ({field_name}) is not in the job's inputs directory",
            field=field_name,
            fix="the node must fetch every input CID before running the job",
        )
    try:
        frames = read_video(path)
    except ValueError as exc:
        raise SpecError(
            f"{field_name} {cid} is not a readable video ({exc})",
            field=field_name,
            fix="upload an MP4 (H.264) video",
        ) from None
    count, height, width = frames.shape[:3]
    if count != spec.num_frames or (width, height) != (spec.width, spec.height):
        raise SpecError(
            f"{field_name} {cid} has {count} frames of {width}x{height}; the spec asks for "
            f"{spec.num_frames} frames of {spec.width}x{spec.height}",
            field=field_name,
            fix="give one input frame per output frame at the output size, or change the spec",
            frames=count,
            width=width,
            height=height,
        )
    return frames
