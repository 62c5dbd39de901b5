"""Submitting a job: the max price from the quote, the escrow checked against the free
balance, a fresh nonce, the EIP-712 request signed and sent (the wallet pays gas itself).
Input images are uploaded before this, by `framecast.client.inputs`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from framecast.client.credits import Wei
from framecast.client.events import DEFAULT_CHUNK_BLOCKS, address_topic, logs, next_block_time
from framecast.client.jobs.spec import check_replicas
from framecast.client.quote import Quote
from framecast.shared.amounts import format_fcc
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import Credits, Market
from framecast.shared.errors import SpecError
from framecast.shared.request import JobRequest, sign_request
from framecast.shared.spec import GenerationSpec

_NONCE_RETRIES = 3


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


def check_funds(market: Market, credits: Credits, client: str, max_price: int) -> None:
    """Fail before signing when the free market balance cannot escrow ``max_price``
    (for a replicated job: the whole escrow, max price × replicas)."""
    free = market.free_balance_of(client)
    if free >= max_price:
        return
    wallet = credits.balance_of(client)
    missing = max_price - free
    deposit = f"`framecast credits deposit --amount {format_fcc(missing, unit=False, group=False)}`"
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
