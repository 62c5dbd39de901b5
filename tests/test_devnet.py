"""The devnet refuses a port someone else holds instead of deploying onto a stranger's chain."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from framecast.client.cli import root
from framecast.client.devnet import (
    DEVNET_FUNDING,
    DevnetPaths,
    devnet_account,
    devnet_down,
    devnet_up,
)
from framecast.shared.deployment import load_deployment
from framecast.shared.errors import ConfigError
from tests.conftest import free_port


def test_busy_port_is_refused_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port}") as info:
            devnet_up(DevnetPaths(tmp_path / "devnet"), port)
    assert "--port" in str(info.value)
    assert not (tmp_path / "devnet" / "deployment.json").exists()


def test_a_host_that_is_not_this_machines_is_refused(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine; binding fails locally.
    with pytest.raises(ConfigError, match=r"192\.0\.2\.1 is not an address of this machine"):
        devnet_up(DevnetPaths(tmp_path / "devnet"), free_port(), "192.0.2.1")


def test_devnet_up_host_binds_there_and_prints_how_other_hosts_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 127.0.0.2 stands for "an address other hosts reach": anvil listens there only.
    for name in ("FRAMECAST_NETWORK", "FRAMECAST_DEPLOYMENT", "FRAMECAST_RPC_URL"):
        monkeypatch.delenv(name, raising=False)
    chain_home, other_home = tmp_path / "chain-host", tmp_path / "other-host"
    port = free_port()
    runner = CliRunner()
    chain_env = {"FRAMECAST_HOME": str(chain_home)}
    try:
        up = runner.invoke(root, ["devnet", "up", "--port", str(port), "--host", "127.0.0.2"],
                           env=chain_env)  # fmt: skip
        assert up.exit_code == 0, (up.output, up.exception)
        shared = f"http://127.0.0.2:{port}"
        deployment = load_deployment(chain_home / "devnet" / "deployment.json")
        assert deployment.rpc_url == shared
        line = f"framecast network add devnet --rpc-url {shared} --market {deployment.market}"
        assert line in up.output
        with pytest.raises(requests.ConnectionError):  # not on 127.0.0.1
            requests.post(f"http://127.0.0.1:{port}", json={}, timeout=2)
        # Asking for another bind while it runs is refused, not silently ignored.
        again = runner.invoke(root, ["devnet", "up", "--port", str(port), "--host", "127.0.0.1"],
                              env=chain_env)  # fmt: skip
        assert isinstance(again.exception, ConfigError)
        assert "bound to 127.0.0.2" in str(again.exception)

        # "Another host": its own home, the printed line, then the network by name.
        other_env = {"FRAMECAST_HOME": str(other_home)}
        add = runner.invoke(root, line.split()[1:], env=other_env)
        assert add.exit_code == 0, (add.output, add.exception)
        alice = devnet_account("alice").address
        balance = runner.invoke(
            root,
            ["--network", "devnet", "credits", "balance", "--address", alice, "--json"],
            env=other_env,
        )
        assert balance.exit_code == 0, (balance.output, balance.exception)
        assert int(json.loads(balance.stdout)["wallet"]) == DEVNET_FUNDING
    finally:
        assert devnet_down(DevnetPaths(chain_home / "devnet"))
