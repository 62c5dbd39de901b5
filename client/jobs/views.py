"""Reading jobs back: one job's details rebuilt from its events
(`framecast.shared.chain.history.read_job`) and its current on-chain record, and the
listing of `framecast jobs`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from framecast.client.credits import Wei
from framecast.client.events import DEFAULT_CHUNK_BLOCKS, address_topic, logs, next_block_time
from framecast.shared.chain.bindings import JobState, JobView, Market, job_not_found
from framecast.shared.chain.history import JobHistory, LogReader, read_job
from framecast.shared.errors import SpecError
from framecast.shared.request import JobRequest
from framecast.shared.spec import GenerationSpec, decode_spec

#: States after which the result exists on chain (it may be fetched and verified).
DELIVERED_STATES = {JobState.DELIVERED, JobState.DISPUTED, JobState.SETTLED, JobState.REJECTED}
#: States in which nothing more will happen to the job.
FINAL_STATES = {
    JobState.SETTLED,
    JobState.CANCELLED,
    JobState.EXPIRED,
    JobState.DEFAULTED,
    JobState.REJECTED,
    JobState.RELEASED,
}


class ReplicaDetails(BaseModel):
    """One replica of a replicated job: who claimed it, how far it got, what it revealed."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="Claim order, 0-based (bit `index` of the fault mask).")
    provider: str
    price: Wei
    committed: bool
    revealed: bool
    result_cid: str | None = Field(None, description="From ResultRevealed.")
    video_sha256: str | None = None
    frames_digest: str | None = None
    outcome: str = Field(
        description="claimed, committed, revealed (still running); paid, defaulted (share "
        "refunded with collateral slashed to the client) or refunded (share refunded, "
        "unslashed) once closed out."
    )
    payout: Wei | None = Field(None, description="What it was paid at settlement.")
    refunded: Wei = Field(0, description="Its share returned to the client.")
    slashed: Wei = Field(0, description="Its collateral slashed to the client.")


