"""Deploying framecast to a chain, or joining a deployment someone made, as a user network.

Both end in a file under ``<home>/networks/NAME.toml`` (`framecast.shared.networks`) that
every command then reaches by name (`--network NAME`): nothing else has to be copied
between hosts. Both check before they write (and `deploy` before it spends gas): the name
is free and, for a registry name, on that network's chain; the code at the market address
is framecast's JobMarket (`framecast.shared.chain.market_code`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from framecast.shared.chain.bindings import Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.deploy import DEVNET_PARAMS, deploy_contracts
from framecast.shared.chain.market_code import code_hash, deploy_block, require_contract
from framecast.shared.deployment import MarketParams
from framecast.shared.errors import ChainMismatch, ConfigError, RpcUnavailable
from framecast.shared.networks import (
    NetworkEntry,
    check_new_name,
    habits_for_chain,
    registry,
    rpc_env_for,
    save_user_network,
)


def connect_rpc(rpc_url: str) -> Web3:
    """A Web3 on ``rpc_url`` or one line saying it does not answer and what to check."""
    try:
        return connect(rpc_url)
    except RpcUnavailable as exc:
        exc.fix = (
            "check --rpc-url (scheme, host, port) and that this host can reach it; a devnet "
            "on another host must listen beyond loopback: `framecast devnet up --host ADDR`"
        )
        raise


def _entry(
    name: str,
    *,
    chain_id: int,
    rpc_url: str,
    market: str,
    credits: str,
    deployed_block: int,
    market_code: bytes,
    params: MarketParams,
    confirmations: int | None,
    log_range_limit: int | None,
) -> NetworkEntry:
    known = registry().get(name)
    advised_confirmations, advised_range = habits_for_chain(chain_id)
    return NetworkEntry(
        name=name,
        chain_id=chain_id,
        status="deployed",
        rpc_env=known.rpc_env if known is not None else rpc_env_for(name),
        rpc_url=rpc_url,
        confirmations=advised_confirmations if confirmations is None else confirmations,
        log_range_limit=advised_range if log_range_limit is None else log_range_limit,
        market=market,
        credits=credits,
        deployed_block=deployed_block,
        code_hash=code_hash(market_code),
        params=params,
    )


def _stamp(verb: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"framecast network written by `framecast {verb}` on {when}"


def deploy_network(
    w3: Web3,
    deployer: LocalAccount,
    *,
    name: str,
    rpc_url: str,
    home: Path,
    arbiter: str | None = None,
    params: MarketParams = DEVNET_PARAMS,
    confirmations: int | None = None,
    log_range_limit: int | None = None,
    force: bool = False,
) -> tuple[NetworkEntry, Path]:
    """Deploy Credits + JobMarket with ``deployer`` and record them as network ``name``."""
    chain_id = int(w3.eth.chain_id)
    check_new_name(home, name, chain_id, force=force)  # before any gas is spent
    deployment = deploy_contracts(
        w3,
        deployer,
        arbiter=arbiter or deployer.address,
        params=params,
        network=name,
        rpc_url=rpc_url,
    )
    market_code = require_contract(w3, deployment.market, "JobMarket", option="--market")
    entry = _entry(
        name,
        chain_id=chain_id,
        rpc_url=rpc_url,
        market=deployment.market,
        credits=deployment.credits,
        deployed_block=deployment.deployed_block,
        market_code=market_code,
        params=deployment.params,
        confirmations=confirmations,
        log_range_limit=log_range_limit,
    )
    return entry, save_user_network(home, entry, header=_stamp("deploy"))


def join_network(
    name: str,
    *,
    rpc_url: str,
    market: str,
    home: Path,
    deployed_block: int | None = None,
    confirmations: int | None = None,
    log_range_limit: int | None = None,
    force: bool = False,
) -> tuple[NetworkEntry, Path]:
    """Check the deployment at ``market`` and record it as network ``name``."""
    check_new_name(home, name, None, force=force)  # a taken name fails before the network
    if not Web3.is_address(market):
        raise ConfigError(
            f"--market {market!r} is not a 20-byte hex address", fix="pass the JobMarket address"
        )
    w3 = connect_rpc(rpc_url)
    chain_id = int(w3.eth.chain_id)
    check_new_name(home, name, chain_id, force=force)
    market = Web3.to_checksum_address(market)
    market_code = require_contract(w3, market, "JobMarket", option="--market")
    known = registry().get(name)
    if known is not None and known.code_hash and code_hash(market_code) != known.code_hash:
        raise ChainMismatch(
            f"the JobMarket at {market} is not {name}'s official deployment (code hash "
            f"{code_hash(market_code)}, the registry has {known.code_hash})",
            fix="add it under a name of its own (e.g. `my-" + name + "`)",
        )
    binding = Market(w3, market)
    credits = Web3.to_checksum_address(binding.contract.functions.TOKEN().call())
    require_contract(w3, credits, "Credits", option="--market (its token)")
    latest = int(w3.eth.block_number)
    if deployed_block is None:
        deployed_block = min(
            deploy_block(w3, market, latest=latest), deploy_block(w3, credits, latest=latest)
        )
    elif deployed_block > latest:
        raise ConfigError(
            f"--deploy-block {deployed_block} is after the chain's head ({latest})",
            fix="pass the block of the deployment transaction",
        )
    entry = _entry(
        name,
        chain_id=chain_id,
        rpc_url=rpc_url,
        market=market,
        credits=credits,
        deployed_block=deployed_block,
        market_code=market_code,
        params=binding.params(),
        confirmations=confirmations,
        log_range_limit=log_range_limit,
    )
    return entry, save_user_network(home, entry, header=_stamp("network add"))
