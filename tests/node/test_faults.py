"""Fault injection on the provider node: a flaky RPC, anvil stopped and restarted mid-job,
a real `kill -9` of `framecast node run`, and a graceful SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.client.devnet import deploy_devnet, start_anvil
from framecast.node.agent import Agent, AgentDeps
from framecast.node.metrics import NodeMetrics
from framecast.node.runtime.process import ProcessRuntime
from framecast.node.state import StateStore
from framecast.shared.chain.bindings import Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.devnet import devnet_account
from framecast.shared.chain.sender import TxSender
from framecast.shared.deployment import Deployment
from tests.chain.rpc_server import ScriptedRpc
from tests.chain.test_sender import FlakyProxy
from tests.conftest import Chain, free_port
from tests.node.conftest import AgentFactory
from tests.node.test_agent import events, step_until, submit_tiny

pytestmark = pytest.mark.slow
FRAMECAST = str(Path(sys.executable).with_name("framecast"))


def test_agent_rides_out_a_flaky_rpc(
    market_ready: Chain, make_agent: AgentFactory, anvil_url: str, tmp_path: Path
) -> None:
    chain = market_ready
    proxy = FlakyProxy(anvil_url, failures=0)
    try:
        reference = make_agent()  # only for its settings and store
        w3 = connect(proxy.url, expected_chain_id=chain.deployment.chain_id)
        account = chain.account("provider-1")
        sender = TxSender(w3, account, retries=1, sleep=lambda _s: None)
        agent = Agent(
            AgentDeps(
                settings=reference.settings,
                deployment=chain.deployment,
                w3=w3,
                market=Market(w3, chain.deployment.market, sender),
                account=account,
                state=StateStore(tmp_path / "flaky.sqlite3"),
                store=reference.d.store,
                runtime_factory=lambda: ProcessRuntime(log_dir=tmp_path / "runner"),
                runtime_name="process",
                metrics=NodeMetrics(1),
            )
        )
        agent.startup()
        job_id = submit_tiny(chain)
        proxy.failures = proxy.seen + 25  # the next 25 requests fail with 503
        for _ in range(10):
            agent.step()  # never raises: each failed step backs off
        assert agent.d.metrics is not None
        assert agent.d.metrics.rpc_errors._value.get() > 0
        agent._backoff_s = 0
        step_until(agent, job_id, {"delivered"})
        assert len(events(chain, "JobClaimed", job_id)) == 1
        agent.shutdown(grace_s=0)
    finally:
        proxy.close()


def test_partition_logs_one_line_each_way_and_recovers_within_a_second(
    market_ready: Chain,
    make_agent: AgentFactory,
    anvil_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = market_ready
    rpc = ScriptedRpc(anvil_url)
    stop = threading.Event()
    try:
        reference = make_agent()
        # The node's own RPC settings, shortened so the test does not sit out 2 × 4 s.
        w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id, timeout=0.5)
        account = chain.account("provider-1")
        agent = Agent(
            AgentDeps(
                settings=reference.settings,
                deployment=chain.deployment,
                w3=w3,
                market=Market(w3, chain.deployment.market, TxSender(w3, account)),
                account=account,
                state=StateStore(tmp_path / "partition.sqlite3"),
                store=reference.d.store,
                runtime_factory=lambda: ProcessRuntime(log_dir=tmp_path / "runner"),
                runtime_name="process",
            )
        )
        agent.startup()
        worker = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
        caplog.set_level(logging.INFO, logger="framecast.node.agent")
        worker.start()
        time.sleep(0.5)
        rpc.set("*", ("hang",))  # a partition: requests are accepted, never answered
        partitioned = time.time()
        time.sleep(4.0)
        down = [r for r in caplog.records if "unreachable since" in r.getMessage()]
        assert len(down) == 1, [r.getMessage() for r in caplog.records]
        assert down[0].created - partitioned < 2.5  # two tries of 0.5 s, then one line
        assert rpc.url in down[0].getMessage()
        rpc.set("*", None)
        healed = time.time()
        deadline = healed + 5
        while time.time() < deadline and (agent.last_poll_ok or 0) < healed:
            time.sleep(0.02)
        assert (agent.last_poll_ok or 0) - healed < 1.5  # ≤ one request timeout + a pause
        back = [r for r in caplog.records if "rpc back after" in r.getMessage()]
        assert len(back) == 1
        assert [r for r in caplog.records if "chain step failed" in r.getMessage()] == []
        stop.set()
        worker.join(timeout=10)
        job_id = submit_tiny(chain)
        step_until(agent, job_id, {"delivered"})
    finally:
        stop.set()
        rpc.close()


class OwnChain:
    """A private anvil whose state persists across restarts (`--state`)."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "anvil-state.json"
        self.log = tmp_path / "anvil.log"
        self.process = start_anvil(self.port, self.log, detach=False, state_path=self.state)
        self.deployment = deploy_devnet(self.url)

    def stop(self) -> None:
        """SIGTERM: anvil dumps its state to `self.state` on the way out."""
        self.process.terminate()
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.process = start_anvil(self.port, self.log, detach=False, state_path=self.state)


