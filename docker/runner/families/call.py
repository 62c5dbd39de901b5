"""What every family adapter takes: one `Call`, a seeded generator and a step callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

StepCallback = Callable[[], None]


@dataclass(frozen=True)
class Call:
    """One pipeline invocation: prompts, size, steps and (for I2V) the conditioning image."""

    prompt: str
    negative_prompt: str
    num_frames: int
    width: int
    height: int
    fps: int
    steps: int
    guidance: float
    max_tokens: int
    image: Image.Image | None = None
    #: Control maps or the source video, one uint8 frame per output frame.
    video: np.ndarray | None = None


#: A family's ``run``: the loaded pipeline, the call, the generator, the step callback.
CallAdapter = Callable[[Any, Call, torch.Generator, StepCallback], Any]


def on_step_end(on_step: StepCallback) -> Callable[..., dict[str, Any]]:
    """diffusers' `callback_on_step_end`: report the step, change no tensors (empty dict)."""

    def callback(*_args: Any) -> dict[str, Any]:
        on_step()
        return {}

    return callback
