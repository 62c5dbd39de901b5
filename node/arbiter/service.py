"""The arbiter service (`framecast arbiter run`): decide disputed jobs by evidence.

An operator holding the market's ARBITER_ROLE runs it next to (or as) a node: it has the
node's runtime and weights, so it can replay. For every job that enters `Disputed`, by a
client's dispute naming a defect or automatically when replicas disagree, it judges each
delivery on its own:

1. **retrievable** — the result directory can be fetched and every block verifies;
2. **integrity and provenance** (levels 1–2, `framecast.shared.verification`): the CID and
   sha256 are the chain's, the receipt is signed by *that* delivery's provider and binds this
   job, the spec, the catalog entry and what came out;
3. **replay** (level 3, `framecast.node.replay`): the same spec, weights and seed run here.

A delivery is at fault when it fails 1 or 2, or the replay says ``mismatch``. A
``perceptual`` verdict (the environments differ and every frame is within the stated
PSNR/SSIM threshold) clears a delivery when the request allows perceptual agreement, or
when no delivery of the job reproduced exactly here: fault needs evidence, and an arbiter
that cannot reproduce anyone bit for bit has none against a close match. Then the market's
`resolve` (one provider) or `resolveReplicas` (a fault bit per replica) moves the money.

The decision is written to ``<state_dir>/arbiter/decisions/<job>.json`` *before* the
transaction is sent, so a restarted arbiter re-sends the same decision instead of replaying
again; the replays stay under ``<state_dir>/replays`` as evidence.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field
from web3.exceptions import Web3Exception

from framecast.node.replay import (
    FetchInput,
    new_work_dir,
    node_retriever,
    replay_job,
)
from framecast.node.runtime.base import ContainerRuntime
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import DisputeReason, JobState, Market
from framecast.shared.chain.history import LogReader, provider_uris, read_job
from framecast.shared.deployment import Deployment
from framecast.shared.endpoints import is_loopback_url
from framecast.shared.errors import ContentNotFound, FramecastError, NodeError
from framecast.shared.ipfs.retrieve import Retriever
from framecast.shared.ipfs.store import StoreSettings
from framecast.shared.provider_metadata import parse_offer
from framecast.shared.request import JobRequest
from framecast.shared.verification import Delivery, verify_dir

log = logging.getLogger(__name__)

Defect = Literal["none", "not-retrievable", "integrity", "provenance", "replay", "no-replay"]


class DeliveryVerdict(BaseModel):
    """What the arbiter found about one delivery (one replica of a replicated job)."""

    model_config = ConfigDict(frozen=True)

    index: int | None = Field(description="Replica index; None for a single-provider job.")
    provider: str
    result_cid: str
    at_fault: bool
    defect: Defect
    detail: str
    verify_level: int | None = Field(None, description="Highest level 1-2 passed, if fetched.")
    replay_verdict: str | None = None
    replay_dir: str | None = None


class Decision(BaseModel):
    """One disputed job's decision: the evidence and what was (or will be) sent."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    claimed_defect: str = Field(description="The dispute reason (ReplicaMismatch: automatic).")
    replicated: bool
    perceptual: bool = Field(description="Whether the request accepts perceptual agreement.")
    verdicts: list[DeliveryVerdict]
    fault_mask: int = Field(ge=0, description="Bit i: replica i (or the provider) at fault.")
    decided_at: float
    decide_seconds: float
    tx_hash: str | None = None
    outcome: str | None = Field(None, description="Job state after resolve (or why not).")

    @property
    def provider_at_fault(self) -> bool:
        return self.fault_mask != 0


@dataclass(frozen=True)
class DisputedJob:
    """A disputed job's facts from the chain."""

    job_id: int
    reason: DisputeReason
    request: JobRequest
    request_digest: str
    spec: bytes
    deliveries: list[Delivery]
    #: Replica index of each delivery (None for a single-provider job).
    indexes: list[int | None]
    replicated: bool


