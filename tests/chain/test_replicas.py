"""Replicated (k-of-n) jobs through the Python bindings on a real anvil: agreement pays every
replica, a mismatch goes to the arbiter automatically, the Python commitment equals the
contract's, and bad requests fail with errors that name the field."""

from __future__ import annotations

import pydantic
import pytest

from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import DisputeReason, JobState
from framecast.shared.replicas import new_salt, replica_commitment
from framecast.shared.request import MAX_REPLICAS, JobRequest
from tests.chain.conftest import FCC, domain_of, fund_market, register, signed_job
from tests.conftest import Chain

CID = bytes.fromhex("01551220") + b"\x11" * 32
VIDEO = b"\x22" * 32
FRAMES_A = b"\x33" * 32
FRAMES_B = b"\x44" * 32
PROVIDERS = ("provider-1", "provider-2")
PRICES = (8 * FCC, 9 * FCC)


def _filled_two_replica_job(chain: Chain) -> int:
    fund_market(chain)
    for name in PROVIDERS:
        register(chain, name)
    job = signed_job(chain, max_price=10 * FCC, replicas=2, perceptual=True)
    job_id, receipt = chain.market("bob").submit_job(job.request, job.spec_bytes, job.signature)
    event = chain.market().events(receipt, "JobSubmitted")[0]["args"]
    assert JobRequest.from_event(event) == job.request  # replicas and perceptual round-trip
    for name, price in zip(PROVIDERS, PRICES, strict=True):
        chain.market(name).claim_job(job_id, price)
    return job_id


def _commit_and_reveal(chain: Chain, job_id: int, frames: tuple[bytes, bytes]) -> None:
    salts = [new_salt() for _ in PROVIDERS]
    for name, digest, salt in zip(PROVIDERS, frames, salts, strict=True):
        provider = chain.account(name).address
        commitment = replica_commitment(job_id, provider, CID, VIDEO, digest, salt)
        chain.market(name).commit_result(job_id, commitment)
    assert chain.market().get_job(job_id).state is JobState.REVEALING
    for name, digest, salt in zip(PROVIDERS, frames, salts, strict=True):
        chain.market(name).reveal_result(job_id, CID, VIDEO, digest, salt)


def test_two_replicas_agree_then_settle_pays_each(chain: Chain) -> None:
    market = chain.market()
    job_id = _filled_two_replica_job(chain)
    view = market.get_job(job_id)
    assert view.replicated and view.state is JobState.CLAIMED
    rs = market.get_replica_set(job_id)
    assert (rs.replicas, rs.claims, rs.perceptual, rs.escrow) == (2, 2, True, sum(PRICES))
    assert market.escrow_of(job_id) == sum(PRICES)
    replicas = market.get_replicas(job_id)
    assert [r.provider for r in replicas] == [chain.account(n).address for n in PROVIDERS]
    assert market.replica_index(job_id, chain.account("provider-2").address) == 1

    _commit_and_reveal(chain, job_id, (FRAMES_A, FRAMES_A))
    assert market.get_job(job_id).state is JobState.DELIVERED
    with pytest.raises(reverts.TooEarly):
        chain.market("bob").settle(job_id)
    chain.warp(chain.deployment.params.challenge_window)
    chain.market("bob").settle(job_id)

    fee_bps = chain.deployment.params.protocol_fee_bps
    assert market.get_job(job_id).state is JobState.SETTLED
    for name, price in zip(PROVIDERS, PRICES, strict=True):
        address = chain.account(name).address
        assert market.free_balance_of(address) == price - price * fee_bps // 10_000
        assert market.get_provider(address).locked == 0
    assert all(r.settled and r.revealed for r in market.get_replicas(job_id))
    assert market.escrow_of(job_id) == 0


