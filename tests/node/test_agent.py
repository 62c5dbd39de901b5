"""The provider agent end to end on real parts: anvil, the process runtime running the
tiny CogVideoX pipeline, the embedded store. Crashes, races, reorgs and bad specs."""

from __future__ import annotations

import time

import pytest
from docker.client import DockerClient

from framecast.node.agent import Agent
from framecast.shared.chain.bindings import JobState
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.dag import directory_entries, iter_file
from framecast.shared.receipt import Receipt
from framecast.shared.request import JobRequest, sign_request
from tests.chain.conftest import FCC, domain_of
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.runtime.conformance import tiny_spec

pytestmark = pytest.mark.slow


def submit_tiny(
    chain: Chain,
    *,
    nonce: int = 0,
    spec_bytes: bytes | None = None,
    replicas: int = 1,
    **spec: object,
) -> int:
    parsed = tiny_spec(**spec)
    raw = spec_bytes if spec_bytes is not None else parsed.canonical_json()
    from eth_utils.crypto import keccak

    request = JobRequest(
        client=chain.account("alice").address,
        model_id=parsed.model_id(),
        spec_hash=keccak(raw),
        max_price=5 * FCC,
        claim_deadline=chain.now() + 600,
        delivery_window=600,
        nonce=nonce,
        replicas=replicas,
    )
    signature = sign_request(request, domain_of(chain.deployment), chain.account("alice").key)
    job_id, _ = chain.market("alice").submit_job(request, raw, signature)
    return job_id


