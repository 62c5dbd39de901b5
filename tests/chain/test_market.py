"""JobMarket through the Python bindings on a real anvil: the whole lifecycle, and every
bad input the foundation issue names raising its typed exception with a fix."""

from __future__ import annotations

import pytest
from eth_keys import keys

from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import DisputeReason, JobState
from framecast.shared.errors import ContractRevert
from framecast.shared.request import Domain, recover_signer
from tests.chain.conftest import FCC, domain_of, fund_market, register, signed_job
from tests.conftest import Chain

SECP256K1_N = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
CID = bytes.fromhex("01551220") + b"\x11" * 32
VIDEO_SHA = b"\x22" * 32
FRAMES = b"\x33" * 32


def submit(chain: Chain, job: object, sender: str = "alice") -> int:
    job_id, _ = chain.market(sender).submit_job(job.request, job.spec_bytes, job.signature)  # type: ignore[attr-defined]
    return job_id


def test_request_digest_equals_contract_hash(chain: Chain) -> None:
    job = signed_job(chain)
    domain = domain_of(chain.deployment)
    assert chain.market().hash_request(job.request) == job.request.digest(domain)
    assert recover_signer(job.request, domain, job.signature) == chain.account("alice").address


def test_whole_life_pays_provider_and_refunds_surplus(chain: Chain) -> None:
    fund_market(chain)
    register(chain)
    alice = chain.account("alice").address
    provider = chain.account("provider-1").address
    market = chain.market()
    job = signed_job(chain, max_price=10 * FCC)

    job_id = submit(chain, job, sender="bob")  # anyone may relay a signed request
    assert market.get_job(job_id).state is JobState.OPEN
    assert market.free_balance_of(alice) == 90 * FCC
    assert market.escrow_of(job_id) == 10 * FCC

    chain.market("provider-1").claim_job(job_id, 8 * FCC)
    view = market.get_job(job_id)
    assert (view.state, view.amount, view.provider) == (JobState.CLAIMED, 8 * FCC, provider)
    assert market.free_balance_of(alice) == 92 * FCC  # surplus refunded at once
    assert market.get_provider(provider).locked == 4 * FCC  # 50 % collateral

    chain.market("provider-1").deliver(job_id, CID, VIDEO_SHA, FRAMES)
    with pytest.raises(reverts.TooEarly):
        chain.market("bob").settle(job_id)
    chain.warp(chain.deployment.params.challenge_window)
    chain.market("bob").settle(job_id)

    fee = 8 * FCC * chain.deployment.params.protocol_fee_bps // 10_000
    assert market.get_job(job_id).state is JobState.SETTLED
    assert market.free_balance_of(provider) == 8 * FCC - fee
    assert market.fees_owed() == fee
    assert market.get_provider(provider).locked == 0
    assert market.escrow_of(job_id) == 0


def test_missed_delivery_refunds_client_and_slashes_collateral(chain: Chain) -> None:
    fund_market(chain)
    register(chain)
    job_id = submit(chain, signed_job(chain, delivery_window=60))
    chain.market("provider-1").claim_job(job_id, 10 * FCC)
    with pytest.raises(reverts.TooEarly):
        chain.market("alice").reclaim(job_id)
    chain.warp(61)
    chain.market("bob").reclaim(job_id)
    market = chain.market()
    assert market.get_job(job_id).state is JobState.DEFAULTED
    assert market.free_balance_of(chain.account("alice").address) == 105 * FCC
    assert market.get_provider(chain.account("provider-1").address).bond == 195 * FCC


def test_upheld_dispute_refunds_client(chain: Chain) -> None:
    fund_market(chain)
    register(chain)
    job_id = submit(chain, signed_job(chain))
    chain.market("provider-1").claim_job(job_id, 10 * FCC)
    chain.market("provider-1").deliver(job_id, CID, VIDEO_SHA, FRAMES)
    chain.market("alice").dispute(job_id, DisputeReason.REPLAY_MISMATCH)
    with pytest.raises(reverts.AccessControlUnauthorizedAccount):
        chain.market("bob").resolve(job_id, True)
    chain.market("arbiter").resolve(job_id, True)
    market = chain.market()
    assert market.get_job(job_id).state is JobState.REJECTED
    # 90 left after escrow, + 10 price + 5 collateral; the dispute bond came back.
    assert market.free_balance_of(chain.account("alice").address) == 105 * FCC


def test_silent_arbiter_lets_delivery_stand(chain: Chain) -> None:
    fund_market(chain)
    register(chain)
    job_id = submit(chain, signed_job(chain))
    chain.market("provider-1").claim_job(job_id, 10 * FCC)
    chain.market("provider-1").deliver(job_id, CID, VIDEO_SHA, FRAMES)
    chain.market("alice").dispute(job_id, DisputeReason.HASH_MISMATCH)
    chain.warp(chain.deployment.params.resolve_window)
    with pytest.raises(reverts.ResolveWindowClosed):
        chain.market("arbiter").resolve(job_id, True)
    chain.market("bob").settle(job_id)
    market = chain.market()
    assert market.get_job(job_id).state is JobState.SETTLED
    assert market.free_balance_of(chain.account("alice").address) == 90 * FCC


