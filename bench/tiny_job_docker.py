"""Tiny-model job wall time in the hardened Docker runner: cold vs warm container.

Cold = a fresh container: create + start + Python/torch import + model load + the job.
Warm = the next jobs on the same container (the model stays loaded). Needs a Docker daemon
and the CPU runner image (`make docker-image`); run with `make bench-docker`.

    python bench/tiny_job_docker.py [--cold 3] [--warm 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from framecast.node.runtime.docker import DockerRuntime, connect
from framecast.runner.tiny import build_tiny
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.runner_protocol import RunRequest

REPO = Path(__file__).resolve().parents[1]


def _job(rt: DockerRuntime, weights: Path, jobs: Path, job_id: str) -> tuple[float, float]:
    """Wall seconds seen by the node, and the runner's own `total_s` (load + run + encode)."""
    job_dir = jobs / job_id
    request = RunRequest(
        job_id=job_id,
        spec=default_spec("tiny-cogvideox", TINY_PROMPT, seed=1),
        model_dir=str(weights),
        output_dir=str(job_dir / "output"),
    )
    started = time.perf_counter()
    final = rt.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=600)
    elapsed = time.perf_counter() - started
    if final.status != "succeeded":
        raise SystemExit(f"job {job_id} failed: {final.error}")
    return elapsed, final.metrics.get("total_s", float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=3, help="cold runs (fresh containers)")
    parser.add_argument("--warm", type=int, default=5, help="warm jobs after each cold one")
    args = parser.parse_args()

    image = subprocess.run(
        [str(REPO / "docker" / "test-image" / "build.sh")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    client = connect()
    size_mb = client.images.get(image).attrs["Size"] / 1e6
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = build_tiny("cogvideox", root / "weights" / "tiny-cogvideox")
        jobs = root / "jobs"
        jobs.mkdir()
        for c in range(args.cold):
            with DockerRuntime(image, client=client, memory_limit="4g") as rt:
                cold.append(_job(rt, weights, jobs, f"cold-{c}"))
                warm += [_job(rt, weights, jobs, f"warm-{c}-{w}") for w in range(args.warm)]

    print(f"image {image[:19]}  {size_mb:.0f} MB")
    engine = client.version()["Version"]
    print(f"tiny-cogvideox, 9 frames 32x32, 2 steps, hardened container, engine {engine}")
    print(f"{'':6} {'runs':>5} {'median s':>9} {'min s':>7} {'max s':>7} {'in runner s':>12}")
    for name, runs in (("cold", cold), ("warm", warm)):
        walls = [wall for wall, _ in runs]
        inside = statistics.median(total for _, total in runs)
        print(
            f"{name:6} {len(walls):>5} {statistics.median(walls):>9.3f} "
            f"{min(walls):>7.3f} {max(walls):>7.3f} {inside:>12.3f}"
        )
    ratio = statistics.median(w for w, _ in cold) / statistics.median(w for w, _ in warm)
    print(f"cold / warm (median wall): {ratio:.1f}x")
    print("(in runner = the runner's total_s: model load + denoising + encode; the rest of a")
    print(" cold job is container start and the Python/torch import inside it)")


if __name__ == "__main__":
    main()
