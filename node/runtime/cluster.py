"""The Ray runtime: one provider identity, jobs on warm runner actors across a Ray cluster.

The node stays the single chain-facing head (one key, one journal); `RayCluster` connects
to the cluster at `ray_address` as a Ray driver and keeps a warm `RunnerHost` actor per
model per GPU. An actor runs the process runtime's runner (`python -m framecast.runner
serve`) on its worker host and relays the same protocol events (docs/protocol.md §5), so
the runner code and its failure mapping are the other runtimes' own.

Placement (docs/ray.md): an actor asks for `gpus_per_job` units of `ray_gpu_resource`
(`GPU`; tests emulate GPUs with a custom resource) on one host, pinned by node affinity. A
host declares its cards' memory as the custom resource `vram_gb` (per-card GiB × cards);
a model whose per-GPU need (`vram_per_gpu_gb`) exceeds a host's per-card share never goes
there, and a model no host can take is refused before claiming (`unservable`).

Data path: inputs travel to the actor and `video.mp4` / `poster.jpg` travel back through
Ray's object store, not a shared filesystem: a cluster then needs nothing mounted on every
host but the weights, and the node writes the files into its own job folder, checks the
video's sha256 against the runner's report, and pins them as with any runtime.

Faults: an actor or its host dying mid-job (`kill -9`, `ray stop`) is retried on another
actor while the job's budget lasts; Ray's own out-of-memory kill, or the runner's, fails
the job cleanly (`oom`) and the actor is replaced. Capacity is Ray's resource view, read
when the node considers a job (`free_slots`), not a static slot count.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from framecast.node.runtime.base import EventCallback, canceled_event, timeout_event
from framecast.shared.catalog import get_entry
from framecast.shared.catalog.fit import MIB_PER_GIB, GpuCard
from framecast.shared.errors import ConfigError, FramecastError, RuntimeUnavailable
from framecast.shared.runner_protocol import RunnerEvent, RunRequest, failed_event

log = logging.getLogger(__name__)

#: Prefix of every actor name (named actors are listed by `node status` without the
#: dashboard: `ray.util.list_named_actors`).
ACTOR_PREFIX = "framecast-runner"
#: The custom resource a host declares its GPU memory in: GiB per card × cards.
VRAM_RESOURCE = "vram_gb"
#: Seconds past a job's budget before a silent actor is killed (its runner has its own
#: deadline and normally answers `timeout` first).
_SILENT_GRACE_S = 30.0


# ---------------------------------------------------------------------- the actor body
class RunnerHost:
    """What runs inside a Ray actor on a worker host: a warm runner subprocess.

    The runner is started and driven from one long-lived thread (`_owner`). Its watchdog
    (`framecast.runner.lifeline`) kills it when this actor's process dies (a kill -9 of the
    actor, or its host stopped), so an abandoned job never goes on computing on the GPU its
    retry needs.
    """

    def __init__(self, model: str, scratch: str) -> None:
        from framecast.node.runtime.process import ProcessRuntime

        self.model = model
        self.scratch = Path(scratch) / f"{model}-{os.getpid()}"
        self.runtime = ProcessRuntime(log_dir=self.scratch / "logs")
        self._owner = ThreadPoolExecutor(1, thread_name_prefix="runner-owner")

    def describe(self) -> dict[str, Any]:
        """Who and where this actor is (tests kill these pids to simulate faults)."""
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "runner_pid": self.runtime.pid,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }

    def cancel(self, job_id: str) -> None:
        self.runtime.cancel(job_id)

    def run(
        self, request_json: str, inputs: dict[str, bytes], timeout_s: float
    ) -> Iterator[str | dict[str, bytes]]:
        """Run one job; yield each event as JSON, then the result files' bytes."""
        request = RunRequest.model_validate_json(request_json)
        job_dir = self.scratch / "jobs" / Path(request.job_id).name
        shutil.rmtree(job_dir, ignore_errors=True)
        out = job_dir / "out"
        out.mkdir(parents=True)
        inputs_dir: Path | None = None
        if inputs:
            inputs_dir = job_dir / "inputs"
            inputs_dir.mkdir()
            for name, data in inputs.items():
                parts = Path(name).parts
                if not parts or ".." in parts or Path(name).is_absolute():
                    continue  # only the node's own relative names are written
                target = inputs_dir.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        local = request.model_copy(
            update={
                "output_dir": str(out),
                "inputs_dir": str(inputs_dir) if inputs_dir else None,
            }
        )
        events: queue.Queue[RunnerEvent] = queue.Queue()
        future = self._owner.submit(
            self.runtime.run, local, job_dir=job_dir, on_event=events.put, timeout_s=timeout_s
        )
        try:
            while True:
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    if future.done() and future.exception() is not None:
                        exc = future.exception()
                        event = failed_event(request.job_id, "crash", f"runner host: {exc}")
                    else:
                        continue
                yield event.model_dump_json()
                if event.terminal:
                    break
            if event.status == "succeeded" and event.output is not None:
                future.result()
                yield {name: (out / name).read_bytes() for name in ("video.mp4", "poster.jpg")}
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def close(self) -> None:
        self.runtime.close()


