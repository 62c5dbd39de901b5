"""The client's actions on its jobs: cancel an unclaimed one, reclaim an escrow past its
deadline, dispute a delivery inside its challenge window."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3

from framecast.client.credits import Wei
from framecast.client.events import chain_now, next_block_time
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import DisputeReason, JobState, Market


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
