"""The Docker `ContainerRuntime`: the runner in a hardened, warm container (docs/protocol.md §5).

One container per model stays up between jobs with the pipeline loaded (`python -m
framecast.runner serve`); the node talks to it over the container's attached stdin/stdout
(JSON lines, `network_mode=none`), stderr is the runner's log. Hardening: no network,
read-only root, every capability dropped, no-new-privileges, a non-root user, pids and
memory limits, the image pinned by ID/digest, weights mounted read-only, GPUs only through
a device request and only for entries that need one.

Paths the runner sees: the model directory at ``/weights/<name>`` (read-only) and the
parent of the job directories at ``/jobs`` (so one warm container serves every job under
it); the caller's host paths in the `RunRequest` are rewritten before sending.

Lifetime: the runner never outlives its node. The container's stdin is attached with
``StdinOnce``, so when the node dies its attach connection drops, Docker closes the runner's
stdin and the runner's watchdog (`framecast.runner.lifeline`) stops it at once, which ends
the container. Containers are labelled with their node (`OWNER_LABEL`, from the node's state
folder) and that node's process (`SESSION_LABEL`, pid and start time); a node that starts
removes its predecessor's containers, running or not (`remove_stale_containers`).

Failures: a runner that dies mid-job is inspected (``OOMKilled``, exit code, stderr tail)
and becomes a terminal `failed` event; timeouts and unanswered cancels kill the container.
A container that is not healthy after a job is always removed; `close()` removes the rest.
Every docker / requests exception is mapped into `framecast.shared.errors` here.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
import requests.exceptions
from docker.client import DockerClient, from_env
from docker.types import DeviceRequest, Mount
from docker.utils.socket import STDERR, STDOUT, frames_iter

from framecast.node.runtime.base import (
    SIGKILL_EXIT,
    EventCallback,
    JsonLinesChannel,
    canceled_event,
    terminal_from_exit,
    timeout_event,
)
from framecast.node.runtime.process import process_start
from framecast.shared.errors import (
    FramecastError,
    PipelineError,
    RunnerFailed,
    RuntimeUnavailable,
    UnknownModel,
)
from framecast.shared.runner_protocol import (
    RunnerEvent,
    RunRequest,
    ShutdownMessage,
    failed_event,
)

if TYPE_CHECKING:
    from docker.models.containers import Container

log = logging.getLogger(__name__)
runner_log = logging.getLogger("framecast.runner.docker")

START_DOCKERD_FIX = (
    "start it: `dockerd --iptables=false --bridge=none &` as root, or `systemctl start docker`"
)
#: uid/gid of the `runner` user baked into the images (docker/test-image, docker/*Dockerfile).
RUNNER_UID = 10001
WEIGHTS_MOUNT = "/weights"
JOBS_MOUNT = "/jobs"
LABEL = "io.framecast.runtime"
#: Which node a container belongs to (a digest of its state folder).
OWNER_LABEL = "io.framecast.owner"
#: Which process of that node started it: "pid:start time" (`process_start`).
SESSION_LABEL = "io.framecast.session"
#: Bytes of runner stderr kept per container for crash messages.
STDERR_TAIL_BYTES = 16_384


def map_docker_error(exc: BaseException, *, action: str) -> FramecastError:
    """Turn a docker SDK / requests exception into our error tree, with the fix.

    `action` says what we were doing ("start the runner for job j1"), for context.
    """
    if isinstance(exc, FramecastError):
        return exc
    if isinstance(exc, docker.errors.ImageNotFound):
        return PipelineError(
            f"cannot {action}: runner image not found ({_explain(exc)})",
            fix="build the CPU test image with `make docker-image`, or pull the pinned "
            "runner image by digest",
        )
    if isinstance(exc, docker.errors.APIError):
        text = _explain(exc)
        if "could not select device driver" in text or "nvidia" in text.lower():
            return PipelineError(
                f"cannot {action}: Docker has no GPU support here ({text})",
                fix="install the NVIDIA driver and nvidia-container-toolkit, or run a "
                "CPU-capable model",
            )
        return RunnerFailed(
            f"cannot {action}: the Docker daemon refused ({text})",
            fix="check `docker info` and the daemon log, then retry",
        )
    if isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError
    ):
        return RuntimeUnavailable(
            f"cannot {action}: the Docker daemon does not answer ({exc})", fix=START_DOCKERD_FIX
        )
    if isinstance(exc, docker.errors.DockerException):
        # Mostly "Error while fetching server API version": no daemon behind the socket.
        return RuntimeUnavailable(
            f"cannot {action}: Docker is not usable ({exc})", fix=START_DOCKERD_FIX
        )
    return RunnerFailed(f"cannot {action}: {type(exc).__name__}: {exc}", fix="retry the job")


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


@contextlib.contextmanager
def _mapped(action: str) -> Iterator[None]:
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise map_docker_error(exc, action=action) from exc


def host_gpu_count() -> int:
    """NVIDIA GPUs visible on this host (device nodes), without importing torch."""
    return sum(1 for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit())


def connect(base_url: str | None = None, *, timeout_s: float = 60.0) -> DockerClient:
    """A docker client that has answered a ping; `RuntimeUnavailable` otherwise."""
    with _mapped("connect to the Docker daemon"):
        client = (
            DockerClient(base_url=base_url, timeout=int(timeout_s))
            if base_url
            else from_env(timeout=int(timeout_s))
        )
        client.ping()
    return client


@dataclass
class _Warm:
    """One running container with its runner, its stdio channel and its stderr tail."""

    key: tuple[Path, Path]
    container: Container
    channel: JsonLinesChannel
    stderr_tail: collections.deque[bytes] = field(
        default_factory=lambda: collections.deque(maxlen=256)
    )

    def stderr_text(self) -> str:
        return b"".join(self.stderr_tail)[-STDERR_TAIL_BYTES:].decode("utf-8", "replace")


class DockerRuntime:
    """`ContainerRuntime` over the Docker Engine API; one warm container per model."""

    name = "docker"

    def __init__(
        self,
        image: str,
        *,
        client: DockerClient | None = None,
        gpus: int | None = None,
        needs_gpu: Callable[[RunRequest], bool] | None = None,
        memory_limit: str = "16g",
        pids_limit: int = 512,
        tmpfs_size: str = "1g",
        max_warm: int = 1,
        command: list[str] | None = None,
        environment: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> None:
        """`image`: a local image ID (``sha256:...``) or ``repo@sha256:digest``.

        A tag is accepted and resolved to its image ID once, so every job of this runtime
        runs the same bytes. `gpus`: GPUs to request for entries that need one (default:
        the host's NVIDIA devices). `needs_gpu` decides per request (default: the catalog).
        `owner`: the node's identity; its earlier processes' containers are removed here.
        """
        self._client = client or connect()
        with _mapped(f"find the runner image {image}"):
            resolved = self._client.images.get(image)
        self.image_id: str = str(resolved.id)
        self.image_ref = image
        self._gpus = host_gpu_count() if gpus is None else gpus
        self._needs_gpu = needs_gpu or _catalog_needs_gpu
        #: Memory (and memory+swap) limit of containers started from now on, e.g. "16g".
        self.memory_limit = memory_limit
        self._pids_limit = pids_limit
        self._tmpfs_size = tmpfs_size
        self._max_warm = max(1, max_warm)
        self._command = command or ["serve"]
        self._environment = dict(environment or {})
        self._warm: collections.OrderedDict[tuple[Path, Path], _Warm] = collections.OrderedDict()
        self._lock = threading.Lock()  # guards the tables below; never held across I/O
        # One job at a time: a warm runner's stdout carries one job's events at a time.
        self._run_lock = threading.Lock()
        self._cancels: dict[str, threading.Event] = {}
        self.owner = owner
        self.session = _session()
        self.remove_exited_containers()
        if owner is not None:
            self.remove_stale_containers()

    # -- the port ------------------------------------------------------------------------

    def run(
        self,
        request: RunRequest,
        *,
        job_dir: Path,
        on_event: EventCallback,
        timeout_s: float,
    ) -> RunnerEvent:
        """Run one job in the model's warm container; failures come back as events.

        Concurrent calls are served one after the other (one job per runtime).
        """
        with self._run_lock:
            return self._run(request, job_dir=job_dir, on_event=on_event, timeout_s=timeout_s)

    def _run(
        self,
        request: RunRequest,
        *,
        job_dir: Path,
        on_event: EventCallback,
        timeout_s: float,
    ) -> RunnerEvent:
        use_gpu = self._needs_gpu(request)
        if use_gpu and self._gpus < 1:
            # Refuse before any container exists: a device request on a GPU-less host would
            # fail anyway, later and with a less helpful message.
            raise PipelineError(
                f"model {request.spec.model} needs a GPU and this host has none "
                f"(job {request.job_id})",
                fix="run it on a GPU provider, or choose a model that runs on CPU",
            )
        job_dir = job_dir.resolve()
        model_dir = Path(request.model_dir).resolve()
        container_request = self._rewrite_paths(request, job_dir=job_dir, model_dir=model_dir)
        weights_problem = self._weights_problem(model_dir, request.spec.model)
        if weights_problem is not None:
            # A job failure, not an infrastructure one: answer like the runner would.
            event = failed_event(request.job_id, "weights", *weights_problem)
            on_event(event)
            return event
        self._prepare_job_dir(job_dir)

        cancel = threading.Event()
        with self._lock:
            self._cancels[request.job_id] = cancel
        try:
            warm = self._warm_container(model_dir, job_dir.parent, use_gpu=use_gpu)
            try:
                result = warm.channel.drive(
                    container_request, on_event=on_event, timeout_s=timeout_s, cancel=cancel
                )
            except BaseException:
                # An exception out of on_event (or Ctrl-C) leaves the runner mid-job in an
                # unknown state: never hand that container to the next job.
                self._discard(warm, kill=True)
                raise
            if result.ended == "terminal" and result.event is not None:
                return result.event
            # Beyond here the runner is dead or must die: the container goes either way.
            if result.ended == "timeout":
                self._discard(warm, kill=True)
                event = timeout_event(request.job_id, timeout_s)
            elif result.ended == "cancel_unanswered":
                self._discard(warm, kill=True)
                event = canceled_event(request.job_id)
            else:  # eof: the runner exited mid-job (OOM killer, crash)
                exit_code, oom_killed = self._exit_state(warm)
                self._discard(warm, kill=True)
                event = self._exit_event(
                    request.job_id, exit_code, oom_killed, warm, canceled=cancel.is_set()
                )
            on_event(event)
            return event
        finally:
            with self._lock:
                self._cancels.pop(request.job_id, None)

    def cancel(self, job_id: str) -> None:
        """Ask the runner to stop `job_id`; `run` kills the container if it does not answer."""
        with self._lock:
            event = self._cancels.get(job_id)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Shut every warm runner down and remove its container."""
        with self._lock:
            warms = list(self._warm.values())
        for warm in warms:
            self._discard(warm, kill=False)

    def __enter__(self) -> DockerRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- containers ----------------------------------------------------------------------

    def remove_exited_containers(self) -> int:
        """Remove runner containers that are no longer running; return how many.

        A node killed with -9 cannot remove its warm containers; their runners exit on
        stdin EOF and the containers stay behind, stopped. Running ones may belong to
        another runtime on this host and are left alone.
        """
        removed = 0
        with _mapped("list leftover runner containers"):
            leftovers = self._client.containers.list(
                all=True,
                filters={"label": LABEL, "status": ["exited", "created", "dead"]},
            )
        for container in leftovers:
            self._remove(container)
            removed += 1
        if removed:
            log.info("removed %d leftover runner container(s)", removed)
        return removed

    def remove_stale_containers(self) -> int:
        """Remove this node's containers started by an earlier, dead process of it.

        A node killed with -9 leaves its warm container; should the runner in it not have
        stopped by itself (an image without the watchdog), it still holds a model in
        memory. Containers of this node's live process (other slots) stay.
        """
        removed = 0
        with _mapped("list this node's runner containers"):
            mine = self._client.containers.list(
                all=True, filters={"label": f"{OWNER_LABEL}={self.owner}"}
            )
        for container in mine:
            session = str((container.labels or {}).get(SESSION_LABEL, ""))
            if session == self.session or _session_alive(session):
                continue
            log.warning(
                "removing runner container %s left by node process %s",
                str(container.id)[:12],
                session or "?",
            )
            self._remove(container)
            removed += 1
        return removed

    def container_ids(self) -> list[str]:
        """IDs of the warm containers (for tests and `/healthz`)."""
        with self._lock:
            return [str(w.container.id) for w in self._warm.values()]

    def _warm_container(self, model_dir: Path, jobs_root: Path, *, use_gpu: bool) -> _Warm:
        key = (model_dir, jobs_root)
        with self._lock:
            warm = self._warm.get(key)
            if warm is not None:
                self._warm.move_to_end(key)
        if warm is not None:
            if self._is_running(warm):
                return warm
            self._discard(warm, kill=True)
        # A warm container holds a model in (GPU) memory: make room before starting another.
        while True:
            with self._lock:
                if len(self._warm) < self._max_warm:
                    break
                _, oldest = next(iter(self._warm.items()))
            self._discard(oldest, kill=False)
        warm = self._start(model_dir, jobs_root, use_gpu=use_gpu)
        with self._lock:
            self._warm[key] = warm
        return warm

    def container_config(
        self, model_dir: Path, jobs_root: Path, *, use_gpu: bool
    ) -> dict[str, Any]:
        """Keyword arguments of `containers.create`: the hardening lives here, in one place."""
        user = f"{RUNNER_UID}:{RUNNER_UID}" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        uid, gid = user.split(":")
        config: dict[str, Any] = {
            "image": self.image_id,
            "command": self._command,
            "stdin_open": True,  # the protocol's request channel
            "tty": False,  # keep stdout and stderr apart (multiplexed frames)
            # Not detached: the SDK then sets StdinOnce, so the runner's stdin closes when
            # the node's one attach drops (the node died) and the runner stops itself.
            "detach": False,
            "network_mode": "none",
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            # docker-init as PID 1: forwards signals (PID 1 ignores SIGTERM without a
            # handler) and reaps the encoder's ffmpeg children.
            "init": True,
            "user": user,
            "pids_limit": self._pids_limit,
            "mem_limit": self.memory_limit,
            # No swap: an over-budget job must be OOM-killed, not crawl.
            "memswap_limit": self.memory_limit,
            # The only writable places: /tmp (HOME, caches) and the job dirs.
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={self._tmpfs_size},uid={uid},gid={gid}"},
            "mounts": [
                Mount(
                    target=f"{WEIGHTS_MOUNT}/{model_dir.name}",
                    source=str(model_dir),
                    type="bind",
                    read_only=True,
                ),
                Mount(target=JOBS_MOUNT, source=str(jobs_root), type="bind", read_only=False),
            ],
            "environment": {
                "HF_HUB_OFFLINE": "1",
                "FRAMECAST_DEVICE": "cuda" if use_gpu else "cpu",
                **self._environment,
            },
            "labels": {
                LABEL: "docker",
                "io.framecast.model-dir": model_dir.name,
                SESSION_LABEL: self.session,
                **({OWNER_LABEL: self.owner} if self.owner is not None else {}),
            },
        }
        if use_gpu:
            config["device_requests"] = [DeviceRequest(count=self._gpus, capabilities=[["gpu"]])]
        return config

    def _start(self, model_dir: Path, jobs_root: Path, *, use_gpu: bool) -> _Warm:
        action = f"start a runner container for {model_dir.name}"
        container: Container | None = None
        try:
            with _mapped(action):
                container = self._client.containers.create(
                    **self.container_config(model_dir, jobs_root, use_gpu=use_gpu)
                )
                # Attach before start so not a byte of the runner's output is lost.
                sock = container.attach_socket(
                    params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                )
                container.start()
        except BaseException:
            # A failed create/start (e.g. a GPU request without GPUs) leaves a Created
            # container behind: never leak it.
            if container is not None:
                self._remove(container)
            raise
        raw = sock._sock  # the hijacked connection under the SDK's SocketIO wrapper
        raw.settimeout(None)
        tail: collections.deque[bytes] = collections.deque(maxlen=256)

        def write(data: bytes) -> None:
            raw.sendall(data)

        channel = JsonLinesChannel(
            write, _stdout_lines(sock, tail), label=f"docker:{str(container.id)[:12]}"
        )
        log.info("started runner container %s for %s", str(container.id)[:12], model_dir.name)
        return _Warm(
            key=(model_dir, jobs_root), container=container, channel=channel, stderr_tail=tail
        )

    def _is_running(self, warm: _Warm) -> bool:
        try:
            warm.container.reload()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        return bool(warm.container.attrs.get("State", {}).get("Running"))

    def _exit_state(self, warm: _Warm) -> tuple[int | None, bool]:
        """Exit code and OOMKilled of a runner whose stdout just closed."""
        try:
            warm.container.wait(timeout=10)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # wait(timeout=) raises requests' ConnectionError/ReadTimeout, not a docker error.
            log.warning("container %s did not exit after EOF: %s", warm.container.id, exc)
        try:
            warm.container.reload()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None, False
        state = warm.container.attrs.get("State", {})
        exit_code = state.get("ExitCode")
        return (int(exit_code) if exit_code is not None else None), bool(state.get("OOMKilled"))

    def _exit_event(
        self,
        job_id: str,
        exit_code: int | None,
        oom_killed: bool,
        warm: _Warm,
        *,
        canceled: bool,
    ) -> RunnerEvent:
        if canceled and not oom_killed:
            return canceled_event(job_id)
        if exit_code == SIGKILL_EXIT and not oom_killed:
            # Docker's OOMKilled is authoritative: a SIGKILL without it came from outside
            # (`docker kill`, a daemon restart), so it is a crash, not a memory problem.
            return failed_event(
                job_id,
                "crash",
                f"the runner container was killed from outside (exit {exit_code}, not "
                f"OOMKilled) while running job {job_id}",
                fix="check who stops containers on this host (`docker events`); retry the job",
            )
        return terminal_from_exit(
            job_id, exit_code, oom_killed=oom_killed, stderr_tail=warm.stderr_text()
        )

    def _discard(self, warm: _Warm, *, kill: bool) -> None:
        """Stop (kindly unless `kill`) and remove a container; forget it."""
        with self._lock:
            if self._warm.get(warm.key) is warm:
                del self._warm[warm.key]
        if not kill:
            with contextlib.suppress(OSError):
                warm.channel.send(ShutdownMessage())
            try:
                warm.container.wait(timeout=10)
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                log.warning("runner %s ignored shutdown; killing it", warm.container.id)
        self._remove(warm.container)

    def _remove(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.error("could not remove container %s: %s", container.id, exc)

    # -- paths ---------------------------------------------------------------------------

    def _rewrite_paths(self, request: RunRequest, *, job_dir: Path, model_dir: Path) -> RunRequest:
        """The request with host paths replaced by the container's mount points."""
        in_container = f"{JOBS_MOUNT}/{job_dir.name}"

        def job_path(value: str, field_name: str) -> str:
            path = Path(value).resolve()
            if not path.is_relative_to(job_dir):
                raise PipelineError(
                    f"{field_name} {path} of job {request.job_id} is outside its job "
                    f"directory {job_dir}",
                    fix="keep a job's outputs and inputs under its job directory",
                )
            relative = path.relative_to(job_dir).as_posix()
            return in_container if relative == "." else f"{in_container}/{relative}"

        return request.model_copy(
            update={
                "model_dir": f"{WEIGHTS_MOUNT}/{model_dir.name}",
                "output_dir": job_path(request.output_dir, "output_dir"),
                "inputs_dir": (
                    job_path(request.inputs_dir, "inputs_dir") if request.inputs_dir else None
                ),
            }
        )

    def _weights_problem(self, model_dir: Path, model: str) -> tuple[str, str] | None:
        """(message, fix) when the weights cannot be mounted or read; None when fine."""
        if not model_dir.is_dir():
            from framecast.shared.catalog import load_catalog
            from framecast.shared.catalog.verify import fetch_fix

            entry = load_catalog().models.get(model)
            # Docker refuses a bind mount of a missing path with an opaque API error.
            return (
                f"weights directory {model_dir} does not exist",
                fetch_fix(entry, model_dir)
                if entry is not None
                else f"run `framecast node models pull {model}` first",
            )
        unreadable = self._grant_weights_read(model_dir)
        if unreadable is not None:
            return unreadable, f"make the weights world-readable: `chmod -R a+rX {model_dir}`"
        return None

    def _grant_weights_read(self, model_dir: Path) -> str | None:
        """Let the container's user read the weights; a problem message if it cannot.

        The mount is read-only and keeps host modes; a root-run node starts the runner as
        RUNNER_UID, which reads through the "other" permission bits only, and some writers
        (sharded `save_pretrained`) leave 0600 files. Adding read bits changes no byte, so
        the manifest still holds.
        """
        if os.geteuid() != 0 or not model_dir.is_dir():
            return None  # same user as the files, or missing: the runner reports it
        try:
            for path in [model_dir, *model_dir.rglob("*")]:
                mode = path.stat().st_mode
                need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
                if mode & need != need:
                    log.info("adding o+r to %s for the runner user", path)
                    path.chmod(stat.S_IMODE(mode) | need)
        except OSError as exc:
            return f"weights in {model_dir} are not readable by the runner user: {exc}"
        return None

    def _prepare_job_dir(self, job_dir: Path) -> None:
        """Make the job dir writable by the container's non-root user.

        Bind mounts keep host ownership, so as root we hand the job dir to the runner uid
        and let it traverse (not list) the jobs root; a non-root node runs the container
        as itself and needs nothing.
        """
        job_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        for path in [job_dir, *job_dir.rglob("*")]:
            os.chown(path, RUNNER_UID, RUNNER_UID, follow_symlinks=False)
        parent = job_dir.parent
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _session() -> str:
    """This process as "pid:start time": a reused pid is another session."""
    pid = os.getpid()
    return f"{pid}:{process_start(pid)}"


def _session_alive(session: str) -> bool:
    pid, _, start = session.partition(":")
    return pid.isdigit() and str(process_start(int(pid))) == start


def _stdout_lines(sock: Any, stderr_tail: collections.deque[bytes]) -> Iterator[bytes]:
    """Demultiplex the attach stream: stdout as lines, stderr into the log and the tail."""
    pending = b""
    for stream, data in frames_iter(sock, tty=False):
        if stream == STDOUT:
            pending += data
            *lines, pending = pending.split(b"\n")
            yield from lines
        elif stream == STDERR:
            stderr_tail.append(data)
            for line in data.decode("utf-8", "replace").splitlines():
                runner_log.debug("%s", line)
    if pending:
        yield pending


def _catalog_needs_gpu(request: RunRequest) -> bool:
    """Whether the catalog entry of the request's model needs a GPU."""
    from framecast.shared.catalog import get_entry

    try:
        entry = get_entry(request.spec.model)
    except UnknownModel:
        return False  # the runner answers it as invalid input, naming the known models
    return bool(entry.requires_gpu)


def probe_gpu(client: DockerClient, image: str) -> dict[str, Any]:
    """Create and start a container of `image` with a GPU device request, as the runtime
    does, then remove it: `PipelineError` when Docker has no NVIDIA runtime (the daemon's
    "could not select device driver" answer), other errors mapped by `map_docker_error`.

    Returns the daemon's runtimes (`docker info`), e.g. {"nvidia": ..., "runc": ...}.
    """
    with _mapped("read `docker info`"):
        runtimes: dict[str, Any] = dict(client.info().get("Runtimes") or {})
    container = None
    try:
        with _mapped(f"start a GPU test container of {image}"):
            container = client.containers.create(
                image,
                command=["true"],
                network_mode="none",
                device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
            )
            container.start()
            container.wait(timeout=60)
    finally:
        if container is not None:
            # A failed GPU start leaves the container in state Created: remove it.
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
    return runtimes
