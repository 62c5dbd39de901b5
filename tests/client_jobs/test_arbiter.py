"""The arbiter service decides disputes by evidence: retrieval, levels 1-2, and a replay on
the real tiny runner; then `resolve` moves the money on the real market."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.node.arbiter import Arbiter, ArbiterDeps
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.chain.bindings import DisputeReason, JobState
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.node.test_agent import step_until, submit_tiny

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    runner = ProcessRuntime(log_dir=tmp_path / "arbiter-runner")
    yield runner
    runner.close()


def make_arbiter(
    chain: Chain, runtime: ProcessRuntime, weights: Path, blocks: Path, state: Path
) -> Arbiter:
    return Arbiter(
        ArbiterDeps(
            deployment=chain.deployment,
            market=chain.market("arbiter"),
            runtime=runtime,
            runtime_name="process",
            image_digest=None,
            weights_root=weights,
            state_dir=state,
            blocks=blocks,
        )
    )


def test_forged_video_is_found_at_fault_and_the_client_is_refunded(  # type: ignore[no-untyped-def]
    deliver_job, on_chain: Chain, runtime: ProcessRuntime, weights_dir: Path, client_env: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    chain = on_chain
    job = deliver_job()  # consistent and signed (levels 1-2 pass), but not what the model makes
    market = chain.market("alice")
    price = market.get_job(job.job_id).amount
    collateral = market.collateral_for(price)
    bond = market.params().dispute_bond
    market.dispute(job.job_id, DisputeReason.REPLAY_MISMATCH)
    free_before = market.free_balance_of(chain.account("alice").address)
    bond_before = market.get_provider(chain.account("provider-1").address).bond

    arbiter = make_arbiter(chain, runtime, weights_dir, client_env / "blocks", tmp_path / "arb")
    [decision] = arbiter.step()

    [verdict] = decision.verdicts
    assert verdict.at_fault and verdict.defect == "replay" and verdict.replay_verdict == "mismatch"
    assert verdict.verify_level == 2
    assert decision.claimed_defect == "REPLAY_MISMATCH" and decision.fault_mask == 1
    assert decision.outcome == JobState.REJECTED.label and decision.tx_hash
    # Refund: the price, the slashed collateral and the dispute bond back to alice.
    assert market.free_balance_of(chain.account("alice").address) == (
        free_before + price + collateral + bond
    )
    assert market.get_provider(chain.account("provider-1").address).bond == bond_before - collateral
    # The evidence is kept, and nothing is left pending.
    assert (tmp_path / "arb" / "arbiter" / "decisions" / f"{job.job_id}.json").is_file()
    assert verdict.replay_dir and Path(verdict.replay_dir, "out", "video.mp4").is_file()
    assert arbiter.step() == []


def test_honest_delivery_is_upheld_and_the_provider_gets_the_bond(
    market_ready: Chain, make_agent: AgentFactory, runtime: ProcessRuntime, weights_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    chain = market_ready
    agent = make_agent()
    agent.startup()
    job_id = submit_tiny(chain, seed=21, prompt="a boat on a lake")
    step_until(agent, job_id, {"delivered"})
    market = chain.market("alice")
    market.dispute(job_id, DisputeReason.HASH_MISMATCH)  # a frivolous dispute
    provider = chain.account("provider-1").address
    free_before = market.free_balance_of(provider)
    view = market.get_job(job_id)
    fee = view.amount * view.fee_bps // 10_000

    arbiter = make_arbiter(
        chain, runtime, weights_dir, tmp_path / "provider-1-blocks", tmp_path / "arb"
    )
    [decision] = arbiter.step()

    [verdict] = decision.verdicts
    assert not verdict.at_fault and verdict.replay_verdict == "exact", verdict.detail
    assert decision.outcome == JobState.SETTLED.label
    assert market.free_balance_of(provider) == (
        free_before + view.amount - fee + market.params().dispute_bond
    )
    step_until(agent, job_id, {"settled"})


def test_unretrievable_result_is_at_fault(  # type: ignore[no-untyped-def]
    deliver_job, on_chain: Chain, runtime: ProcessRuntime, weights_dir: Path, client_env: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    job = deliver_job()
    shutil.rmtree(client_env / "blocks")  # the provider never kept its result available
    on_chain.market("alice").dispute(job.job_id, DisputeReason.NOT_RETRIEVABLE)
    arbiter = make_arbiter(on_chain, runtime, weights_dir, client_env / "blocks", tmp_path / "a")
    decision = arbiter.decide(job.job_id)
    [verdict] = decision.verdicts
    assert verdict.at_fault and verdict.defect == "not-retrievable"
    assert job.cid in verdict.detail
    # A restarted arbiter re-sends the saved decision instead of judging again.
    again = make_arbiter(on_chain, runtime, weights_dir, client_env / "blocks", tmp_path / "a")
    [resolved] = again.step()
    assert resolved.decided_at == decision.decided_at
    assert resolved.outcome == JobState.REJECTED.label
