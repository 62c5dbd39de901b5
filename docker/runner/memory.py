"""Applying a catalog memory profile to a loaded pipeline (docs/protocol.md §4.1).

A profile trades speed for GPU memory: CPU offload (diffusers' model, group or sequential
offload hooks), VAE tiling and slicing, and torchao weight quantization of the denoiser.
Offload and slicing leave the frames bit-identical (the same kernels run on the same
inputs); tiling and quantization change them, which the profile's `numerics` says and the
receipt records. On the CPU only tiling and slicing apply: a profile that needs a GPU is
refused there rather than silently run as something else.
"""

from __future__ import annotations

from typing import Any

import torch

from framecast.shared.catalog.entry import MemoryProfile
from framecast.shared.errors import PipelineError

#: Where a pipeline keeps the model that quantization applies to (the bulk of the weights).
DENOISERS = ("transformer", "unet")


def apply_profile(pipeline: Any, profile: MemoryProfile, device: str, *, entry_id: str) -> None:
    """Move `pipeline` to `device` the way `profile` says (instead of `pipeline.to(device)`)."""
    if profile.needs_gpu and device != "cuda":
        raise PipelineError(
            f"memory profile {profile.name} of {entry_id} ({profile.describe()}) needs a CUDA "
            f"device; this runner runs on {device}",
            fix="run the profile on a GPU node, or choose a profile without offload or "
            "quantization (node.toml `memory_profiles`)",
        )
    if profile.quantization != "none":
        _quantize(pipeline, profile, entry_id)
    vae = getattr(pipeline, "vae", None)
    if profile.vae_tiling and vae is not None:
        vae.enable_tiling()
    if profile.vae_slicing and vae is not None:
        vae.enable_slicing()
    if profile.offload == "model":
        pipeline.enable_model_cpu_offload(device=device)
    elif profile.offload == "sequential":
        pipeline.enable_sequential_cpu_offload(device=device)
    elif profile.offload == "group":
        # Leaf-level groups on a side stream: the next layer's weights move while the
        # current one computes (diffusers' lowest-memory offload at near-model speed).
        pipeline.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=True,
        )
    else:
        pipeline.to(device)


def _quantize(pipeline: Any, profile: MemoryProfile, entry_id: str) -> None:
    try:
        from torchao.quantization import (
            Float8WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError:
        raise PipelineError(
            f"memory profile {profile.name} of {entry_id} quantizes weights with torchao, "
            "which this runner image lacks",
            fix="use the CUDA runner image (docker/runner.cuda.Dockerfile installs torchao) "
            "or another profile",
        ) from None
    config = Int8WeightOnlyConfig() if profile.quantization == "int8" else Float8WeightOnlyConfig()
    denoiser = next(
        (getattr(pipeline, n) for n in DENOISERS if getattr(pipeline, n, None) is not None), None
    )
    if denoiser is None:
        raise PipelineError(
            f"{entry_id}'s pipeline has no transformer or unet to quantize",
            fix="drop quantization from the entry's profile",
        )
    quantize_(denoiser, config)


__all__ = ["DENOISERS", "apply_profile"]
