"""Replicated (k-of-n) jobs served by real provider agents: two nodes on one anvil, each
running the tiny CogVideoX pipeline in its own runner, commit, reveal and get paid; a node
killed between commit and reveal reveals after its restart; a set that never fills expires
and unlocks the collateral."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from framecast.node.agent import Agent
from framecast.node.replay import fetch_result, read_chain_job, replay_job
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.chain.bindings import JobState
from framecast.shared.errors import VerificationFailed
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.node.test_agent import events, submit_tiny

pytestmark = pytest.mark.slow

PRICE = 9 * 32 * 32 * 2 * 1000  # the tiny spec's work units × min_price_per_unit


def step_all(
    agents: Sequence[Agent], job_id: int, states: set[str], timeout: float = 180
) -> list[str]:
    """Step every agent in turn until each one's record of ``job_id`` is in ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            agent.step()
        found = [agent.state.get(job_id) for agent in agents]
        if all(r is not None and r.state in states for r in found):
            return [r.state for r in found if r is not None]
        time.sleep(0.05)
    found = [agent.state.get(job_id) for agent in agents]
    raise AssertionError(f"job {job_id} stuck: {found}")


def kill(agent: Agent) -> None:
    """kill -9: no shutdown; the database closes first so the dead node writes nothing more."""
    agent.state.close()
    for runtime in agent._all_runtimes:
        runtime.close()


def _assert_paid(chain: Chain, agents: Sequence[Agent], job_id: int, before: list[int]) -> None:
    market = chain.market()
    fee = PRICE * chain.deployment.params.protocol_fee_bps // 10_000
    assert market.get_job(job_id).state is JobState.SETTLED
    for agent, was in zip(agents, before, strict=True):
        assert market.free_balance_of(agent.address) == was + PRICE - fee
        assert market.get_provider(agent.address).locked == 0
        record = agent.state.require(job_id)
        assert (record.state, record.earned) == ("settled", PRICE - fee)
    assert len(events(chain, "JobSettled", job_id)) == 2
    assert market.escrow_of(job_id) == 0


def test_two_replicas_run_commit_reveal_and_are_both_paid(
    market_ready: Chain, make_agent: AgentFactory, tmp_path: Path
) -> None:
    chain = market_ready
    agents = [make_agent("provider-1"), make_agent("provider-2")]
    for agent in agents:
        agent.startup()
    market = chain.market()
    before = [market.free_balance_of(a.address) for a in agents]
    job_id = submit_tiny(chain, replicas=2)

    # The first claim leaves the job Open: that node waits without running.
    agents[0].step()
    first = agents[0].state.require(job_id)
    assert (first.state, first.replicas, first.price) == ("waiting", 2, PRICE)
    assert market.get_job(job_id).state is JobState.OPEN
    assert agents[0]._running == {}

    step_all(agents, job_id, {"delivered"})
    assert market.get_job(job_id).state is JobState.DELIVERED
    records = [a.state.require(job_id) for a in agents]
    # Same frames from both runs; each result directory holds its own signed receipt.
    assert records[0].frames_digest == records[1].frames_digest
    assert records[0].result_cid != records[1].result_cid
    assert all(r.salt and len(r.salt) == 66 for r in records)
    agreed = events(chain, "ReplicasAgreed", job_id)
    assert len(agreed) == 1
    assert "0x" + agreed[0]["args"]["framesDigest"].hex() == records[0].frames_digest  # type: ignore[index]
    assert len(events(chain, "ResultCommitted", job_id)) == 2
    assert len(events(chain, "ResultRevealed", job_id)) == 2

    _replay_each_replica(chain, agents, job_id, tmp_path)

    chain.warp(chain.deployment.params.challenge_window)
    step_all(agents, job_id, {"settled"})
    _assert_paid(chain, agents, job_id, before)


def _replay_each_replica(
    chain: Chain, agents: Sequence[Agent], job_id: int, tmp_path: Path
) -> None:
    """`framecast node replay --replica I`'s service: each replica's own revealed result."""
    market, start = chain.market(), chain.deployment.deployed_block
    with pytest.raises(VerificationFailed, match="say which result to replay"):
        read_chain_job(market, job_id, from_block=start)
    with pytest.raises(VerificationFailed, match="there is no replica 2"):
        read_chain_job(market, job_id, from_block=start, replica=2)
    runtime = ProcessRuntime(log_dir=tmp_path / "replayer")
    try:
        for agent in agents:
            index = market.replica_index(job_id, agent.address)
            assert index is not None
            chain_job = read_chain_job(market, job_id, from_block=start, replica=index)
            record = agent.state.require(job_id)
            assert chain_job.result_cid == record.result_cid
            result = tmp_path / f"replica-{index}"
            fetch_result(
                record.result_cid, result, store=agent.settings.store
            )  # each node pins into its own store
            report = replay_job(
                job_id=job_id, spec_bytes=chain_job.spec, result_dir=result, runtime=runtime,
                runtime_name="process", image_digest=None,
                weights_root=agent.settings.weights_dir, work_dir=tmp_path / f"replay-{index}",
                chain_frames_digest=chain_job.frames_digest,
            )  # fmt: skip
            assert report.verdict == "exact", report.reason
    finally:
        runtime.close()


