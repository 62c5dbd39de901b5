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
from framecast.shared.runner_protocol import RunRequest
from framecast.shared.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = {
    "model": "tiny-cogvideox",
    "prompt": "a red cat walks in the city",
    "num_frames": 9,
    "fps": 8,
    "width": 32,
    "height": 32,
    "steps": 2,
    "guidance_milli": 6000,
}


def _job(rt: DockerRuntime, weights: Path, jobs: Path, job_id: str) -> float:
    job_dir = jobs / job_id
    request = RunRequest(
        job_id=job_id,
        spec=parse_spec(SPEC),
        model_dir=str(weights),
        output_dir=str(job_dir / "output"),
    )
    started = time.perf_counter()
    final = rt.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=600)
    elapsed = time.perf_counter() - started
    if final.status != "succeeded":
        raise SystemExit(f"job {job_id} failed: {final.error}")
    return elapsed


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
    cold: list[float] = []
    warm: list[float] = []
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
    print(f"{'':6} {'runs':>5} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in (("cold", cold), ("warm", warm)):
        print(
            f"{name:6} {len(values):>5} {statistics.median(values):>9.3f} "
            f"{min(values):>7.3f} {max(values):>7.3f}"
        )
    print(f"cold / warm (median): {statistics.median(cold) / statistics.median(warm):.1f}x")


if __name__ == "__main__":
    main()
