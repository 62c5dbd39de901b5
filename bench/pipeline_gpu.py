"""Seconds per CogVideoX-2b video (49 frames, 480×720, 50 steps) on one GPU, by variant.

Builds the real CogVideoX-2b architecture (transformer, 3D VAE, T5-XXL text encoder) with
random weights — timing does not depend on the values — and times the full pipeline call:

1. plain: fp16, PyTorch SDPA attention, eager;
2. optimisations that keep replays exact (same image + same GPU class → same frames):
   regional `torch.compile` of the repeated transformer blocks, and an attention backend;
3. diffusers' caching methods, First Block Cache and Pyramid Attention Broadcast, marked
   non-replayable: they skip computation when an activation difference falls under a
   threshold, so a last-bit difference between GPUs flips what gets skipped.

"replayable" in the table is measured, not asserted: each variant runs `--repeats` times
from the same seed and the frames digests must agree. Anchor: the model card gives about
45 s for this workload on one H100.

    python bench/pipeline_gpu.py               # needs CUDA; prints a markdown table
    python bench/pipeline_gpu.py --smoke       # CPU self-check on a scaled-down config
    python bench/pipeline_gpu.py --context-parallel 2 --cp-kind ulysses   # N GPUs, one job

`--context-parallel N` times one video over N GPUs of this host (what the Ray runtime
places for a catalog entry declaring `context_parallel`): it relaunches itself under
`torch.distributed.run` with N ranks, each rank on its own GPU, and applies diffusers'
`ContextParallelConfig` (Ulysses or Ring) to the transformer; rank 0 prints the figure
and the frames digest, which must agree across repeats like any replayable variant.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    FirstBlockCacheConfig,
    PyramidAttentionBroadcastConfig,
)
from transformers import T5Config, T5EncoderModel

#: The workload of the model card's figure.
FRAMES, HEIGHT, WIDTH, STEPS, GUIDANCE = 49, 480, 720, 50, 6.0
#: The anchor: the CogVideoX-2b model card's single-H100 time.
ANCHOR_S = 45.0

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


@dataclass(frozen=True)
class Workload:
    frames: int
    height: int
    width: int
    steps: int
    text_len: int


@dataclass
class Result:
    name: str
    seconds: list[float]
    digests: list[str]
    replay_claim: str
    note: str = ""

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def replays_equal(self) -> bool:
        return len(set(self.digests)) == 1


def build_pipeline(device: str, dtype: Any, *, smoke: bool) -> Any:
    """CogVideoX-2b (or, for --smoke, the same classes scaled down) with random weights."""
    transformer_cfg = dict(TRANSFORMER_2B)
    t5_cfg = dict(T5_XXL)
    vae_cfg: dict[str, Any] = {}  # AutoencoderKLCogVideoX's defaults are CogVideoX's VAE
    if smoke:
        transformer_cfg |= {
            "num_attention_heads": 2,
            "attention_head_dim": 8,
            "num_layers": 2,
            "text_embed_dim": 32,
            "time_embed_dim": 8,
            "sample_width": 8,
            "sample_height": 8,
            "sample_frames": 9,
            "max_text_seq_length": 8,
        }
        t5_cfg |= {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 2}
        vae_cfg = {
            "block_out_channels": (8, 8, 8, 8),
            "layers_per_block": 1,
            "norm_num_groups": 2,
        }
    # Allocate on the device without a CPU-side random init of billions of weights, then
    # fill with small normal values: random but finite, so no kernel takes a NaN path.
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**transformer_cfg)
        vae = AutoencoderKLCogVideoX(**vae_cfg)
        text_encoder = T5EncoderModel(T5Config(**t5_cfg))
    generator = torch.Generator(device=device).manual_seed(0)
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
    pipe = CogVideoXPipeline(
        tokenizer=None,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER_2B),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _rebuild_position_tables(transformer: Any, device: str, dtype: Any) -> None:
    embed = transformer.patch_embed
    if getattr(embed, "use_positional_embeddings", False):
        table = embed._get_positional_embeddings(
            embed.sample_height, embed.sample_width, embed.sample_frames, device=device
        )
        embed.register_buffer("pos_embedding", table.to(dtype), persistent=False)


def encode_text(pipe: Any, workload: Workload, device: str) -> tuple[Any, Any]:
    """Prompt embeddings from the (random) T5 encoder on fixed token ids; no tokenizer needed."""
    ids = torch.arange(workload.text_len, device=device).remainder(1000).unsqueeze(0) + 100
    with torch.no_grad():
        positive = pipe.text_encoder(ids)[0]
        negative = pipe.text_encoder(torch.zeros_like(ids))[0]
    return positive, negative


def run_once(pipe: Any, workload: Workload, device: str) -> tuple[float, str]:
    """One full video (text encoding included): wall seconds and the frames digest."""
    sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    positive, negative = encode_text(pipe, workload, device)
    frames = pipe(
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        num_frames=workload.frames,
        height=workload.height,
        width=workload.width,
        num_inference_steps=workload.steps,
        guidance_scale=GUIDANCE,
        generator=torch.Generator("cpu").manual_seed(42),
        output_type="np",
    ).frames[0]
    sync()
    elapsed = time.perf_counter() - started
    raw = (frames.clip(0, 1) * 255).round().astype("uint8")
    return elapsed, hashlib.sha256(raw.tobytes()).hexdigest()


@contextlib.contextmanager
def variant(pipe: Any, name: str, *, smoke: bool) -> Iterator[str]:
    """Apply one variant to the pipeline; undo it on exit. Yields a note for the table."""
    transformer = pipe.transformer
    if name == "plain":
        yield f"{str(pipe.transformer.dtype).removeprefix('torch.')}, SDPA, eager"
    elif name == "compile":
        # Regional compilation: CogVideoX declares no `_repeated_blocks`, so compile each
        # transformer block (identical shapes: one graph, reused 30 times).
        originals = list(transformer.transformer_blocks)
        for block in originals:
            block.compile(fullgraph=True, dynamic=False)
        try:
            yield "torch.compile of the 30 transformer blocks (regional)"
        finally:
            for block in originals:
                block._compiled_call_impl = None  # back to eager for the next variant
    elif name.startswith("attention:"):
        backend = name.split(":", 1)[1]
        transformer.set_attention_backend(backend)
        try:
            yield f"attention backend `{backend}`"
        finally:
            transformer.reset_attention_backend()
    elif name == "first-block-cache":
        transformer.enable_cache(FirstBlockCacheConfig(threshold=0.05))
        try:
            yield "FirstBlockCacheConfig(threshold=0.05)"
        finally:
            transformer.disable_cache()
    elif name == "pyramid-attention-broadcast":
        transformer.enable_cache(
            PyramidAttentionBroadcastConfig(
                spatial_attention_block_skip_range=2,
                spatial_attention_timestep_skip_range=(100, 800),
                current_timestep_callback=lambda: pipe.current_timestep,
            )
        )
        try:
            yield "PAB, spatial skip 2 in timesteps 100–800"
        finally:
            transformer.disable_cache()
    else:
        raise ValueError(f"unknown variant {name}")


def context_parallel(degree: int, kind: str, repeats: int, argv: list[str] | None) -> int:
    """One video over `degree` GPUs (diffusers context parallelism); GPU hosts only."""
    import os

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible < degree:
        print(
            f"context parallelism over {degree} GPUs needs {degree} CUDA devices; this host "
            f"has {visible}: run it on a multi-GPU host (the Ray runtime places such jobs)",
            file=sys.stderr,
        )
        return 2
    if "RANK" not in os.environ:  # relaunch with one process per GPU
        import subprocess

        command = [sys.executable, "-m", "torch.distributed.run",
                   f"--nproc-per-node={degree}", __file__, *(argv or sys.argv[1:])]  # fmt: skip
        return subprocess.run(command, check=False).returncode
    import torch.distributed as dist
    from diffusers import ContextParallelConfig

    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(rank)
    device = f"cuda:{rank}"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    pipe = build_pipeline(device, torch.float16, smoke=False)
    config = (
        ContextParallelConfig(ulysses_degree=degree)
        if kind == "ulysses"
        else ContextParallelConfig(ring_degree=degree)
    )
    pipe.transformer.enable_parallelism(config=config)
    workload = Workload(FRAMES, HEIGHT, WIDTH, STEPS, TRANSFORMER_2B["max_text_seq_length"])
    run_once(pipe, workload, "cuda")  # warm-up
    runs = [run_once(pipe, workload, "cuda") for _ in range(repeats)]
    if rank == 0:
        best = min(s for s, _ in runs)
        same = "yes" if len({d for _, d in runs}) == 1 else "NO"
        print(f"| context-parallel {kind}×{degree} | {best:.2f} | {torch.cuda.get_device_name(0)} "
              f"| same digest: {same} | {runs[0][1][:16]} |")  # fmt: skip
    dist.destroy_process_group()
    return 0


REPLAYABLE = {"plain": "yes", "compile": "yes", "first-block-cache": "no",
              "pyramid-attention-broadcast": "no"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU self-check, scaled down")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant")
    parser.add_argument(
        "--vae-tiling", action="store_true", help="decode with VAE tiling (less memory)"
    )
    parser.add_argument(
        "--attention",
        default="_native_flash,flash",
        help="attention backends to try (diffusers names), comma-separated",
    )
    parser.add_argument(
        "--context-parallel", type=int, default=1, metavar="N", help="GPUs one video runs over"
    )
    parser.add_argument("--cp-kind", choices=("ulysses", "ring"), default="ulysses")
    args = parser.parse_args(argv)
    if args.context_parallel > 1:
        return context_parallel(args.context_parallel, args.cp_kind, args.repeats, argv)

    if args.smoke:
        device, dtype = "cpu", torch.float32
        workload = Workload(frames=9, height=64, width=64, steps=2, text_len=8)
        names = ["plain", "attention:native", "first-block-cache", "pyramid-attention-broadcast"]
    else:
        if not torch.cuda.is_available():
            print(
                "no CUDA device: this benchmark times CogVideoX-2b at 49×480×720×50 steps "
                "on a GPU; run `python bench/pipeline_gpu.py --smoke` for the CPU self-check",
                file=sys.stderr,
            )
            return 2
        device, dtype = "cuda", torch.float16
        workload = Workload(FRAMES, HEIGHT, WIDTH, STEPS, TRANSFORMER_2B["max_text_seq_length"])
        names = ["plain", "compile"]
        names += [f"attention:{b}" for b in args.attention.split(",") if b]
        names += ["first-block-cache", "pyramid-attention-broadcast"]

    # The runner's determinism settings, so "replayable" means what it means in production.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False

    pipe = build_pipeline(device, dtype, smoke=args.smoke)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    params = sum(p.numel() for p in pipe.transformer.parameters())
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke)"
    results: list[Result] = []
    for name in names:
        try:
            with variant(pipe, name, smoke=args.smoke) as note:
                # One untimed run: compilation, autotuning, allocator warm-up.
                run_once(pipe, workload, device)
                runs = [run_once(pipe, workload, device) for _ in range(args.repeats)]
        except Exception as exc:  # a backend that is not installed: report, go on
            print(f"{name}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        claim = "yes" if name.startswith("attention:") else REPLAYABLE[name]
        results.append(Result(name, [s for s, _ in runs], [d for _, d in runs], claim, note))

    print(f"CogVideoX-2b architecture ({params / 1e9:.2f} B transformer params, random "
          f"weights), {workload.frames} frames {workload.height}×{workload.width}, "
          f"{workload.steps} steps, {gpu}, torch {torch.__version__}")  # fmt: skip
    plain = next((r.best for r in results if r.name == "plain"), None)
    header = "| variant | s / video | vs plain | replayable (by design) | same digest | notes |"
    print()
    print(header)
    print("|---|---:|---:|---|---|---|")
    for r in results:
        ratio = f"{plain / r.best:.2f}×" if plain else "–"
        same = "yes" if r.replays_equal else "NO"
        print(f"| {r.name} | {r.best:.2f} | {ratio} | {r.replay_claim} | {same} | {r.note} |")
    if not args.smoke:
        print(f"\nanchor: model card ≈ {ANCHOR_S:.0f} s on one H100")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
