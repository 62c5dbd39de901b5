"""Building and checking a job's spec before anything is signed: the catalog defaults
filled in, the user's fields checked against the model's entry, the replica flags bounded."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from framecast.shared.catalog import CatalogEntry, default_spec, get_entry
from framecast.shared.errors import SpecError
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
) -> tuple[GenerationSpec, CatalogEntry]:
    """The spec the user asked for, catalog defaults filled in, checked against the entry.

    Raises `UnknownModel` (listing ids) or `SpecError` (naming the field and its bound)
    before anything is signed. Without ``seed`` a random one is drawn (and shown), as a
    fixed default would make every "new" video the same.
    """
    entry = get_entry(model)
    fields: dict[str, Any] = {
        "negative_prompt": negative or "",
        "seed": seed if seed is not None else secrets.randbelow(2**32),
        "style": style,
    }
    if image_cid is not None:
        task = next((t for t in entry.tasks if "image" in entry.task_inputs.get(t, [])), None)
        if task is None:
            raise SpecError(
                f"model {entry.id} takes no input image (tasks: {', '.join(entry.tasks)})",
                field="inputs.image",
                fix="drop --image or pick an image-to-video model",
            )
        fields.update(task=task, inputs={"image": image_cid})
    given = {
        "num_frames": num_frames,
        "fps": fps,
        "width": width,
        "height": height,
        "steps": steps,
        "guidance_milli": guidance_milli(guidance) if guidance is not None else None,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if fields["seed"] > MAX_SEED:
        raise SpecError(
            f"seed {fields['seed']} is above {MAX_SEED}", field="seed", fix="use a smaller seed"
        )
    spec = default_spec(entry.id, prompt, **fields)
    return spec, entry


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
