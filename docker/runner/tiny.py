"""Tiny real pipelines for tests and the demo: real diffusers classes, random weights.

Each builder constructs the family's actual pipeline from small configs, initialises it
from a fixed seed and writes it with `save_pretrained`; the runner then loads it with
`from_pretrained` exactly like real weights, and the catalog pins the resulting manifest.
Tokenizers are built in memory from a fixed word list (transformers 5 takes the vocabulary
itself; a `vocab_file` argument would be silently ignored), so nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLCogVideoX,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXImageToVideoPipeline,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    ControlNetModel,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    StableDiffusionControlNetPipeline,
    StableDiffusionInstructPix2PixPipeline,
    StableDiffusionPipeline,
    TextToVideoZeroPipeline,
    UNet2DConditionModel,
    WanPipeline,
    WanTransformer3DModel,
    WanVACEPipeline,
    WanVACETransformer3DModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
    UMT5Config,
    UMT5EncoderModel,
)

from framecast.shared.catalog import component_manifest_path, load_catalog, manifest_path
from framecast.shared.catalog.verify import TINY_LIBRARIES_PATH
from framecast.shared.catalog.weights import CONTROLNET_DIR, LORA_DIR, compute_manifest

# A small fixed vocabulary: enough distinct pieces that prompts tokenize into several ids,
# and single letters so any lowercase word still tokenizes (no silent <unk> runs).
_WORDS = [
    "a",
    "the",
    "of",
    "and",
    "in",
    "on",
    "over",
    "under",
    "with",
    "at",
    "by",
    "to",
    "from",
    "is",
    "are",
    "cat",
    "dog",
    "bird",
    "fish",
    "horse",
    "car",
    "boat",
    "ship",
    "city",
    "street",
    "forest",
    "sea",
    "sky",
    "sun",
    "moon",
    "night",
    "day",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "walks",
    "runs",
    "flies",
    "swims",
    "drives",
    "sails",
    "rain",
    "snow",
    "fire",
    "light",
    "dark",
    "slow",
    "fast",
    "big",
    "small",
    # the words of the catalog styles, so styled tiny prompts fit the 16-token encoder
    *[
        "anime",
        "style",
        "vibrant",
        "colors",
        "clean",
        "line",
        "art",
        "claymation",
        "stop",
        "motion",
        "plasticine",
    ],
    *[
        "texture",
        "cinematic",
        "film",
        "still",
        "shallow",
        "depth",
        "field",
        "grain",
        "photo",
        "realistic",
    ],
    "low",
    "quality",
    "blurry",
    "cartoon",
    "drawing",
]
_LETTERS = list("abcdefghijklmnopqrstuvwxyz0123456789")


def t5_tokenizer() -> Any:
    """The T5 tokenizer of the tiny models (and the random CogVideoX-2b): a fixed vocabulary."""
    pieces = ["<pad>", "</s>", "<unk>"] + [f"▁{w}" for w in _WORDS] + ["▁"] + _LETTERS
    # Unigram scores: words beat letters, so known words stay one token.
    vocab = [(p, 0.0) for p in pieces[:3]] + [
        (p, -1.0 - i / 100 if not p.startswith("▁") or len(p) > 1 else -5.0)
        for i, p in enumerate(pieces[3:])
    ]
    vocab = [(p, -10.0) if len(p) == 1 else (p, s) for p, s in vocab]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _clip_tokenizer() -> Any:
    symbols = [*_LETTERS, *(f"{c}</w>" for c in _LETTERS)]
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # merge each word left to right, ending in its </w> form
        current = word[0]
        for index, char in enumerate(word[1:], start=1):
            right = f"{char}</w>" if index == len(word) - 1 else char
            merges.append((current, right))
            current += right
            symbols.append(current)
    specials = ["<|startoftext|>", "<|endoftext|>"]
    vocab = {s: i for i, s in enumerate(dict.fromkeys([*symbols, *specials]))}
    pairs = list(dict.fromkeys(merges))
    # transformers 5 annotates `merges` as str | list[str], but its Rust backend takes only
    # (left, right) pairs (a list of "left right" strings raises TypeError).
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=16)  # type: ignore[arg-type]


def _t5_encoder(vocab_size: int, d_model: int = 32) -> Any:
    config = T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return T5EncoderModel(config)


def _cogvideox_transformer(image_conditioned: bool) -> Any:
    return CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        # I2V concatenates the image latents to the noise latents along channels.
        in_channels=8 if image_conditioned else 4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    )


def _cogvideox(image_conditioned: bool) -> Any:
    tokenizer = t5_tokenizer()
    transformer = _cogvideox_transformer(image_conditioned)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    cls = CogVideoXImageToVideoPipeline if image_conditioned else CogVideoXPipeline
    return cls(
        tokenizer=tokenizer,
        text_encoder=_t5_encoder(len(tokenizer)),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )


def _ltx() -> Any:
    tokenizer = t5_tokenizer()
    # Two of the four VAE stages scale space and time by 2: 4× compression both ways (the
    # real model compresses 32× / 8×), so 32×32 × 9 frames is a 8×8 × 3 latent.
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        patch_size=1,
        patch_size_t=1,
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=_t5_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _wan_parts() -> dict[str, Any]:
    """The tokenizer, UMT5 text encoder, VAE and scheduler every tiny Wan pipeline shares."""
    tokenizer = t5_tokenizer()
    # Wan's text encoder is UMT5 (per-layer relative attention bias), not T5.
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    # base_dim 3 with no channel growth; the VAE's fixed 8× spatial / 4× temporal
    # compression stays, so sizes are multiples of 16 (8 × the 2×2 patch) and frames 4k+1.
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
    }


#: The tiny Wan transformer's shape, shared by the plain, two-expert and VACE variants.
_WAN_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "rope_max_seq_len": 32,
}


def _wan() -> Any:
    return WanPipeline(**_wan_parts(), transformer=WanTransformer3DModel(**_WAN_TRANSFORMER))


def _wan22() -> Any:
    # Wan 2.2 A14B's mixture of two experts: `transformer` denoises the high-noise steps
    # (timestep >= boundary_ratio × 1000), `transformer_2` the rest. 0.875 is the real
    # T2V-A14B boundary; with the tiny scheduler's shift both experts run even in 2 steps.
    return WanPipeline(
        **_wan_parts(),
        transformer=WanTransformer3DModel(**_WAN_TRANSFORMER),
        transformer_2=WanTransformer3DModel(**_WAN_TRANSFORMER),
        boundary_ratio=0.875,
    )


def _wan_vace() -> Any:
    # VACE: a Wan transformer plus control blocks that read the control video's latents.
    # The conditioning is [inactive, reactive] VAE latents (2 × 16 channels) and the mask
    # folded to the latent grid (8 × 8 = 64 channels): 96, the real model's width too.
    # Control block at layer 0 only (diffusers requires layer 0 to be one of them).
    transformer = WanVACETransformer3DModel(
        **_WAN_TRANSFORMER, vace_layers=[0], vace_in_channels=96
    )
    return WanVACEPipeline(**_wan_parts(), transformer=transformer)


def _stable_diffusion(unet_in_channels: int = 4) -> dict[str, Any]:
    """The Stable Diffusion components Text2Video-Zero and its variants share."""
    tokenizer = _clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        # InstructPix2Pix concatenates the source frame's latents: 8 input channels.
        in_channels=unet_in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def _t2v_zero() -> Any:
    return TextToVideoZeroPipeline(**_stable_diffusion())


def _t2v_zero_controlnet() -> Any:
    components = _stable_diffusion()
    # Saved as a plain StableDiffusionPipeline (see `_save`), whose constructor rewrites an
    # old-style steps_offset=0 to 1 with a warning; set it as the real SD 1.5 config has it.
    components["scheduler"] = DDIMScheduler.from_config(
        components["scheduler"].config, steps_offset=1
    )
    controlnet = ControlNetModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        in_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
        # One 2× downsampling: the control map must land on the tiny VAE's 2× latent grid.
        conditioning_embedding_out_channels=(8, 16),
    )
    # ControlNet's output convolutions start at zero ("zero convolutions") and only training
    # moves them; left at zero the control video would change nothing, and a test could not
    # tell whether the runner feeds it at all.
    with torch.no_grad():
        net: Any = controlnet  # its submodules are attributes diffusers declares untyped
        zero_convs = (
            net.controlnet_cond_embedding.conv_out,
            *net.controlnet_down_blocks,
            net.controlnet_mid_block,
        )
        for conv in zero_convs:
            torch.nn.init.normal_(conv.weight, std=0.5)
    return StableDiffusionControlNetPipeline(**components, controlnet=controlnet)


def _t2v_zero_pix2pix() -> Any:
    return StableDiffusionInstructPix2PixPipeline(**_stable_diffusion(unet_in_channels=8))


_BUILDERS: dict[str, list[tuple[str, Callable[[], Any]]]] = {
    # family -> [(subdirectory, builder)]; "" is the directory itself.
    "cogvideox": [("", lambda: _cogvideox(False))],
    "cogvideox-i2v": [("", lambda: _cogvideox(True))],
    "cogvideox-long": [("t2v", lambda: _cogvideox(False)), ("i2v", lambda: _cogvideox(True))],
    "t2v-zero": [("", _t2v_zero)],
    "t2v-zero-controlnet": [("", _t2v_zero_controlnet)],
    "t2v-zero-pix2pix": [("", _t2v_zero_pix2pix)],
    "ltx": [("", _ltx)],
    "wan": [("", _wan)],
    "wan2.2": [("", _wan22)],
    "wan-vace": [("", _wan_vace)],
}
FAMILIES: tuple[str, ...] = tuple(_BUILDERS)


def build_tiny(family: str, out_dir: Path, seed: int = 0) -> Path:
    """Build the tiny `family` pipeline into `out_dir` (replaced); same seed, same bytes."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny family {family!r}; known: {', '.join(FAMILIES)}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for index, (subdir, builder) in enumerate(_BUILDERS[family]):
        # Initialisation draws from the global CPU generator: seed it per component set so
        # the bytes depend on nothing but (family, seed).
        torch.manual_seed(seed + index)
        pipeline = builder()
        _save(pipeline, out_dir / subdir if subdir else out_dir)
    return out_dir


