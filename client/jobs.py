"""Job use cases: build and check a spec, submit a signed request, read jobs back from
events, follow a job to delivery, and the client's actions (cancel, reclaim, dispute).

A job's whole story is in the market's events (`JobSubmitted` carries the spec and every
signed field, `JobClaimed` the provider and price, `JobDelivered` the result digests), so
every view here is rebuilt from them plus the job's current on-chain record. Nothing is
kept locally: `framecast status JOB` on another machine shows the same thing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3

from framecast.client.credits import Wei, format_fcc
from framecast.client.events import (
    DEFAULT_CHUNK_BLOCKS,
    address_topic,
    chain_now,
    logs,
    next_block_time,
)
from framecast.client.quote import ProviderListing, Quote
from framecast.shared.catalog import CatalogEntry, default_spec, get_entry
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import Credits, DisputeReason, JobState, JobView, Market
from framecast.shared.chain.history import JobHistory, LogReader, read_job
from framecast.shared.endpoints import check_remote_url
from framecast.shared.errors import FramecastError, JobNotFound, JobStalled, SpecError
from framecast.shared.progress import ProgressReport, verify_report
from framecast.shared.request import MAX_REPLICAS, JobRequest, sign_request
from framecast.shared.spec import MAX_SEED, GenerationSpec, decode_spec

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
_NONCE_RETRIES = 3


# --------------------------------------------------------------------------- spec
def guidance_milli(text: str) -> int:
    """``"6.5"`` → 6500, exactly (the signed spec holds integers only)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SpecError(
            f"guidance {text!r} is not a number", field="guidance_milli", fix="e.g. --guidance 6"
        ) from None
    milli = value * 1000
    if not value.is_finite() or milli != milli.to_integral_value():
        raise SpecError(
            f"guidance {text!r} must be finite with at most 3 decimals",
            field="guidance_milli",
            fix="e.g. --guidance 6.25",
        )
    return int(milli)


def build_spec(
    *,
    model: str,
    prompt: str,
    negative: str | None = None,
    seed: int | None = None,
    num_frames: int | None = None,
    fps: int | None = None,
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    guidance: str | None = None,
    style: str | None = None,
    image_cid: str | None = None,
) -> tuple[GenerationSpec, CatalogEntry]:
    """The spec the user asked for, catalog defaults filled in, checked against the entry.

    Raises `UnknownModel` (listing ids) or `SpecError` (naming the field and its bound)
    before anything is signed. Without ``seed`` a random one is drawn (and shown), as a
    fixed default would make every "new" video the same.
    """
    entry = get_entry(model)
    fields: dict[str, Any] = {
        "negative_prompt": negative or "",
        "seed": seed if seed is not None else secrets.randbelow(2**32),
        "style": style,
    }
    if image_cid is not None:
        task = next((t for t in entry.tasks if "image" in entry.task_inputs.get(t, [])), None)
        if task is None:
            raise SpecError(
                f"model {entry.id} takes no input image (tasks: {', '.join(entry.tasks)})",
                field="inputs.image",
                fix="drop --image or pick an image-to-video model",
            )
        fields.update(task=task, inputs={"image": image_cid})
    given = {
        "num_frames": num_frames,
        "fps": fps,
        "width": width,
        "height": height,
        "steps": steps,
        "guidance_milli": guidance_milli(guidance) if guidance is not None else None,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if fields["seed"] > MAX_SEED:
        raise SpecError(
            f"seed {fields['seed']} is above {MAX_SEED}", field="seed", fix="use a smaller seed"
        )
    spec = default_spec(entry.id, prompt, **fields)
    return spec, entry


# --------------------------------------------------------------------------- submit
class Submitted(BaseModel):
    """What `submit` did."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    tx_hash: str
    block: int
    client: str
    nonce: int
    max_price: Wei = Field(description="Most paid per replica.")
    replicas: int = Field(1, description="Providers that run the job independently.")
    perceptual: bool = False
    escrow: Wei = Field(description="What the submit locked: max_price × replicas.")
    claim_deadline: int = Field(description="Unix time; reclaim is possible after it.")
    delivery_window: int = Field(description="Seconds from claim to delivery.")
    spec_hash: str
    request_digest: str
    spec: dict[str, Any]
    quote: Quote


def default_max_price(quote: Quote) -> int:
    """The dearest advertised ask, so that every provider serving the model can claim."""
    if quote.max_price is None:
        why = (
            "no registered provider advertises this model"
            if quote.providers == 0
            else "no provider serving it publishes a price"
        )
        raise SpecError(
            f"cannot pick a max price for {quote.model}: {why}",
            field="max_price",
            fix="pass --max-price (FCC), or register a node for the model on this network",
        )
    return quote.max_price


def check_replicas(replicas: int, perceptual: bool) -> None:
    """Bounds of ``--replicas`` / ``--perceptual``, checked before anything is signed."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise SpecError(
            f"replicas must be in 1..{MAX_REPLICAS} (got {replicas})",
            field="replicas",
            fix=f"pass --replicas 1 for one provider, or 2..{MAX_REPLICAS} independent providers",
        )
    if perceptual and replicas == 1:
        # Perceptual agreement is a rule for comparing replicas: one result has nothing to
        # agree with, so the flag would be signed but meaningless.
        raise SpecError(
            "perceptual agreement needs at least 2 replicas",
            field="perceptual",
            fix="add --replicas 2 (or more), or drop --perceptual",
        )


