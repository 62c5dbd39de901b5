"""The Docker runtime against a real dockerd and the real runner image (tiny pipeline).

The daemon: the one that answers, else (as root) Debian's `dockerd --iptables=false
--bridge=none` started here and stopped at the end; a non-root user without a daemon
skips with the reason. The image: `docker/test-image/build.sh` (a no-op when its inputs
are unchanged; `make test` builds it before pytest runs).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
import requests.exceptions
from docker.client import DockerClient

from framecast.node.runtime.base import ContainerRuntime
from framecast.node.runtime.docker import (
    LABEL,
    RUNNER_UID,
    DockerRuntime,
    connect,
    map_docker_error,
)
from framecast.shared.errors import FramecastError, PipelineError, RuntimeUnavailable
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.spec import parse_spec
from tests.runtime.conformance import RuntimeConformance
from tests.runtime.docker_fixtures import docker_client, runner_image

__all__ = ["docker_client", "runner_image"]


@pytest.fixture(scope="module")
def tiny_weights(tiny_cogvideox_dir: Path) -> Path:
    """The conformance suite's tiny CogVideoX, as saved by `save_pretrained` (0600 shards)."""
    return tiny_cogvideox_dir


@pytest.fixture
def jobs_root(tmp_path: Path) -> Path:
    root = tmp_path / "jobs"
    root.mkdir()
    return root


@pytest.fixture
def runtime(docker_client: DockerClient, runner_image: str) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(runner_image, client=docker_client, memory_limit="2g", pids_limit=256)
    try:
        yield rt
    finally:
        rt.close()
        assert _framecast_containers(docker_client) == [], "a runner container was left behind"


def _framecast_containers(client: DockerClient) -> list[str]:
    return [c.id for c in client.containers.list(all=True, filters={"label": LABEL})]


def _request(
    job_id: str, weights: Path, jobs_root: Path, **spec: object
) -> tuple[RunRequest, Path]:
    job_dir = jobs_root / job_id
    fields: dict[str, object] = {
        "model": "tiny-cogvideox",
        "prompt": "a red cat",
        "num_frames": 9,
        "fps": 8,
        "width": 32,
        "height": 32,
        "steps": 2,
        "guidance_milli": 6000,
        **spec,
    }
    request = RunRequest(
        job_id=job_id,
        spec=parse_spec(fields),
        model_dir=str(weights),
        output_dir=str(job_dir / "out"),
    )
    return request, job_dir


def _run(
    rt: DockerRuntime,
    weights: Path,
    jobs_root: Path,
    job_id: str,
    timeout_s: float = 300,
    **spec: object,
) -> tuple[RunnerEvent, list[RunnerEvent]]:
    request, job_dir = _request(job_id, weights, jobs_root, **spec)
    events: list[RunnerEvent] = []
    final = rt.run(request, job_dir=job_dir, on_event=events.append, timeout_s=timeout_s)
    return final, events


# -- the shared conformance suite ------------------------------------------------------------


@pytest.mark.docker
class TestDockerConformance(RuntimeConformance):
    """Everything the process runtime does, in the hardened container."""

    @pytest.fixture(scope="class")
    @classmethod
    def runtime(cls, docker_client: DockerClient, runner_image: str) -> Iterator[ContainerRuntime]:
        rt = DockerRuntime(runner_image, client=docker_client, memory_limit="2g")
        yield rt
        rt.close()
        assert _framecast_containers(docker_client) == [], "a runner container was left behind"


# -- the tiny pipeline end to end ------------------------------------------------------------


