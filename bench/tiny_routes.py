"""Wall time of one job on each tiny control / editing / Wan 2.2 entry, on this CPU.

Run: `.venv/bin/python bench/tiny_routes.py [--runs N]`. Builds each tiny model, writes a
control or source video into an inputs folder as the node would (under its CID), then
times `JobRunner.execute` in this process: the first job (pipeline load included) and the
median of N warm jobs, beside the Text2Video-Zero entry each maintained route sits next
to. Default specs: 9 frames (Text2Video-Zero: 4) at 32×32, 2 steps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from framecast.runner.serve import JobRunner
from framecast.runner.tiny import build_tiny
from framecast.runner.video import write_video
from framecast.shared.catalog import TINY_PROMPT, default_spec, get_entry
from framecast.shared.ipfs.cid import CID
from framecast.shared.runner_protocol import RunRequest

#: entry -> (input field or None, the Text2Video-Zero / plain entry it is compared with)
ROUTES: dict[str, tuple[str | None, str]] = {
    "tiny-wan-vace": ("control", "tiny-t2v-zero-pose"),
    "tiny-wan-v2v": ("video", "tiny-t2v-zero-edit"),
    "tiny-wan2.2": (None, "tiny-wan"),
}
REFERENCE_INPUTS: dict[str, str | None] = {
    "tiny-t2v-zero-pose": "control",
    "tiny-t2v-zero-edit": "video",
    "tiny-wan": None,
}


def put_video(inputs: Path, frames: np.ndarray) -> str:
    scratch = inputs / "scratch.mp4"
    write_video(frames, scratch, fps=8)
    cid = str(CID.from_block(scratch.read_bytes()))
    scratch.rename(inputs / cid)
    return cid


def time_entry(root: Path, model: str, field: str | None, runs: int) -> tuple[float, float]:
    """(first job seconds, median warm job seconds) of `model` in a fresh runner."""
    entry = get_entry(model)
    assert entry.tiny is not None
    weights = build_tiny(entry.tiny, root / "weights" / model)
    inputs = root / "inputs" / model
    inputs.mkdir(parents=True)
    fields: dict[str, Any] = {}
    if field is not None:
        d = entry.defaults
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (d.num_frames, d.height, d.width, 3), np.uint8)
        task = next(t for t in entry.tasks if field in entry.task_inputs.get(t, []))
        fields = {"task": task, "inputs": {field: put_video(inputs, frames)}}
    spec = default_spec(model, TINY_PROMPT, seed=1, **fields)
    runner = JobRunner(device="cpu")
    times: list[float] = []
    for index in range(1 + runs):
        job = f"{model}-{index}"
        request = RunRequest(
            job_id=job,
            spec=spec,
            model_dir=str(weights),
            output_dir=str(root / "out" / job),
            inputs_dir=str(inputs),
        )
        began = time.perf_counter()
        terminal = runner.execute(request, lambda _event: None)
        times.append(time.perf_counter() - began)
        if terminal.status != "succeeded":
            raise SystemExit(f"{model} failed: {terminal.error}")
    return times[0], statistics.median(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="warm jobs per entry")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        measured: dict[str, tuple[float, float]] = {}
        for model, (field, reference) in ROUTES.items():
            measured[model] = time_entry(root, model, field, args.runs)
            if reference not in measured:
                measured[reference] = time_entry(
                    root, reference, REFERENCE_INPUTS[reference], args.runs
                )
    print("tiny entries on this CPU, JobRunner in-process (load + run + encode + digest)")
    print("| entry | spec | first job s | warm job s (median) | beside | its warm s | ratio |")
    print("|---|---|---:|---:|---|---:|---:|")
    for model, (_field, reference) in ROUTES.items():
        d = get_entry(model).defaults
        first, warm = measured[model]
        ref_warm = measured[reference][1]
        spec = f"{d.num_frames}×{d.width}×{d.height}, {d.steps} steps"
        print(f"| {model} | {spec} | {first:.2f} | {warm:.2f} | {reference} | "
              f"{ref_warm:.2f} | {warm / ref_warm:.1f}× |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