def check_funds(market: Market, credits: Credits, client: str, max_price: int) -> None:
    """Fail before signing when the free market balance cannot escrow ``max_price``
    (for a replicated job: the whole escrow, max price × replicas)."""
    free = market.free_balance_of(client)
    if free >= max_price:
        return
    wallet = credits.balance_of(client)
    missing = max_price - free
    deposit = f"`framecast credits deposit --amount {format_fcc(missing, unit=False)}`"
    if wallet >= missing:
        fix = f"deposit it with {deposit} (more credits: `framecast credits faucet`)"
    else:
        fix = f"get credits with `framecast credits faucet`, then {deposit}"
    raise reverts.InsufficientBalance(
        f"{client} has {format_fcc(free)} free in the market (and {format_fcc(wallet)} in the "
        f"wallet) but the job escrows up to {format_fcc(max_price)}",
        fix=fix,
        args={"account": client, "available": free, "required": max_price},
    )


def used_nonces(market: Market, client: str, *, from_block: int, chunk_blocks: int) -> set[int]:
    """Nonces the client's submitted jobs used (invalidated ones are asked on chain)."""
    events = market.contract.events
    found = set()
    for log in logs(
        market.w3,
        market.address,
        [events.JobSubmitted.topic, None, address_topic(client)],
        from_block=from_block,
        to_block=market.w3.eth.block_number,
        chunk_blocks=chunk_blocks,
    ):
        found.add(int(events.JobSubmitted().process_log(log)["args"]["nonce"]))
    return found


def first_unused_nonce(market: Market, client: str, used: set[int], start: int = 0) -> int:
    """Smallest nonce ≥ ``start`` the chain still accepts (`isNonceUsed` has the last word:
    `invalidateNonce` burns nonces without a `JobSubmitted`)."""
    nonce = start
    while nonce in used or market.is_nonce_used(client, nonce):
        nonce += 1
    return nonce