@pytest.mark.docker
def test_tiny_job_runs_in_a_warm_hardened_container(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    assert isinstance(runtime, ContainerRuntime)
    first, events = _run(runtime, tiny_weights, jobs_root, "job-1")
    assert first.status == "succeeded", first.error
    assert first.output is not None
    assert [e.status for e in events][-1] == "succeeded"
    assert any(e.status == "processing" for e in events), "no progress events"
    video = jobs_root / "job-1" / "out" / "video.mp4"
    assert video.stat().st_size > 0
    assert (jobs_root / "job-1" / "out" / "poster.jpg").exists()

    (container_id,) = runtime.container_ids()
    second, _ = _run(runtime, tiny_weights, jobs_root, "job-2")
    assert second.status == "succeeded"
    assert runtime.container_ids() == [container_id], "the warm container was not reused"
    assert second.output is not None
    # Same spec, same frames: the warm container is as deterministic as a cold one.
    assert second.output.frames_digest == first.output.frames_digest
    assert second.metrics.get("load_s", 0.0) <= first.metrics.get("load_s", 0.0)


@pytest.mark.docker
def test_container_is_hardened(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    final, _ = _run(runtime, tiny_weights, jobs_root, "job-h")
    assert final.status == "succeeded"
    (container_id,) = runtime.container_ids()
    attrs = docker_client.api.inspect_container(container_id)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] in (None, [])
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == 256
    assert host["Memory"] == 2 * 1024**3
    assert host["MemorySwap"] == host["Memory"], "swap would hide OOM"
    assert not host.get("DeviceRequests"), "a CPU entry must not request GPUs"
    user = attrs["Config"]["User"]
    assert user and not user.startswith(("0", "root")), user
    assert attrs["Image"] == runtime.image_id and runtime.image_id.startswith("sha256:")
    assert attrs["Config"]["Env"].count("HF_HUB_OFFLINE=1") == 1
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/weights/tiny-cogvideox"]["RW"] is False
    assert mounts["/jobs"]["RW"] is True
    # Inside: no network interface but loopback, and the root is not writable.
    container = docker_client.containers.get(container_id)
    probe = container.exec_run(
        [
            "python3",
            "-c",
            "import os; print(sorted(os.listdir('/sys/class/net')), os.getuid(), flush=True);"
            "open('/probe', 'w')",
        ],
        demux=True,
    )
    stdout, stderr = (part.decode() if part else "" for part in probe.output)
    # A root node runs the runner as RUNNER_UID; any other node as itself.
    uid = RUNNER_UID if os.geteuid() == 0 else os.getuid()
    assert stdout == f"['lo'] {uid}\n", stdout  # loopback only: no network interface
    assert "Read-only file system" in stderr, stderr
    # The outputs on the host belong to that user: nothing ran as root.
    assert (jobs_root / "job-h" / "out" / "video.mp4").stat().st_uid == uid


# -- failures map to job states, and the next job still works -------------------------------


@pytest.mark.docker
def test_out_of_memory_is_kind_oom_and_the_next_job_runs(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    # Far below what torch + the pipeline need: the kernel kills the runner mid-job.
    runtime.memory_limit = "96m"
    final, events = _run(runtime, tiny_weights, jobs_root, "job-oom")
    assert final.status == "failed"
    assert final.error is not None and final.error.kind == "oom", final.error
    assert "OOMKilled=True" in final.error.message
    assert events[-1] == final
    assert runtime.container_ids() == []
    assert _framecast_containers(docker_client) == []

    runtime.memory_limit = "2g"
    again, _ = _run(runtime, tiny_weights, jobs_root, "job-after-oom")
    assert again.status == "succeeded", again.error


@pytest.mark.docker
def test_timeout_kills_the_container_and_the_next_job_runs(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    # Starting Python + torch alone takes longer than this.
    final, _ = _run(runtime, tiny_weights, jobs_root, "job-slow", timeout_s=0.5)
    assert final.status == "failed"
    assert final.error is not None and final.error.kind == "timeout"
    assert _framecast_containers(docker_client) == []
    again, _ = _run(runtime, tiny_weights, jobs_root, "job-after-timeout")
    assert again.status == "succeeded", again.error


@pytest.mark.docker
def test_cancel_ends_the_job_as_canceled(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    # Warm up first so the cancel lands during denoising, not during the import.
    assert _run(runtime, tiny_weights, jobs_root, "job-warm")[0].status == "succeeded"
    request, job_dir = _request(
        "job-cancel", tiny_weights, jobs_root, steps=50, num_frames=17, width=64, height=64
    )
    events: list[RunnerEvent] = []

    def on_event(event: RunnerEvent) -> None:
        events.append(event)
        if event.status == "processing":
            runtime.cancel("job-cancel")

    final = runtime.run(request, job_dir=job_dir, on_event=on_event, timeout_s=300)
    assert final.status == "canceled"
    assert final.error is not None and final.error.kind == "canceled"
    assert _run(runtime, tiny_weights, jobs_root, "job-after-cancel")[0].status == "succeeded"


@pytest.mark.docker
def test_runner_crash_is_kind_crash_with_stderr(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    assert _run(runtime, tiny_weights, jobs_root, "job-pre")[0].status == "succeeded"
    (container_id,) = runtime.container_ids()
    request, job_dir = _request(
        "job-crash", tiny_weights, jobs_root, steps=50, num_frames=17, width=64, height=64
    )
    killed = threading.Event()

    def on_event(event: RunnerEvent) -> None:
        # SIGTERM from outside mid-job: the runner dies without a terminal event.
        if event.status == "processing" and not killed.is_set():
            killed.set()
            docker_client.api.kill(container_id, signal="SIGTERM")

    final = runtime.run(request, job_dir=job_dir, on_event=on_event, timeout_s=300)
    assert final.status == "failed"
    assert final.error is not None and final.error.kind == "crash", final.error
    assert "exited with code 143" in final.error.message
    assert "runner" in final.error.message and final.error.fix
    assert _framecast_containers(docker_client) == []


@pytest.mark.docker
def test_sigkill_from_outside_is_a_crash_not_oom(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    assert _run(runtime, tiny_weights, jobs_root, "job-pre-kill")[0].status == "succeeded"
    (container_id,) = runtime.container_ids()
    request, job_dir = _request(
        "job-killed", tiny_weights, jobs_root, steps=50, num_frames=17, width=64, height=64
    )

    killed = threading.Event()

    def on_event(event: RunnerEvent) -> None:
        if event.status == "processing" and not killed.is_set():
            killed.set()
            docker_client.api.kill(container_id, signal="SIGKILL")

    final = runtime.run(request, job_dir=job_dir, on_event=on_event, timeout_s=300)
    assert final.error is not None and final.error.kind == "crash", final.error
    assert "not OOMKilled" in final.error.message
    assert _framecast_containers(docker_client) == []


@pytest.mark.docker
def test_corrupted_weights_fail_the_job_cleanly(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "tiny-cogvideox"
    shutil.copytree(tiny_weights, broken)
    victim = next(p for p in sorted(broken.rglob("*.safetensors")))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    final, _ = _run(runtime, broken, jobs_root, "job-bad-weights")
    assert final.status == "failed"
    assert final.error is not None and final.error.kind == "weights"
    assert victim.relative_to(broken).as_posix() in final.error.message


@pytest.mark.docker
def test_leftovers_of_a_killed_node_are_removed_at_start(
    docker_client: DockerClient, runner_image: str
) -> None:
    # What a node killed with -9 leaves: a stopped, labelled runner container.
    leftover = docker_client.containers.create(
        runner_image, labels={LABEL: "docker"}, network_mode="none"
    )
    rt = DockerRuntime(runner_image, client=docker_client)
    try:
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(leftover.id)
    finally:
        rt.close()


@pytest.mark.docker
def test_a_failing_event_callback_still_removes_the_container(
    runtime: DockerRuntime, tiny_weights: Path, jobs_root: Path, docker_client: DockerClient
) -> None:
    request, job_dir = _request("job-callback", tiny_weights, jobs_root)

    def on_event(event: RunnerEvent) -> None:
        if event.status == "processing":
            raise RuntimeError("the node's event handler broke")

    with pytest.raises(RuntimeError, match="event handler broke"):
        runtime.run(request, job_dir=job_dir, on_event=on_event, timeout_s=300)
    assert runtime.container_ids() == []
    assert _framecast_containers(docker_client) == []
    assert _run(runtime, tiny_weights, jobs_root, "job-after-callback")[0].status == "succeeded"


@pytest.mark.docker
def test_missing_weights_fail_the_job_without_a_container(
    runtime: DockerRuntime, jobs_root: Path, tmp_path: Path, docker_client: DockerClient
) -> None:
    final, events = _run(runtime, tmp_path / "tiny-cogvideox", jobs_root, "job-no-weights")
    assert final.status == "failed" and events == [final]
    assert final.error is not None and final.error.kind == "weights"
    assert "does not exist" in final.error.message
    # A tiny model is built, not pulled (a pull refuses it): the fix says how.
    assert final.error.fix is not None and "tiny build --family cogvideox" in final.error.fix
    assert _framecast_containers(docker_client) == []


# -- GPU requests ------------------------------------------------------------------------------


@pytest.mark.docker
def test_gpu_entry_on_a_cpu_host_is_refused_before_any_container(
    docker_client: DockerClient, runner_image: str, tiny_weights: Path, jobs_root: Path
) -> None:
    rt = DockerRuntime(runner_image, client=docker_client, gpus=0, needs_gpu=lambda _r: True)
    request, job_dir = _request("job-gpu", tiny_weights, jobs_root)
    with pytest.raises(PipelineError, match="needs a GPU") as info:
        rt.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=60)
    assert "GPU provider" in str(info.value)
    assert _framecast_containers(docker_client) == []
    rt.close()


@pytest.mark.docker
def test_gpu_device_request_without_gpus_leaves_no_container(
    docker_client: DockerClient, runner_image: str, tiny_weights: Path, jobs_root: Path
) -> None:
    if Path("/dev/nvidia0").exists():
        pytest.skip("this host has a GPU")
    # Pretend a GPU is there: Docker refuses the device request at start.
    rt = DockerRuntime(runner_image, client=docker_client, gpus=1, needs_gpu=lambda _r: True)
    request, job_dir = _request("job-gpu-req", tiny_weights, jobs_root)
    with pytest.raises(PipelineError, match="no GPU support") as info:
        rt.run(request, job_dir=job_dir, on_event=lambda _e: None, timeout_s=60)
    assert "nvidia-container-toolkit" in str(info.value)
    assert _framecast_containers(docker_client) == [], "the Created container leaked"
    rt.close()


# -- the daemon and the error tree -----------------------------------------------------------


def test_daemon_down_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable) as info:
        connect(f"unix://{tmp_path}/no-docker.sock", timeout_s=2)
    assert "dockerd --iptables=false --bridge=none" in str(info.value)
    assert "systemctl start docker" in str(info.value)


def test_every_docker_exception_maps_into_the_error_tree() -> None:
    classes = [
        obj
        for obj in vars(docker.errors).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    classes += [requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout]
    assert len(classes) > 10
    for cls in classes:
        exc = _instance(cls)
        mapped = map_docker_error(exc, action="test")
        assert isinstance(mapped, FramecastError), cls
        assert mapped.fix, f"{cls.__name__} maps to a message without a fix"


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of any docker/requests exception class, whatever its constructor takes."""
    if issubclass(cls, docker.errors.APIError):
        return cls("boom", explanation="boom")
    for arity in range(6):
        try:
            return cls(*(["boom"] * arity))
        except TypeError:
            continue
    raise AssertionError(f"cannot build a {cls.__name__}")
