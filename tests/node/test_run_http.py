"""`framecast node run` as a network peer, through the real console script: the offer
carries ``advertise_url``, a bad one is refused, and the running node serves its
delivered result over its trustless gateway and signs `/jobs/{id}`."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from framecast.client.quote import providers
from framecast.shared.chain.bindings import JobState
from framecast.shared.ipfs.car import CarReader
from framecast.shared.progress import ProgressReport, verify_report
from tests.chain.conftest import FCC, fund_market
from tests.conftest import Chain, free_port
from tests.node.test_agent import submit_tiny
from tests.node.test_cli import FRAMECAST, _run, node_env

__all__ = ["node_env"]


@pytest.fixture
def peer_env(node_env: tuple[dict[str, str], Path]) -> tuple[dict[str, str], Path, str]:
    env, config = node_env
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in env.items() if k != "FRAMECAST_NODE_METRICS_PORT"}
    env |= {"FRAMECAST_NODE_HTTP_BIND": f"127.0.0.1:{port}", "FRAMECAST_NODE_ADVERTISE_URL": url}
    return env, config, url


@pytest.mark.parametrize(
    ("advertise", "said"),
    [
        ("http://0.0.0.0:9464", "unspecified address"),
        ("ftp://203.0.113.7:9464", "not an http(s) URL"),
        ("http://169.254.1.1:9464", "link-local"),
    ],
)
def test_unreachable_advertise_url_is_refused(
    peer_env: tuple[dict[str, str], Path, str], advertise: str, said: str
) -> None:
    env, config, _ = peer_env
    done = _run({**env, "FRAMECAST_NODE_ADVERTISE_URL": advertise}, "node", "register",
                "--config", str(config), "--bond", "100")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "advertise_url" in done.stderr and said in done.stderr
    assert "Traceback" not in done.stderr


def test_bind_all_without_advertise_url_is_refused(
    peer_env: tuple[dict[str, str], Path, str],
) -> None:
    env, config, _ = peer_env
    env = {k: v for k, v in env.items() if k != "FRAMECAST_NODE_ADVERTISE_URL"}
    done = _run({**env, "FRAMECAST_NODE_HTTP_BIND": "0.0.0.0:9464"}, "node", "register",
                "--config", str(config), "--bond", "100")  # fmt: skip
    assert done.returncode == 1
    assert "unspecified address" in done.stderr and "set advertise_url" in done.stderr


def test_node_run_serves_its_delivered_result_and_signed_progress(
    peer_env: tuple[dict[str, str], Path, str], chain: Chain
) -> None:
    env, config, url = peer_env
    # The config from `node init` still names metrics_port: http_bind (env) wins over it.
    assert "\nmetrics_port = " in config.read_text()
    registered = _run(env, "node", "register", "--config", str(config), "--bond", "100")
    assert registered.returncode == 0, registered.stderr
    provider = chain.account("provider-2").address
    (listing,) = [p for p in providers(chain.market(), from_block=0) if p.address == provider]
    assert listing.offer is not None
    assert listing.offer.endpoint == url and listing.offer.gateway == url
    fund_market(chain, "alice", 50 * FCC)
    node = subprocess.Popen(
        [FRAMECAST, "node", "run", "--config", str(config), "--log-format", "text"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        job_id = submit_tiny(chain)
        deadline = time.monotonic() + 120
        while chain.market().get_job(job_id).state is not JobState.DELIVERED:
            assert node.poll() is None, node.stdout.read() if node.stdout else ""
            assert time.monotonic() < deadline, "the node did not deliver in time"
            time.sleep(0.3)
        cid = next(
            e["args"]["resultCid"]
            for e in chain.market().contract.events.JobDelivered.get_logs(from_block=0)
            if e["args"]["jobId"] == job_id
        )
        from framecast.shared.ipfs.cid import CID

        root = CID.from_bytes(bytes(cid))
        car = httpx.get(f"{url}/ipfs/{root}?format=car", timeout=10)
        assert car.status_code == 200
        reader = CarReader(io.BytesIO(car.content))
        assert reader.roots == [root]
        for block_cid, block in reader.blocks():
            block_cid.verify(block)
        video = httpx.get(f"{url}/ipfs/{root}/video.mp4?format=car", timeout=10)
        assert video.status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert "framecast_node_gpu_slots" in httpx.get(f"{url}/metrics").text
        checked = verify_report(
            httpx.get(f"{url}/jobs/{job_id}").json(), signer=provider,
            chain_id=chain.deployment.chain_id, market=chain.deployment.market, job_id=job_id,
        )  # fmt: skip
        assert isinstance(checked, ProgressReport) and checked.state == "delivered"
    finally:
        node.terminate()
        node.wait(timeout=60)
