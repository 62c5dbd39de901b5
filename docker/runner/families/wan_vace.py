"""Wan VACE: text-to-video under a control video (pose, depth, edge or flow maps).

The maintained route for what Text2Video-Zero's ControlNet entries do: one control frame
per output frame, passed as VACE's ``video`` with no mask, so every pixel is generated and
the whole frame follows the control signal.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from framecast.runner.families.call import Call, StepCallback
from framecast.runner.families.flow import flow_kwargs

PIPELINES = ("WanVACEPipeline",)

#: How strongly the control blocks steer the denoiser (VACE's default).
CONDITIONING_SCALE = 1.0


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    assert call.video is not None  # the entry's task_inputs require inputs.control
    return pipe(
        **flow_kwargs(call, gen, on_step),
        video=[Image.fromarray(frame) for frame in call.video],
        conditioning_scale=CONDITIONING_SCALE,
    ).frames[0]
