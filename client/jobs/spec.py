"""Building and checking a job's spec before anything is signed: the catalog defaults
filled in, the user's fields checked against the model's entry, the replica flags bounded."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from framecast.shared.catalog import CatalogEntry, default_spec, get_entry
from framecast.shared.errors import SpecError, VerificationFailed
from framecast.shared.mp4 import read_video_info
from framecast.shared.request import MAX_REPLICAS
from framecast.shared.spec import MAX_SEED, GenerationSpec


def guidance_milli(text: str) -> int:
    """``"6.5"`` → 6500, exactly (the signed spec holds integers only)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SpecError(
            f"guidance {text!r} is not a number", field="guidance_milli", fix="e.g. --guidance 6"
        ) from None
    # Checked before any arithmetic: a signalling NaN or an exponent of a million would
    # make Decimal itself raise.
    if not value.is_finite() or value.adjusted() > 6:
        raise SpecError(
            f"guidance {text!r} must be a finite number (at most 3 decimals)",
            field="guidance_milli",
            fix="e.g. --guidance 6.25",
        )
    milli = value.scaleb(3)
    if milli != milli.to_integral_value():
        raise SpecError(
            f"guidance {text!r} must be finite with at most 3 decimals",
            field="guidance_milli",
            fix="e.g. --guidance 6.25",
        )
    return int(milli)


def learning_rate_micro(text: str) -> int:
    """``"1e-4"`` → 100: the learning rate × 10^6, exactly (signed specs hold integers)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SpecError(
            f"learning rate {text!r} is not a number",
            field="fine_tune.learning_rate_micro",
            fix="e.g. --learning-rate 1e-4",
        ) from None
    micro = value * 1_000_000
    if not value.is_finite() or micro != micro.to_integral_value() or micro <= 0:
        raise SpecError(
            f"learning rate {text!r} must be positive and a whole multiple of 1e-6",
            field="fine_tune.learning_rate_micro",
            fix="e.g. --learning-rate 0.0001",
        )
    return int(micro)


def fine_tune_fields(
    entry: CatalogEntry,
    *,
    dataset_cid: str,
    rank: int | None = None,
    alpha: int | None = None,
    learning_rate: str | None = None,
    modules: list[str] | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """The spec fields of a fine-tune job, the entry's fine-tune defaults filled in."""
    if entry.fine_tune is None:
        raise SpecError(
            f"model {entry.id} cannot be fine-tuned (tasks: {', '.join(entry.tasks)})",
            field="task",
            fix="pick a model whose tasks list fine-tune (`framecast models`)",
        )
    defaults = entry.fine_tune.defaults
    return {
        "task": "fine-tune",
        "steps": steps if steps is not None else defaults.steps,
        "inputs": {"dataset": dataset_cid},
        "fine_tune": {
            "rank": rank if rank is not None else defaults.rank,
            "alpha": alpha if alpha is not None else defaults.alpha,
            "learning_rate_micro": learning_rate_micro(learning_rate)
            if learning_rate is not None
            else defaults.learning_rate_micro,
            "modules": sorted(set(modules)) if modules else list(defaults.modules),
        },
    }