@dataclass
class ArbiterDeps:
    """What the arbiter works through (built by `framecast.node.arbiter.cli`)."""

    deployment: Deployment
    market: Market
    runtime: ContainerRuntime
    runtime_name: str
    image_digest: str | None
    weights_root: Path
    state_dir: Path
    store: StoreSettings
    gateway_url: str | None = None
    fetch_input: FetchInput | None = None
    compare_python: str = sys.executable
    replay_timeout_s: float = 3600.0
    public_gateways: tuple[str, ...] = ()
    source_timeout_s: float | None = None
    log_range: int | None = None


class Arbiter:
    """Finds disputed jobs, decides each by evidence, and resolves them on chain."""

    def __init__(self, deps: ArbiterDeps) -> None:
        self.d = deps
        self.market = deps.market
        self.root = deps.state_dir / "arbiter"
        (self.root / "decisions").mkdir(parents=True, exist_ok=True)
        self._cursor_path = self.root / "cursor.json"
        self.reader = LogReader(deps.market.w3, **_range(deps.log_range))

    # ------------------------------------------------------------------ loop
    def run_forever(self, stop: threading.Event, poll_interval_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                self.step()
            except (FramecastError, Web3Exception, requests.RequestException, OSError) as exc:
                log.warning("arbiter step failed (%s); retrying", exc)
            stop.wait(poll_interval_s)

    def step(self) -> list[Decision]:
        """Scan for new disputes, then decide and resolve every pending one."""
        done: list[Decision] = []
        for job_id in self.scan():
            try:
                decision = self.handle(job_id)
            except FramecastError as exc:
                # E.g. the arbiter's own gateway or weights are down: no evidence either way.
                # The job stays pending and is tried again on the next poll.
                log.warning("job %s: cannot decide now (%s); retrying later", job_id, exc)
                continue
            if decision is not None:
                done.append(decision)
        return done

    def scan(self) -> list[int]:
        """Job ids disputed since the last scan plus those still pending (persisted)."""
        cursor = self._read_cursor()
        w3 = self.market.w3
        latest = int(w3.eth.block_number)
        pending = set(cursor["pending"])
        disputed = self.reader.events(
            self.market, ("JobDisputed",), from_block=int(cursor["block"]) + 1, to_block=latest
        )
        pending.update(int(entry["args"]["jobId"]) for entry in disputed)
        self._write_cursor(latest, sorted(pending))
        return sorted(pending)

    def handle(self, job_id: int) -> Decision | None:
        """Decide (or re-send the saved decision of) one job; None if nothing is left to do."""
        view = self.market.get_job(job_id)
        if view.state is not JobState.DISPUTED:
            self._done(job_id)
            return None
        now = int(self.market.w3.eth.get_block("latest")["timestamp"])
        if now >= view.deadline:
            log.warning("job %s: the resolve window closed; settle lets it stand", job_id)
            self._done(job_id)
            return None
        decision = self.load_decision(job_id) or self.decide(job_id)
        return self.resolve(decision)

    # ------------------------------------------------------------------ decide
    def disputed_job(self, job_id: int) -> DisputedJob:
        """Everything the chain says about a disputed job's request and deliveries."""
        market = self.market
        history = read_job(
            market, job_id, from_block=self.d.deployment.deployed_block, reader=self.reader
        )
        if history.submitted is None or history.dispute is None:
            raise NodeError(f"job {job_id} has no submission or dispute in the market's logs")
        request = history.submitted.request
        digest = "0x" + request.digest(market.domain()).hex()
        spec = history.submitted.spec_bytes()
        reason = history.dispute.reason
        replicated = request.replicas > 1
        # Every reveal of a replicated job (in chain order), or the last delivery.
        results = history.reveals if replicated else history.deliveries[-1:]
        deliveries = [
            Delivery(
                chain_id=self.d.deployment.chain_id,
                market=self.d.deployment.market,
                job_id=job_id,
                provider=result.provider,
                result_cid=result.result_cid,
                video_sha256=result.video_sha256,
                frames_digest=result.frames_digest,
                request_digest=digest,
                spec_hex="0x" + spec.hex(),
                spec_hash="0x" + bytes(request.spec_hash).hex(),
                model_id="0x" + bytes(request.model_id).hex(),
            )
            for result in results
        ]
        return DisputedJob(
            job_id=job_id,
            reason=reason,
            request=request,
            request_digest=digest,
            spec=spec,
            deliveries=deliveries,
            indexes=[result.index for result in results],
            replicated=replicated,
        )

    def decide(self, job_id: int) -> Decision:
        """Judge every delivery of a disputed job; saves the decision before returning it."""
        started = time.perf_counter()
        job = self.disputed_job(job_id)
        log.info(
            "job %s: deciding a %s dispute over %d deliver%s",
            job_id,
            job.reason.name,
            len(job.deliveries),
            "y" if len(job.deliveries) == 1 else "ies",
        )
        verdicts = [
            self._judge(job, delivery, index)
            for delivery, index in zip(job.deliveries, job.indexes, strict=True)
        ]
        verdicts = self._apply_perceptual_policy(verdicts, job.request.perceptual)
        mask = 0
        for position, verdict in enumerate(verdicts):
            if verdict.at_fault:
                mask |= 1 << (verdict.index if verdict.index is not None else position)
        decision = Decision(
            job_id=job_id,
            claimed_defect=job.reason.name,
            replicated=job.replicated,
            perceptual=job.request.perceptual,
            verdicts=verdicts,
            fault_mask=mask,
            decided_at=time.time(),
            decide_seconds=time.perf_counter() - started,
        )
        self.save_decision(decision)
        return decision

    def _judge(self, job: DisputedJob, delivery: Delivery, index: int | None) -> DeliveryVerdict:
        def verdict(at_fault: bool, defect: Defect, detail: str, **extra: Any) -> DeliveryVerdict:
            return DeliveryVerdict(
                index=index,
                provider=delivery.provider,
                result_cid=delivery.result_cid,
                at_fault=at_fault,
                defect=defect,
                detail=detail,
                **extra,
            )

        work_dir = new_work_dir(self.d.state_dir, job.job_id)
        result_dir = work_dir / "delivered"
        try:
            # This delivery's own provider's advertised gateway is among the sources.
            self.retriever().retrieve(delivery.result_cid, result_dir, provider=delivery.provider)
        except ContentNotFound as exc:
            return verdict(True, "not-retrievable", exc.message)
        # StoreUnavailable (the arbiter's own gateway is down) is no evidence: it propagates,
        # the step logs it and the job is decided on a later poll.
        report = verify_dir(result_dir, delivery)
        failed = report.first_failure()
        if failed is not None:
            defect: Defect = "integrity" if failed.level == 1 else "provenance"
            return verdict(True, defect, report.failure_message(), verify_level=report.level_passed)
        try:
            replay = replay_job(
                job_id=job.job_id,
                spec_bytes=job.spec,
                result_dir=result_dir,
                runtime=self.d.runtime,
                runtime_name=self.d.runtime_name,
                image_digest=self.d.image_digest,
                weights_root=self.d.weights_root,
                work_dir=work_dir / "replay",
                chain_frames_digest=delivery.frames_digest,
                compare_python=self.d.compare_python,
                timeout_s=self.d.replay_timeout_s,
                fetch_input=self.d.fetch_input,
            )
        except FramecastError as exc:
            # The arbiter could not run the job (its own weights, runner or inputs): that is
            # no evidence against the provider.
            return verdict(
                False, "no-replay", f"replay could not run here: {exc.message}", verify_level=2
            )
        return verdict(
            replay.verdict == "mismatch",
            "replay" if replay.verdict == "mismatch" else "none",
            replay.reason,
            verify_level=2,
            replay_verdict=replay.verdict,
            replay_dir=replay.replay_dir,
        )

    @staticmethod
    def _apply_perceptual_policy(
        verdicts: list[DeliveryVerdict], perceptual_allowed: bool
    ) -> list[DeliveryVerdict]:
        """A perceptual match is at fault only when exact agreement was asked for and some
        other delivery did reproduce exactly here (so exactness was achievable)."""
        someone_exact = any(v.replay_verdict == "exact" for v in verdicts)
        if perceptual_allowed or not someone_exact:
            return verdicts
        return [
            v.model_copy(
                update={
                    "at_fault": True,
                    "defect": "replay",
                    "detail": "the request asks for exact agreement and another delivery "
                    f"reproduced exactly here; this one only matches perceptually ({v.detail})",
                }
            )
            if v.replay_verdict == "perceptual"
            else v
            for v in verdicts
        ]

    def retriever(self) -> Retriever:
        """The one retrieval path, with every provider's advertised gateway from the chain."""
        deps = self.d

        def gateways() -> dict[str, str]:
            uris = provider_uris(self.market, from_block=deps.deployment.deployed_block)
            offers = {provider: parse_offer(uri) for provider, uri in uris.items()}
            return {p: o.gateway for p, o in offers.items() if o is not None and o.gateway}

        return node_retriever(
            deps.store,
            gateway_url=deps.gateway_url,
            public_gateways=deps.public_gateways,
            source_timeout_s=deps.source_timeout_s,
            provider_gateways=gateways,
            # Loopback gateways only when our own chain is on this machine (the devnet).
            allow_loopback=is_loopback_url(
                str(getattr(self.market.w3.provider, "endpoint_uri", None) or "")
                or deps.deployment.rpc_url
            ),
        )

    # ------------------------------------------------------------------ resolve
    def resolve(self, decision: Decision) -> Decision:
        """Send the decision to the market; records the transaction and the outcome."""
        job_id = decision.job_id
        try:
            if decision.replicated:
                receipt = self.market.resolve_replicas(job_id, decision.fault_mask)
            else:
                receipt = self.market.resolve(job_id, decision.provider_at_fault)
        except (reverts.InvalidJobState, reverts.ResolveWindowClosed) as exc:
            # Settled meanwhile (a silent-arbiter settle, or another arbiter).
            done = decision.model_copy(update={"outcome": f"not resolved: {exc}"})
            self.save_decision(done)
            self._done(job_id)
            return done
        state = self.market.get_job(job_id).state
        done = decision.model_copy(
            update={
                "tx_hash": receipt.tx_hash,
                "outcome": state.label,
            }
        )
        self.save_decision(done)
        self._done(job_id)
        log.info(
            "job %s resolved: fault mask %s → %s (tx %s)",
            job_id,
            bin(decision.fault_mask),
            state.label,
            done.tx_hash,
        )
        return done

    # ------------------------------------------------------------------ persistence
    def decision_path(self, job_id: int) -> Path:
        return self.root / "decisions" / f"{job_id}.json"

    def load_decision(self, job_id: int) -> Decision | None:
        path = self.decision_path(job_id)
        if not path.is_file():
            return None
        decision = Decision.model_validate_json(path.read_bytes())
        return None if decision.outcome is not None else decision

    def save_decision(self, decision: Decision) -> None:
        _atomic_write(self.decision_path(decision.job_id), decision.model_dump_json(indent=2))

    def _read_cursor(self) -> dict[str, Any]:
        if self._cursor_path.is_file():
            data: dict[str, Any] = json.loads(self._cursor_path.read_text())
            return data
        return {"block": self.d.deployment.deployed_block - 1, "pending": []}

    def _write_cursor(self, block: int, pending: list[int]) -> None:
        _atomic_write(self._cursor_path, json.dumps({"block": block, "pending": pending}))

    def _done(self, job_id: int) -> None:
        cursor = self._read_cursor()
        pending = [j for j in cursor["pending"] if j != job_id]
        self._write_cursor(int(cursor["block"]), pending)


def _range(log_range: int | None) -> dict[str, int]:
    return {} if log_range is None else {"max_range": log_range}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
