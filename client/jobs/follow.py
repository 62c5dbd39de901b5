"""Following a job to delivery: its on-chain state polled, per-step progress from the
claiming provider's signed reports, and what providers say about an open job."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field

from framecast.client.events import next_block_time
from framecast.client.jobs.views import DELIVERED_STATES, FINAL_STATES
from framecast.client.quote import ProviderListing
from framecast.shared.chain.bindings import JobState, Market
from framecast.shared.endpoints import check_remote_url
from framecast.shared.errors import FramecastError, JobStalled
from framecast.shared.progress import ProgressReport, verify_report


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
