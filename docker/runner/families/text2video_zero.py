"""Text2Video-Zero: an image diffusion model with motion injected into its latents."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback

PIPELINES = ("TextToVideoZeroPipeline",)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # t0/t1 are the timestep indices between which motion is injected; they must lie inside
    # the schedule, so they are derived from the step count (the paper's 44/47 of 50).
    t1 = max(1, round(call.steps * 47 / 50) - 1)
    t0 = max(0, min(t1 - 1, round(call.steps * 44 / 50) - 1))
    out = pipe(
        prompt=call.prompt,
        negative_prompt=call.negative_prompt or None,
        video_length=call.num_frames,
        height=call.height,
        width=call.width,
        num_inference_steps=call.steps,
        guidance_scale=call.guidance,
        generator=gen,
        output_type="np",
        t0=t0,
        t1=t1,
        callback=lambda *_args: on_step(),
        callback_steps=1,
    )
    return out.images
