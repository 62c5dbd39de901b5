"""InstructPix2Pix video editing: every source frame edited by the prompt."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback, on_step_end
from framecast.runner.families.frame_batch import cross_frame_attention, frame_batch

PIPELINES = ("StableDiffusionInstructPix2PixPipeline",)

#: How strongly the edit sticks to the source frame (InstructPix2Pix's default).
IMAGE_GUIDANCE = 1.5


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # Text and image guidance stack three copies of the frames (InstructPix2Pix's rule:
    # guidance_scale > 1 and image_guidance_scale >= 1).
    cross_frame_attention(pipe, 3 if call.guidance > 1 else 1)
    out = pipe(
        **frame_batch(pipe, call, gen),
        image_guidance_scale=IMAGE_GUIDANCE,
        callback_on_step_end=on_step_end(on_step),
    )
    return out.images
