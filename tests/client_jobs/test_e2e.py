"""End to end through the installed console script: `framecast submit --wait` in a
subprocess against anvil, with a real provider agent (tiny CogVideoX, process runtime,
embedded store) running in a thread here, then `framecast verify JOB`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from framecast.node.metrics import health_report, job_progress, serve_metrics
from tests.client.conftest import FRAMECAST, PASSWORD, TEST_SCRYPT_N
from tests.client_jobs.conftest import offer_provider
from tests.conftest import Chain
from tests.node.conftest import AgentFactory

pytestmark = pytest.mark.slow


def test_submit_wait_then_verify_through_the_console_script(
    market_ready: Chain, make_agent: AgentFactory, on_chain: Chain, client_env: Path, tmp_path: Path
) -> None:
    agent = make_agent()
    agent.startup()
    assert agent.d.metrics is not None
    server = serve_metrics(
        agent.d.metrics,
        lambda: health_report(agent.last_poll_ok, agent.state.counts()),
        "127.0.0.1",
        0,
        jobs=lambda job_id: job_progress(agent.state, job_id),
    )
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    offer_provider(market_ready, endpoint=endpoint)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    runner.start()
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(client_env),
        "FRAMECAST_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "FRAMECAST_KEYSTORE_SCRYPT_N": str(TEST_SCRYPT_N),
        "FRAMECAST_PASSWORD": PASSWORD,
        # The agent pins into its own embedded store: the client reads that one.
        "FRAMECAST_STORE_PATH": str(tmp_path / "provider-1-blocks"),
        "NO_COLOR": "1",
    }

    def framecast(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(FRAMECAST), *args], env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert done.returncode == code, done.stdout + done.stderr
        return done

    try:
        framecast("wallet", "import", "--devnet", "alice")
        out = tmp_path / "video"
        done = framecast(
            "submit", "--model", "tiny-cogvideox", "--prompt", "a red cat walks in the city",
            "--seed", "42", "--wait", "-o", str(out),
        )  # fmt: skip
        assert "submitted job 1" in done.stdout
        assert "job 1 verified: levels 1 (integrity) + 2 (provenance)" in done.stdout
        assert sorted(p.name for p in out.iterdir()) == ["poster.jpg", "receipt.json", "video.mp4"]
        report = json.loads(framecast("verify", "1", "--json").stdout)
        assert report["ok"] and report["level_passed"] == 2
        status = json.loads(framecast("status", "1", "--json").stdout)
        assert status["state"] == "delivered" and status["result_cid"] == report["result_cid"]
        # The node's progress endpoint answered for the job (and 404s unknown ones).
        progress = httpx.get(f"{endpoint}/jobs/1").json()
        assert progress == {"job_id": 1, "state": "delivered", "progress": 1.0}
        assert httpx.get(f"{endpoint}/jobs/99").status_code == 404
    finally:
        stop.set()
        runner.join(timeout=30)
        server.shutdown()
