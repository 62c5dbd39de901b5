"""ControlNet video: Stable Diffusion + ControlNet, one control map per output frame."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback, on_step_end
from framecast.runner.families.frame_batch import cross_frame_attention, frame_batch

PIPELINES = ("StableDiffusionControlNetPipeline",)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    cross_frame_attention(pipe, 2 if call.guidance > 1 else 1)
    out = pipe(
        **frame_batch(pipe, call, gen),
        height=call.height,
        width=call.width,
        callback_on_step_end=on_step_end(on_step),
    )
    return out.images