@pytest.mark.parametrize(
    "tamper",
    ["chain_id", "contract"],
)
def test_signature_for_another_domain_is_rejected(chain: Chain, tamper: str) -> None:
    fund_market(chain)
    good = domain_of(chain.deployment)
    wrong = (
        Domain(chain_id=good.chain_id + 1, market=good.market)
        if tamper == "chain_id"
        else Domain(chain_id=good.chain_id, market=chain.deployment.credits)
    )
    job = signed_job(chain, domain=wrong)
    with pytest.raises(reverts.InvalidSigner) as info:
        submit(chain, job)
    assert info.value.error_args["client"] == chain.account("alice").address
    assert "sign with the client's key for this chain id" in str(info.value)


def test_wrong_signer_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    with pytest.raises(reverts.InvalidSigner) as info:
        submit(chain, signed_job(chain, signer="bob"))
    assert info.value.error_args["recovered"] == chain.account("bob").address


def test_malleable_signature_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    job = signed_job(chain)
    r, s, v = job.signature[:32], int.from_bytes(job.signature[32:64], "big"), job.signature[64]
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    flipped = bytes([55 - v]) if v in (27, 28) else bytes([v ^ 1])
    malleable = r + high_s + flipped
    # Same key recovers from the mirrored signature: only the low-s rule rejects it.
    sig = keys.Signature(vrs=((flipped[0] - 27) % 2, int.from_bytes(r, "big"), SECP256K1_N - s))
    assert sig.recover_public_key_from_msg_hash(job.request.digest(domain_of(chain.deployment)))
    job.signature = malleable
    with pytest.raises(reverts.InvalidSignature):
        submit(chain, job)


def test_expired_request_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    job = signed_job(chain, deadline_in=60)
    chain.warp(120)
    with pytest.raises(reverts.RequestExpired) as info:
        submit(chain, job)
    assert "sign a new request with a later deadline" in str(info.value)


def test_reused_nonce_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    submit(chain, signed_job(chain, nonce=7))
    with pytest.raises(reverts.NonceAlreadyUsed) as info:
        submit(chain, signed_job(chain, nonce=7, seed=43))
    assert info.value.error_args["nonce"] == 7
    assert chain.market().is_nonce_used(chain.account("alice").address, 7)


def test_same_signed_request_creates_one_job(chain: Chain) -> None:
    fund_market(chain)
    job = signed_job(chain)
    submit(chain, job)
    with pytest.raises(reverts.NonceAlreadyUsed):
        submit(chain, job, sender="bob")


def test_spec_hash_mismatch_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    job = signed_job(chain)
    other = signed_job(chain, seed=1).spec_bytes
    with pytest.raises(reverts.SpecHashMismatch):
        chain.market("alice").submit_job(job.request, other, job.signature)


def test_spec_over_4kib_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    job = signed_job(chain)
    with pytest.raises(reverts.SpecTooLarge) as info:
        chain.market("alice").submit_job(job.request, b" " * 4097, job.signature)
    assert info.value.error_args == {"length": 4097, "maxLength": 4096}


def test_insufficient_free_balance_names_the_faucet(chain: Chain) -> None:
    with pytest.raises(reverts.InsufficientBalance) as info:
        submit(chain, signed_job(chain))
    assert "framecast credits faucet" in str(info.value)


def test_price_above_max_is_rejected(chain: Chain) -> None:
    fund_market(chain)
    register(chain)
    job_id = submit(chain, signed_job(chain, max_price=10 * FCC))
    with pytest.raises(reverts.PriceAboveMax):
        chain.market("provider-1").claim_job(job_id, 10 * FCC + 1)


def test_unregistered_provider_cannot_claim(chain: Chain) -> None:
    fund_market(chain)
    job_id = submit(chain, signed_job(chain))
    with pytest.raises(reverts.NotRegistered) as info:
        chain.market("provider-2").claim_job(job_id, FCC)
    assert "framecast node register" in str(info.value)


def test_under_bonded_provider_cannot_claim(chain: Chain) -> None:
    fund_market(chain, amount=200 * FCC)
    register(chain, bond=100 * FCC)  # exactly the minimum
    first = submit(chain, signed_job(chain, nonce=1, delivery_window=60))
    chain.market("provider-1").claim_job(first, 10 * FCC)
    chain.warp(61)
    chain.market("alice").reclaim(first)  # slashes 5 FCC: bond now under the minimum
    second = submit(chain, signed_job(chain, nonce=2))
    with pytest.raises(reverts.BondTooLow):
        chain.market("provider-1").claim_job(second, FCC)


def test_escrowed_funds_cannot_be_withdrawn(chain: Chain) -> None:
    fund_market(chain, amount=10 * FCC)
    submit(chain, signed_job(chain, max_price=10 * FCC))
    with pytest.raises(reverts.InsufficientBalance):
        chain.market("alice").withdraw(1)


def test_every_abi_error_has_a_typed_class() -> None:
    from framecast.shared.chain.artifacts import CONTRACTS, load_artifact

    for contract in CONTRACTS:
        for item in load_artifact(contract).abi:
            if item["type"] == "error":
                cls = reverts.by_name[item["name"]]
                assert issubclass(cls, ContractRevert)
                assert cls.solidity_name == item["name"]
