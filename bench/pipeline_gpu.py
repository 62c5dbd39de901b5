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
from diffusers import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig

from framecast.runner.reference import TRANSFORMER_2B, build_cogvideox_2b

#: The workload of the model card's figure.
FRAMES, HEIGHT, WIDTH, STEPS, GUIDANCE = 49, 480, 720, 50, 6.0
#: The anchor: the CogVideoX-2b model card's single-H100 time.
ANCHOR_S = 45.0


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
    """CogVideoX-2b (or, for --smoke, the same classes narrowed) with random weights."""
    return build_cogvideox_2b(device, dtype, smoke=smoke)


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
        "--variants",
        help="comma-separated subset to run (plain, compile, attention:NAME, "
        "first-block-cache, pyramid-attention-broadcast); default: all",
    )
    parser.add_argument("--steps", type=int, help="denoising steps (default: 50; smoke: 2)")
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
        workload = Workload(frames=9, height=64, width=64, steps=args.steps or 2, text_len=226)
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
        text_len = TRANSFORMER_2B["max_text_seq_length"]
        workload = Workload(FRAMES, HEIGHT, WIDTH, args.steps or STEPS, text_len)
        names = ["plain", "compile"]
        names += [f"attention:{b}" for b in args.attention.split(",") if b]
        names += ["first-block-cache", "pyramid-attention-broadcast"]

    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        names = [n for n in wanted if n in names or n.startswith("attention:")]

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
                # One untimed run (compilation, autotuning, allocator warm-up); its frames
                # count for "same digest", so one timed run already compares two videos.
                _, warm_digest = run_once(pipe, workload, device)
                runs = [run_once(pipe, workload, device) for _ in range(args.repeats)]
        except Exception as exc:  # a backend that is not installed: report, go on
            print(f"{name}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        claim = "yes" if name.startswith("attention:") else REPLAYABLE[name]
        digests = [warm_digest, *(d for _, d in runs)]
        results.append(Result(name, [s for s, _ in runs], digests, claim, note))

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