@pytest.fixture
def own_chain(tmp_path: Path) -> Iterator[OwnChain]:
    chain = OwnChain(tmp_path)
    yield chain
    if chain.process.poll() is None:
        chain.stop()


def _fund_and_register(url: str, deployment: Deployment) -> None:
    from framecast.shared.chain.bindings import Credits

    w3 = connect(url)
    alice, provider = devnet_account("alice"), devnet_account("provider-1")
    Market(w3, deployment.market, TxSender(w3, alice)).deposit_with_permit(
        Credits(w3, deployment.credits, TxSender(w3, alice)), 100 * 10**18
    )
    Credits(w3, deployment.credits, TxSender(w3, provider)).approve(deployment.market, 200 * 10**18)
    Market(w3, deployment.market, TxSender(w3, provider)).register_provider(200 * 10**18, "x")


def _node_env(tmp_path: Path, deployment_file: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FRAMECAST_HOME": str(tmp_path / "home"),
        "FRAMECAST_PASSWORD": "node-test",
        "FRAMECAST_KEYSTORE_SCRYPT_N": "1024",
        "FRAMECAST_NODE_DEPLOYMENT": str(deployment_file),
        "FRAMECAST_NODE_METRICS_PORT": "0",
        "FRAMECAST_NODE_STORE__STORE_PATH": str(tmp_path / "blocks"),
        "FRAMECAST_NODE_POLL_INTERVAL_S": "0.05",
    }


