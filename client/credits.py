"""Credits use cases: faucet, balances, deposit (one transaction, via permit), withdraw,
and a history rebuilt from chain events.

Amounts are integers in wei of FCC (18 decimals) everywhere; text becomes wei only through
`parse_amount` and wei becomes text only through `format_fcc` (both in
`framecast.shared.amounts`). Balances and history come from the events `IJobMarket` documents for
indexers, fetched in bounded block chunks from the deployment block on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from web3 import Web3

from framecast.client.events import DEFAULT_CHUNK_BLOCKS
from framecast.client.events import BlockTimes as _BlockTimes
from framecast.client.events import address_topic as _address_topic
from framecast.client.events import batches as _batches
from framecast.client.events import chain_now as _chain_now
from framecast.client.events import duration as _duration
from framecast.client.events import hex_of as _hex
from framecast.client.events import logs as _logs
from framecast.client.events import uint_topic as _uint_topic
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import Credits, JobState, Market
from framecast.shared.chain.sender import TxReceipt
from framecast.shared.errors import ContractRevert

ZERO_ADDRESS = "0x" + "00" * 20

# Amounts in JSON are strings of wei: exact, and safe for JavaScript readers.
Wei = Annotated[int, Field(ge=0), PlainSerializer(str, return_type=str, when_used="json")]

_ESCROWED_STATES = {JobState.OPEN, JobState.CLAIMED, JobState.DELIVERED, JobState.DISPUTED}


# --------------------------------------------------------------------------- times
def local_time(timestamp: int) -> str:
    """A unix time as local wall-clock time with its zone, as users read it."""
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


# --------------------------------------------------------------------------- models
class TxResult(BaseModel):
    """What a credits transaction did."""

    model_config = ConfigDict(frozen=True)

    action: Literal["faucet", "deposit", "withdraw"]
    address: str = Field(description="The wallet that sent it.")
    amount: Wei = Field(description="Credits moved, in wei.")
    tx_hash: str
    block: int = Field(ge=0)
    gas_used: int = Field(ge=0)
    wallet: Wei = Field(description="Wallet balance afterwards, in wei.")
    free: Wei = Field(description="Free market balance afterwards, in wei.")
    next_faucet_at: int | None = Field(
        None, description="Faucet only: unix time of the next drip for this address."
    )


class ProviderBalance(BaseModel):
    model_config = ConfigDict(frozen=True)

    bond: Wei
    locked: Wei = Field(description="Part of the bond backing claimed jobs.")
    exit_available_at: int = Field(ge=0, description="0 unless an exit was requested.")


class Balances(BaseModel):
    """Where an address's credits are. ``in_challenge`` is part of ``escrowed``;
    ``refunded`` and ``slashed`` are lifetime totals already inside ``free``."""

    model_config = ConfigDict(frozen=True)

    address: str
    wallet: Wei = Field(description="FCC held in the wallet (ERC-20 balance).")
    free: Wei = Field(description="Deposited in the market, not bound to a job.")
    escrowed: Wei = Field(description="Bound to open, claimed, delivered or disputed jobs.")
    in_challenge: Wei = Field(description="Escrow of delivered jobs whose challenge window runs.")
    refunded: Wei = Field(description="Escrow returned: cancellations, expiries, claim surplus.")
    slashed: Wei = Field(description="Provider collateral paid to this client for failures.")
    open_jobs: int = Field(ge=0, description="Jobs that still hold escrow.")
    provider: ProviderBalance | None = Field(None, description="Set for registered providers.")


class HistoryRow(BaseModel):
    """One job (with its whole outcome) or one token transfer of an address."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["job", "transfer"]
    block: int = Field(ge=0)
    time: int = Field(ge=0, description="Block timestamp (unix seconds).")
    tx_hash: str
    what: str = Field(
        description="job: its current state; transfer: faucet, deposit, withdraw, sent or received."
    )
    amount: Wei = Field(description="job: max price escrowed at submission; transfer: amount.")
    direction: Literal["in", "out"] | None = Field(
        None, description="transfer: credits into or out of the wallet."
    )
    job_id: int | None = None
    price: Wei | None = Field(None, description="Claim price, once claimed.")
    refunded: Wei = Field(0, description="Escrow returned to the client for this job.")
    slashed: Wei = Field(0, description="Provider collateral paid to the client for this job.")
    provider: str | None = None
    counterparty: str | None = Field(None, description="transfer: the other address.")


# --------------------------------------------------------------------------- use cases
def _tx_result(
    action: Literal["faucet", "deposit", "withdraw"],
    address: str,
    credits: Credits,
    market: Market,
    receipt: TxReceipt,
    amount: int,
    *,
    next_faucet_at: int | None = None,
) -> TxResult:
    """What a credits transaction did, with the sender's balances read afterwards."""
    return TxResult(
        action=action,
        address=address,
        amount=amount,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
        gas_used=receipt.gas_used,
        wallet=credits.balance_of(address),
        free=market.free_balance_of(address),
        next_faucet_at=next_faucet_at,
    )


