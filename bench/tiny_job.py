"""Tiny-model job wall time in the process runtime: cold (runner start + load) vs warm.

Run: `.venv/bin/python bench/tiny_job.py [--warm-runs N]`. Builds the tiny CogVideoX model
in a subprocess (this process never imports torch), then times `ProcessRuntime.run` from
the caller's side: the first job starts the runner and loads the pipeline, later jobs
reuse both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from framecast.node.models import build_tiny
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.runner_protocol import RunRequest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "tiny-cogvideox"
        build_tiny("tiny-cogvideox", model)
        runtime = ProcessRuntime(log_dir=root / "logs")
        times: list[float] = []
        inner: list[dict[str, float]] = []
        try:
            for index in range(1 + args.warm_runs):
                job = f"bench-{index}"
                request = RunRequest(
                    job_id=job,
                    spec=default_spec("tiny-cogvideox", TINY_PROMPT, seed=1),
                    model_dir=str(model),
                    output_dir=str(root / job),
                )
                start = time.perf_counter()
                event = runtime.run(
                    request, job_dir=root / job, on_event=lambda _e: None, timeout_s=300
                )
                times.append(time.perf_counter() - start)
                if event.status != "succeeded":
                    print(f"job {job} failed: {event.error}", file=sys.stderr)
                    return 1
                inner.append(event.metrics)
        finally:
            runtime.close()
    cold, warm = times[0], statistics.median(times[1:])
    print("tiny-cogvideox, 9 frames 32x32, 2 steps, process runtime, CPU")
    print(
        f"cold job (runner start + load + run): {cold:.3f} s "
        f"(runner-side load {inner[0]['load_s']:.3f} s, inference "
        f"{inner[0]['inference_s']:.3f} s, encode {inner[0]['encode_s']:.3f} s)"
    )
    print(
        f"warm job, median of {len(times) - 1}: {warm:.3f} s "
        f"(inference {statistics.median(m['inference_s'] for m in inner[1:]):.3f} s, "
        f"encode {statistics.median(m['encode_s'] for m in inner[1:]):.3f} s)"
    )
    print(f"cold / warm: {cold / warm:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