def _job_state(db: Path, job_id: int) -> str | None:
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def _wait_db(db: Path, job_id: int, states: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _job_state(db, job_id)
        if state in states:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {_job_state(db, job_id)}, wanted {states}")


def _submit(url: str, deployment: Deployment, **spec: object) -> int:
    w3 = connect(url)

    class _Chain:
        def __init__(self) -> None:
            self.w3, self.deployment = w3, deployment

        def account(self, name: str) -> object:
            return devnet_account(name)

        def now(self) -> int:
            return int(w3.eth.get_block("latest")["timestamp"])

        def market(self, name: str) -> Market:
            return Market(w3, deployment.market, TxSender(w3, devnet_account(name)))

    return submit_tiny(_Chain(), **spec)  # type: ignore[arg-type]


def _start_node(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    config = tmp_path / "node" / "node.toml"
    if not config.exists():
        subprocess.run(
            [FRAMECAST, "node", "init", "--config", str(config), "--devnet-account", "provider-1"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    log = (tmp_path / "node.log").open("ab")
    return subprocess.Popen(
        [FRAMECAST, "node", "run", "--config", str(config)], env=env, stderr=log, stdout=log
    )


def test_kill_9_mid_job_then_restart_delivers_once(own_chain: OwnChain, tmp_path: Path) -> None:
    url, deployment = own_chain.url, own_chain.deployment
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    _fund_and_register(url, deployment)
    env = _node_env(tmp_path, deployment_file)
    db = tmp_path / "node" / "state" / "node.sqlite3"

    node = _start_node(tmp_path, env)
    job_id = _submit(url, deployment)
    _wait_db(db, job_id, {"running", "pinned", "delivered"})
    os.kill(node.pid, signal.SIGKILL)
    node.wait()

    node = _start_node(tmp_path, env)
    try:
        _wait_db(db, job_id, {"delivered"})
    finally:
        node.terminate()
        node.wait(timeout=60)

    w3 = connect(url)
    market = Market(w3, deployment.market)
    claimed = market.contract.events.JobClaimed.get_logs(from_block=0)
    delivered = market.contract.events.JobDelivered.get_logs(from_block=0)
    assert [e["args"]["jobId"] for e in claimed] == [job_id]
    assert [e["args"]["jobId"] for e in delivered] == [job_id]


def _runners_of(pid: int) -> list[int]:
    """Runner processes among `pid`'s children."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"framecast.runner" in cmdline:
                found.append(int(child))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # dead, waiting for init to reap it


def test_kill_9_of_the_node_takes_its_runner_within_a_second(
    own_chain: OwnChain, tmp_path: Path
) -> None:
    """SIGKILL of `node run` mid-job: its runner stops within 1 s (it watches its node),
    so the restarted node's runner is the only one on the job."""
    url, deployment = own_chain.url, own_chain.deployment
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    _fund_and_register(url, deployment)
    env = _node_env(tmp_path, deployment_file)
    db = tmp_path / "node" / "state" / "node.sqlite3"
    node = _start_node(tmp_path, env)
    try:
        job_id = _submit(url, deployment, steps=50)
        _wait_db(db, job_id, {"running"})
        deadline = time.monotonic() + 60
        while not (runners := _runners_of(node.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(runners) == 1, runners
        time.sleep(1.0)  # in the middle of loading or of the steps
        os.kill(node.pid, signal.SIGKILL)
        killed = time.monotonic()
        node.wait()
        while not _gone(runners[0]) and time.monotonic() - killed < 5:
            time.sleep(0.01)
        assert _gone(runners[0]), "the runner outlived its node"
        assert time.monotonic() - killed < 1.0
        node = _start_node(tmp_path, env)
        _wait_db(db, job_id, {"delivered"}, timeout=180)
    finally:
        if node.poll() is None:
            node.terminate()
            node.wait(timeout=60)


def test_anvil_restart_mid_job_and_sigterm_shutdown(own_chain: OwnChain, tmp_path: Path) -> None:
    url, deployment = own_chain.url, own_chain.deployment
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    _fund_and_register(url, deployment)
    env = _node_env(tmp_path, deployment_file)
    db = tmp_path / "node" / "state" / "node.sqlite3"
    node = _start_node(tmp_path, env)
    try:
        job_id = _submit(url, deployment)
        _wait_db(db, job_id, {"claimed", "running"})
        # Stop the chain mid-job, keep it down a moment (the node backs off), bring it back.
        own_chain.stop()
        time.sleep(2)
        own_chain.start()
        _wait_db(db, job_id, {"delivered"}, timeout=180)
        # SIGTERM: the node stops cleanly (exit 0) within its grace period.
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=60) == 0
    finally:
        if node.poll() is None:
            node.kill()


def _bound_url(log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("metrics on "):
                return line.split()[2].removesuffix("/metrics")
        time.sleep(0.05)
    raise AssertionError(f"the node never said where it serves:\n{log.read_text()}")


def _healthz(base: str) -> tuple[int, dict[str, object]]:
    import httpx

    answer = httpx.get(f"{base}/healthz", timeout=5)
    return answer.status_code, answer.json()


def test_a_node_started_while_its_rpc_is_down_waits_and_comes_up(
    own_chain: OwnChain, tmp_path: Path
) -> None:
    """`node run` against a closed port: not ready on /healthz, one log line, no exit;
    once the RPC answers it is ready within about a second."""
    url, deployment = own_chain.url, own_chain.deployment
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    _fund_and_register(url, deployment)
    env = {**_node_env(tmp_path, deployment_file), "FRAMECAST_NODE_HTTP_BIND": "127.0.0.1:0"}
    own_chain.stop()  # the port is closed: connections are refused
    node = _start_node(tmp_path, env)
    try:
        base = _bound_url(tmp_path / "node.log")
        status, report = _healthz(base)
        assert status == 503 and report["ready"] is False and report["waiting_for"] == "rpc"
        time.sleep(6.0)  # longer than the 5 s after which it used to exit
        assert node.poll() is None, (tmp_path / "node.log").read_text()
        status, report = _healthz(base)
        assert status == 503 and report["rpc"] == url and report["reason"]
        log = (tmp_path / "node.log").read_text()
        assert log.count("node not ready: rpc") == 1, log
        assert log.count("unreachable since") == 1, log
        own_chain.start()
        opened = time.monotonic()
        while time.monotonic() - opened < 30:
            status, report = _healthz(base)
            if status == 200:
                break
            time.sleep(0.05)
        assert status == 200, report
        # start_anvil returns once anvil answers: from there, one pause (≤ 1 s) and a poll.
        assert time.monotonic() - opened < 3.0
        assert "rpc back after" in (tmp_path / "node.log").read_text()
        job_id = _submit(url, deployment)
        _wait_db(tmp_path / "node" / "state" / "node.sqlite3", job_id, {"delivered"})
    finally:
        if node.poll() is None:
            node.terminate()
            node.wait(timeout=60)


def test_a_wrong_chain_id_is_a_configuration_error_and_ends_the_node(
    own_chain: OwnChain, tmp_path: Path
) -> None:
    import json

    deployment_file = tmp_path / "deployment.json"
    own_chain.deployment.save(deployment_file)
    data = json.loads(deployment_file.read_text())
    data["chain_id"] = 999
    deployment_file.write_text(json.dumps(data))
    node = _start_node(tmp_path, _node_env(tmp_path, deployment_file))
    assert node.wait(timeout=60) == 1
    log = (tmp_path / "node.log").read_text()
    assert "999" in log and "error:" in log, log
