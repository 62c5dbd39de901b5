"""The Ray runtime on a real cluster: `ray start --head` and two `ray start --address`
workers (separate process groups, token auth on, one emulated GPU each).

The conformance suite every runtime passes, then what only a cluster has: capacity from
Ray's resource view, placement by VRAM, a worker process or a whole worker host dying
mid-job (the job is retried on another actor), an OOM-killed runner (the actor is
replaced), and the clear one-line errors of a wrong address or token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.node.runtime.base import ContainerRuntime
from framecast.shared.runner_protocol import RunnerEvent
from tests.runtime.conformance import RuntimeConformance, make_request, tiny_spec
from tests.runtime.ray_fixtures import FAKE_GPU, RayTestCluster, requires_ray

pytestmark = [requires_ray, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def ray_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayTestCluster]:
    lab = RayTestCluster(tmp_path_factory.mktemp("ray"))
    try:
        lab.start_head()
        lab.add_worker()
        lab.add_worker()
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def cluster(ray_lab: RayTestCluster) -> Iterator[object]:
    from framecast.node.runtime.cluster import RayCluster

    pool = RayCluster(
        address=ray_lab.address,
        gpu_resource=FAKE_GPU,
        token_file=ray_lab.token_file,
        scratch=str(ray_lab.root / "scratch"),
        shrink_grace_s=5.0,
    )
    pool.connect()
    yield pool
    pool.close()


class TestRayRuntime(RuntimeConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def runtime(cls, cluster: object) -> Iterator[ContainerRuntime]:
        from framecast.node.runtime.cluster import RayCluster

        assert isinstance(cluster, RayCluster)
        runtime = cluster.runtime()
        cluster.hold()
        assert isinstance(runtime, ContainerRuntime)
        yield runtime
        runtime.close()


def _run(
    runtime: object, tmp_path: Path, model_dir: Path, job_id: str, **kw: object
) -> RunnerEvent:
    from framecast.node.runtime.cluster import RayRuntime

    assert isinstance(runtime, RayRuntime)
    spec = tiny_spec(**kw.pop("spec", {}))  # type: ignore[arg-type]
    job_dir = tmp_path / job_id
    return runtime.run(
        make_request(job_dir, model_dir, spec, job_id),
        job_dir=job_dir,
        on_event=kw.pop("on_event", lambda _e: None),  # type: ignore[arg-type]
        timeout_s=float(kw.pop("timeout_s", 300)),  # type: ignore[arg-type]
    )


def test_capacity_follows_the_cluster_and_vram(cluster: object, ray_lab: RayTestCluster) -> None:
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(cluster, RayCluster)
    hosts = cluster.hosts()
    assert sorted(h.gpus for h in hosts) == [1.0, 1.0]  # the head declares no GPU
    assert all(h.vram_per_gpu_gb == 8.0 for h in hosts)
    busy = len(cluster.leased())
    assert cluster.free_slots("tiny-cogvideox") == 2 - busy
    assert cluster.free_slots("tiny-cogvideox", pending=2) <= 0
    assert cluster.unservable("tiny-cogvideox") is None
    # CogVideoX-5B needs 26 GiB on one card: no 8 GiB card may take it.
    why = cluster.unservable("cogvideox-5b")
    assert why is not None and "26 GiB" in why and FAKE_GPU in why
    assert cluster.free_slots("cogvideox-5b") == 0


def test_two_jobs_run_at_once_on_two_workers(
    cluster: object, tmp_path: Path, tiny_cogvideox_dir: Path
) -> None:
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(cluster, RayCluster)
    runtimes = [cluster.runtime(), cluster.runtime()]
    results: dict[str, RunnerEvent] = {}
    hosts: dict[str, str] = {}

    def job(i: int) -> None:
        def on_event(event: RunnerEvent) -> None:
            if event.status == "processing" and f"par-{i}" not in hosts:
                described = cluster.describe_actor(f"par-{i}")
                assert described is not None
                hosts[f"par-{i}"] = described["node_id"]

        results[f"par-{i}"] = _run(
            runtimes[i],
            tmp_path,
            tiny_cogvideox_dir,
            f"par-{i}",
            spec={"steps": 20},
            on_event=on_event,
        )

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    cluster.hold()
    cluster.hold()
    for runtime in runtimes:
        runtime.close()
    assert all(r.status == "succeeded" for r in results.values()), results
    assert len(set(hosts.values())) == 2, hosts  # one per worker host, at the same time


def test_killed_actor_process_is_retried_on_another_actor(
    cluster: object, tmp_path: Path, tiny_cogvideox_dir: Path
) -> None:
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(cluster, RayCluster)
    runtime = cluster.runtime()
    cluster.hold()
    killed: dict[str, object] = {}

    def kill_on_first_step(event: RunnerEvent) -> None:
        if event.status == "processing" and not killed:
            described = cluster.describe_actor("kill-actor")
            assert described is not None
            killed.update(described)
            os.kill(int(described["pid"]), signal.SIGKILL)  # kill -9 of the Ray worker process

    reference = _run(runtime, tmp_path, tiny_cogvideox_dir, "ref-kill")
    terminal = _run(
        runtime,
        tmp_path,
        tiny_cogvideox_dir,
        "kill-actor",
        spec={"steps": 20},
        on_event=kill_on_first_step,
    )
    runtime.close()
    assert killed, "the job never reported a step"
    assert terminal.status == "succeeded", terminal.error
    assert runtime.retries == 1
    # The runner under the killed actor died with it (it must not hold the GPU).
    runner_pid = killed.get("runner_pid")
    if runner_pid:
        _wait_gone(int(runner_pid))
    # Same job, other actor, same frames: the retry is the same deterministic run.
    again = _run(cluster.runtime(), tmp_path, tiny_cogvideox_dir, "kill-ref", spec={"steps": 20})
    cluster.hold()
    assert terminal.output is not None and again.output is not None
    assert terminal.output.frames_digest == again.output.frames_digest
    assert reference.status == "succeeded"


def test_oom_killed_runner_fails_cleanly_and_the_actor_is_replaced(
    cluster: object, tmp_path: Path, tiny_cogvideox_dir: Path
) -> None:
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(cluster, RayCluster)
    runtime = cluster.runtime()
    cluster.hold()
    seen: dict[str, object] = {}

    def oom_on_first_step(event: RunnerEvent) -> None:
        if event.status == "processing" and not seen:
            described = cluster.describe_actor("oom-job")
            assert described is not None and described["runner_pid"]
            seen.update(described)
            os.kill(int(described["runner_pid"]), signal.SIGKILL)  # the kernel OOM killer's kill

    terminal = _run(
        runtime,
        tmp_path,
        tiny_cogvideox_dir,
        "oom-job",
        spec={"steps": 20},
        on_event=oom_on_first_step,
    )
    assert terminal.status == "failed" and terminal.error is not None
    assert terminal.error.kind == "oom"
    assert seen["name"] not in {a.name for a in cluster.view(["tiny-cogvideox"]).actors}
    after = _run(runtime, tmp_path, tiny_cogvideox_dir, "after-oom")
    runtime.close()
    assert after.status == "succeeded", after.error


def test_stopped_worker_host_mid_job_is_retried_and_capacity_shrinks(
    cluster: object, ray_lab: RayTestCluster, tmp_path: Path, tiny_cogvideox_dir: Path
) -> None:
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(cluster, RayCluster)
    runtime = cluster.runtime()
    cluster.hold()
    extra = ray_lab.add_worker()  # a third host, the one to stop
    stopped: list[str] = []
    # Keep the two first workers busy so the job lands on the new host.
    hosts_before = {h.node_id for h in cluster.hosts()}

    def stop_host_on_first_step(event: RunnerEvent) -> None:
        if event.status == "processing" and not stopped:
            described = cluster.describe_actor("stop-host")
            assert described is not None
            stopped.append(str(described["node_id"]))
            threading.Thread(target=ray_lab.stop_worker, args=(extra,)).start()

    started = time.monotonic()
    terminal = _run(
        runtime,
        tmp_path,
        tiny_cogvideox_dir,
        "stop-host",
        spec={"steps": 30},
        on_event=stop_host_on_first_step,
    )
    recovered = time.monotonic() - started
    runtime.close()
    assert stopped and terminal.status == "succeeded", terminal.error
    assert len(hosts_before) == 3
    if runtime.retries:  # it ran on the stopped host: it moved to a live one
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(cluster.hosts()) != 2:
            time.sleep(1)
        assert stopped[0] not in {h.node_id for h in cluster.hosts()}
    assert recovered < 300


def _wait_gone(pid: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"runner {pid} outlived its actor")


_CONNECT = """
import sys
from pathlib import Path
from framecast.node.runtime.cluster import RayCluster
from framecast.shared.errors import FramecastError
try:
    RayCluster(address=sys.argv[1], token_file=Path(sys.argv[2]) if sys.argv[2] else None,
               connect_timeout_s=2).connect()