def submit(
    market: Market,
    credits: Credits,
    spec: GenerationSpec,
    quote: Quote,
    *,
    max_price: int,
    claim_timeout_s: int,
    delivery_window_s: int,
    from_block: int,
    replicas: int = 1,
    perceptual: bool = False,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> Submitted:
    """Sign the EIP-712 request for ``spec`` and submit it (the wallet pays gas itself).

    ``max_price`` is per replica: the market escrows ``max_price × replicas``.
    """
    check_replicas(replicas, perceptual)
    account = market.sender.account
    client = str(account.address)
    check_funds(market, credits, client, max_price * replicas)
    domain = market.domain()
    used = used_nonces(market, client, from_block=from_block, chunk_blocks=chunk_blocks)
    nonce = first_unused_nonce(market, client, used)
    for attempt in range(_NONCE_RETRIES):
        request = JobRequest.for_spec(
            spec,
            client=client,
            max_price=max_price,
            claim_deadline=next_block_time(market.w3) + claim_timeout_s,
            delivery_window=delivery_window_s,
            replicas=replicas,
            perceptual=perceptual,
            nonce=nonce,
        )
        signature = sign_request(request, domain, bytes(account.key))
        try:
            job_id, receipt = market.submit_job(request, spec.canonical_json(), signature)
            break
        except reverts.NonceAlreadyUsed:
            # Another submit from this wallet won the nonce meanwhile: take the next one.
            if attempt == _NONCE_RETRIES - 1:
                raise
            nonce = first_unused_nonce(market, client, used, nonce + 1)
    return Submitted(
        job_id=job_id,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        client=client,
        nonce=nonce,
        max_price=max_price,
        replicas=replicas,
        perceptual=perceptual,
        escrow=request.escrow,
        claim_deadline=request.claim_deadline,
        delivery_window=request.delivery_window,
        spec_hash="0x" + request.spec_hash.hex(),
        request_digest="0x" + request.digest(domain).hex(),
        spec=spec.model_dump(mode="json", exclude_none=True),
        quote=quote,
    )


# --------------------------------------------------------------------------- views
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
        raise JobNotFound(
            f"job {job_id} does not exist on the market at {market.address}",
            fix="list jobs with `framecast jobs` (is --network the right one?)",
        )
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


# --------------------------------------------------------------------------- follow
class Progress(BaseModel):
    """One observation of a job while following it."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    state: str = Field(description="On-chain state.")
    provider: str | None = None
    node_state: str | None = Field(None, description="The provider's own step, if exposed.")
    fraction: float | None = Field(
        None, ge=0, le=1, description="Run progress (denoising steps) the provider exposes."
    )
    deadline: int
    chain_time: int
    replicas: int = Field(1, description="Providers asked for (1: a single-provider job).")
    claims: int = Field(0, description="Replicated job: replicas claimed so far.")
    commits: int = Field(0, description="Replicated job: replicas committed so far.")
    reveals: int = Field(0, description="Replicated job: replicas revealed so far.")

    def describe(self) -> str:
        """The stage in words, e.g. "2 of 3 replicas claimed"."""
        k = self.replicas
        if k == 1:
            return {"open": "waiting for a claim", "claimed": "claimed"}.get(self.state, self.state)
        if self.state == "open":
            return f"{self.claims} of {k} replicas claimed"
        if self.state == "claimed":
            return f"commit phase: {self.commits} of {k} replicas committed"
        if self.state == "revealing":
            return f"reveal phase: {self.reveals} of {self.commits} committed replicas revealed"
        if self.state == "delivered":
            return f"{self.reveals} replicas agree"
        if self.state == "disputed":
            return "replicas disagree: the arbiter decides"
        return self.state


def node_report(
    endpoint: str, job_id: int, http: httpx.Client, *, signer: str, chain_id: int, market: str
) -> ProgressReport | str | None:
    """The provider's signed `/jobs/{id}` answer: the report when ``signer`` signed it
    for this chain, market and job; a reason string when an answer came but fails those
    checks (spoofed, stale, unsigned); None when the endpoint does not answer. Per-step
    progress is a courtesy, the chain is the authority."""
    try:
        response = http.get(f"{endpoint.rstrip('/')}/jobs/{job_id}")
        if response.status_code != 200:
            return None
        data = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return verify_report(data, signer=signer, chain_id=chain_id, market=market, job_id=job_id)


def provider_endpoint(
    listings: list[ProviderListing], provider: str, *, allow_loopback: bool
) -> str | None:
    """The API URL ``provider`` advertises in its own on-chain offer, if it is one another
    party may be sent to (`check_remote_url`); None otherwise."""
    for listing in listings:
        if listing.address.lower() == provider.lower() and listing.offer:
            url = listing.offer.endpoint
            if url is None:
                return None
            try:
                return check_remote_url(url, field="endpoint", allow_loopback=allow_loopback)
            except FramecastError:
                return None
    return None


class ProviderNote(BaseModel):
    """What one provider that could claim an open job says about it (signed by it)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    state: str | None = Field(None, description="Its local state of the job; None: no answer.")
    reason: str | None = Field(None, description="Why it skipped / is waiting (its words).")
    problem: str | None = Field(None, description="Why its answer was ignored, if it was.")


#: Most providers `status` asks about an open job, and the timeout of each question.
NOTE_PROVIDERS = 8
NOTE_TIMEOUT_S = 2.0


def provider_notes(
    market: Market, job_id: int, model: str, listings: list[ProviderListing], *,
    allow_loopback: bool,
) -> list[ProviderNote]:  # fmt: skip
    """Ask the providers serving ``model`` what they make of open job ``job_id`` (why they
    skip it, what input they wait for), each at the endpoint of its own on-chain offer."""
    chain_id = int(market.w3.eth.chain_id)
    serving = [p for p in listings if p.offer and model in p.offer.models][:NOTE_PROVIDERS]
    notes = []
    with httpx.Client(timeout=NOTE_TIMEOUT_S) as http:
        for listing in serving:
            endpoint = provider_endpoint(listings, listing.address, allow_loopback=allow_loopback)
            if endpoint is None:
                continue
            answer = node_report(
                endpoint, job_id, http, signer=listing.address, chain_id=chain_id,
                market=market.address,
            )  # fmt: skip
            if isinstance(answer, ProgressReport):
                notes.append(
                    ProviderNote(provider=listing.address, state=answer.state, reason=answer.reason)
                )
            elif isinstance(answer, str):
                notes.append(ProviderNote(provider=listing.address, problem=answer))
            else:
                notes.append(ProviderNote(provider=listing.address))
    return notes


def follow(
    market: Market,
    job_id: int,
    *,
    listings: Callable[[], list[ProviderListing]],
    on_progress: Callable[[Progress], None],
    poll_s: float = 0.5,
    allow_loopback: bool = True,
    on_notice: Callable[[str], None] | None = None,
) -> JobState:
    """Poll until the job is delivered (or ends otherwise); report each observation.

    Per-step progress comes only from the claiming provider's own advertised endpoint
    (its on-chain offer, found by the claim's provider address), and only answers signed
    by that provider's key count; the first answer that fails the check is reported once
    through ``on_notice`` and the rest are ignored silently.
    Raises `JobStalled` when a deadline passes with nobody acting, naming `reclaim`.
    """
    endpoint: str | None = None
    looked_up = False
    warned = False
    chain_id = int(market.w3.eth.chain_id)
    with httpx.Client(timeout=1.0) as http:
        while True:
            view = market.get_job(job_id)
            now = next_block_time(market.w3)
            update = Progress(
                job_id=job_id,
                state=view.state.label,
                deadline=view.deadline,
                chain_time=now,
                provider=None if view.state is JobState.OPEN else view.provider,
            )
            if view.replicated:
                rs = market.get_replica_set(job_id)
                update = update.model_copy(
                    update={
                        "provider": None,
                        "replicas": rs.replicas,
                        "claims": rs.claims,
                        "commits": rs.commits,
                        "reveals": rs.reveals,
                    }
                )
                on_progress(update)
                if view.state in DELIVERED_STATES or view.state in FINAL_STATES:
                    return view.state
                _check_replicas_stalled(job_id, view.state, update, now)
                time.sleep(poll_s)
                continue
            if view.state is JobState.CLAIMED:
                if not looked_up:
                    looked_up = True
                    endpoint = provider_endpoint(
                        listings(), view.provider, allow_loopback=allow_loopback
                    )
                node = (
                    node_report(
                        endpoint, job_id, http, signer=view.provider, chain_id=chain_id,
                        market=market.address,
                    )
                    if endpoint
                    else None
                )  # fmt: skip
                if isinstance(node, ProgressReport):
                    update = update.model_copy(
                        update={"node_state": node.state, "fraction": node.progress}
                    )
                elif isinstance(node, str) and not warned:
                    warned = True
                    if on_notice is not None:
                        on_notice(f"ignoring progress from {endpoint}: {node}")
            on_progress(update)
            if view.state in DELIVERED_STATES or view.state in FINAL_STATES:
                return view.state
            if view.state is JobState.OPEN and now > view.deadline:
                raise JobStalled(
                    f"no provider claimed job {job_id} before its claim deadline "
                    f"({time.strftime('%H:%M:%S', time.localtime(view.deadline))})",
                    fix=f"get the escrow back with `framecast reclaim {job_id}`",
                )
            if view.state is JobState.CLAIMED and now > view.deadline:
                raise JobStalled(
                    f"provider {view.provider} missed the delivery deadline of job {job_id}",
                    fix=f"`framecast reclaim {job_id}` returns the price and the provider's "
                    "slashed collateral",
                )
            time.sleep(poll_s)


def _check_replicas_stalled(job_id: int, state: JobState, seen: Progress, now: int) -> None:
    """A replicated job past the deadline of its current phase: nobody will move it but
    `reclaim` (which the contract accepts for all three)."""
    if now <= seen.deadline:
        return
    k = seen.replicas
    if state is JobState.OPEN:
        raise JobStalled(
            f"only {seen.claims} of {k} replicas of job {job_id} were claimed before its claim "
            "deadline",
            fix=f"`framecast reclaim {job_id}` returns the whole escrow (nobody is slashed)",
        )
    if state is JobState.CLAIMED:
        raise JobStalled(
            f"only {seen.commits} of {k} replicas of job {job_id} committed before the commit "
            "deadline",
            fix=f"`framecast reclaim {job_id}` refunds the missing replicas' shares with their "
            "slashed collateral (and moves the rest on to reveal)",
        )
    if state is JobState.REVEALING:
        raise JobStalled(
            f"only {seen.reveals} of {seen.commits} committed replicas of job {job_id} revealed "
            "before the reveal deadline",
            fix=f"`framecast reclaim {job_id}` refunds the missing replicas' shares with their "
            "slashed collateral and compares the revealed results",
        )


# --------------------------------------------------------------------------- actions
class ActionResult(BaseModel):
    """What cancel / reclaim / dispute did."""

    model_config = ConfigDict(frozen=True)

    action: str
    job_id: int
    state: str = Field(description="State after the transaction.")
    tx_hash: str
    block: int
    refunded: Wei = 0
    slashed: Wei = 0
    free: Wei = Field(description="The wallet's free market balance afterwards.")


def cancel(market: Market, job_id: int) -> ActionResult:
    """Cancel an unclaimed job; its whole escrow becomes free again."""
    receipt = market.cancel_job(job_id)
    refunds = market.events(receipt, "JobCancelled")
    return _result(market, "cancel", job_id, receipt, refunds[0]["args"]["refund"], 0)


def reclaim(market: Market, job_id: int) -> ActionResult:
    """Take back the escrow of a job nobody claimed, or that was not delivered in time
    (then with the provider's slashed collateral).

    A replicated job: past its claim deadline with the set unfilled, the whole escrow;
    past the commit or reveal deadline, the shares of the replicas that missed it (with
    their slashed collateral), and the job moves on (`JobRefunded` carries the totals).
    """
    view = market.get_job(job_id)
    now = next_block_time(market.w3)
    waiting = (JobState.OPEN, JobState.CLAIMED, JobState.REVEALING)
    if view.state in waiting and now <= view.deadline:
        what = {
            JobState.OPEN: "claim deadline",
            JobState.CLAIMED: "commit deadline" if view.replicated else "delivery deadline",
            JobState.REVEALING: "reveal deadline",
        }[view.state]
        raise reverts.TooEarly(
            f"job {job_id} is {view.state.label}; its {what} is in {view.deadline - now} s",
            fix="wait until it passes (or cancel an unclaimed job with `framecast cancel`)",
            args={"jobId": job_id, "until": view.deadline},
        )
    try:
        receipt = market.reclaim(job_id)
    except reverts.TooEarly:
        # Our clock says the deadline passed but no block has been mined since: gas
        # estimation runs at the latest block's time (an idle devnet mines none).
        raise reverts.TooEarly(
            f"the deadline of job {job_id} has passed, but the chain's latest block "
            f"({chain_now(market.w3)}) is older than it ({view.deadline})",
            fix="retry after the next block (on an idle devnet: `cast rpc evm_mine`)",
            args={"jobId": job_id, "until": view.deadline},
        ) from None
    refunds = market.events(receipt, "JobRefunded")
    refund = refunds[0]["args"]["refund"] if refunds else 0
    slashed = refunds[0]["args"]["slashed"] if refunds else 0
    return _result(market, "reclaim", job_id, receipt, refund, slashed)


def dispute(market: Market, job_id: int, reason: DisputeReason, evidence: bytes) -> ActionResult:
    """Dispute a delivered job inside its challenge window (locks the dispute bond)."""
    receipt = market.dispute(job_id, reason, evidence)
    return _result(market, "dispute", job_id, receipt, 0, 0)


def _result(
    market: Market, action: str, job_id: int, receipt: Any, refund: int, slashed: int
) -> ActionResult:
    return ActionResult(
        action=action,
        job_id=job_id,
        state=market.get_job(job_id).state.label,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        refunded=int(refund),
        slashed=int(slashed),
        free=market.free_balance_of(Web3.to_checksum_address(market.sender.address)),
    )
