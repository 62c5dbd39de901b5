"""The arbiter service decides disputes by evidence: retrieval, levels 1-2, and a replay on
the real tiny runner; then `resolve` moves the money on the real market."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.node.arbiter.service import Arbiter, ArbiterDeps
from framecast.node.config import load_settings, render_toml
from framecast.node.result import pin_result, write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.chain.bindings import DisputeReason, JobState
from framecast.shared.errors import StoreUnavailable
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.gateway import serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.store import StoreSettings
from framecast.shared.replicas import new_salt, replica_commitment
from framecast.shared.request import JobRequest, sign_request
from framecast.shared.runner_protocol import RunRequest
from framecast.shared.spec import GenerationSpec
from tests.chain.conftest import FCC, domain_of
from tests.client.conftest import FRAMECAST, PASSWORD
from tests.conftest import Chain, free_port
from tests.node.conftest import AgentFactory
from tests.node.test_agent import step_until, submit_tiny
from tests.runtime.conformance import tiny_spec

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
            store=StoreSettings(store_path=blocks),
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
    # The arbiter asks a working gateway (here: an embedded one that lacks the CID).
    with serve_gateway(LocalStore(tmp_path / "gateway-blocks")) as gateway:
        arbiter = make_arbiter(
            on_chain, runtime, weights_dir, client_env / "blocks", tmp_path / "a"
        )
        arbiter.d.gateway_url = gateway.url
        decision = arbiter.decide(job.job_id)
    [verdict] = decision.verdicts
    assert verdict.at_fault and verdict.defect == "not-retrievable"
    assert job.cid in verdict.detail
    # A restarted arbiter re-sends the saved decision instead of judging again.
    again = make_arbiter(on_chain, runtime, weights_dir, client_env / "blocks", tmp_path / "a")
    [resolved] = again.step()
    assert resolved.decided_at == decision.decided_at
    assert resolved.outcome == JobState.REJECTED.label


def test_arbiter_whose_own_gateway_is_down_decides_later(  # type: ignore[no-untyped-def]
    deliver_job, on_chain: Chain, runtime: ProcessRuntime, weights_dir: Path, client_env: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    job = deliver_job()
    shutil.rmtree(client_env / "blocks")
    on_chain.market("alice").dispute(job.job_id, DisputeReason.NOT_RETRIEVABLE)
    arbiter = make_arbiter(on_chain, runtime, weights_dir, client_env / "blocks", tmp_path / "a")
    arbiter.d.gateway_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StoreUnavailable):
        arbiter.handle(job.job_id)
    assert arbiter.step() == []  # no evidence either way: no decision, no transaction
    assert not arbiter.decision_path(job.job_id).exists()
    assert on_chain.market().get_job(job.job_id).state is JobState.DISPUTED
    assert arbiter.scan() == [job.job_id]  # still pending for the next poll


def test_arbiter_fetches_from_the_delivering_providers_gateway(  # type: ignore[no-untyped-def]
    deliver_job, on_chain: Chain, runtime: ProcessRuntime, weights_dir: Path, client_env: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The arbiter's own store lacks the result; the provider serves it on the gateway its
    on-chain offer advertises, and the arbiter judges the delivery on what it fetched."""
    from framecast.shared.provider_metadata import ProviderOffer

    job = deliver_job()  # pinned only in the provider's (here: client_env's) store
    on_chain.market("alice").dispute(job.job_id, DisputeReason.NOT_RETRIEVABLE)
    with serve_gateway(LocalStore(client_env / "blocks")) as provider_gateway:
        offer = ProviderOffer(models=["tiny-cogvideox"], gateway=provider_gateway.url)
        on_chain.market("provider-1").update_metadata(offer.to_uri())
        arbiter = make_arbiter(
            on_chain, runtime, weights_dir, tmp_path / "arbiter-blocks", tmp_path / "a"
        )
        decision = arbiter.decide(job.job_id)
    [verdict] = decision.verdicts
    # Retrieved and verified (levels 1-2) from the provider: judged by replay, not "lost".
    assert verdict.defect != "not-retrievable", verdict.detail
    assert verdict.verify_level == 2


def _run_replica(
    chain: Chain, runtime: ProcessRuntime, weights: Path, store: LocalStore, out: Path,
    *, job_id: int, spec: GenerationSpec, ran: GenerationSpec, provider: str, digest: str,
) -> tuple[bytes, bytes, bytes]:  # fmt: skip
    """Run `ran` for real, sign a receipt for `spec` as `provider`, pin; the reveal triple."""
    out.mkdir(parents=True)
    final = runtime.run(
        RunRequest(
            job_id=f"{provider}-{job_id}", spec=ran, model_dir=str(weights / ran.model),
            output_dir=str(out),
        ),
        job_dir=out.parent, on_event=lambda _e: None, timeout_s=300,
    )  # fmt: skip
    assert final.output is not None, final.error
    receipt = write_receipt(
        out_dir=out, output=final.output, spec=spec, job_id=job_id, request_digest=digest,
        deployment=chain.deployment, provider=chain.account(provider), runtime="process",
        image_digest=None, timings={},
    )  # fmt: skip
    cid = bytes(parse_cid(pin_result(store, out)))
    body = receipt.body
    return cid, bytes.fromhex(body.video_sha256[2:]), bytes.fromhex(body.frames_digest[2:])


