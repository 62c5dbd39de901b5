"""Deterministic torch settings and the environment record that goes into receipts."""

from __future__ import annotations

import os
import platform

import diffusers
import torch
import transformers

from framecast.shared.runner_protocol import RunEnvironment

#: cuBLAS needs a fixed workspace to be deterministic; it must be set before CUDA starts.
CUBLAS_WORKSPACE = ":4096:8"


def pick_device() -> str:
    """`FRAMECAST_DEVICE` (cpu/cuda), else cuda when present."""
    wanted = os.environ.get("FRAMECAST_DEVICE", "auto").strip().lower()
    if wanted in ("cpu", "cuda"):
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def configure_determinism() -> None:
    """Same spec + weights + image + hardware → same frames: no autotuning, no TF32."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    threads = os.environ.get("FRAMECAST_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def describe_environment(device: str, encoder: str) -> RunEnvironment:
    """What ran the job, for the receipt and for replays (docs/protocol.md §8)."""
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    return RunEnvironment(
        python=platform.python_version(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        transformers=transformers.__version__,
        device="cuda" if device == "cuda" else "cpu",
        gpu=gpu,
        driver=torch.version.cuda if device == "cuda" else None,
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        tf32=bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        torch_threads=torch.get_num_threads(),
        encoder=encoder,
    )
