"""LTX-2: joint audio-video generation; the runner delivers the video frames.

LTX-2 also denoises an audio track. The result format (docs/protocol.md §7) carries one
silent MP4 and its frames digest, so the audio is generated (it shares the denoising) but
not delivered.
"""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback
from framecast.runner.families.flow import flow_kwargs

PIPELINES = ("LTX2Pipeline",)


def run(pipe: Any, call: Call, gen: torch.Generator, on_step: StepCallback) -> Any:
    # LTX-2 scales its rotary position embedding in time by the frame rate, as LTX-Video
    # does, so the signed fps shapes the frames.
    return pipe(**flow_kwargs(call, gen, on_step), frame_rate=call.fps).frames[0]