def faucet(credits: Credits, market: Market) -> TxResult:
    """Draw the faucet's drip; a cooldown says when the next drip is, in local time."""
    address = credits.sender.address
    try:
        receipt = credits.faucet()
    except ContractRevert as exc:
        if isinstance(exc, reverts.FaucetCooldown):
            available_at = int(exc.error_args["availableAt"])
            wait = max(0, available_at - _chain_now(credits.w3))
            raise reverts.FaucetCooldown(
                f"{address} drew from the faucet recently; the next drip is available at "
                f"{local_time(available_at)} (in {_duration(wait)})",
                fix="wait until then, or deposit credits you already hold",
                args=exc.error_args,
            ) from None
        raise
    drips = credits.events(receipt, "FaucetDrip")
    amount = int(drips[0]["args"]["amount"]) if drips else credits.drip_amount()
    next_at = int(drips[0]["args"]["nextAvailableAt"]) if drips else None
    return _tx_result("faucet", address, credits, market, receipt, amount, next_faucet_at=next_at)


def deposit(credits: Credits, market: Market, amount: int) -> TxResult:
    """Move wallet credits into the market in ONE transaction: an EIP-2612 permit signed
    off-chain plus `depositWithPermit` (no separate approve)."""
    address = market.sender.address
    receipt = market.deposit_with_permit(credits, amount)
    return _tx_result("deposit", address, credits, market, receipt, amount)


def withdraw(credits: Credits, market: Market, amount: int, to: str | None = None) -> TxResult:
    """Withdraw free market credits to the wallet (or to ``to``)."""
    address = market.sender.address
    receipt = market.withdraw(amount, to)
    return _tx_result("withdraw", address, credits, market, receipt, amount)