def _save(pipeline: Any, out: Path) -> None:
    controlnet = getattr(pipeline, "controlnet", None)
    if controlnet is None:
        pipeline.save_pretrained(out, safe_serialization=True)
        return
    # Laid out as a pull lays out the real entry: the base Stable Diffusion pipeline (its
    # model_index names no ControlNet) plus the ControlNet in its component folder, from
    # where the runner loads it and passes it in.
    parts = {k: v for k, v in pipeline.components.items() if k != "controlnet"}
    base: Any = StableDiffusionPipeline(**parts, requires_safety_checker=False)
    base.save_pretrained(out, safe_serialization=True)
    controlnet.save_pretrained(out / CONTROLNET_DIR, safe_serialization=True)


# Tiny LoRA targets: tiny family -> (pipeline class that saves the LoRA, denoiser builder).
_LORA_TARGETS: dict[str, tuple[Any, Callable[[], Any]]] = {
    "cogvideox": (CogVideoXPipeline, lambda: _cogvideox_transformer(False)),
}


def build_tiny_lora(style_id: str, model_dir: Path, seed: int = 0) -> Path:
    """Write the tiny LoRA of catalog style `style_id` to `model_dir/loras/FILE`.

    peft LoRA on the attention projections of the style's base model's denoiser, saved in
    the diffusers LoRA format. peft's default initialisation zeroes `lora_B` (an adapter
    that changes nothing); `init_lora_weights=False` draws both matrices at random.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    catalog = load_catalog()
    lora = catalog.styles[style_id].lora
    if lora is None:
        raise ValueError(f"style {style_id} has no LoRA")
    family = catalog.models[lora.base_model].tiny
    if family not in _LORA_TARGETS:
        raise ValueError(f"no tiny LoRA builder for the base model {lora.base_model}")
    pipeline_cls, denoiser = _LORA_TARGETS[family]
    torch.manual_seed(seed)
    model = denoiser()
    # Seeded again so the adapter depends on the seed alone, not on the denoiser's size.
    torch.manual_seed(seed)
    model.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    out = model_dir / LORA_DIR
    out.mkdir(parents=True, exist_ok=True)
    pipeline_cls.save_lora_weights(
        str(out),
        transformer_lora_layers=get_peft_model_state_dict(model),
        weight_name=lora.file,
    )
    return out / lora.file


def pin_manifests(seed: int = 0) -> dict[str, Path]:
    """Rebuild every tiny catalog entry and commit its manifest (`tiny pin`).

    Files in a component's folder go to that component's manifest (relative to the folder),
    the rest to the entry's.
    """
    written: dict[str, Path] = {}
    for entry in load_catalog().models.values():
        if entry.tiny is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            manifest = compute_manifest(build_tiny(entry.tiny, Path(tmp) / "m", seed=seed))
        for role in entry.components:
            prefix = entry.component_dir(role) + "/"
            part = {k.removeprefix(prefix): v for k, v in manifest.items() if k.startswith(prefix)}
            manifest = {k: v for k, v in manifest.items() if not k.startswith(prefix)}
            _write_manifest(component_manifest_path(entry.id, role), part)
        written[entry.id] = _write_manifest(manifest_path(entry.id), manifest)
    # The configs these libraries save carry their version: the manifests above hold for
    # these versions only, and a mismatch later names the library (catalog/verify.py).
    versions = {name: metadata.version(name) for name in _PINNED_WITH}
    written["tiny-libraries"] = _write_manifest(TINY_LIBRARIES_PATH, versions)
    return written


#: The libraries whose output bytes the tiny manifests pin (the last two write the configs).
_PINNED_WITH = ("torch", "safetensors", "tokenizers", "peft", "diffusers", "transformers")


def _write_manifest(path: Path, manifest: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