except FramecastError as exc:
    print("error:", exc)
    sys.exit(1)
print("connected")
"""


def _connect(address: str, token_file: Path | None, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    out = subprocess.run(
        [sys.executable, "-c", _CONNECT, address, str(token_file or "")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]


def test_unreachable_address_is_one_line_with_the_fix(tmp_path: Path) -> None:
    line = _connect("127.0.0.1:9", None)
    assert line.startswith("error: Ray cluster at 127.0.0.1:9 is unreachable"), line
    assert "ray start --head" in line


def test_wrong_token_is_refused_with_the_fix(ray_lab: RayTestCluster, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 32)
    line = _connect(ray_lab.address, wrong)
    assert line.startswith("error:"), line
    assert "token" in line.lower()
    assert _connect(ray_lab.address, ray_lab.token_file) == "connected"


_NETNS_DRIVER = """
import json, sys
from pathlib import Path
from framecast.node.runtime.cluster import RayCluster
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.runner_protocol import RunRequest

address, token, model, root = sys.argv[1:5]
pool = RayCluster(address=address, gpu_resource="fake_gpu", token_file=Path(token),
                  scratch=root + "/scratch")
runtime = pool.runtime()
spec = default_spec("tiny-cogvideox", TINY_PROMPT, seed=42)
request = RunRequest(job_id="netns", spec=spec, model_dir=model,
                     output_dir=root + "/netns/output", inputs_dir=None)