def step_until(agent: Agent, job_id: int, states: set[str], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent.step()
        record = agent.state.get(job_id)
        if record is not None and record.state in states:
            return record.state
        time.sleep(0.05)
    record = agent.state.get(job_id)
    raise AssertionError(f"job {job_id} stuck in {record.state if record else None}: {record}")


def events(chain: Chain, name: str, job_id: int) -> list[object]:
    event = getattr(chain.market().contract.events, name)
    return [e for e in event.get_logs(from_block=0) if e["args"]["jobId"] == job_id]


def test_job_runs_to_settlement_with_verifiable_result(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent()
    agent.startup()
    provider = chain.account("provider-1").address
    before = chain.market().free_balance_of(provider)
    job_id = submit_tiny(chain)

    step_until(agent, job_id, {"delivered"})
    view = chain.market().get_job(job_id)
    assert view.state is JobState.DELIVERED and view.provider == provider
    delivered = events(chain, "JobDelivered", job_id)[0]["args"]  # type: ignore[index]
    record = agent.state.require(job_id)
    assert "0x" + delivered["framesDigest"].hex() == record.frames_digest
    assert "0x" + delivered["videoSha256"].hex() == record.video_sha256

    # The pinned directory holds the video and a receipt signed by the provider.
    store = agent.d.store
    assert record.result_cid is not None
    entries = dict(directory_entries(store.get_block, parse_cid(record.result_cid)))
    assert set(entries) == {"video.mp4", "poster.jpg", "receipt.json"}
    receipt = Receipt.from_json(b"".join(iter_file(store.get_block, entries["receipt.json"])))
    receipt.verify_signature()
    assert receipt.body.job_id == job_id and receipt.body.provider == provider
    assert receipt.body.frames_digest == record.frames_digest

    chain.warp(chain.deployment.params.challenge_window)
    step_until(agent, job_id, {"settled"})
    price = 9 * 32 * 32 * 2 * 1000
    fee = price * chain.deployment.params.protocol_fee_bps // 10_000
    assert chain.market().free_balance_of(provider) == before + price - fee
    assert agent.state.require(job_id).earned == price - fee


@pytest.mark.parametrize("crash_in", ["claimed", "running", "pinned", "delivered"])
def test_restart_after_crash_resumes_without_double_acting(
    market_ready: Chain, make_agent: AgentFactory, crash_in: str
) -> None:
    chain = market_ready
    first = make_agent()
    first.startup()
    job_id = submit_tiny(chain)
    if crash_in == "claimed":
        # Claim on chain, then "crash" before the run starts.
        first._start_run = lambda _job_id: None  # type: ignore[method-assign]
    step_until(
        first, job_id, {crash_in, "pinned", "delivered"} if crash_in != "claimed" else {"claimed"}
    )
    # kill -9: no shutdown. Closing the database first means the dead node's threads can
    # write nothing more, as after a real kill; then its runner dies with it.
    first.state.close()
    for runtime in first._all_runtimes:
        runtime.close()

    second = make_agent()
    second.startup()
    step_until(second, job_id, {"delivered"})
    chain.warp(chain.deployment.params.challenge_window)
    step_until(second, job_id, {"settled"})
    assert len(events(chain, "JobClaimed", job_id)) == 1
    assert len(events(chain, "JobDelivered", job_id)) == 1
    assert len(events(chain, "JobSettled", job_id)) == 1


def test_two_agents_race_and_the_loser_stays_quiet(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    one, two = make_agent("provider-1"), make_agent("provider-2")
    for agent in (one, two):
        agent.startup()
    job_id = submit_tiny(chain)
    # Both see it; stop the first from running so the second's claim meets a claimed job.
    one.step()
    two.step()
    states = {one.state.require(job_id).state, two.state.require(job_id).state}
    assert "lost" in states
    assert states & {"claimed", "running", "pinned"}
    assert len(events(chain, "JobClaimed", job_id)) == 1


def test_reorg_that_removes_a_seen_job_undoes_the_record(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent(min_price_per_unit=10**18)  # never claims: jobs stay `skipped`
    agent.startup()
    agent.step()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    job_id = submit_tiny(chain)
    agent.step()
    assert agent.state.require(job_id).state == "skipped"
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    # The reorged chain grows past the old head with other blocks.
    for _ in range(3):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    agent.step()
    assert agent.state.get(job_id) is None


def test_malformed_spec_is_skipped_with_a_reason(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent()
    agent.startup()
    job_id = submit_tiny(chain, spec_bytes=b'{"model": "tiny-cogvideox", "prompt": "x"}')
    agent.step()
    record = agent.state.require(job_id)
    assert record.state == "skipped"
    assert record.reason and "malformed spec" in record.reason


def test_unserved_model_and_low_price_are_skipped(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent(min_price_per_unit=10**15)
    agent.startup()
    job_id = submit_tiny(chain)
    agent.step()
    record = agent.state.require(job_id)
    assert record.state == "skipped" and "below ask" in (record.reason or "")


def test_metrics_and_health(market_ready: Chain, make_agent: AgentFactory) -> None:
    import urllib.request

    from framecast.node.metrics import health_report, serve_metrics

    agent = make_agent()
    agent.startup()
    agent.step()
    assert agent.d.metrics is not None
    server = serve_metrics(
        agent.d.metrics, lambda: health_report(agent.last_poll_ok, agent.state.counts()),
        "127.0.0.1", 0,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        text = urllib.request.urlopen(base + "/metrics").read().decode()
        assert "framecast_node_gpu_slots 1.0" in text
        assert 'framecast_node_jobs{state="seen"}' in text
        health = urllib.request.urlopen(base + "/healthz").read()
        assert b'"ok": true' in health
    finally:
        server.shutdown()


def test_failed_run_is_released_before_the_deadline(
    market_ready: Chain, make_agent: AgentFactory
) -> None:
    chain = market_ready
    agent = make_agent()
    agent.startup()
    provider = chain.account("provider-1").address
    bond_before = chain.market().get_provider(provider).bond
    # Corrupt the weights after startup: the runner refuses them (WeightsInvalid).
    weights = agent.settings.weights_dir / "tiny-cogvideox"
    target = weights.resolve()
    agent.settings.weights_dir.joinpath("tiny-cogvideox").unlink()
    import shutil

    copy = agent.settings.weights_dir / "tiny-cogvideox"
    shutil.copytree(target, copy)
    index = copy / "model_index.json"
    index.write_text(index.read_text() + " ")
    client_before = chain.market().free_balance_of(chain.account("alice").address)
    job_id = submit_tiny(chain)

    step_until(agent, job_id, {"released"})
    record = agent.state.require(job_id)
    assert record.reason and "weights" in record.reason
    assert chain.market().get_job(job_id).state is JobState.RELEASED
    price = 9 * 32 * 32 * 2 * 1000
    penalty = chain.market().collateral_for(price) * 2000 // 10_000
    # The client got back everything it escrowed (max price) plus the penalty.
    assert chain.market().free_balance_of(chain.account("alice").address) == client_before + penalty
    assert chain.market().get_provider(provider).bond == bond_before - penalty


@pytest.mark.docker
def test_job_runs_in_a_hardened_container(
    market_ready: Chain,
    make_agent: AgentFactory,
    docker_client: DockerClient,
    runner_image: str,
) -> None:
    from framecast.node.runtime.docker import DockerRuntime

    chain = market_ready
    runtimes: list[DockerRuntime] = []

    def factory() -> DockerRuntime:
        runtimes.append(DockerRuntime(runner_image, client=docker_client, memory_limit="2g"))
        return runtimes[-1]

    agent = make_agent(runtime=factory, runtime_name="docker", image_digest=runner_image)
    agent.startup()
    job_id = submit_tiny(chain)
    step_until(agent, job_id, {"delivered"}, timeout=240)
    record = agent.state.require(job_id)
    assert record.result_cid is not None
    entries = dict(directory_entries(agent.d.store.get_block, parse_cid(record.result_cid)))
    receipt = Receipt.from_json(
        b"".join(iter_file(agent.d.store.get_block, entries["receipt.json"]))
    )
    receipt.verify_signature()
    assert receipt.body.environment.runtime == "docker"
    assert receipt.body.environment.image_digest == runner_image
    chain.warp(chain.deployment.params.challenge_window)
    step_until(agent, job_id, {"settled"})