def test_node_killed_between_commit_and_reveal_reveals_after_restart(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    one, two = make_agent("provider-1"), make_agent("provider-2")
    for agent in (one, two):
        agent.startup()
    market = chain.market()
    before = [market.free_balance_of(a.address) for a in (one, two)]
    job_id = submit_tiny(chain, replicas=2)

    # Both runs start; then only provider-1 is stepped until it has committed (provider-2's
    # run ends meanwhile, unattended), then provider-2 commits last, which opens the
    # reveals, and reveals in the same step; provider-1 has not seen Revealing yet.
    step_all([one, two], job_id, {"running", "pinned", "committed", "delivered"})
    step_all([one], job_id, {"committed"})
    step_all([two], job_id, {"delivered"})
    assert market.get_job(job_id).state is JobState.REVEALING
    salt = one.state.require(job_id).salt
    kill(one)

    restarted = make_agent("provider-1")
    restarted.startup()
    assert restarted.state.require(job_id).state == "committed"
    step_all([restarted], job_id, {"delivered"})
    assert restarted.state.require(job_id).salt == salt
    assert market.get_job(job_id).state is JobState.DELIVERED
    assert len(events(chain, "ResultCommitted", job_id)) == 2
    assert len(events(chain, "ResultRevealed", job_id)) == 2

    chain.warp(chain.deployment.params.challenge_window)
    step_all([restarted, two], job_id, {"settled"})
    _assert_paid(chain, [restarted, two], job_id, before)


def test_set_that_never_fills_expires_and_unlocks_the_collateral(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent("provider-1")
    agent.startup()
    market = chain.market()
    alice = chain.account("alice").address
    client_before = market.free_balance_of(alice)
    job_id = submit_tiny(chain, replicas=2)

    for _ in range(5):
        agent.step()
    assert agent.state.require(job_id).state == "waiting"
    assert market.get_provider(agent.address).locked == market.collateral_for(PRICE)
    assert agent._running == {}  # no run while the set is not full

    chain.warp(601)  # past the claim deadline (submit_tiny: now + 600)
    agent.step()
    record = agent.state.require(job_id)
    assert record.state == "lost"
    assert record.reason and "expired" in record.reason
    assert market.get_job(job_id).state is JobState.EXPIRED
    assert market.get_provider(agent.address).locked == 0
    assert market.free_balance_of(alice) == client_before
    assert len(events(chain, "ReplicaDefaulted", job_id)) == 1


class Killed(Exception):
    """The node died right after its commit transaction was mined."""


def test_node_killed_after_commit_tx_adopts_its_commitment_without_resending(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    one, two = make_agent("provider-1"), make_agent("provider-2")
    for agent in (one, two):
        agent.startup()
    market = chain.market()
    before = [market.free_balance_of(a.address) for a in (one, two)]
    job_id = submit_tiny(chain, replicas=2)
    step_all([one, two], job_id, {"running", "pinned", "committed", "delivered"})

    send_commit = one.market.commit_result

    def commit_then_die(job: int, commitment: bytes) -> object:
        send_commit(job, commitment)
        raise Killed

    one.market.commit_result = commit_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        step_all([one], job_id, {"committed"})
    # The salt was stored before the transaction; the state still says pinned.
    died = one.state.require(job_id)
    assert died.state == "pinned" and died.salt is not None
    kill(one)

    restarted = make_agent("provider-1")
    restarted.startup()
    assert restarted.state.require(job_id).state == "committed"
    step_all([restarted, two], job_id, {"delivered"})
    assert market.get_job(job_id).state is JobState.DELIVERED
    committed = events(chain, "ResultCommitted", job_id)
    assert [e["args"]["provider"] for e in committed].count(one.address) == 1  # type: ignore[index]

    chain.warp(chain.deployment.params.challenge_window)
    step_all([restarted, two], job_id, {"settled"})
    _assert_paid(chain, [restarted, two], job_id, before)
