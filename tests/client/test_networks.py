"""`framecast deploy` and `framecast network add|list|show` against real anvils: the session
devnet chain and "a foreign chain" (another anvil, chain id 777)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from framecast.client.devnet import devnet_account, start_anvil
from framecast.client.networks import deploy_network
from framecast.shared.chain.bindings import Credits
from framecast.shared.chain.connection import connect
from framecast.shared.chain.deploy import FCC
from framecast.shared.chain.market_code import mismatch
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import ChainMismatch, ConfigError, RpcUnavailable
from framecast.shared.keystore import Secret, encrypt_key, write_keystore
from framecast.shared.networks import NetworkEntry, load_user_network
from tests.client.conftest import PASSWORD, TEST_SCRYPT_N, Cli
from tests.conftest import Chain, free_port

FOREIGN_CHAIN_ID = 777


@dataclass
class Foreign:
    url: str
    w3: Web3
    #: A deployment made on it once for the module (in a home of its own).
    entry: NetworkEntry


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    port = free_port()
    root = tmp_path_factory.mktemp("foreign")
    process = start_anvil(port, root / "anvil.log", detach=False, chain_id=FOREIGN_CHAIN_ID)
    url = f"http://127.0.0.1:{port}"
    try:
        w3 = connect(url)
        entry, _ = deploy_network(
            w3, devnet_account("deployer"), name="made", rpc_url=url, home=root / "home"
        )
        yield Foreign(url, w3, entry)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def deployer_keystore(tmp_path: Path) -> Path:
    path = tmp_path / "deployer.json"
    key = bytes(devnet_account("deployer").key)
    write_keystore(path, encrypt_key(key, Secret(PASSWORD), scrypt_n=TEST_SCRYPT_N))
    return path


def test_deploy_to_a_foreign_chain_then_every_command_reaches_it_by_name(
    cli: Cli, foreign: Foreign, deployer_keystore: Path, client_env: Path
) -> None:
    out = cli.json(
        "deploy", "--rpc-url", foreign.url, "--keystore", str(deployer_keystore),
        "--network-name", "foreign", "--param", "challenge_window=600",
    )  # fmt: skip
    assert out["chain_id"] == FOREIGN_CHAIN_ID and out["status"] == "deployed"
    assert Path(out["path"]) == client_env / "networks" / "foreign.toml"
    entry = load_user_network(Path(out["path"]))
    assert entry.params is not None and entry.params.challenge_window == 600
    assert entry.rpc_env == "FRAMECAST_RPC_FOREIGN" and entry.rpc_url == foreign.url
    assert entry.confirmations == 2  # a chain the registry does not know
    code = bytes(foreign.w3.eth.get_code(Web3.to_checksum_address(out["market"])))
    assert mismatch(code, "JobMarket") is None
    assert entry.code_hash == "0x" + Web3.keccak(code).hex().removeprefix("0x")

    # Credits minted on the foreign chain show through every way of naming the network.
    alice = devnet_account("alice").address
    admin = TxSender(foreign.w3, devnet_account("deployer"))
    Credits(foreign.w3, out["credits"], admin).mint(alice, 7 * FCC)
    by_root = cli.json("--network", "foreign", "credits", "balance", "--address", alice)
    by_option = cli.json("credits", "balance", "--address", alice, "--network", "foreign")
    by_env = Cli(env={**cli.env, "FRAMECAST_NETWORK": "foreign"}).json(
        "credits", "balance", "--address", alice
    )
    assert by_root == by_option == by_env
    assert int(by_root["wallet"]) == 7 * FCC

    shown = cli.json("network", "show", "foreign")
    assert shown["market"] == out["market"] and shown["rpc"] == foreign.url
    assert shown["defined_in"] == out["path"]
    names = {row["name"]: row for row in cli.json("network", "list")}
    assert names["foreign"]["status"] == "deployed"
    assert names["sepolia"]["status"] == "not-deployed"


def test_network_add_joins_a_deployment_from_another_host(cli: Cli, foreign: Foreign) -> None:
    made = foreign.entry
    out = cli.json("network", "add", "joined", "--rpc-url", foreign.url, "--market", made.market)
    joined = load_user_network(Path(out["path"]))
    # Everything but the name was read back from the chain.
    assert joined.model_dump(exclude={"name", "rpc_env"}) == made.model_dump(
        exclude={"name", "rpc_env"}
    )
    # An explicit deployment block is taken as given.
    again = cli.json(
        "network", "add", "joined", "--rpc-url", foreign.url, "--market", made.market,
        "--deploy-block", "0", "--confirmations", "0", "--force",
    )  # fmt: skip
    assert again["deployed_block"] == 0 and again["confirmations"] == 0


def test_network_add_refuses_what_is_not_a_framecast_market(
    cli: Cli, foreign: Foreign, chain: Chain, anvil_url: str
) -> None:
    made = foreign.entry
    add = ("network", "add")
    # The token is a contract, but not a JobMarket.
    wrong = cli(*add, "x", "--rpc-url", foreign.url, "--market", made.credits, ok=False)
    assert isinstance(wrong.exception, ChainMismatch)
    assert "not framecast's JobMarket" in str(wrong.exception)
    assert "--market" in str(wrong.exception)
    # An account without code.
    eoa = devnet_account("bob").address
    empty = cli(*add, "x", "--rpc-url", foreign.url, "--market", eoa, ok=False)
    assert isinstance(empty.exception, ChainMismatch)
    assert f"no contract at {eoa} on chain {FOREIGN_CHAIN_ID}" in str(empty.exception)
    # A registry name on another chain.
    sepolia = cli(*add, "sepolia", "--rpc-url", foreign.url, "--market", made.market, ok=False)
    assert isinstance(sepolia.exception, ChainMismatch)
    assert "chain 777, but sepolia is chain 11155111" in str(sepolia.exception)
    # An RPC that does not answer.
    dead = f"http://127.0.0.1:{free_port()}"
    down = cli(*add, "x", "--rpc-url", dead, "--market", made.market, ok=False)
    assert isinstance(down.exception, RpcUnavailable)
    assert dead in str(down.exception) and "devnet up --host" in str(down.exception)
    # This machine's devnet is not a name to take.
    local = cli(*add, "local", "--rpc-url", foreign.url, "--market", made.market, ok=False)
    assert isinstance(local.exception, ConfigError) and "devnet" in str(local.exception)
    # The session devnet chain holds its own market: joining it works under a fresh name.
    ok = cli.json(
        "network", "add", "other", "--rpc-url", anvil_url, "--market", chain.deployment.market
    )
    assert ok["chain_id"] == 31337 and ok["confirmations"] == 0
    assert ok["credits"] == chain.deployment.credits


def test_deploy_refuses_a_registry_name_on_another_chain_before_spending_gas(
    cli: Cli, foreign: Foreign, deployer_keystore: Path, client_env: Path
) -> None:
    deployer = devnet_account("deployer").address
    nonce = foreign.w3.eth.get_transaction_count(deployer)
    result = cli(
        "deploy", "--rpc-url", foreign.url, "--keystore", str(deployer_keystore),
        "--network-name", "base-sepolia", ok=False,
    )  # fmt: skip
    assert isinstance(result.exception, ChainMismatch)
    assert "chain 777, but base-sepolia is chain 84532" in str(result.exception)
    assert foreign.w3.eth.get_transaction_count(deployer) == nonce
    assert not (client_env / "networks" / "base-sepolia.toml").exists()


def test_a_network_whose_rpc_serves_another_chain_is_refused(
    cli: Cli, foreign: Foreign, anvil_url: str
) -> None:
    made = foreign.entry
    cli("network", "add", "foreign", "--rpc-url", foreign.url, "--market", made.market)
    env = {**cli.env, "FRAMECAST_RPC_FOREIGN": anvil_url}  # the devnet chain, 31337
    result = Cli(env=env)("--network", "foreign", "jobs", ok=False)
    assert isinstance(result.exception, ChainMismatch)
    message = str(result.exception)
    assert "serves chain 31337" in message and "chain 777" in message
    assert "FRAMECAST_RPC_FOREIGN" in message
    # Unreachable: the fix names the network's variable, not `devnet up`.
    dead = f"http://127.0.0.1:{free_port()}"
    down = Cli(env={**cli.env, "FRAMECAST_RPC_FOREIGN": dead})(
        "--network", "foreign", "jobs", ok=False
    )
    assert isinstance(down.exception, RpcUnavailable)
    assert dead in str(down.exception) and "set FRAMECAST_RPC_FOREIGN=URL" in str(down.exception)


def test_a_deployment_file_and_another_network_conflict(
    cli: Cli, on_chain: Chain, foreign: Foreign
) -> None:
    cli("network", "add", "foreign", "--rpc-url", foreign.url, "--market", foreign.entry.market)
    result = cli("--network", "foreign", "jobs", ok=False)  # FRAMECAST_DEPLOYMENT is set
    assert isinstance(result.exception, ConfigError) and "choose one" in str(result.exception)


def test_not_deployed_network_fails_with_the_way_to_deploy(cli: Cli) -> None:
    result = cli("--network", "arbitrum-sepolia", "jobs", ok=False)
    assert isinstance(result.exception, ConfigError)
    assert "no framecast deployment yet" in str(result.exception)
    assert "framecast deploy" in str(result.exception)
