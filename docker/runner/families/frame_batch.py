"""Image pipelines run over a video: one batch of frames sharing one noise, with
Text2Video-Zero's cross-frame attention (ControlNet and InstructPix2Pix video)."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from framecast.runner.families.call import Call


def cross_frame_attention(pipe: Any, batch_size: int) -> None:
    # Text2Video-Zero's cross-frame attention: every frame attends to the first frame's keys
    # and values, which keeps appearance consistent. `batch_size` is how many copies of the
    # frame batch guidance stacks (1 without guidance), so it is set per call.
    from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
        CrossFrameAttnProcessor,
    )

    for module in (pipe.unet, getattr(pipe, "controlnet", None)):
        if module is not None:
            module.set_attn_processor(CrossFrameAttnProcessor(batch_size=batch_size))


def frame_batch(pipe: Any, call: Call, gen: torch.Generator) -> dict[str, Any]:
    """Arguments that turn an image pipeline into a per-frame batch sharing one noise."""
    assert call.video is not None
    count = len(call.video)
    # The same initial noise for every frame (as Text2Video-Zero's ControlNet recipe does):
    # frames then differ only by their conditioning.
    shape = (
        1,
        pipe.vae.config.latent_channels,
        call.height // pipe.vae_scale_factor,
        call.width // pipe.vae_scale_factor,
    )
    latents = torch.randn(shape, generator=gen, dtype=torch.float32).repeat(count, 1, 1, 1)
    return {
        "prompt": [call.prompt] * count,
        "negative_prompt": [call.negative_prompt] * count if call.negative_prompt else None,
        "image": [Image.fromarray(frame) for frame in call.video],
        "num_inference_steps": call.steps,
        "guidance_scale": call.guidance,
        "generator": gen,
        "latents": latents.to(pipe.device, pipe.unet.dtype),
        "output_type": "np",
    }
