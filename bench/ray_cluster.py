"""The Ray runtime on a real local cluster: throughput, scheduling overhead, recovery.

Run: `.venv/bin/python bench/ray_cluster.py [--jobs N] [--warm-runs N]`. Starts
`ray start --head` and worker hosts (`ray start --address`, one emulated GPU each, as the
tests do), builds the tiny CogVideoX model in a subprocess, and prints, in one run:

1. tiny-job throughput (jobs/min) with 1 worker, then 2 workers, and their ratio
   (the node keeps both busy, as `free_slots` lets it);
2. per-job wall time of a warm Ray actor vs the warm process runtime, and the difference
   (the scheduling overhead: actor call, event streaming, the result through the object
   store);
3. time to recover a job whose actor process is killed with -9 mid-job: from the kill to
   the retried job's first event on another actor, and to its delivery-ready result.

CPU only: a 2-core machine shares its cores between both workers, so the 2-worker figure
shows what scheduling costs more than what a second GPU host would add.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framecast.node.models import build_tiny
from framecast.node.runtime.cluster import RayCluster, RayRuntime
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from tests.runtime.ray_fixtures import FAKE_GPU, RayTestCluster


def request(root: Path, model: Path, job_id: str, steps: int = 2) -> RunRequest:
    spec = default_spec("tiny-cogvideox", TINY_PROMPT, seed=42, steps=steps)
    return RunRequest(
        job_id=job_id,
        spec=spec,
        model_dir=str(model),
        output_dir=str(root / job_id / "output"),
        inputs_dir=None,
    )


def run_one(runtime: RayRuntime | ProcessRuntime, root: Path, model: Path, job_id: str) -> float:
    started = time.perf_counter()
    final = runtime.run(
        request(root, model, job_id),
        job_dir=root / job_id,
        on_event=lambda _e: None,
        timeout_s=600,
    )
    if final.status != "succeeded":
        raise SystemExit(f"job {job_id} failed: {final.error}")
    return time.perf_counter() - started


def throughput(
    cluster: RayCluster, root: Path, model: Path, jobs: int, lanes: int, tag: str
) -> float:
    """Jobs per minute with `lanes` jobs in flight (one per free GPU)."""
    views = [cluster.runtime() for _ in range(lanes)]
    # Warm one actor per lane first, all at once (one after the other, they would all
    # reuse the first lane's actor and the timed run would pay the others' cold starts).
    warm = [
        threading.Thread(target=run_one, args=(v, root, model, f"{tag}-warm-{i}"))
        for i, v in enumerate(views)
    ]
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    counter = iter(range(jobs))
    lock = threading.Lock()

    def lane(view: RayRuntime) -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            run_one(view, root, model, f"{tag}-{n}")

    started = time.perf_counter()
    threads = [threading.Thread(target=lane, args=(v,)) for v in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for _ in views:  # the views share the bench's pool: keep it open
        cluster.hold()
    for view in views:
        view.close()
    return jobs / elapsed * 60


def recovery(cluster: RayCluster, root: Path, model: Path) -> tuple[float, float]:
    view = cluster.runtime()
    cluster.hold()
    marks: dict[str, float] = {}
    job_id = "recover"

    def on_event(event: RunnerEvent) -> None:
        if event.status == "processing" and "kill" not in marks:
            described = cluster.describe_actor(job_id)
            assert described is not None
            marks["kill"] = time.perf_counter()
            os.kill(int(described["pid"]), signal.SIGKILL)
        elif event.status == "starting" and "kill" in marks and "restart" not in marks:
            marks["restart"] = time.perf_counter()

    final = view.run(
        request(root, model, job_id, steps=20),
        job_dir=root / job_id,
        on_event=on_event,
        timeout_s=600,
    )
    done = time.perf_counter()
    view.close()
    if final.status != "succeeded" or "restart" not in marks:
        raise SystemExit(f"the job did not recover: {final.error}")
    return marks["restart"] - marks["kill"], done - marks["kill"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=12, help="jobs per throughput run")
    parser.add_argument("--warm-runs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "tiny-cogvideox"
        build_tiny("tiny-cogvideox", model)
        # Ray gives an actor OMP_NUM_THREADS = its CPUs (1): the same for the process
        # runtime, so both time the same work and only the scheduling differs.
        process = ProcessRuntime(log_dir=root / "process-logs", env={"OMP_NUM_THREADS": "1"})
        run_one(process, root, model, "process-cold")
        process_s = [run_one(process, root, model, f"p{i}") for i in range(args.warm_runs)]
        process.close()

        lab = RayTestCluster(root)
        try:
            lab.start_head()
            lab.add_worker()
            cluster = RayCluster(
                address=lab.address,
                gpu_resource=FAKE_GPU,
                token_file=lab.token_file,
                scratch=str(root / "scratch"),
            )
            cluster.connect()
            one = cluster.runtime()
            cluster.hold()
            run_one(one, root, model, "ray-cold")
            ray_s = [run_one(one, root, model, f"r{i}") for i in range(args.warm_runs)]
            one.close()
            rate_1 = throughput(cluster, root, model, args.jobs, 1, "one")
            lab.add_worker()
            rate_2 = throughput(cluster, root, model, args.jobs, 2, "two")
            first_event_s, result_s = recovery(cluster, root, model)
            cluster.close()
        finally:
            lab.close()
    p, r = statistics.median(process_s), statistics.median(ray_s)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"warm tiny job, process runtime   median {p * 1000:7.0f} ms  ({args.warm_runs} runs)")
    print(f"warm tiny job, Ray actor         median {r * 1000:7.0f} ms  ({args.warm_runs} runs)")
    print(
        f"scheduling overhead of Ray        {1000 * (r - p):7.0f} ms per job  (ratio {r / p:.2f})"
    )
    print(f"throughput, 1 worker              {rate_1:7.1f} jobs/min  ({args.jobs} jobs)")
    print(
        f"throughput, 2 workers             {rate_2:7.1f} jobs/min  (ratio {rate_2 / rate_1:.2f})"
    )
    print(
        f"recovery after kill -9 of actor   {first_event_s:7.2f} s to the retry's first event, "
        f"{result_s:.2f} s to its result (20 steps)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
