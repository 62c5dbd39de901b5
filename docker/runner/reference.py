"""The real CogVideoX-2b architecture with random weights: no hub download, any machine.

What `bench/gpu_check.sh` serves through a node (catalog entry `cogvideox-2b-random`) and
what `bench/pipeline_gpu.py` times. The configs are CogVideoX-2b's own (transformer, 3D
VAE, T5-XXL text encoder, scheduler); only the values are random, which changes nothing
a GPU check or a benchmark measures (shapes, kernels, memory, determinism). ``smoke``
keeps every class and the 226-token text length but shrinks the widths, for CPU runs of
the same code path.

The weights are drawn on the target device and are not reproducible across machines, so
the entry has no committed manifest: `pin_local` writes the manifest of the build at hand
(a local pin, removed again by the GPU check), and a receipt names exactly those files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel

from framecast.runner.tiny import t5_tokenizer
from framecast.shared.catalog import manifest_path
from framecast.shared.catalog.weights import compute_manifest

#: The catalog entry this build serves.
ENTRY_ID = "cogvideox-2b-random"

# CogVideoX-2b's transformer/config.json (THUDM/CogVideoX-2b), the values that shape compute.
TRANSFORMER_2B: dict[str, Any] = {
    "num_attention_heads": 30,
    "attention_head_dim": 64,
    "in_channels": 16,
    "out_channels": 16,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "time_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 30,
    "dropout": 0.0,
    "attention_bias": True,
    "sample_width": 90,
    "sample_height": 60,
    "sample_frames": 49,
    "patch_size": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,
    "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu",
    "norm_elementwise_affine": True,
    "norm_eps": 1e-5,
    "spatial_interpolation_scale": 1.875,
    "temporal_interpolation_scale": 1.0,
    "use_rotary_positional_embeddings": False,
}
# T5 v1.1 XXL encoder (google/t5-v1_1-xxl), CogVideoX's text encoder.
T5_XXL: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": False,
}
SCHEDULER_2B: dict[str, Any] = {
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "timestep_spacing": "trailing",
    "snr_shift_scale": 3.0,
}
#: The widths `smoke` shrinks (classes, layer kinds and the text length stay).
_SMOKE_TRANSFORMER = {
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "num_layers": 2,
    "text_embed_dim": 32,
    "time_embed_dim": 8,
    "sample_width": 8,
    "sample_height": 8,
    "sample_frames": 9,
}
_SMOKE_T5 = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 2}
_SMOKE_VAE = {"block_out_channels": (8, 8, 8, 8), "layers_per_block": 1, "norm_num_groups": 2}


def build_cogvideox_2b(device: str, dtype: torch.dtype, *, smoke: bool, seed: int = 0) -> Any:
    """CogVideoX-2b (or, with `smoke`, the same classes narrowed) with random weights."""
    transformer_cfg = TRANSFORMER_2B | (_SMOKE_TRANSFORMER if smoke else {})
    t5_cfg = T5_XXL | (_SMOKE_T5 if smoke else {})
    vae_cfg: dict[str, Any] = _SMOKE_VAE if smoke else {}  # the class defaults are CogVideoX's
    # Allocate on the device without a CPU-side random init of billions of weights, then
    # fill with small normal values: random but finite, so no kernel takes a NaN path.
    # Any: diffusers and transformers ship without type hints (their modules are nn.Modules).
    with torch.device("meta"):
        transformer: Any = CogVideoXTransformer3DModel(**transformer_cfg)
        vae: Any = AutoencoderKLCogVideoX(**vae_cfg)
        text_encoder: Any = T5EncoderModel(T5Config(**t5_cfg))
    generator = torch.Generator(device=device).manual_seed(seed)
    for module in (transformer, vae, text_encoder):
        module.to_empty(device=device)
        with torch.no_grad():
            for param in module.parameters():
                param.normal_(0.0, 0.02, generator=generator)
            for buffer in module.buffers():
                if buffer.is_floating_point():
                    buffer.zero_()
        module.to(dtype).eval()
    # Non-persistent buffers (sincos position tables) were not materialised by to_empty:
    # recompute them the way the model's __init__ does.
    _rebuild_position_tables(transformer, device, dtype)
    pipe: Any = CogVideoXPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER_2B),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _rebuild_position_tables(transformer: Any, device: str, dtype: torch.dtype) -> None:
    embed = transformer.patch_embed
    if getattr(embed, "use_positional_embeddings", False):
        table = embed._get_positional_embeddings(
            embed.sample_height, embed.sample_width, embed.sample_frames, device=device
        )
        embed.register_buffer("pos_embedding", table.to(dtype), persistent=False)


def save_cogvideox_2b(out: Path, device: str, *, smoke: bool) -> Path:
    """Build and `save_pretrained` into `out` (fp16 on CUDA, as the real repo ships it)."""
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = build_cogvideox_2b(device, dtype, smoke=smoke)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def pin_local(model_dir: Path) -> Path:
    """Write the manifest of the build in `model_dir` as the entry's (a local pin)."""
    path = manifest_path(ENTRY_ID)
    manifest = compute_manifest(model_dir)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