hosts = []
def on_event(event):
    if event.status == "processing" and not hosts:
        hosts.append(pool.describe_actor("netns"))
final = runtime.run(request, job_dir=Path(root) / "netns", on_event=on_event, timeout_s=300)
gpu_hosts = [h.address for h in pool.hosts()]
runtime.close()  # the last view: leaves the cluster
print(json.dumps({"status": final.status, "digest": final.output and final.output.frames_digest,
                  "actor": hosts[0] if hosts else None, "gpu_hosts": gpu_hosts}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")
def test_a_worker_in_its_own_network_namespace_runs_the_job(
    tmp_path: Path, tiny_cogvideox_dir: Path
) -> None:
    """Head and node in one namespace, the only GPU worker in another: the job crosses a
    real (private, routeless) network, inputs out and the video back by the object store."""
    import json

    from tests.network.lab import Lab, lab_unavailable

    if (why := lab_unavailable()) is not None:
        pytest.skip(why)
    with Lab(tmp_path / "lab", subnet="10.213.8", prefix="fr") as lab:
        head_host, worker_host = lab.add_host("h"), lab.add_host("w")
        ray_lab = RayTestCluster(
            head_host.home, node_ip=head_host.address, prefix=head_host.argv([])
        )
        try:
            ray_lab.start_head()
            ray_lab.add_worker(prefix=worker_host.argv([]), node_ip=worker_host.address)
            out = subprocess.run(
                [
                    *head_host.argv([]),
                    sys.executable,
                    "-c",
                    _NETNS_DRIVER,
                    ray_lab.address,
                    str(ray_lab.token_file),
                    str(tiny_cogvideox_dir),
                    str(tmp_path),
                ],
                check=False,
                capture_output=True,
                text=True,
                timeout=400,
                env=ray_lab.env(),
            )
        finally:
            ray_lab.close()
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded", result
    assert result["actor"] is not None
    assert len(result["digest"]) == 64
    # The one host with a GPU is the worker's namespace: the job ran across the lab network.
    assert result["gpu_hosts"] == [worker_host.address]