def test_mismatch_disputes_automatically_and_arbiter_resolves(chain: Chain) -> None:
    market = chain.market()
    job_id = _filled_two_replica_job(chain)
    alice = chain.account("alice").address
    _commit_and_reveal(chain, job_id, (FRAMES_A, FRAMES_B))
    assert market.get_job(job_id).state is JobState.DISPUTED
    rs = market.get_replica_set(job_id)
    assert rs.revealed == {0, 1} and not rs.bonded
    with pytest.raises(reverts.ReplicatedJob):
        chain.market("arbiter").resolve(job_id, True)
    with pytest.raises(reverts.InvalidFaultMask) as bad_mask:
        chain.market("arbiter").resolve_replicas(job_id, 0b100)
    assert bad_mask.value.fix

    before = market.free_balance_of(alice)
    receipt = chain.market("arbiter").resolve_replicas(job_id, {1})  # replica 1 at fault
    resolved = market.events(receipt, "ReplicasResolved")[0]["args"]
    assert resolved["faultMask"] == 0b10
    collateral = market.collateral_for(PRICES[1])
    assert market.get_job(job_id).state is JobState.SETTLED
    assert market.free_balance_of(alice) == before + PRICES[1] + collateral
    provider2 = market.get_provider(chain.account("provider-2").address)
    assert (provider2.locked, provider2.bond) == (0, 200 * FCC - collateral)
    assert market.escrow_of(job_id) == 0


def test_copied_commitment_cannot_be_revealed(chain: Chain) -> None:
    job_id = _filled_two_replica_job(chain)
    honest = chain.account("provider-1").address
    salt = new_salt()
    commitment = replica_commitment(job_id, honest, CID, VIDEO, FRAMES_A, salt)
    chain.market("provider-1").commit_result(job_id, commitment)
    chain.market("provider-2").commit_result(job_id, commitment)  # copied
    chain.market("provider-1").reveal_result(job_id, CID, VIDEO, FRAMES_A, salt)
    with pytest.raises(reverts.CommitmentMismatch) as exc:
        chain.market("provider-2").reveal_result(job_id, CID, VIDEO, FRAMES_A, salt)
    assert "commitment" in str(exc.value) and exc.value.fix


def test_python_commitment_equals_contract(chain: Chain) -> None:
    market = chain.market()
    for job_id, frames in ((1, FRAMES_A), (2**64 + 7, FRAMES_B)):
        salt = new_salt()
        provider = chain.account("provider-2").address
        expected = market.replica_commitment(job_id, provider, CID, VIDEO, frames, salt)
        assert replica_commitment(job_id, provider, CID, VIDEO, frames, salt) == expected
        other = chain.account("provider-1").address
        assert replica_commitment(job_id, other, CID, VIDEO, frames, salt) != expected


def test_digest_with_replicas_equals_contract_hash(chain: Chain) -> None:
    domain = domain_of(chain.deployment)
    single = signed_job(chain)
    replicated = signed_job(chain, replicas=3, perceptual=True)
    assert chain.market().hash_request(replicated.request) == replicated.request.digest(domain)
    assert replicated.request.digest(domain) != single.request.digest(domain)


def test_reclaim_unfilled_set_refunds_everything(chain: Chain) -> None:
    fund_market(chain)
    register(chain, "provider-1")
    alice = chain.account("alice").address
    job = signed_job(chain, max_price=10 * FCC, replicas=3, deadline_in=120)
    job_id, _ = chain.market("alice").submit_job(job.request, job.spec_bytes, job.signature)
    assert chain.market().free_balance_of(alice) == 70 * FCC  # 3 × maxPrice escrowed
    chain.market("provider-1").claim_job(job_id, 8 * FCC)
    with pytest.raises(reverts.ReplicasClaimed):
        chain.market("alice").cancel_job(job_id)
    chain.warp(121)
    chain.market("bob").reclaim(job_id)
    assert chain.market().get_job(job_id).state is JobState.EXPIRED
    assert chain.market().free_balance_of(alice) == 100 * FCC
    assert chain.market().get_provider(chain.account("provider-1").address).locked == 0


@pytest.mark.parametrize("replicas", [0, MAX_REPLICAS + 1, -1])
def test_request_rejects_replicas_out_of_range(chain: Chain, replicas: int) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        signed_job(chain, replicas=replicas)
    text = str(exc.value)
    assert "replicas" in text and f"between 1 and {MAX_REPLICAS}" in text


def test_request_escrow_is_per_replica() -> None:
    request = JobRequest(
        client="0x" + "11" * 20,
        model_id=b"\0" * 32,
        spec_hash=b"\0" * 32,
        max_price=10,
        claim_deadline=1,
        delivery_window=60,
        replicas=3,
        nonce=0,
    )
    assert request.escrow == 30 and request.perceptual is False
    assert JobRequest.model_validate({**request.model_dump(), "replicas": 1}).escrow == 10


def test_dispute_reason_and_state_mirror_contract() -> None:
    assert DisputeReason.REPLICA_MISMATCH == 4
    assert JobState.REVEALING == 11 and JobState.REVEALING.label == "revealing"
