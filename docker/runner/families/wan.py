"""Wan text-to-video."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback
from framecast.runner.families.flow import flow_kwargs

PIPELINES = ("WanPipeline",)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    return pipe(**flow_kwargs(call, gen, on_step)).frames[0]