def balances(
    credits: Credits,
    market: Market,
    address: str,
    *,
    from_block: int,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> Balances:
    """Wallet and market balances of ``address``, with escrow split from its jobs' events."""
    scan = _JobScan.run(market, address, from_block, chunk_blocks)
    now = _chain_now(market.w3)
    escrowed = in_challenge = open_jobs = 0
    for job_id in scan.job_ids:
        view = market.get_job(job_id)
        if view.state not in _ESCROWED_STATES:
            continue
        escrow = market.escrow_of(job_id)
        escrowed += escrow
        open_jobs += 1
        if view.state is JobState.DELIVERED and now < view.deadline:
            in_challenge += escrow
    provider = market.get_provider(address)
    return Balances(
        address=Web3.to_checksum_address(address),
        wallet=credits.balance_of(address),
        free=market.free_balance_of(address),
        escrowed=escrowed,
        in_challenge=in_challenge,
        refunded=sum(scan.refunded.values()),
        slashed=sum(scan.slashed.values()),
        open_jobs=open_jobs,
        provider=ProviderBalance(
            bond=provider.bond, locked=provider.locked, exit_available_at=provider.exit_available_at
        )
        if provider.registered
        else None,
    )


def history(
    credits: Credits,
    market: Market,
    address: str,
    *,
    from_block: int,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> list[HistoryRow]:
    """One row per job of ``address`` as a client and per credits transfer in or out of its
    wallet, oldest first, rebuilt from events only (plus each job's current state)."""
    address = Web3.to_checksum_address(address)
    scan = _JobScan.run(market, address, from_block, chunk_blocks)
    to_block = scan.to_block
    times = _BlockTimes(market.w3)
    rows: list[tuple[int, int, HistoryRow]] = []
    for job_id, submitted in scan.submitted.items():
        claimed = scan.claimed.get(job_id)
        rows.append(
            (
                submitted["blockNumber"],
                submitted["logIndex"],
                HistoryRow(
                    kind="job",
                    block=submitted["blockNumber"],
                    time=times[submitted["blockNumber"]],
                    tx_hash=_hex(submitted["transactionHash"]),
                    what=market.get_job(job_id).state.label,
                    amount=int(submitted["args"]["maxPrice"]),
                    job_id=job_id,
                    price=int(claimed["args"]["price"]) if claimed else None,
                    refunded=scan.refunded.get(job_id, 0),
                    slashed=scan.slashed.get(job_id, 0),
                    provider=str(claimed["args"]["provider"]) if claimed else None,
                ),
            )
        )
    topic = _address_topic(address)
    transfer = credits.contract.events.Transfer
    drip_txs = {
        _hex(log["transactionHash"])
        for log in _logs(
            credits.w3,
            credits.address,
            [credits.contract.events.FaucetDrip.topic, topic],
            from_block=from_block,
            to_block=to_block,
            chunk_blocks=chunk_blocks,
        )
    }
    outgoing = _logs(
        credits.w3,
        credits.address,
        [transfer.topic, topic],
        from_block=from_block,
        to_block=to_block,
        chunk_blocks=chunk_blocks,
    )
    incoming = _logs(
        credits.w3,
        credits.address,
        [transfer.topic, None, topic],
        from_block=from_block,
        to_block=to_block,
        chunk_blocks=chunk_blocks,
    )
    for log in [*outgoing, *incoming]:
        event = transfer().process_log(log)
        sender, receiver = str(event["args"]["from"]), str(event["args"]["to"])
        out = sender == address
        other = receiver if out else sender
        tx_hash = _hex(log["transactionHash"])
        if other == market.address:
            what = "deposit" if out else "withdraw"
        elif other == ZERO_ADDRESS and tx_hash in drip_txs:
            what = "faucet"
        elif other == ZERO_ADDRESS:
            what = "burned" if out else "minted"
        else:
            what = "sent" if out else "received"
        rows.append(
            (
                log["blockNumber"],
                log["logIndex"],
                HistoryRow(
                    kind="transfer",
                    block=log["blockNumber"],
                    time=times[log["blockNumber"]],
                    tx_hash=tx_hash,
                    what=what,
                    amount=int(event["args"]["value"]),
                    direction="out" if out else "in",
                    counterparty=other,
                ),
            )
        )
    rows.sort(key=lambda item: (item[0], item[1]))
    return [row for _, _, row in rows]


# --------------------------------------------------------------------------- events
class _JobScan:
    """A client's jobs and their money events, from the market's logs."""

    def __init__(self, to_block: int) -> None:
        self.to_block = to_block
        self.submitted: dict[int, Any] = {}
        self.claimed: dict[int, Any] = {}
        self.refunded: dict[int, int] = {}
        self.slashed: dict[int, int] = {}

    @property
    def job_ids(self) -> list[int]:
        return list(self.submitted)

    @classmethod
    def run(cls, market: Market, address: str, from_block: int, chunk_blocks: int) -> _JobScan:
        w3 = market.w3
        scan = cls(w3.eth.block_number)
        events = market.contract.events
        client = _address_topic(address)
        # Events with the client as second indexed topic (the first is the job id).
        by_client = [events.JobSubmitted, events.JobCancelled, events.JobRefunded]
        for log in _logs(
            w3,
            market.address,
            [[e.topic for e in by_client], None, client],
            from_block=from_block,
            to_block=scan.to_block,
            chunk_blocks=chunk_blocks,
        ):
            topic0 = _hex(log["topics"][0])
            if topic0 == events.JobSubmitted.topic:
                event = events.JobSubmitted().process_log(log)
                scan.submitted[int(event["args"]["jobId"])] = event
            elif topic0 == events.JobCancelled.topic:
                event = events.JobCancelled().process_log(log)
                job_id = int(event["args"]["jobId"])
                scan.refunded[job_id] = scan.refunded.get(job_id, 0) + int(event["args"]["refund"])
            else:
                event = events.JobRefunded().process_log(log)
                job_id = int(event["args"]["jobId"])
                scan.refunded[job_id] = scan.refunded.get(job_id, 0) + int(event["args"]["refund"])
                scan.slashed[job_id] = scan.slashed.get(job_id, 0) + int(event["args"]["slashed"])
        if scan.submitted:
            # JobClaimed is indexed by job and provider, not client: ask for this client's
            # job ids (an OR list of topics), from its first job on.
            first = min(e["blockNumber"] for e in scan.submitted.values())
            ids = [_uint_topic(job_id) for job_id in scan.submitted]
            for batch in _batches(ids, 100):
                for log in _logs(
                    w3,
                    market.address,
                    [[events.JobClaimed.topic, events.JobReleased.topic], batch],
                    from_block=first,
                    to_block=scan.to_block,
                    chunk_blocks=chunk_blocks,
                ):
                    job_id = int(_hex(log["topics"][1]), 16)
                    if _hex(log["topics"][0]) == events.JobReleased.topic:
                        # The provider gave the job back: the price plus a penalty share of
                        # its collateral came to the client.
                        event = events.JobReleased().process_log(log)
                        scan.refunded[job_id] = scan.refunded.get(job_id, 0) + int(
                            event["args"]["refund"]
                        )
                        scan.slashed[job_id] = scan.slashed.get(job_id, 0) + int(
                            event["args"]["penalty"]
                        )
                        continue
                    event = events.JobClaimed().process_log(log)
                    scan.claimed[job_id] = event
                    # The surplus over the claim price goes back to the client at once.
                    scan.refunded[job_id] = scan.refunded.get(job_id, 0) + int(
                        event["args"]["refund"]
                    )
        return scan
