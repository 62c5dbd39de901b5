"""The call interface the flow-matching video pipelines (LTX-Video, Wan) share."""

from __future__ import annotations

from typing import Any

import torch

from framecast.runner.families.call import Call, StepCallback, on_step_end


def flow_kwargs(call: Call, gen: torch.Generator, on_step: StepCallback) -> dict[str, Any]:
    # LTX-Video and Wan share the callback_on_step_end / max_sequence_length interface.
    return {
        "prompt": call.prompt,
        "negative_prompt": call.negative_prompt or None,
        "num_frames": call.num_frames,
        "height": call.height,
        "width": call.width,
        "num_inference_steps": call.steps,
        "guidance_scale": call.guidance,
        "generator": gen,
        "output_type": "np",
        "max_sequence_length": call.max_tokens,
        "callback_on_step_end": on_step_end(on_step),
    }