# ---------------------------------------------------------------------- views
class HostView(BaseModel):
    """One alive host of the cluster, as the node schedules on it."""

    node_id: str
    address: str
    gpus: float = Field(description="Units of the GPU resource the host declares.")
    free_gpus: float = Field(description="Of those, free now (Ray's view, less our actors).")
    vram_per_gpu_gb: float | None = Field(description="Declared vram_gb / gpus; None: unknown.")


class ActorView(BaseModel):
    """One warm runner actor."""

    name: str
    model: str
    node_id: str
    gpus: int
    busy_job: str | None


class ModelView(BaseModel):
    """What the cluster can do for one served model now."""

    model: str
    gpus_per_job: int
    vram_per_gpu_gb: int
    free_slots: int
    unservable: str | None


class ClusterView(BaseModel):
    """`framecast node status`'s cluster section."""

    address: str
    gpu_resource: str
    gpus: float
    free_gpus: float
    hosts: list[HostView]
    actors: list[ActorView]
    models: list[ModelView]


@dataclass
class _Actor:
    name: str
    model: str
    node_id: str
    gpus: int
    handle: Any
    busy_job: str | None = None


# ---------------------------------------------------------------------- the cluster
class RayCluster:
    """The node's driver connection to a Ray cluster and its pool of warm actors."""

    def __init__(
        self,
        *,
        address: str,
        gpu_resource: str = "GPU",
        token_file: Path | None = None,
        weights_dir: Path | None = None,
        namespace: str = "framecast",
        actor_cpus: float = 1.0,
        scratch: str = "/tmp/framecast-ray",
        max_jobs: int = 64,
        connect_timeout_s: float = 5.0,
        actor_start_timeout_s: float = 120.0,
        shrink_grace_s: float = 30.0,
    ) -> None:
        self.address = address
        self.gpu_resource = gpu_resource
        self.token_file = token_file
        self.weights_dir = weights_dir
        self.namespace = namespace
        self.actor_cpus = actor_cpus
        self.scratch = scratch
        self.max_jobs = max_jobs
        self.connect_timeout_s = connect_timeout_s
        self.actor_start_timeout_s = actor_start_timeout_s
        self.shrink_grace_s = shrink_grace_s
        self._cond = threading.Condition()
        self._actors: list[_Actor] = []
        #: node id → GPUs promised to actors being started there (not yet in Ray's view).
        self._placing: dict[str, int] = {}
        self._connected = False
        self._views = 0

    # ------------------------------------------------------------ connection
    def connect(self) -> None:
        """Connect as a driver; one line naming the fix when the cluster is not there."""
        if self._connected:
            return
        import ray

        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(
                f"node config field `ray_address`: {self.address!r} is not HOST:PORT",
                fix='e.g. ray_address = "10.0.0.1:6379" (the head\'s `ray start --head --port`)',
            )
        try:
            # ray.init retries an absent GCS for minutes: ask the socket first.
            socket.create_connection((host.strip("[]"), int(port)), self.connect_timeout_s).close()
        except OSError as exc:
            raise RuntimeUnavailable(
                f"Ray cluster at {self.address} is unreachable: {exc}",
                fix="start the head with `ray start --head --port=PORT` or fix ray_address",
            ) from None
        if self.token_file is not None:
            if not self.token_file.is_file():
                raise ConfigError(
                    f"node config field `ray_auth_token_file`: {self.token_file} does not exist",
                    fix="write the cluster's token there (`ray get-auth-token` on the head)",
                )
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ["RAY_AUTH_TOKEN_PATH"] = str(self.token_file)
            os.environ.pop("RAY_AUTH_TOKEN", None)  # it would win over the file
            _reload_auth_settings()
        try:
            ray.init(
                address=self.address,
                namespace=self.namespace,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except Exception as exc:  # the adapter boundary: Ray raises many unrelated types
            text = " ".join(str(exc).split())[:200]
            # Ray's client logs an auth refusal on stderr only and then gives up like an
            # absent head: the fix names the token, which is what it almost always is.
            token = (
                f"the token in {self.token_file} is not the cluster's"
                if self.token_file is not None
                else "the cluster wants a token (RAY_AUTH_MODE=token) and none is set"
            )
            raise RuntimeUnavailable(
                f"cannot join the Ray cluster at {self.address} ({text}); likely {token}",
                fix="set ray_auth_token_file to the token `ray get-auth-token` prints on the "
                "head, and run the head's Ray version",
            ) from None
        self._connected = True
        log.info("joined the Ray cluster at %s", self.address)

    def runtime(self) -> RayRuntime:
        """A runtime view for one job at a time (the agent takes one per running job)."""
        self.connect()
        with self._cond:
            self._views += 1
        return RayRuntime(self)

    def hold(self) -> None:
        """Keep the pool open past its runtime views (a test or bench owning the cluster
        closes it itself)."""
        with self._cond:
            self._views += 1

    def detach(self) -> None:
        """A view closed; the last one closes the pool."""
        with self._cond:
            self._views -= 1
            last = self._views <= 0
        if last:
            self.close()

    def close(self) -> None:
        """Kill every actor of ours and leave the cluster."""
        if not self._connected:
            return
        import ray

        with self._cond:
            actors, self._actors = self._actors, []
        for actor in actors:
            self._kill(actor.handle)
        ray.shutdown()
        self._connected = False

    # ------------------------------------------------------------ resources
    def hosts(self) -> list[HostView]:
        """Alive hosts with their GPUs and per-card memory."""
        import ray

        try:
            from ray._private.state import state as _state

            # Ray's public API gives only cluster totals; per host we need what is free.
            per_node: dict[str, dict[str, float]] = _state.available_resources_per_node()  # type: ignore[no-untyped-call]
        except (ImportError, AttributeError):  # a Ray without it: count our actors only
            per_node = {}
        views = []
        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if not node.get("Alive"):
                continue
            total = node.get("Resources", {})
            gpus = float(total.get(self.gpu_resource, 0.0))
            if gpus <= 0:
                continue
            node_id = str(node["NodeID"])
            ours = sum(a.gpus for a in self._actors if a.node_id == node_id)
            ours += self._placing.get(node_id, 0)
            free = gpus - ours
            if node_id in per_node:
                free = min(free, float(per_node[node_id].get(self.gpu_resource, 0.0)))
            vram = total.get(VRAM_RESOURCE)
            views.append(
                HostView(
                    node_id=node_id,
                    address=str(node.get("NodeManagerAddress", "?")),
                    gpus=gpus,
                    free_gpus=max(0.0, free),
                    vram_per_gpu_gb=float(vram) / gpus if vram else None,
                )
            )
        return views

    def cards(self) -> list[GpuCard]:
        """One card per distinct per-GPU memory the hosts declare (`vram_gb` / GPUs)."""
        sizes = sorted({h.vram_per_gpu_gb for h in self.hosts() if h.vram_per_gpu_gb})
        return [
            GpuCard(
                index=0, name=f"Ray worker GPU ({size:g} GiB)", memory_mib=int(size * MIB_PER_GIB)
            )
            for size in sizes
        ]

    def _eligible(self, model: str, hosts: list[HostView]) -> list[HostView]:
        entry = get_entry(model)
        degree, need = entry.gpus_per_job, entry.vram_per_gpu_gb
        return [
            h
            for h in hosts
            if h.gpus >= degree
            and (need == 0 or (h.vram_per_gpu_gb is not None and h.vram_per_gpu_gb >= need))
        ]

    def unservable(self, model: str) -> str | None:
        """Why no host of the cluster can ever run `model` now (None: some host can)."""
        entry = get_entry(model)
        with self._cond:
            hosts = self.hosts()
            if self._eligible(model, hosts):
                return None
        seen = ", ".join(f"{h.address}: {h.gpus:g}×{h.vram_per_gpu_gb or '?'} GiB" for h in hosts)
        return (
            f"no host of the Ray cluster has {entry.gpus_per_job} × {self.gpu_resource} with "
            f"≥ {entry.vram_per_gpu_gb} GiB each (hosts: {seen or 'none with a GPU'})"
        )

    def _idle_gpus(self, node_id: str, model: str | None = None) -> int:
        return sum(
            a.gpus
            for a in self._actors
            if a.node_id == node_id and a.busy_job is None and a.model != model
        )

    def free_slots(self, model: str, pending: int = 0) -> int:
        """Jobs of `model` that could start now, less `pending` claimed jobs not yet placed."""
        degree = get_entry(model).gpus_per_job
        with self._cond:
            hosts = self._eligible(model, self.hosts())
            idle = sum(1 for a in self._actors if a.model == model and a.busy_job is None)
            new = sum(
                int((h.free_gpus + self._idle_gpus(h.node_id, model)) // degree) for h in hosts
            )
        return idle + new - pending

    def leased(self) -> set[str]:
        """Job ids running on an actor now."""
        with self._cond:
            return {a.busy_job for a in self._actors if a.busy_job is not None}

    # ------------------------------------------------------------ actors
    def acquire(self, model: str, job_id: str, deadline: float, cancel: threading.Event) -> Any:
        """A warm actor of `model` leased to `job_id`, started if need be; None when none
        can be had before `deadline` (or the cluster cannot host the model for a while)."""
        degree = get_entry(model).gpus_per_job
        unservable_since: float | None = None
        while not cancel.is_set():
            now = time.monotonic()
            if now >= deadline:
                return None
            with self._cond:
                for actor in self._actors:
                    if actor.model == model and actor.busy_job is None:
                        actor.busy_job = job_id
                        return actor
                hosts = self._eligible(model, self.hosts())
                if not hosts:
                    unservable_since = unservable_since or now
                    if now - unservable_since >= self.shrink_grace_s:
                        return None
                else:
                    unservable_since = None
                target = next((h for h in hosts if h.free_gpus >= degree), None)
                if target is None:
                    # Evict an idle actor of another model on a host it would free enough of.
                    for host in hosts:
                        if host.free_gpus + self._idle_gpus(host.node_id, model) >= degree:
                            self._evict(host.node_id, model)
                            break
                    self._cond.wait(0.2)
                    continue
                self._placing[target.node_id] = self._placing.get(target.node_id, 0) + degree
            try:
                started = self._start(model, target, degree, job_id, deadline)
            finally:
                with self._cond:
                    self._placing[target.node_id] -= degree
            if started is not None:
                return started
        return None

    def _evict(self, node_id: str, keep_model: str) -> None:
        for actor in list(self._actors):
            if actor.node_id == node_id and actor.busy_job is None and actor.model != keep_model:
                log.info("evicting idle actor %s to free its GPU for %s", actor.name, keep_model)
                self._actors.remove(actor)
                self._kill(actor.handle)
                return

    def _start(
        self, model: str, host: HostView, degree: int, job_id: str, deadline: float
    ) -> _Actor | None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        name = f"{ACTOR_PREFIX}/{model}/{host.node_id[:12]}/{uuid.uuid4().hex[:8]}"
        resources: dict[str, float] = {}
        num_gpus = 0
        if self.gpu_resource == "GPU":
            num_gpus = degree  # Ray sets CUDA_VISIBLE_DEVICES for the actor
        else:
            resources[self.gpu_resource] = degree
        if host.vram_per_gpu_gb:
            resources[VRAM_RESOURCE] = host.vram_per_gpu_gb * degree  # whole cards
        remote_cls: Any = ray.remote(RunnerHost)
        handle = remote_cls.options(
            name=name,
            num_cpus=self.actor_cpus,
            num_gpus=num_gpus,
            resources=resources,
            scheduling_strategy=NodeAffinitySchedulingStrategy(host.node_id, soft=False),
            max_restarts=0,
            max_concurrency=2,  # `cancel` must reach it while `run` streams
        ).remote(model, self.scratch)
        wait = max(1.0, min(self.actor_start_timeout_s, deadline - time.monotonic()))
        try:
            ray.get(handle.describe.remote(), timeout=wait)
        except Exception as exc:  # the adapter boundary: placement timeouts, dead hosts
            log.warning("actor for %s on %s did not start: %s", model, host.address, exc)
            self._kill(handle)
            return None
        actor = _Actor(name, model, host.node_id, degree, handle, busy_job=job_id)
        with self._cond:
            self._actors.append(actor)
        log.info("started actor %s on %s", name, host.address)
        return actor

    def release(self, actor: _Actor, *, healthy: bool) -> None:
        """Give the actor back warm, or kill it (died, OOM, silent) so a fresh one replaces it."""
        with self._cond:
            if healthy and actor in self._actors:
                actor.busy_job = None
            else:
                if actor in self._actors:
                    self._actors.remove(actor)
                self._kill(actor.handle)
            self._cond.notify_all()

    @staticmethod
    def _kill(handle: Any) -> None:
        import ray

        try:
            ray.kill(handle, no_restart=True)
        except Exception as exc:  # already dead, or its host gone: nothing to free
            log.debug("ray.kill: %s", exc)

    def describe_actor(self, job_id: str) -> dict[str, Any] | None:
        """The actor running `job_id` (pids, host), for tests and diagnostics."""
        import ray

        with self._cond:
            actor = next((a for a in self._actors if a.busy_job == job_id), None)
        if actor is None:
            return None
        description: dict[str, Any] = ray.get(actor.handle.describe.remote(), timeout=30)
        return {**description, "node_id": actor.node_id, "name": actor.name}

    def model_dir(self, request: RunRequest) -> str:
        """Where the workers see the job's weights."""
        if self.weights_dir is None:
            return request.model_dir
        return str(self.weights_dir / request.spec.model)

    def view(self, models: list[str]) -> ClusterView:
        """The cluster as `node status` shows it: hosts, our actors, what each model can get."""
        with self._cond:
            hosts = self.hosts()
            actors = [
                ActorView(
                    name=a.name, model=a.model, node_id=a.node_id, gpus=a.gpus, busy_job=a.busy_job
                )
                for a in self._actors
            ]
        return ClusterView(
            address=self.address,
            gpu_resource=self.gpu_resource,
            gpus=sum(h.gpus for h in hosts),
            free_gpus=sum(h.free_gpus for h in hosts),
            hosts=hosts,
            actors=actors + self._foreign_actors(),
            models=[
                ModelView(
                    model=m,
                    gpus_per_job=get_entry(m).gpus_per_job,
                    vram_per_gpu_gb=get_entry(m).vram_per_gpu_gb,
                    free_slots=max(0, self.free_slots(m)),
                    unservable=self.unservable(m),
                )
                for m in models
            ],
        )

    def _foreign_actors(self) -> list[ActorView]:
        """Runner actors another driver (the running node) holds, listed by name."""
        import ray

        mine = {a.name for a in self._actors}
        views = []
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name = entry["name"] if isinstance(entry, dict) else str(entry)
            parts = name.split("/")
            if len(parts) != 4 or parts[0] != ACTOR_PREFIX or name in mine:
                continue
            views.append(
                ActorView(name=name, model=parts[1], node_id=parts[2], gpus=0, busy_job=None)
            )
        return views


# ---------------------------------------------------------------------- the runtime
class RayRuntime:
    """`ContainerRuntime` over a `RayCluster`: one job at a time per view."""

    name = "ray"

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster
        self._cancel = threading.Event()
        self._current: str | None = None
        self._closed = False
        #: Actors lost under a job this view ran (a fault the job survived), for reports.
        self.retries = 0

    def cancel(self, job_id: str) -> None:
        if self._current == job_id:
            self._cancel.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.cluster.detach()

    def run(
        self,
        request: RunRequest,
        *,
        job_dir: Path,
        on_event: EventCallback,
        timeout_s: float,
    ) -> RunnerEvent:
        """Run on a warm actor; retry on another when the actor or its host dies."""
        job = request.job_id
        self._current = job
        self._cancel.clear()
        deadline = time.monotonic() + timeout_s
        try:
            get_entry(request.spec.model)
        except FramecastError as exc:
            # Placement needs the entry; the runner would refuse the same way (invalid_input).
            event = failed_event(job, "invalid_input", exc.message, exc.fix)
            on_event(event)
            self._current = None
            return event
        try:
            job_dir.mkdir(parents=True, exist_ok=True)
            inputs = _read_inputs(request.inputs_dir)
            remote = request.model_copy(update={"model_dir": self.cluster.model_dir(request)})
            while True:
                actor = self.cluster.acquire(request.spec.model, job, deadline, self._cancel)
                if actor is None:
                    why = self.cluster.unservable(request.spec.model) or "all GPUs busy"
                    event = (
                        canceled_event(job)
                        if self._cancel.is_set()
                        else failed_event(
                            job,
                            "crash",
                            f"no Ray actor could take job {job} within its budget "
                            f"(cluster at {self.cluster.address}: {why})",
                            fix="add GPUs to the cluster; the node releases the job",
                        )
                    )
                    on_event(event)
                    return event
                lost, ended = self._drive(actor, remote, request, inputs, on_event, deadline)
                if lost is None:
                    assert ended is not None
                    event = ended
                    healthy = event.error is None or event.error.kind in (
                        "invalid_input",
                        "weights",
                        "canceled",
                        "timeout",
                    )
                    self.cluster.release(actor, healthy=healthy)
                    return event
                self.cluster.release(actor, healthy=False)
                self.retries += 1
                log.warning(
                    "job %s: actor %s lost (%s); retrying on another", job, actor.name, lost
                )
        finally:
            self._current = None

    def _drive(
        self,
        actor: _Actor,
        remote: RunRequest,
        request: RunRequest,
        inputs: dict[str, bytes],
        on_event: EventCallback,
        deadline: float,
    ) -> tuple[str | None, RunnerEvent | None]:
        """One attempt: (why the actor was lost, None) or (None, the terminal event)."""
        import ray
        import ray.exceptions

        job = request.job_id
        budget = max(0.05, deadline - time.monotonic())
        items: queue.Queue[object] = queue.Queue()
        done = object()

        def pump() -> None:
            try:
                for ref in actor.handle.run.remote(remote.model_dump_json(), inputs, budget):
                    items.put(ray.get(ref))
            except Exception as exc:  # RayActorError, OutOfMemoryError, node death
                items.put(exc)
            items.put(done)

        threading.Thread(target=pump, name=f"ray-job-{job}", daemon=True).start()
        sent_cancel = False
        terminal: RunnerEvent | None = None
        while True:
            if self._cancel.is_set() and not sent_cancel:
                sent_cancel = True
                actor.handle.cancel.remote(job)
            if time.monotonic() > deadline + _SILENT_GRACE_S:
                self.cluster.release(actor, healthy=False)
                event = timeout_event(job, budget)
                on_event(event)
                return None, event
            try:
                item = items.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, str):
                event = RunnerEvent.model_validate_json(item)
                if event.job_id != job:
                    continue
                if event.terminal:
                    terminal = event
                    if event.status != "succeeded":
                        on_event(event)
                else:
                    on_event(event)
            elif isinstance(item, dict):
                if terminal is None or terminal.output is None:
                    continue
                event = self._write_outputs(request, terminal, item)
                on_event(event)
                terminal = event
            elif isinstance(item, ray.exceptions.OutOfMemoryError):
                event = failed_event(
                    job,
                    "oom",
                    f"Ray killed the actor of job {job} for memory: {_first_line(item)}",
                    fix="lower frames, size or steps; a fresh actor replaces it",
                )
                on_event(event)
                return None, event
            elif isinstance(item, Exception):
                if terminal is not None and (
                    terminal.status != "succeeded" or terminal.output is None
                ):
                    return None, terminal  # it had answered; the stream broke after
                return _first_line(item), None
            elif item is done:
                if terminal is None:
                    return "the actor's stream ended without a terminal event", None
                if (
                    terminal.status == "succeeded"
                    and not (Path(request.output_dir) / "video.mp4").exists()
                ):
                    return "the result files did not arrive", None
                return None, terminal

    @staticmethod
    def _write_outputs(
        request: RunRequest, terminal: RunnerEvent, files: dict[str, bytes]
    ) -> RunnerEvent:
        """Write the actor's files into the node's output folder; check the video's hash."""
        assert terminal.output is not None
        out = Path(request.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in (terminal.output.video, terminal.output.poster):
            if name not in files:
                return failed_event(request.job_id, "crash", f"the actor sent no {name}")
            (out / name).write_bytes(files[name])
        actual = hashlib.sha256(files[terminal.output.video]).hexdigest()
        if actual != terminal.output.video_sha256:
            return failed_event(
                request.job_id,
                "crash",
                f"video.mp4 of job {request.job_id} arrived with sha256 {actual}, "
                f"the runner reported {terminal.output.video_sha256}",
                fix="check the cluster's object store; the node runs the job again",
            )
        return terminal


def _reload_auth_settings() -> None:
    """Make an already imported Ray see the RAY_AUTH_* variables just set (it caches its
    config and token at import); private hooks, so a Ray without them is left alone."""
    try:
        from ray._raylet import (  # type: ignore[attr-defined]
            AuthenticationTokenLoader,
            Config,
        )

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError) as exc:
        log.debug("Ray's auth settings not reloaded: %s", exc)


def _read_inputs(inputs_dir: str | None) -> dict[str, bytes]:
    if not inputs_dir:
        return {}
    folder = Path(inputs_dir)
    # Inputs are stored under their CID (a file, or a folder of frames): ship the tree.
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


__all__ = [
    "ClusterView",
    "RayCluster",
    "RayRuntime",
    "RunnerHost",
]
