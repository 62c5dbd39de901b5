"""A provider node on a Ray cluster end to end: anvil with the real contracts, one node
identity, a real cluster (`ray start --head` + two workers with one emulated GPU each).

Capacity follows the cluster (two jobs run at once, a third waits unclaimed), a model no
worker can host is skipped before claiming, every job is delivered exactly once with a
receipt saying `runtime: ray`, the frames replay exactly in the process runtime, and a
node restarted mid-run resumes from its journal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.chain.bindings import JobState
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.dag import directory_entries, iter_file
from framecast.shared.receipt import Receipt
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.node.test_agent import events, step_until, submit_tiny
from tests.runtime.conformance import make_request, tiny_spec
from tests.runtime.ray_fixtures import FAKE_GPU, RayTestCluster, requires_ray

pytestmark = [requires_ray, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def ray_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from framecast.node.runtime.cluster import RayCluster

    lab = RayTestCluster(tmp_path_factory.mktemp("ray-node"))
    try:
        lab.start_head()
        lab.add_worker()
        lab.add_worker()
        pool = RayCluster(
            address=lab.address,
            gpu_resource=FAKE_GPU,
            token_file=lab.token_file,
            scratch=str(lab.root / "scratch"),
        )
        pool.connect()
        pool.hold()  # warm actors outlive each test's agent
        yield pool
        pool.close()
    finally:
        lab.close()


def _ray_agent(make_agent: AgentFactory, pool: object, **overrides: object):  # type: ignore[no-untyped-def]
    from framecast.node.runtime.cluster import RayCluster

    assert isinstance(pool, RayCluster)
    return make_agent(runtime=pool.runtime, runtime_name="ray", capacity=pool, **overrides)


def test_capacity_follows_the_cluster_and_each_job_is_delivered_once(
    market_ready: Chain,
    make_agent: AgentFactory,
    ray_pool: object,
    tmp_path: Path,
    tiny_cogvideox_dir: Path,
) -> None:
    chain = market_ready
    agent = _ray_agent(make_agent, ray_pool, gpu_slots=1)  # gpu_slots is not the limit
    agent.startup()
    jobs = [submit_tiny(chain, nonce=n, steps=30) for n in range(3)]
    deadline = time.monotonic() + 120
    most_busy = 0
    while time.monotonic() < deadline:
        agent.step()
        states = [agent.state.require(j).state if agent.state.get(j) else "-" for j in jobs]
        busy = sum(s in ("claimed", "running") for s in states)
        most_busy = max(most_busy, busy)
        # Two GPUs: never more than two jobs claimed and unfinished, whatever gpu_slots says.
        assert busy <= 2, states
        if all(s == "delivered" for s in states):
            break
        time.sleep(0.05)
    assert most_busy == 2
    for job_id in jobs:
        step_until(agent, job_id, {"delivered"}, timeout=120)
        assert len(events(chain, "JobClaimed", job_id)) == 1
        assert len(events(chain, "JobDelivered", job_id)) == 1
    record = agent.state.require(jobs[0])
    assert record.result_cid is not None
    entries = dict(directory_entries(agent.d.store.get_block, parse_cid(record.result_cid)))
    receipt = Receipt.from_json(
        b"".join(iter_file(agent.d.store.get_block, entries["receipt.json"]))
    )
    receipt.verify_signature()
    assert receipt.body.environment.runtime == "ray"
    assert receipt.body.environment.device == "cpu"
    # Determinism: the same spec in the process runtime gives the same frames.
    process = ProcessRuntime(log_dir=tmp_path / "replay-logs")
    try:
        replay = process.run(
            make_request(tmp_path / "replay", tiny_cogvideox_dir, tiny_spec(steps=30), "replay"),
            job_dir=tmp_path / "replay",
            on_event=lambda _e: None,
            timeout_s=300,
        )
    finally:
        process.close()
    assert replay.output is not None
    assert "0x" + replay.output.frames_digest == receipt.body.frames_digest
    assert "0x" + replay.output.video_sha256 == receipt.body.video_sha256


def test_model_no_worker_can_host_is_skipped_with_the_reason(
    market_ready: Chain, make_agent: AgentFactory, ray_pool: object
) -> None:
    chain = market_ready
    # CogVideoX-5B needs 26 GiB per card; the workers declare 8. Its weights live on the
    # workers (none here), so the node starts without them.
    agent = _ray_agent(make_agent, ray_pool, models=["tiny-cogvideox", "cogvideox-5b"])
    agent.startup()
    job_id = submit_tiny(chain, model="cogvideox-5b")  # its catalog defaults
    step_until(agent, job_id, {"skipped", "lost"}, timeout=60)
    reason = agent.state.require(job_id).reason or ""
    assert chain.market().get_job(job_id).state is JobState.OPEN  # never claimed
    assert "no worker can host cogvideox-5b" in reason and "26 GiB" in reason, reason


def test_node_restart_mid_run_resumes_from_the_journal(
    market_ready: Chain, make_agent: AgentFactory, ray_pool: object
) -> None:
    chain = market_ready
    first = _ray_agent(make_agent, ray_pool)
    first.startup()
    job_id = submit_tiny(chain, steps=30)
    step_until(first, job_id, {"running"}, timeout=60)
    # kill -9 of the head: nothing more is written; its runtime views go with it.
    first.state.close()
    for runtime in first._all_runtimes:
        runtime.cancel(str(job_id))
    second = _ray_agent(make_agent, ray_pool)
    second.startup()
    step_until(second, job_id, {"delivered"}, timeout=180)
    assert len(events(chain, "JobClaimed", job_id)) == 1
    assert len(events(chain, "JobDelivered", job_id)) == 1
