"""`framecast node` bad input through the real console script: one red line, exit 1, a fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from framecast.shared.deployment import Deployment
from tests.conftest import Chain, free_port

FRAMECAST = str(Path(sys.executable).with_name("framecast"))
# Each test starts from `framecast node init` (tiny weights built in a subprocess).
pytestmark = pytest.mark.slow


@pytest.fixture
def node_env(tmp_path: Path, chain: Chain) -> tuple[dict[str, str], Path]:
    deployment_file = tmp_path / "deployment.json"
    chain.deployment.save(deployment_file)
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(tmp_path / "home"),
        "FRAMECAST_PASSWORD": "right-password",
        "FRAMECAST_KEYSTORE_SCRYPT_N": "1024",
        "FRAMECAST_NODE_DEPLOYMENT": str(deployment_file),
        "FRAMECAST_NODE_METRICS_PORT": "0",
    }
    config = tmp_path / "node.toml"
    subprocess.run(
        [FRAMECAST, "node", "init", "--config", str(config), "--devnet-account", "provider-2"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return env, config


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FRAMECAST, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_wrong_keystore_password(node_env: tuple[dict[str, str], Path]) -> None:
    env, config = node_env
    secret = "Zq8-not-the-password"
    done = _run({**env, "FRAMECAST_PASSWORD": secret}, "node", "run", "--config", str(config))
    assert done.returncode == 1
    assert "wrong password" in done.stderr and "Traceback" not in done.stderr
    assert secret not in done.stdout + done.stderr  # never echo the secret


def test_init_never_hands_one_accounts_keystore_to_another_role(
    node_env: tuple[dict[str, str], Path],
) -> None:
    env, config = node_env
    # The keystore next to the config holds provider-2's key (it records the address in clear):
    # even with --force (which rewrites the config) it is not reused for provider-1.
    done = _run(
        env, "node", "init", "--config", str(config), "--devnet-account", "provider-1", "--force"
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "already holds the key of" in done.stderr and "not of provider-1" in done.stderr
    assert "--config DIR/node.toml" in done.stderr


def test_deployment_on_another_chain(
    node_env: tuple[dict[str, str], Path], chain: Chain, tmp_path: Path
) -> None:
    env, config = node_env
    other = Deployment.model_validate({**chain.deployment.model_dump(), "chain_id": 1})
    other.save(tmp_path / "other.json")
    done = _run(
        {**env, "FRAMECAST_NODE_DEPLOYMENT": str(tmp_path / "other.json")},
        "node", "run", "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 1
    assert "31337" in done.stderr and "chain 1" in done.stderr


def test_rpc_unreachable_at_start_waits_and_stops_cleanly(
    node_env: tuple[dict[str, str], Path],
) -> None:
    # A dead RPC at start is an outage to wait out, not a configuration error (issue 18):
    # the node stays up, says so once naming the URL, and a SIGTERM still ends it cleanly.
    # (tests/node/test_faults.py opens the port later and sees the node become ready.)
    env, config = node_env
    url = f"http://127.0.0.1:{free_port()}"
    node = subprocess.Popen(
        [FRAMECAST, "node", "run", "--config", str(config)],
        env={**env, "FRAMECAST_NODE_RPC_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            node.wait(timeout=8)
        node.terminate()
        _out, err = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, err
    assert url in err and "Traceback" not in err
    assert err.count("node not ready") == 1, err


def test_bond_below_minimum(node_env: tuple[dict[str, str], Path]) -> None:
    env, config = node_env
    done = _run(env, "node", "register", "--config", str(config), "--bond", "1")
    assert done.returncode == 1
    assert "minimum is 100 FCC" in done.stderr


def test_metrics_port_in_use(node_env: tuple[dict[str, str], Path]) -> None:
    # A second node on the same host with the default metrics port.
    env, config = node_env
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run({**env, "FRAMECAST_NODE_METRICS_PORT": str(port)}, "node", "run",
                    "--config", str(config))  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "metrics_port" in done.stderr and "Traceback" not in done.stderr
