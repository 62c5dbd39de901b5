"""LTX-Video."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback
from framecast.runner.families.flow import flow_kwargs

PIPELINES = ("LTXPipeline",)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # LTX scales its rotary position embedding in time by the frame rate, so the signed
    # fps is part of what is generated, not only of the container.
    return pipe(**flow_kwargs(call, gen, on_step), frame_rate=call.fps).frames[0]