def build_spec(
    *,
    model: str,
    prompt: str,
    negative: str | None = None,
    seed: int | None = None,
    num_frames: int | None = None,
    fps: int | None = None,
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    guidance: str | None = None,
    style: str | None = None,
    image_cid: str | None = None,
    video_cid: str | None = None,
    control_cid: str | None = None,
    lora_cid: str | None = None,
    lora_scale_milli: int = 1000,
    fine_tune: dict[str, Any] | None = None,
) -> tuple[GenerationSpec, CatalogEntry]:
    """The spec the user asked for, catalog defaults filled in, checked against the entry.

    Raises `UnknownModel` (listing ids) or `SpecError` (naming the field and its bound)
    before anything is signed. Without ``seed`` a random one is drawn (and shown), as a
    fixed default would make every "new" video the same.
    """
    entry = get_entry(model)
    if lora_cid is not None and style is not None:
        raise SpecError(
            "--style and --lora are two styles; a job takes one",
            field="style",
            fix="drop one of them",
        )
    fields: dict[str, Any] = {
        "negative_prompt": negative or "",
        "seed": seed if seed is not None else secrets.randbelow(2**32),
        "style": {"lora": lora_cid, "scale_milli": lora_scale_milli} if lora_cid else style,
    }
    inputs = {
        name: cid
        for name, cid in (("image", image_cid), ("video", video_cid), ("control", control_cid))
        if cid is not None
    }
    if inputs:
        fields.update(task=_task_for(entry, set(inputs)), inputs=inputs)
    given = {
        "num_frames": num_frames,
        "fps": fps,
        "width": width,
        "height": height,
        "steps": steps,
        "guidance_milli": guidance_milli(guidance) if guidance is not None else None,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if fine_tune is not None:
        # `fine_tune_fields` output; it fills `steps` (optimiser steps) itself.
        fields.update(fine_tune)
    if fields["seed"] > MAX_SEED:
        raise SpecError(
            f"seed {fields['seed']} is above {MAX_SEED}", field="seed", fix="use a smaller seed"
        )
    spec = default_spec(entry.id, prompt, **fields)
    return spec, entry


#: What each input is called on the command line, and the kind of model that takes it.
_INPUT_FLAGS = {
    "image": ("--image", "input image", "an image-to-video model"),
    "video": ("--video", "source video", "a video-edit model (e.g. wan2.1-v2v-1.3b)"),
    "control": ("--control", "control video", "a controlled model (e.g. wan2.1-vace-1.3b)"),
}


def _task_for(entry: CatalogEntry, given: set[str]) -> str:
    """The entry's task whose required inputs are exactly the given ones."""
    for task in entry.tasks:
        if set(entry.task_inputs.get(task, [])) == given:
            return task
    wanted = {name for task in entry.tasks for name in entry.task_inputs.get(task, [])}
    name = sorted(given - wanted)[0] if given - wanted else sorted(given)[0]
    flag, what, kind = _INPUT_FLAGS[name]
    raise SpecError(
        f"model {entry.id} takes no {what} (tasks: {', '.join(entry.tasks)})",
        field=f"inputs.{name}",
        fix=f"drop {flag} or pick {kind}",
    )


def check_input_video(path: Path, name: str, spec: GenerationSpec) -> None:
    """A control / source video must hold one frame per output frame at the output size.

    The runner refuses anything else (it never resamples what conditions a signed job), so
    the client says so before signing, from the MP4's boxes (no decoder needed here).
    """
    flag, what, _kind = _INPUT_FLAGS[name]
    try:
        info = read_video_info(path)
    except VerificationFailed:
        raise SpecError(
            f"{what} {path} ({flag}) is not a readable MP4 video",
            field=f"inputs.{name}",
            fix="give an MP4 (H.264) file",
        ) from None
    if (info.num_frames, info.width, info.height) != (spec.num_frames, spec.width, spec.height):
        raise SpecError(
            f"{what} {path.name} (inputs.{name}) has {info.num_frames} frames of "
            f"{info.width}x{info.height}; the spec asks for {spec.num_frames} frames of "
            f"{spec.width}x{spec.height}",
            field=f"inputs.{name}",
            fix="give one input frame per output frame at the output size, or set "
            "--frames / --width / --height to the video's",
            frames=info.num_frames,
            width=info.width,
            height=info.height,
        )


def check_replicas(replicas: int, perceptual: bool) -> None:
    """Bounds of ``--replicas`` / ``--perceptual``, checked before anything is signed."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise SpecError(
            f"replicas must be in 1..{MAX_REPLICAS} (got {replicas})",
            field="replicas",
            fix=f"pass --replicas 1 for one provider, or 2..{MAX_REPLICAS} independent providers",
        )
    if perceptual and replicas == 1:
        # Perceptual agreement is a rule for comparing replicas: one result has nothing to
        # agree with, so the flag would be signed but meaningless.
        raise SpecError(
            "perceptual agreement needs at least 2 replicas",
            field="perceptual",
            fix="add --replicas 2 (or more), or drop --perceptual",
        )