def test_replica_that_did_not_run_the_job_is_slashed_and_the_honest_one_paid(
    market_ready: Chain, runtime: ProcessRuntime, weights_dir: Path, tmp_path: Path
) -> None:
    chain = market_ready
    spec = tiny_spec(seed=77)
    alice = chain.account("alice")
    domain = domain_of(chain.deployment)
    request = JobRequest.for_spec(
        spec, client=alice.address, max_price=FCC, claim_deadline=chain.now() + 600,
        delivery_window=600, nonce=4242, replicas=2,
    )  # fmt: skip
    job_id, _ = chain.market("alice").submit_job(
        request, spec.canonical_json(), sign_request(request, domain, alice.key)
    )
    digest = "0x" + request.digest(domain).hex()
    blocks = tmp_path / "blocks"
    store = LocalStore(blocks)
    price = FCC // 2
    reveals = {}
    # provider-1 runs the job; provider-2 runs something cheaper (another seed) and signs a
    # receipt claiming the job's spec: consistent and signed, but not the job's frames.
    for name, ran in (("provider-1", spec), ("provider-2", tiny_spec(seed=78))):
        chain.market(name).claim_job(job_id, price)
        reveals[name] = _run_replica(
            chain, runtime, weights_dir, store, tmp_path / name / "out",
            job_id=job_id, spec=spec, ran=ran, provider=name, digest=digest,
        )  # fmt: skip
    salts = {name: new_salt() for name in reveals}
    for name, (cid, sha, frames) in reveals.items():
        address = chain.account(name).address
        commitment = replica_commitment(job_id, address, cid, sha, frames, salts[name])
        chain.market(name).commit_result(job_id, commitment)
    for name, (cid, sha, frames) in reveals.items():
        chain.market(name).reveal_result(job_id, cid, sha, frames, salts[name])
    market = chain.market("alice")
    assert market.get_job(job_id).state is JobState.DISPUTED  # digests differ: automatic
    p1, p2 = (chain.account(n).address for n in ("provider-1", "provider-2"))
    free_p1, free_alice = market.free_balance_of(p1), market.free_balance_of(alice.address)
    bond_p2 = market.get_provider(p2).bond
    collateral = market.collateral_for(price)
    fee = price * market.get_job(job_id).fee_bps // 10_000

    arbiter = make_arbiter(chain, runtime, weights_dir, blocks, tmp_path / "arb")
    [decision] = arbiter.step()

    assert decision.replicated and decision.claimed_defect == "REPLICA_MISMATCH"
    by_index = {v.index: v for v in decision.verdicts}
    assert not by_index[0].at_fault and by_index[0].replay_verdict == "exact"
    assert by_index[1].at_fault and by_index[1].replay_verdict == "mismatch"
    assert decision.fault_mask == 0b10
    assert decision.outcome == JobState.SETTLED.label
    assert market.free_balance_of(p1) == free_p1 + price - fee
    assert market.get_provider(p2).bond == bond_p2 - collateral
    assert market.free_balance_of(alice.address) == free_alice + price + collateral


def test_arbiter_commands_through_the_console_script(  # type: ignore[no-untyped-def]
    deliver_job, on_chain: Chain, weights_dir: Path, client_env: Path, tmp_path: Path
) -> None:  # fmt: skip
    job = deliver_job()
    on_chain.market("alice").dispute(job.job_id, DisputeReason.SPEC_MISMATCH)
    deployment_file = tmp_path / "deployment.json"
    on_chain.deployment.save(deployment_file)
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(tmp_path / "home"),
        "FRAMECAST_PASSWORD": PASSWORD,
        "FRAMECAST_KEYSTORE_SCRYPT_N": "1024",
        "FRAMECAST_NODE_DEPLOYMENT": str(deployment_file),
        "NO_COLOR": "1",
    }

    def framecast(*args: str, home: str = "home") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FRAMECAST), *args], env={**env, "FRAMECAST_HOME": str(tmp_path / home)},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def config_for(account: str) -> Path:
        # Each operator has its own home and config folder (the keystore sits next to it).
        path = tmp_path / account / "node.toml"
        done = framecast(
            "node", "init", "--config", str(path), "--devnet-account", account, home=account
        )
        assert done.returncode == 0, done.stderr
        settings = load_settings(path).model_copy(
            update={
                "weights_dir": weights_dir,
                "store": StoreSettings(store_path=client_env / "blocks"),
            }
        )
        path.write_text(render_toml(settings))
        return path

    # A key without the role is refused with the fix.
    refused = framecast(
        "arbiter", "decide", str(job.job_id), "--config", str(config_for("provider-2"))
    )
    assert refused.returncode == 1
    assert (
        "does not hold ARBITER_ROLE" in refused.stderr
        and "--devnet-account arbiter" in refused.stderr
    )

    config = str(config_for("arbiter"))
    dry = framecast("arbiter", "decide", str(job.job_id), "--config", config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "AT FAULT [replay]" in dry.stdout and "dispute: SPEC_MISMATCH" in dry.stdout
    assert on_chain.market().get_job(job.job_id).state is JobState.DISPUTED  # dry run: no tx

    done = framecast("arbiter", "decide", str(job.job_id), "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["fault_mask"] == 1 and decision["outcome"] == JobState.REJECTED.label
    assert on_chain.market().get_job(job.job_id).state is JobState.REJECTED
