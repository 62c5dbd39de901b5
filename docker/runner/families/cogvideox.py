"""CogVideoX, text-to-video and image-to-video (the image rides along as ``image``)."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback, on_step_end

PIPELINES = ("CogVideoXPipeline", "CogVideoXImageToVideoPipeline")


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    extra = {"image": call.image} if call.image is not None else {}
    out = pipe(
        prompt=call.prompt,
        negative_prompt=call.negative_prompt or None,
        num_frames=call.num_frames,
        height=call.height,
        width=call.width,
        num_inference_steps=call.steps,
        guidance_scale=call.guidance,
        generator=gen,
        output_type="np",
        max_sequence_length=call.max_tokens,
        callback_on_step_end=on_step_end(on_step),
        **extra,
    )
    return out.frames[0]
