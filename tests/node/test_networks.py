"""A node joins by network name: `node init --network`, `--network` / FRAMECAST_NETWORK on
node commands, and the refusals (not deployed, unknown, a conflicting deployment file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from web3 import Web3

from framecast.client.cli import root
from framecast.node.config import load_settings, node_network, with_network
from framecast.shared.chain.devnet import devnet_account
from framecast.shared.chain.market_code import code_hash
from framecast.shared.errors import ConfigError
from framecast.shared.keystore import Secret, encrypt_key, write_keystore
from framecast.shared.networks import NetworkEntry, rpc_env_for, save_user_network
from tests.conftest import Chain

PASSWORD = "node-password"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("FRAMECAST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("FRAMECAST_HOME", str(home))
    monkeypatch.setenv("FRAMECAST_PASSWORD", PASSWORD)
    return home


@pytest.fixture
def testchain(home: Path, chain: Chain, anvil_url: str) -> NetworkEntry:
    """The session chain's deployment as the user network `testchain` (as `network add`
    would have written it)."""
    d = chain.deployment
    code = bytes(chain.w3.eth.get_code(Web3.to_checksum_address(d.market)))
    entry = NetworkEntry(
        name="testchain",
        chain_id=d.chain_id,
        status="deployed",
        rpc_env=rpc_env_for("testchain"),
        rpc_url=anvil_url,
        confirmations=0,
        log_range_limit=1000,
        market=d.market,
        credits=d.credits,
        deployed_block=d.deployed_block,
        code_hash=code_hash(code),
        params=d.params,
    )
    save_user_network(home, entry, header="test")
    return entry


def framecast(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(root, list(args), env=env)


def provider_keystore(config: Path, name: str = "provider-2") -> None:
    key = bytes(devnet_account(name).key)
    write_keystore(
        config.parent / "provider.json", encrypt_key(key, Secret(PASSWORD), scrypt_n=1024)
    )


def test_node_joins_by_network_name(testchain: NetworkEntry, chain: Chain, tmp_path: Path) -> None:
    config = tmp_path / "node" / "node.toml"
    done = framecast("node", "init", "--config", str(config), "--network", "testchain")
    assert done.exit_code == 0, done.output
    text = config.read_text()
    assert 'network = "testchain"' in text and "\n# deployment = \n" in text
    provider_keystore(config)
    done = framecast("node", "register", "--config", str(config), "--bond", "200")
    assert done.exit_code == 0, (done.output, done.exception)
    assert chain.market().get_provider(devnet_account("provider-2").address).registered

    settings = load_settings(config)
    network = node_network(settings)
    assert network.name == "testchain" and network.log_range_limit == 1000


def test_node_commands_honour_the_chosen_network(testchain: NetworkEntry, tmp_path: Path) -> None:
    config = tmp_path / "node" / "node.toml"
    # FRAMECAST_NETWORK chooses for `node init` too.
    done = framecast(
        "node", "init", "--config", str(config), env={"FRAMECAST_NETWORK": "testchain"}
    )
    assert done.exit_code == 0, done.output
    assert 'network = "testchain"' in config.read_text()
    provider_keystore(config)
    register = ("node", "register", "--config", str(config), "--bond", "200")
    for args in (("--network", "sepolia", *register), (*register, "--network", "sepolia")):
        done = framecast(*args)
        assert isinstance(done.exception, ConfigError), done.output
        assert "no framecast deployment yet" in str(done.exception)
        assert "framecast deploy" in str(done.exception)
    done = framecast(*register, env={"FRAMECAST_NETWORK": "nope"})
    assert isinstance(done.exception, ConfigError)
    assert "unknown network 'nope'" in str(done.exception)
    # --rpc-url on a node command overrides the network's.
    dead = "http://127.0.0.1:9"
    done = framecast(*register, "--rpc-url", dead)
    assert dead in str(done.exception)


def test_unknown_network_at_init_is_refused(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    done = framecast("node", "init", "--config", str(config), "--network", "nope")
    assert isinstance(done.exception, ConfigError) and "network add nope" in str(done.exception)
    assert not config.exists()


def test_a_config_deployment_file_conflicts_with_another_chosen_network(
    testchain: NetworkEntry, chain: Chain, home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "deployment.json"
    chain.deployment.save(other)
    settings = load_settings(None, deployment=other)
    assert node_network(settings).source == str(other)  # no choice: the file
    with pytest.raises(ConfigError, match="choose one"):
        with_network(settings, "testchain")
    # An older config naming the devnet's own file is what `local` means.
    devnet = home / "devnet" / "deployment.json"
    chain.deployment.save(devnet)
    legacy = load_settings(None, deployment=devnet)
    assert with_network(legacy, "local").deployment is None
