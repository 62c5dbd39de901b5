"""The provider agent: watch the chain, claim what it can serve, run, pin, deliver, settle.

One thread owns the chain (intake, claims, deliveries, settlements); one worker per GPU
slot runs jobs in a warm runtime. Every step reads the job's on-chain state before acting,
so any step may be repeated after a crash: `reconcile` maps the chain's view onto the local
record and the loop carries on from there.

Replicated jobs (k ≥ 2 providers) are carried by `framecast.node.replicas.ReplicaFlow`:
waiting for the set, commit with a stored salt, reveal, and the replica close-out.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from framecast.node.config import NodeSettings
from framecast.node.gpus import GpuDetector, ModelPlan, detect_gpus, require_plans
from framecast.node.heads import HeadWatch, ws_url_for
from framecast.node.inputs import acquire, holds_dag, input_shape_problem
from framecast.node.intake import EventIntake
from framecast.node.metrics import NodeMetrics
from framecast.node.replay import fetch_inputs, read_chain_job, store_fetcher
from framecast.node.replicas import ReplicaFlow
from framecast.node.result import pin_result, write_receipt
from framecast.node.runtime.base import Capacity, ContainerRuntime
from framecast.node.state import BUSY, JobRecord, StateStore
from framecast.shared.catalog import check_spec, get_entry
from framecast.shared.catalog.verify import verify_entry_weights
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import JobState, JobView, Market
from framecast.shared.chain.connection import OutageLog
from framecast.shared.deployment import Deployment
from framecast.shared.errors import (
    ChainError,
    FramecastError,
    RequestRefused,
    RpcUnavailable,
    SpecError,
    VerificationFailed,
)
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.cid import CID
from framecast.shared.ipfs.store import ContentStore
from framecast.shared.progress import PPM, ProgressReport, sign_report
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.spec import GenerationSpec, decode_spec

log = logging.getLogger(__name__)

RuntimeFactory = Callable[[], ContainerRuntime]
_LOST_RACE = (reverts.InvalidJobState, reverts.ClaimWindowClosed)
#: The chain (or the way to it) is down for a while: retry later, never fail a job for it.
#: The chain adapters raise only the tree's errors (`shared.chain.connection`).
_CHAIN_DOWN = ChainError
#: Longest pause between rounds while the chain fails: the node is back on its feet
#: within this of the RPC answering again.
_MAX_BACKOFF_S = 1.0
#: How long a delivered job in its challenge window goes without its view being re-read.
_SETTLE_RECHECK_S = 2.0
#: Seconds between two rounds of fetching a seen job's missing inputs from the gateways.
INPUT_RETRY_S = 2.0
#: Timeout of one input fetch from one gateway (the chain thread waits on it).
INPUT_FETCH_TIMEOUT_S = 5.0


def _settled(future: Future[None], job_id: int, timeout: float) -> None:
    """Wait for a cancelled job's step to end; its failure or a hang is logged, not raised
    (shutdown goes on closing the runtimes)."""
    try:
        future.result(timeout=timeout)
    except TimeoutError:
        log.error("job %s did not stop within %.0f s of its cancel", job_id, timeout)
    except Exception:
        log.warning("job %s: its run step failed while parked at shutdown", job_id)


@dataclass
class AgentDeps:
    """The ports the agent works through (built by `framecast.node.wiring`)."""

    settings: NodeSettings
    deployment: Deployment
    w3: Web3
    market: Market
    account: LocalAccount
    state: StateStore
    store: ContentStore
    runtime_factory: RuntimeFactory
    runtime_name: str
    image_digest: str | None = None
    metrics: NodeMetrics | None = None
    #: This host's GPUs (`framecast.node.gpus.detect_gpus`; tests describe cards).
    detect_gpus: GpuDetector = detect_gpus
    #: The cluster's live capacity (runtime = ray); None: `gpu_slots` static slots.
    capacity: Capacity | None = None


class Agent:
    """One provider node."""

    def __init__(self, deps: AgentDeps) -> None:
        self.d = deps
        self.settings = deps.settings
        self.state = deps.state
        self.market = deps.market
        self.address = deps.account.address
        self.intake = EventIntake(
            deps.w3,
            deps.market,
            deps.state,
            start_block=deps.deployment.deployed_block,
            confirmations=self.settings.confirmations,
            chunk=self.settings.backfill_chunk,
        )
        workers = deps.capacity.max_jobs if deps.capacity is not None else self.settings.gpu_slots
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="slot")
        self._idle_runtimes: list[ContainerRuntime] = []
        self._all_runtimes: list[ContainerRuntime] = []
        self._runtime_lock = threading.Lock()
        self._running: dict[int, tuple[Future[None], list[ContainerRuntime]]] = {}
        self._stopping = threading.Event()
        self._backoff_s = 0.0
        self.last_poll_ok: float | None = None
        self._outage = OutageLog(log)
        # Delivered jobs wait out their challenge window; reading each one's view every
        # round made a round's RPC count grow with the jobs awaiting settlement, and a new
        # job's pickup waited behind them (bench/node_pickup.py). Each is re-read at most
        # every _SETTLE_RECHECK_S (so a dispute is still seen within that), and chain time
        # is read once per round for all of them.
        self._settle_after: dict[int, float] = {}
        self._round_chain_now: int | None = None
        #: job id → (monotonic time of the last gateway round for its missing inputs, why
        #: the first one was missing then).
        self._input_tries: dict[int, tuple[float, str]] = {}
        self.replicas = ReplicaFlow(self, self.intake.reader)
        #: Model id -> the card and memory profile it runs with (set by `startup`): the
        #: models this node serves, which are those of `settings.models` that fit.
        self.plans: dict[str, ModelPlan] = {}

    # ------------------------------------------------------------------ lifecycle
    def startup(self) -> None:
        """Fit the configured models onto this host's GPUs (each gets its best memory profile;
        one that fits nowhere is not served), check their weights, then reconcile every
        unfinished job with the chain."""
        # On a Ray cluster the GPUs are the workers', not the head's.
        cards = self.d.capacity.cards() if self.d.capacity is not None else self.d.detect_gpus()
        self.plans, refused = require_plans(
            [get_entry(m) for m in self.settings.models], cards, self.settings.memory_profiles
        )
        for reason in refused.values():
            log.warning("not serving: %s", reason)
        for plan in self.plans.values():
            log.info(
                "serving %s with memory profile %s (%s, %g GiB) on %s",
                plan.model,
                plan.profile.name,
                plan.profile.describe(),
                plan.profile.vram_gb,
                plan.card.name if plan.card else "the CPU",
            )
        for model in self.plans:
            entry = get_entry(model)
            if self.d.capacity is not None and not (self.settings.weights_dir / model).exists():
                # On a cluster the workers hold the weights; each runner verifies them
                # against the same manifest before it loads them.
                log.info("model %s: weights on the cluster's workers", model)
                continue
            # The full manifest: the base pipeline and its components (a ControlNet) together.
            verify_entry_weights(entry, self.settings.weights_dir / model)
        for job in self.state.in_states(
            "seen", "waiting", "claimed", "running", "pinned", "committed", "delivered",
            "disputed", "failed",
        ):  # fmt: skip
            self.reconcile(job.job_id)
        log.info("node %s ready: serving %s", self.address, ", ".join(self.plans))

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; transient chain errors back off, never crash.

        Where the RPC offers head subscriptions a new block ends the pause at once
        (`framecast.node.heads`); the poll interval stays the fallback.
        """
        wake = threading.Event()
        watch = self._head_watch(wake)
        try:
            while not stop.is_set():
                started = time.monotonic()
                wake.clear()
                self.step()
                pause = max(self.settings.poll_interval_s, self._backoff_s)
                if self._backoff_s or watch is None:
                    stop.wait(max(0.0, pause - (time.monotonic() - started)))
                else:
                    wake.wait(max(0.0, pause - (time.monotonic() - started)))
        finally:
            if watch is not None:
                watch.close()

    def _head_watch(self, wake: threading.Event) -> HeadWatch | None:
        if not self.settings.subscribe_heads:
            return None
        rpc_url = str(getattr(self.d.w3.provider, "endpoint_uri", "") or "")
        ws_url = self.settings.ws_url or ws_url_for(rpc_url)
        return HeadWatch(ws_url, wake).start() if ws_url else None

    def step(self) -> None:
        """One round: intake, claims, deliveries, settlements, metrics."""
        started = time.time()
        self._round_chain_now = None
        try:
            result = self.intake.poll()
            self._outage.answered()
            for job_id in result.reorged:
                self.reconcile(job_id)
            self.last_poll_ok = time.time()
            if not self._stopping.is_set():
                for job in self.state.in_states("seen"):
                    self.consider(job)
            for job in self.state.in_states("waiting"):
                self.replicas.wait(job)
            for job in self.state.in_states("claimed"):
                # Claimed but idle: its run waited out a chain outage (or was parked).
                self.start_run(job.job_id)
            for job in self.state.in_states("pinned"):
                self.deliver(job)
            for job in self.state.in_states("committed"):
                self.replicas.reveal(job)
            for job in self.state.in_states("failed"):
                self.release(job)
            for job in self.state.in_states("delivered", "disputed"):
                self.settle(job)
            self._backoff_s = 0.0
        except _CHAIN_DOWN as exc:
            self._backoff_s = min(_MAX_BACKOFF_S, max(0.25, self._backoff_s * 2))
            if isinstance(exc, RpcUnavailable):
                self._outage.failed(exc, started)  # one line per outage, not per round
            else:
                log.warning("chain step failed (%s); retrying in %.1f s", exc, self._backoff_s)
            if self.d.metrics:
                self.d.metrics.rpc_errors.inc()
        finally:
            if self.d.metrics:
                self.d.metrics.refresh(self.state, busy=len(self._running))

    def shutdown(self, grace_s: float = 30.0) -> None:
        """Stop claiming; let running jobs finish within ``grace_s``, park the rest."""
        self._stopping.set()
        deadline = time.monotonic() + grace_s
        for job_id, (future, runtimes) in list(self._running.items()):
            remaining = deadline - time.monotonic()
            try:
                future.result(timeout=max(0.0, remaining))
            except TimeoutError:
                log.warning("job %s still running at shutdown: parking it", job_id)
                for runtime in runtimes:
                    runtime.cancel(str(job_id))
                _settled(future, job_id, timeout=60)
            except Exception:
                # The job step logged its own failure; one job must not keep the others'
                # runtimes (and their runners) from being closed.
                log.warning("job %s: its run step had failed at shutdown", job_id)
        self._pool.shutdown(wait=True)
        for runtime in self._all_runtimes:
            runtime.close()

    # ------------------------------------------------------------------ chain view
    def chain_now(self) -> int:
        return int(self.d.w3.eth.get_block("latest")["timestamp"])

    def reconcile(self, job_id: int) -> None:
        """Align the local record with the chain (after restarts and reorgs)."""
        local = self.state.get(job_id)
        if local is None:
            return
        view = self.market.get_job(job_id)
        mine = view.provider == self.address
        if view.state is JobState.NONE:
            # The submission itself was reorged away.
            self.forget_running(job_id)
            self.state.delete(job_id)
            return
        if view.replicated:
            self.replicas.reconcile(local, view)
            return
        if view.state is JobState.OPEN:
            if local.state in ("claimed", "running", "failed"):
                # Our claim vanished in a reorg: start over from `seen` (re-check next step).
                self.forget_running(job_id)
                self.state.delete(job_id)
                self.state.add_seen(local.model_copy(update={"state": "seen", "price": None}))
            return
        if not mine:
            if local.state not in ("skipped", "lost"):
                self.transition(
                    local, "lost", reason=f"on chain: {view.state.label} by {view.provider}"
                )
            return
        if view.state is JobState.CLAIMED:
            if local.state == "seen":
                self.transition(local, "claimed", price=view.amount)
            elif local.state == "running" and job_id not in self._running:
                self.transition(local, "claimed")  # crashed mid-run: run again (deterministic)
            if self.state.require(job_id).state == "claimed" and job_id not in self._running:
                self.start_run(job_id)
        elif view.state is JobState.DELIVERED and local.state not in ("delivered",):
            self.transition(local, "delivered")
        elif view.state is JobState.DISPUTED and local.state != "disputed":
            if local.state != "delivered":
                self.transition(local, "delivered")
            self.transition(self.state.require(job_id), "disputed")
        elif view.state is JobState.SETTLED and local.state != "settled":
            self._mark_settled(local, view)
        elif view.state is JobState.DEFAULTED:
            self.transition(local, "slashed", reason="delivery deadline passed; collateral slashed")
        elif view.state is JobState.RELEASED and local.state != "released":
            if local.state in ("claimed", "running"):
                local = self.transition(local, "failed", reason="released")
            self.transition(self.state.require(job_id), "released")
        elif view.state is JobState.REJECTED:
            if local.state == "delivered":
                self.transition(local, "disputed")
            self.transition(self.state.require(job_id), "rejected", reason="dispute upheld")

    def transition(self, job: JobRecord, to: str, **fields: object) -> JobRecord:
        if job.state == to:
            return job
        record = self.state.transition(job.job_id, to, **fields)  # type: ignore[arg-type]
        log.info("job %s: %s → %s", job.job_id, job.state, to)
        return record

    # ------------------------------------------------------------------ claim
    def ask_price(self, units: int) -> int:
        return units * self.settings.min_price_per_unit

    def consider(self, job: JobRecord) -> None:
        """Claim a seen job if this node can serve it at its price and has a free slot."""
        if self.chain_now() > job.claim_deadline:
            self.transition(job, "lost", reason="claim deadline passed before a slot was free")
            return
        try:
            spec = decode_spec(job.spec)
            plan = self.plans.get(spec.model)
            if plan is None:
                self.transition(
                    job, "skipped", reason=f"model {spec.model} not served by this node"
                )
                return
            if job.replicas > 1 and plan.profile.numerics != "reference":
                # Replicas agree only if they compute the same frames: a replicated job runs
                # with reference numerics, never tiled or quantized.
                self.transition(
                    job,
                    "skipped",
                    reason=f"replicated job needs reference numerics; {spec.model} runs "
                    f"profile {plan.profile.name} ({plan.profile.numerics}) here",
                )
                return
            check_spec(spec)
        except (SpecError, FramecastError) as exc:
            self.transition(job, "skipped", reason=f"spec rejected: {exc}")
            return
        price = self.ask_price(spec.work_units)
        if price > job.max_price:
            self.transition(job, "skipped", reason=f"max price {job.max_price} below ask {price}")
            return
        if not self._inputs_ready(job, spec):
            return  # waiting for an upload or a gateway; or skipped (never claimed)
        if self.d.capacity is not None:
            why = self.d.capacity.unservable(spec.model)
            if why is not None:
                self.transition(job, "skipped", reason=f"no worker can host {spec.model}: {why}")
                return
            placed = self.d.capacity.leased()
            pending = sum(1 for j in self.state.in_states(*BUSY) if str(j.job_id) not in placed)
            if self.d.capacity.free_slots(spec.model, pending) <= 0:
                return  # the cluster is full now: look again next round
        elif len(self.state.in_states(*BUSY)) >= self.settings.gpu_slots:
            return  # all slots busy: look again next round
        if job.replicas > 1 and len(self.state.in_states("waiting")) >= self.settings.gpu_slots:
            # Waiting replicas hold no slot, but they all may fill at once: cap them too.
            return
        view = self.market.get_job(job.job_id)
        if view.state is not JobState.OPEN or (
            view.replicated and self.replicas.mine(job.job_id) is not None
        ):
            self.reconcile(job.job_id)
            return
        try:
            self.market.claim_job(job.job_id, price)
        except reverts.AlreadyReplica:
            # Our own earlier claim (a crash before it was recorded): adopt it.
            self.reconcile(job.job_id)
            return
        except _LOST_RACE:
            # Another provider won the race (or the client cancelled): not an error.
            self.reconcile(job.job_id)
            if self.state.require(job.job_id).state == "seen":
                self.transition(job, "lost", reason="claim race lost")
            return
        except (reverts.NotRegistered, reverts.BondTooLow, reverts.InsufficientCollateral,
                reverts.ProviderExiting) as exc:  # fmt: skip
            log.error("cannot claim job %s: %s", job.job_id, exc)
            self.transition(job, "skipped", reason=str(exc))
            return
        if job.replicas > 1:
            # Run only once every replica is in; this claim may have been the last one.
            self.replicas.wait(self.transition(job, "waiting", price=price))
            return
        self.transition(job, "claimed", price=price)
        self.start_run(job.job_id)

    def _inputs_ready(self, job: JobRecord, spec: GenerationSpec) -> bool:
        """Every input of ``spec`` is in the store, uploaded or fetched from the gateways.

        Until then the job stays ``seen`` with the reason on it (shown on /jobs/{id});
        ``input_wait_s`` after the node saw it (or near the claim deadline) the job is
        skipped: it is never claimed, so a missing input costs the node nothing."""
        cids = spec.input_cids()
        if not cids:
            return True
        now = time.monotonic()
        last = self._input_tries.get(job.job_id)
        store = self.d.store
        if last is not None and now - last[0] < INPUT_RETRY_S:
            # Between gateway rounds only the store is looked at (an upload may have come).
            missing = {
                c: last[1] for c in cids if not (store.has(c) and holds_dag(store, CID.parse(c)))
            }
        else:
            missing = acquire(
                store,
                cids,
                self.settings.public_gateways,
                timeout_s=INPUT_FETCH_TIMEOUT_S,
                max_bytes=self.settings.input_max_bytes,
            )
            self._input_tries[job.job_id] = (now, next(iter(missing.values()), ""))
        if not missing:
            self._input_tries.pop(job.job_id, None)
            shape = input_shape_problem(store, spec)
            if shape is not None:
                # Wrong kind of content for the spec: no run can succeed, so never claim it.
                self.transition(job, "skipped", reason=shape)
                log.warning("job %s skipped: %s", job.job_id, shape)
                return False
            if (job.reason or "").startswith("waiting for input"):
                self.state.update(job.job_id, reason=None)  # had to wait; has them now
            return True
        cid, why = next(iter(missing.items()))
        waited = time.time() - job.seen_at
        near_deadline = self.chain_now() >= job.claim_deadline - 2 * self.settings.poll_interval_s
        if waited >= self.settings.input_wait_s or near_deadline:
            self._input_tries.pop(job.job_id, None)
            self.transition(job, "skipped", reason=f"input {cid} not retrievable: {why}")
            log.warning("job %s skipped: input %s not retrievable (%s)", job.job_id, cid, why)
            return False
        reason = f"waiting for input {cid} ({why})"
        if job.reason != reason:
            self.state.update(job.job_id, reason=reason)
        return False

    # ------------------------------------------------------------------ peers (HTTP)
    def _profile_of(self, model: str) -> str | None:
        plan = self.plans.get(model)
        return plan.profile.name if plan else None

    def job_report(self, job_id: int) -> dict[str, object] | None:
        """`/jobs/{id}`: the local state, progress and reason, signed by the provider key."""
        record = self.state.get(job_id)
        if record is None:
            return None
        report = ProgressReport(
            chain_id=self.d.deployment.chain_id,
            market=self.market.address,
            job_id=job_id,
            state=record.state,
            progress_ppm=round(min(1.0, max(0.0, record.progress)) * PPM),
            reason=(record.reason or None) and (record.reason or "")[:500],
            timestamp=int(time.time()),
        )
        return sign_report(report, self.d.account.key)

    def upload_policy(self, job_id: int | None, root: CID) -> int:
        """Which job an uploaded input CAR is for; `RequestRefused` unless ``root`` is an
        input of that job's signed spec and the job is still open on chain (so nobody can
        fill a provider's disk with content no paying job asked for)."""
        from http import HTTPStatus

        if job_id is None:
            for seen in self.state.in_states("seen"):
                if root.to_v1() in _input_cids(seen.spec):
                    job_id = seen.job_id
                    break
            else:
                raise RequestRefused(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    f"{root} is an input of no open job this node has seen (pass ?job=ID)",
                )
        try:
            known = self.state.get(job_id)
            if known is not None:
                spec_bytes = known.spec
            else:
                spec_bytes = read_chain_job(
                    self.market, job_id, from_block=self.d.deployment.deployed_block
                ).spec
            view = self.market.get_job(job_id)
        except VerificationFailed:
            raise RequestRefused(HTTPStatus.NOT_FOUND, f"job {job_id} does not exist") from None
        except _CHAIN_DOWN:
            raise RequestRefused(
                HTTPStatus.SERVICE_UNAVAILABLE, "the node cannot reach its chain; retry"
            ) from None
        if root.to_v1() not in _input_cids(spec_bytes):
            raise RequestRefused(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"{root} is not an input named in the spec of job {job_id}",
            )
        if view.state is not JobState.OPEN:
            raise RequestRefused(
                HTTPStatus.CONFLICT, f"job {job_id} is {view.state.label}, no longer open"
            )
        return job_id

    # ------------------------------------------------------------------ run
    def start_run(self, job_id: int) -> None:
        if job_id in self._running or self._stopping.is_set():
            return
        holder: list[ContainerRuntime] = []
        future = self._pool.submit(self._run_job, job_id, holder)
        self._running[job_id] = (future, holder)
        future.add_done_callback(lambda _f: self._running.pop(job_id, None))

    def is_running(self, job_id: int) -> bool:
        return job_id in self._running

    def forget_running(self, job_id: int) -> None:
        entry = self._running.get(job_id)
        if entry:
            for runtime in entry[1]:
                runtime.cancel(str(job_id))

    def _take_runtime(self) -> ContainerRuntime:
        with self._runtime_lock:
            if self._idle_runtimes:
                return self._idle_runtimes.pop()
        runtime = self.d.runtime_factory()
        with self._runtime_lock:
            self._all_runtimes.append(runtime)
        return runtime

    def _give_back(self, runtime: ContainerRuntime) -> None:
        with self._runtime_lock:
            self._idle_runtimes.append(runtime)

    def job_dir(self, job_id: int) -> Path:
        return self.settings.state_dir / "jobs" / str(job_id)

    def _run_job(self, job_id: int, holder: list[ContainerRuntime]) -> None:
        try:
            self._run_job_inner(job_id, holder)
        except Exception:
            log.exception("job %s: unexpected failure in the run step", job_id)
            job = self.state.get(job_id)
            if job is not None and job.state in ("claimed", "running"):
                self.transition(
                    job, "failed", reason="internal error in the run step; see the node log"
                )

    def _run_job_inner(self, job_id: int, holder: list[ContainerRuntime]) -> None:
        job = self.state.require(job_id)
        try:
            view = self.market.get_job(job_id)
            now = self.chain_now()
        except _CHAIN_DOWN as exc:
            # The job stays `claimed`; the loop starts it again once the chain answers.
            log.warning("job %s: chain unreachable before the run (%s); will retry", job_id, exc)
            return
        if view.state is not JobState.CLAIMED or not self._is_mine(view):
            self.reconcile(job_id)
            return
        budget = view.deadline - now - self.settings.delivery_margin_s
        if budget <= 0:
            self.transition(job, "failed", reason="no time left before the delivery deadline")
            return
        spec = decode_spec(job.spec)
        job_dir = self.job_dir(job_id)
        out_dir = job_dir / "out"
        shutil.rmtree(out_dir, ignore_errors=True)  # a re-run starts clean
        out_dir.mkdir(parents=True)
        # Inputs were in the store when the job was claimed (and are pinned); should the
        # store have lost them since, the gateways get one more chance before the run.
        missing = acquire(
            self.d.store,
            spec.input_cids(),
            self.settings.public_gateways,
            timeout_s=INPUT_FETCH_TIMEOUT_S,
            max_bytes=self.settings.input_max_bytes,
        )
        if missing:
            cid, why = next(iter(missing.items()))
            self.transition(
                job, "failed", reason=f"input {cid} gone from the store at run time: {why}"
            )
            return
        inputs_dir = fetch_inputs(spec, job_dir, store_fetcher(self.d.store))
        request = RunRequest(
            job_id=str(job_id),
            spec=spec,
            model_dir=str(self.settings.weights_dir / spec.model),
            output_dir=str(out_dir),
            inputs_dir=str(inputs_dir) if inputs_dir else None,
            memory_profile=self._profile_of(spec.model),
        )
        started = time.time()
        job = self.transition(job, "running", run_started_at=started, progress=0.0)
        if self.d.metrics:
            self.d.metrics.pickup.observe(max(0.0, started - job.seen_at))
        runtime = self._take_runtime()
        holder.append(runtime)

        def on_event(event: RunnerEvent) -> None:
            self.state.update(job_id, progress=event.progress)

        try:
            final = runtime.run(
                request,
                job_dir=job_dir,
                on_event=on_event,
                timeout_s=min(self.settings.job_timeout_s, budget),
            )
        finally:
            self._give_back(runtime)
        seconds = time.time() - started
        if self.d.metrics:
            self.d.metrics.run_seconds.observe(seconds)
        if final.status != "succeeded" or final.output is None:
            error = final.error
            if error is not None and error.kind == "canceled" and self._stopping.is_set():
                self.transition(job, "claimed", reason="parked at shutdown; resumes on restart")
                return
            message = f"{error.kind}: {error.message}" if error else final.status
            self.transition(job, "failed", reason=message, run_seconds=seconds)
            return
        receipt = write_receipt(
            out_dir=out_dir,
            output=final.output,
            spec=spec,
            job_id=job_id,
            request_digest=job.request_digest or "0x" + "00" * 32,
            deployment=self.d.deployment,
            provider=self.d.account,
            runtime=self.d.runtime_name,
            image_digest=self.d.image_digest,
            timings=final.metrics,
        )
        root = pin_result(self.d.store, out_dir, fine_tune=spec.fine_tune is not None)
        self.transition(
            self.state.require(job_id),
            "pinned",
            result_cid=root,
            video_sha256=receipt.body.video_sha256,
            frames_digest=receipt.body.frames_digest,
            run_seconds=seconds,
            progress=1.0,
        )

    # ------------------------------------------------------------------ deliver & settle
    def deliver(self, job: JobRecord) -> None:
        if job.replicas > 1:
            self.replicas.commit(job)
            return
        view = self.market.get_job(job.job_id)
        if view.state is not JobState.CLAIMED or view.provider != self.address:
            self.reconcile(job.job_id)
            return
        assert job.result_cid and job.video_sha256 and job.frames_digest
        try:
            self.market.deliver(
                job.job_id,
                bytes(parse_cid(job.result_cid)),
                bytes.fromhex(job.video_sha256[2:]),
                bytes.fromhex(job.frames_digest[2:]),
            )
        except reverts.DeliveryWindowClosed:
            self.reconcile(job.job_id)
            return
        self.transition(job, "delivered")

    def release(self, job: JobRecord) -> None:
        """Give a failed job back before its deadline: the client is refunded at once and
        the node loses a fifth of the collateral instead of all of it.

        A replicated job cannot be released (`ReplicatedJob`): it stays failed until its
        commit deadline passes, then the node reclaims and its share ends slashed."""
        view = self.market.get_job(job.job_id)
        if view.replicated:
            self.replicas.push_past_deadline(view)
            return
        if view.state is not JobState.CLAIMED or view.provider != self.address:
            self.reconcile(job.job_id)
            return
        if self.chain_now() > view.deadline:
            return  # too late: the client reclaims and the collateral is slashed
        try:
            self.market.release_job(job.job_id)
        except (reverts.DeliveryWindowClosed, reverts.InvalidJobState):
            self.reconcile(job.job_id)
            return
        self.transition(job, "released")

    def settle(self, job: JobRecord) -> None:
        if time.monotonic() < self._settle_after.get(job.job_id, 0.0):
            return
        view = self.market.get_job(job.job_id)
        if view.replicated and view.state is JobState.REVEALING:
            # Revealed; the other replicas have not yet (past the deadline: move it on).
            self.replicas.push_past_deadline(view)
            return
        if view.state not in (JobState.DELIVERED, JobState.DISPUTED):
            self.reconcile(job.job_id)
            return
        if view.state is JobState.DISPUTED and job.state == "delivered":
            job = self.transition(job, "disputed", reason="the client disputed the delivery")
        if self._round_chain_now is None:
            self._round_chain_now = self.chain_now()
        left = view.deadline - self._round_chain_now
        if left > 0:
            self._settle_after[job.job_id] = time.monotonic() + min(_SETTLE_RECHECK_S, left)
            return
        self._settle_after.pop(job.job_id, None)
        # Someone else may have settled, or chain time lags: reconcile / retry next round.
        with contextlib.suppress(reverts.InvalidJobState, reverts.TooEarly):
            self.market.settle(job.job_id)
        self.reconcile(job.job_id)

    def _mark_settled(self, job: JobRecord, view: JobView) -> None:
        self._settle_after.pop(job.job_id, None)
        fee = view.amount * view.fee_bps // 10_000
        if job.state in ("claimed", "running", "pinned"):
            job = self.transition(job, "delivered")
        self.transition(job, "settled", earned=view.amount - fee)

    def _is_mine(self, view: JobView) -> bool:
        if view.replicated:
            return self.replicas.mine(view.job_id) is not None
        return view.provider == self.address


def _input_cids(spec_bytes: bytes) -> set[CID]:
    """The input CIDs a spec names (none for a spec that does not decode)."""
    try:
        return {CID.parse(c).to_v1() for c in decode_spec(spec_bytes).input_cids()}
    except FramecastError:
        return set()
