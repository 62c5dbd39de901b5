"""Context-parallel catalog entries: GPUs per job, VRAM per GPU, and the runner's gate
(a multi-GPU job never runs on one device under a multi-GPU receipt)."""

from __future__ import annotations

import pytest

from framecast.shared.catalog import get_entry
from framecast.shared.catalog.entry import ContextParallel
from framecast.shared.errors import SpecError


def test_entry_declares_gpus_per_job_and_splits_its_vram() -> None:
    entry = get_entry("cogvideox-5b")
    assert (entry.gpus_per_job, entry.vram_per_gpu_gb) == (1, 26)
    split = entry.model_copy(update={"context_parallel": ContextParallel(degree=4, kind="ring")})
    assert (split.gpus_per_job, split.vram_per_gpu_gb) == (4, 7)  # ceil(26 / 4)
    with pytest.raises(ValueError):
        ContextParallel(degree=1, kind="ulysses")


def test_runner_refuses_a_context_parallel_job_it_cannot_run() -> None:
    from framecast.runner.serve import _check_context_parallel

    with pytest.raises(SpecError) as caught:
        _check_context_parallel("big-model", 2, "cpu")
    assert "over 2 GPUs" in caught.value.message and "0 CUDA device" in caught.value.message
    assert "runtime = ray" in (caught.value.fix or "")
