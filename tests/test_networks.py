"""The network registry and user networks: what a name resolves to, and every refusal."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from framecast.shared.chain.deploy import DEVNET_PARAMS
from framecast.shared.chain.market_code import _artifact_code, compare_code, mismatch
from framecast.shared.deployment import Deployment
from framecast.shared.errors import ChainMismatch, ConfigError
from framecast.shared.network_choice import NETWORK_META_KEY, chosen_network
from framecast.shared.networks import (
    NetworkEntry,
    check_new_name,
    devnet_deployment_file,
    load_user_network,
    registry,
    render_toml,
    resolve_network,
    save_user_network,
    select_network,
    user_network_file,
)

MARKET = "0x" + "ab" * 20
CREDITS = "0x" + "cd" * 20


def user_entry(name: str = "mine", chain_id: int = 777, **changes: object) -> NetworkEntry:
    fields: dict[str, object] = {
        "name": name,
        "chain_id": chain_id,
        "status": "deployed",
        "rpc_env": "FRAMECAST_RPC_" + name.upper().replace("-", "_"),
        "rpc_url": "http://127.0.0.1:1",
        "confirmations": 1,
        "log_range_limit": 500,
        "market": MARKET,
        "credits": CREDITS,
        "deployed_block": 7,
        "code_hash": "0x" + "00" * 32,
        "params": DEVNET_PARAMS,
        **changes,
    }
    return NetworkEntry.model_validate(fields)


@pytest.fixture(autouse=True)
def _no_rpc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRAMECAST_NETWORK", "FRAMECAST_RPC_LOCAL", "FRAMECAST_RPC_MINE"):
        monkeypatch.delenv(name, raising=False)


def test_registry_names_the_devnet_and_three_testnets_without_inventing_addresses() -> None:
    nets = registry()
    assert nets["local"].chain_id == 31337 and nets["local"].status == "devnet"
    testnets = {"sepolia": 11155111, "base-sepolia": 84532, "arbitrum-sepolia": 421614}
    for name, chain_id in testnets.items():
        entry = nets[name]
        assert entry.chain_id == chain_id
        assert entry.status == "not-deployed"
        assert entry.market is None and entry.credits is None and entry.code_hash is None
        assert entry.rpc_env == "FRAMECAST_RPC_" + name.upper().replace("-", "_")
    # Shipped as package data: the installed package reads the same file.
    shipped = files("framecast.shared").joinpath("networks.toml").read_text()
    assert set(tomllib.loads(shipped)["networks"]) == set(nets)


def test_an_entry_must_agree_with_its_status() -> None:
    with pytest.raises(ValueError, match="needs market"):
        user_entry(market=None)
    with pytest.raises(ValueError, match="has no market"):
        user_entry(status="not-deployed")


def test_user_network_round_trips_through_its_toml(tmp_path: Path) -> None:
    entry = user_entry()
    path = save_user_network(tmp_path, entry, header="written by a test")
    assert path == user_network_file(tmp_path, "mine")
    assert path.stat().st_mode & 0o077 == 0  # an RPC URL may carry a key
    assert path.read_text().startswith("# written by a test\n")
    assert load_user_network(path) == entry
    assert render_toml(entry, header="x").count("[params]") == 1


def test_not_deployed_network_says_how_to_deploy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_network("sepolia", home=tmp_path)
    message = str(info.value)
    assert "no framecast deployment yet" in message and "chain 11155111" in message
    assert "framecast deploy --rpc-url URL --keystore FILE --network-name sepolia" in message


def test_unknown_network_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown network 'nope'.*local.*network add nope"):
        resolve_network("nope", home=tmp_path)


def test_local_reads_the_devnet_file_and_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="framecast devnet up"):
        resolve_network("local", home=tmp_path)
    devnet = Deployment(
        network="devnet",
        chain_id=31337,
        rpc_url="http://127.0.0.1:9999",
        credits=CREDITS,
        market=MARKET,
        deployed_block=1,
        params=DEVNET_PARAMS,
    )
    devnet.save(devnet_deployment_file(tmp_path))
    local = resolve_network("local", home=tmp_path)
    assert local.deployment.market == devnet.market and local.rpc_url == "http://127.0.0.1:9999"
    assert local.confirmations == 0
    monkeypatch.setenv("FRAMECAST_RPC_LOCAL", "http://127.0.0.1:1234")
    assert resolve_network("local", home=tmp_path).rpc_url == "http://127.0.0.1:1234"
    # An explicit URL wins over the network's variable.
    explicit = resolve_network("local", home=tmp_path, rpc_url="http://127.0.0.1:4321")
    assert explicit.rpc_url == "http://127.0.0.1:4321" and explicit.rpc_source.startswith("--rpc")


def test_user_network_rpc_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_user_network(tmp_path, user_entry(), header="t")
    mine = resolve_network("mine", home=tmp_path)
    assert (mine.rpc_url, mine.chain_id, mine.log_range_limit) == ("http://127.0.0.1:1", 777, 500)
    assert mine.deployment.deployed_block == 7 and mine.deployment.network == "mine"
    monkeypatch.setenv("FRAMECAST_RPC_MINE", "http://127.0.0.1:2")
    mine = resolve_network("mine", home=tmp_path)
    assert mine.rpc_url == "http://127.0.0.1:2" and mine.rpc_source == "FRAMECAST_RPC_MINE"


def test_network_without_any_rpc_names_its_variable(tmp_path: Path) -> None:
    save_user_network(tmp_path, user_entry(rpc_url=None), header="t")
    with pytest.raises(ConfigError, match="set FRAMECAST_RPC_MINE=URL"):
        resolve_network("mine", home=tmp_path)


def test_names_a_user_network_cannot_take(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="this machine's devnet"):
        check_new_name(tmp_path, "local", 31337, force=False)
    with pytest.raises(ChainMismatch, match="chain 777, but sepolia is chain 11155111"):
        check_new_name(tmp_path, "sepolia", 777, force=False)
    with pytest.raises(ConfigError, match="not allowed"):
        check_new_name(tmp_path, "Bad Name", 777, force=False)
    check_new_name(tmp_path, "sepolia", 11155111, force=False)  # the right chain is fine
    save_user_network(tmp_path, user_entry(), header="t")
    with pytest.raises(ConfigError, match=r"already exists.*--force"):
        check_new_name(tmp_path, "mine", 777, force=False)
    check_new_name(tmp_path, "mine", 777, force=True)


def test_a_hand_edited_file_on_the_wrong_chain_is_refused(tmp_path: Path) -> None:
    path = save_user_network(tmp_path, user_entry("sepolia"), header="t")
    with pytest.raises(ChainMismatch, match="chain 777, but sepolia is chain 11155111"):
        load_user_network(path)
    path.write_text(path.read_text().replace("confirmations = 1", "confirmations = -1"))
    with pytest.raises(ConfigError, match="`confirmations`"):
        load_user_network(path)


def test_explicit_deployment_file_and_a_chosen_network_conflict(tmp_path: Path) -> None:
    save_user_network(tmp_path, user_entry(), header="t")
    other = tmp_path / "other.json"
    user_entry().deployment("http://127.0.0.1:1").save(other)
    with pytest.raises(ConfigError, match="choose one"):
        select_network("mine", deployment_file=other, home=tmp_path)
    # The devnet's own file is what `local` means: no conflict.
    devnet = devnet_deployment_file(tmp_path)
    user_entry().deployment("http://127.0.0.1:1").save(devnet)
    assert select_network("local", deployment_file=devnet, home=tmp_path).source == str(devnet)
    # Without a choice: the configured network, else local.
    assert select_network(None, deployment_file=None, home=tmp_path, configured="mine").name == (
        "mine"
    )


def test_chosen_network_prefers_the_command_line_to_the_environment() -> None:
    assert chosen_network({}, {}) is None
    assert chosen_network({}, {"FRAMECAST_NETWORK": "a"}) == "a"
    assert chosen_network({NETWORK_META_KEY: "b"}, {"FRAMECAST_NETWORK": "a"}) == "b"


def test_code_check_masks_immutables_and_link_references() -> None:
    # PUSH32 <zeros> (an immutable), PUSH20 <placeholder> (a library), STOP, 2-byte metadata.
    placeholder = "__$" + "0" * 34 + "$__"
    artifact = "0x7f" + "00" * 32 + "73" + placeholder + "00" + "aabb" + "0002"
    code, mask = _artifact_code(artifact)
    assert len(code) == 1 + 32 + 1 + 20 + 1 + 2 + 2
    assert mask[1:33] == b"\x00" * 32 and mask[34:54] == b"\x00" * 20 and mask[0] == 1
    filled = bytes.fromhex("7f" + "11" * 32 + "73" + "22" * 20 + "00" + "ccdd" + "0002")
    assert compare_code(filled, artifact, "X") is None
    changed = bytes.fromhex("7f" + "11" * 32 + "73" + "22" * 20 + "01" + "ccdd" + "0002")
    assert compare_code(changed, artifact, "X") == "its code differs from X's at byte 54"
    # The metadata does not execute: another hash there still matches.
    assert compare_code(filled[:-4] + bytes.fromhex("eeff0002"), artifact, "X") is None
    assert "bytes" in (compare_code(filled[:-5] + bytes.fromhex("ccdd0002"), artifact, "X") or "")


def test_credits_code_is_not_a_market() -> None:
    from framecast.shared.chain.artifacts import load_artifact

    credits_code = bytes.fromhex(load_artifact("Credits").deployed_bytecode.removeprefix("0x"))
    assert mismatch(credits_code, "Credits") is None
    assert "JobMarket" in (mismatch(credits_code, "JobMarket") or "")
