"""Wan video-to-video: the source video re-generated under the prompt (video-edit).

The maintained route for instruction-guided editing next to Text2Video-Zero's
InstructPix2Pix entry: the source frames are encoded, noised to `EDIT_STRENGTH` of the
schedule and denoised under the prompt, so the edit keeps the source's layout and motion.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from PIL import Image

from framecast.runner.families.call import Call, StepCallback
from framecast.runner.families.flow import flow_kwargs

PIPELINES = ("WanVideoToVideoPipeline",)

#: The part of the noise schedule the edit re-runs (diffusers' example uses 0.7-0.8): a
#: power of two fraction, so the step arithmetic below is exact in floating point.
EDIT_STRENGTH = 0.75


def schedule_steps(steps: int) -> int:
    """The schedule length whose last `EDIT_STRENGTH` part is exactly `steps` steps.

    The pipeline runs ``int(n * strength)`` of ``n`` steps; the signed spec's ``steps`` is
    what runs (and what progress counts), so n is chosen to make the two equal.
    """
    return math.ceil(steps / EDIT_STRENGTH)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    assert call.video is not None  # the entry's task_inputs require inputs.video
    kwargs = flow_kwargs(call, gen, on_step)
    # The frame count is the source video's (checked equal to the spec's on input).
    del kwargs["num_frames"]
    kwargs["num_inference_steps"] = schedule_steps(call.steps)
    return pipe(
        **kwargs,
        video=[Image.fromarray(frame) for frame in call.video],
        strength=EDIT_STRENGTH,
    ).frames[0]