class JobDetails(BaseModel):
    """One job: the signed request, what happened to it, and its current state."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    state: str = Field(description="Current on-chain state.")
    deadline: int = Field(
        description="open: claim deadline; claimed: deliver-by; delivered: end of the "
        "challenge window; disputed: resolve-by."
    )
    chain_time: int = Field(
        description="When this was read: the latest block's time, or the wall clock if later "
        "(the earliest time the next block can have)."
    )
    client: str
    model: str | None = Field(description="None if the spec is not valid canonical JSON.")
    spec: dict[str, Any] | None
    spec_hex: str = Field(description="The spec bytes as submitted, hex.")
    model_id: str
    spec_hash: str
    max_price: Wei
    claim_deadline: int
    delivery_window: int
    nonce: int
    request_digest: str
    submitted_block: int
    submitted_tx: str
    provider: str | None = None
    price: Wei | None = None
    deliver_by: int | None = None
    result_cid: str | None = None
    video_sha256: str | None = None
    frames_digest: str | None = None
    challenge_ends: int | None = None
    dispute_reason: str | None = None
    refunded: Wei = 0
    slashed: Wei = 0
    payout: Wei | None = Field(None, description="What the provider was paid at settlement.")
    replicas: int = Field(1, description="Providers asked for (1: a single-provider job).")
    perceptual: bool = Field(False, description="Perceptual agreement attested by the arbiter ok.")
    replica_list: list[ReplicaDetails] = Field(
        default_factory=list, description="Replicated job: every claimed replica, claim order."
    )
    digests_agree: bool | None = Field(
        None,
        description="Replicated job: whether the revealed frames digests are all equal "
        "(None until two replicas revealed).",
    )

    @property
    def replicated(self) -> bool:
        return self.replicas > 1

    def request(self) -> JobRequest:
        """The signed `JobRequest`, rebuilt from `JobSubmitted`."""
        return JobRequest(
            client=self.client,
            model_id=bytes.fromhex(self.model_id[2:]),
            spec_hash=bytes.fromhex(self.spec_hash[2:]),
            max_price=self.max_price,
            claim_deadline=self.claim_deadline,
            delivery_window=self.delivery_window,
            replicas=self.replicas,
            perceptual=self.perceptual,
            nonce=self.nonce,
        )

    @property
    def chain_state(self) -> JobState:
        return JobState[self.state.upper()]


def job_details(
    market: Market, job_id: int, *, from_block: int, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS
) -> JobDetails:
    """Rebuild one job from its events (`framecast.shared.chain.history.read_job`) and its
    current on-chain record."""
    view = market.get_job(job_id)
    history = read_job(
        market, job_id, from_block=from_block, reader=LogReader(market.w3, max_range=chunk_blocks)
    )
    submitted = history.submitted
    if submitted is None or view.state is JobState.NONE:
        raise job_not_found(job_id, market.address)
    raw_spec = submitted.spec_bytes()
    try:
        spec: GenerationSpec | None = decode_spec(raw_spec)
    except SpecError:
        spec = None
    if view.replicated:
        return _replicated_details(market, view, history, spec)
    claimed = history.claim
    delivered = history.delivery
    settled = history.settlements[-1] if history.settlements else None
    return JobDetails(
        **_common_fields(market, view, history, spec),
        provider=claimed.provider if claimed else None,
        price=claimed.price if claimed else None,
        deliver_by=claimed.deliver_by if claimed else None,
        result_cid=delivered.result_cid if delivered else None,
        video_sha256=delivered.video_sha256 if delivered else None,
        frames_digest=delivered.frames_digest if delivered else None,
        challenge_ends=delivered.challenge_ends if delivered else None,
        refunded=history.refunded,
        slashed=history.slashed,
        payout=settled.payout if settled else None,
    )


def _common_fields(
    market: Market, view: JobView, history: JobHistory, spec: GenerationSpec | None
) -> dict[str, Any]:
    """The JobDetails fields every job has: its state, its signed request, its dispute."""
    submitted = history.submitted
    assert submitted is not None  # job_details refuses a job without one
    request = submitted.request
    disputed = history.dispute
    return {
        "job_id": history.job_id,
        "state": view.state.label,
        "deadline": view.deadline,
        "chain_time": next_block_time(market.w3),
        "client": request.client,
        "model": spec.model if spec else None,
        "spec": spec.model_dump(mode="json", exclude_none=True) if spec else None,
        "spec_hex": submitted.spec_hex,
        "model_id": "0x" + request.model_id.hex(),
        "spec_hash": "0x" + request.spec_hash.hex(),
        "max_price": request.max_price,
        "claim_deadline": request.claim_deadline,
        "delivery_window": request.delivery_window,
        "nonce": request.nonce,
        "request_digest": "0x" + request.digest(market.domain()).hex(),
        "submitted_block": submitted.block_number,
        "submitted_tx": submitted.tx_hash,
        "dispute_reason": disputed.reason.name.lower() if disputed else None,
    }


def _replicated_details(
    market: Market, view: JobView, history: JobHistory, spec: GenerationSpec | None
) -> JobDetails:
    """A replicated job: the flags come from the replica views (the chain's record), the
    revealed CIDs and digests from `ResultRevealed`, the outcomes from the closing events."""
    # Per provider / index: a later event of the same kind (reorg replay) wins.
    reveals = {r.provider: r for r in history.reveals}
    paid = {s.provider: s.payout for s in history.settlements}
    defaulted = {d.index: d for d in history.defaults}
    assert history.submitted is not None
    request = history.submitted.request
    replicas = []
    for replica in market.get_replicas(history.job_id):
        revealed = reveals.get(replica.provider)
        closed = defaulted.get(replica.index)
        if replica.provider in paid:
            outcome = "paid"
        elif closed is not None:
            outcome = "defaulted" if closed.slashed else "refunded"
        elif replica.revealed:
            outcome = "revealed"
        elif replica.committed:
            outcome = "committed"
        else:
            outcome = "claimed"
        replicas.append(
            ReplicaDetails(
                index=replica.index,
                provider=replica.provider,
                price=replica.price,
                committed=replica.committed,
                revealed=replica.revealed,
                result_cid=revealed.result_cid if revealed else None,
                video_sha256=revealed.video_sha256 if revealed else None,
                frames_digest=revealed.frames_digest if revealed else None,
                outcome=outcome,
                payout=paid.get(replica.provider),
                refunded=closed.refund if closed else 0,
                slashed=closed.slashed if closed else 0,
            )
        )
    digests = {r.frames_digest for r in replicas if r.frames_digest is not None}
    shown = sum(1 for r in replicas if r.frames_digest is not None)
    agreed = history.agreement
    return JobDetails(
        **_common_fields(market, view, history, spec),
        # The commit deadline; the agreed digest and its challenge window once delivered.
        deliver_by=history.commit_by,
        frames_digest=agreed.frames_digest if agreed else None,
        challenge_ends=agreed.challenge_ends if agreed else None,
        refunded=history.refunded,
        slashed=history.slashed,
        payout=sum(paid.values()) if paid else None,
        replicas=request.replicas,
        perceptual=request.perceptual,
        replica_list=replicas,
        digests_agree=len(digests) == 1 if shown >= 2 else None,
    )


class JobRow(BaseModel):
    """One line of `framecast jobs`."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    state: str
    client: str
    model: str | None
    prompt: str | None
    max_price: Wei
    submitted_block: int
    replicas: int = 1
    perceptual: bool = False


def list_jobs(
    market: Market,
    *,
    from_block: int,
    client: str | None = None,
    limit: int = 20,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> list[JobRow]:
    """The newest ``limit`` jobs (of ``client`` if given), newest first."""
    events = market.contract.events
    topics: list[Any] = [events.JobSubmitted.topic]
    if client is not None:
        topics += [None, address_topic(client)]
    found = logs(
        market.w3,
        market.address,
        topics,
        from_block=from_block,
        to_block=market.w3.eth.block_number,
        chunk_blocks=chunk_blocks,
    )
    rows = []
    for log in reversed(found[-limit:] if limit else found):
        args = events.JobSubmitted().process_log(log)["args"]
        job_id = int(args["jobId"])
        try:
            spec: GenerationSpec | None = decode_spec(bytes(args["spec"]))
        except SpecError:
            spec = None
        rows.append(
            JobRow(
                job_id=job_id,
                state=market.get_job(job_id).state.label,
                client=str(args["client"]),
                model=spec.model if spec else None,
                prompt=spec.prompt if spec else None,
                max_price=int(args["maxPrice"]),
                submitted_block=int(log["blockNumber"]),
                replicas=int(args["replicas"]),
                perceptual=bool(args["perceptual"]),
            )
        )
    return rows
