"""`framecast network list|show|add|remove` — the networks commands reach by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from framecast.client.context import ClientContext, json_option, pass_client
from framecast.shared.deployment import Deployment, load_deployment
from framecast.shared.errors import ConfigError
from framecast.shared.network_choice import DEFAULT_NETWORK
from framecast.shared.networks import (
    NetworkEntry,
    all_networks,
    devnet_deployment_file,
    pick_rpc,
    remove_user_network,
)


def _devnet(home: Path) -> Deployment | None:
    path = devnet_deployment_file(home)
    return load_deployment(path) if path.exists() else None


def _describe(client: ClientContext, name: str, entry: NetworkEntry, where: str) -> dict[str, Any]:
    """One network as shown: the entry, where it is defined, and (offline) the RPC it uses."""
    data: dict[str, Any] = {"name": name, **entry.model_dump(mode="json", exclude={"name"})}
    data["defined_in"] = where
    file_url = None
    if entry.status == "devnet":
        devnet = _devnet(client.settings.home)
        data["devnet_file"] = str(devnet_deployment_file(client.settings.home))
        if devnet is not None:
            file_url = devnet.rpc_url
            data.update(market=devnet.market, credits=devnet.credits)
            data.update(deployed_block=devnet.deployed_block)
            data["params"] = devnet.params.model_dump()
    try:
        data["rpc"], data["rpc_from"] = pick_rpc(entry, client.settings.rpc_url, file_url)
    except ConfigError:
        data["rpc"], data["rpc_from"] = None, f"nothing: set {entry.rpc_env}"
    return data


def _state(row: dict[str, Any]) -> str:
    if row["status"] == "devnet":
        return "devnet" if row.get("market") else "devnet (not started)"
    return "deployed" if row["status"] == "deployed" else "not deployed yet"


@click.group("network")
def command() -> None:
    """The networks commands reach with --network NAME: list, show, add, remove.

    `local` is this machine's devnet; the registry also names public testnets (deployed
    or not yet); `framecast deploy` and `framecast network add` add the user's own.
    """


@command.command("list")
@json_option
@pass_client
def list_(client: ClientContext) -> None:
    """List known networks: the registry's and this user's (no RPC is contacted)."""
    rows = [_describe(client, n, e, w) for n, (e, w) in all_networks(client.settings.home).items()]
    if client.as_json:
        client.echo_json(rows)
        return
    chosen = client.settings.network or DEFAULT_NETWORK
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        mark = "*" if row["name"] == chosen else " "
        market = row.get("market") or "-"
        where = "registry" if row["defined_in"] == "registry" else "user"
        click.echo(
            f"{mark} {row['name']:<{width}}  chain {row['chain_id']:<9} {_state(row):<20} "
            f"{market:<42}  {where}"
        )


@command.command("show")
@click.argument("name", required=False)
@json_option
@pass_client
def show(client: ClientContext, name: str | None) -> None:
    """Show network NAME (default: the chosen one): chain, contracts, RPC, habits."""
    name = name or client.settings.network or DEFAULT_NETWORK
    networks = all_networks(client.settings.home)
    if name not in networks:
        raise ConfigError(
            f"unknown network {name!r} (known: {', '.join(sorted(networks))})",
            fix=f"join it with `framecast network add {name} --rpc-url URL --market ADDR`",
        )
    row = _describe(client, name, *networks[name])
    if client.as_json:
        client.echo_json(row)
        return
    click.secho(f"network {name}: {_state(row)} (chain {row['chain_id']})", fg="green")
    click.echo(f"  defined in      {row['defined_in']}")
    click.echo(f"  rpc             {row['rpc'] or '-'}  (from {row['rpc_from']})")
    click.echo(f"  rpc variable    {row['rpc_env']}")
    for key in ("market", "credits", "deployed_block", "code_hash"):
        if row.get(key) is not None:
            click.echo(f"  {key:<15} {row[key]}")
    click.echo(f"  confirmations   {row['confirmations']}")
    click.echo(f"  log range limit {row['log_range_limit']} blocks")
    if row["status"] == "not-deployed":
        click.echo(
            f"  deploy with `framecast deploy --rpc-url URL --keystore FILE --network-name "
            f"{name}`, or join with `framecast network add {name} --rpc-url URL --market ADDR`"
        )
    elif row["status"] == "devnet" and not row.get("market"):
        click.echo("  start it with `framecast devnet up`")


@command.command("add")
@click.argument("name")
@click.option("--rpc-url", required=True, metavar="URL", help="RPC endpoint of the chain.")
@click.option("--market", required=True, metavar="ADDR", help="The JobMarket address.")
@click.option(
    "--deploy-block",
    type=click.IntRange(min=0),
    help="Block of the deployment (default: found on chain; needs state at past blocks).",
)
@click.option(
    "--confirmations",
    type=click.IntRange(0, 1000),
    help="Blocks an event must be buried under (default: the registry's for this chain, 0 on "
    "a devnet, else 2).",
)
@click.option(
    "--log-range-limit",
    type=click.IntRange(1, 1_000_000),
    help="Most blocks one eth_getLogs may span on this RPC (default: the registry's, else 2000).",
)
@click.option("--force", is_flag=True, help="Replace a user network of this name.")
@json_option
@pass_client
def add(
    client: ClientContext,
    name: str,
    rpc_url: str,
    market: str,
    deploy_block: int | None,
    confirmations: int | None,
    log_range_limit: int | None,
    force: bool,
) -> None:
    """Join the framecast deployment at --market on the chain at --rpc-url, as network NAME.

    Checks that the RPC answers (and, for a registry name, serves that chain), that the code
    at --market is framecast's JobMarket and its token framecast's Credits, then reads the
    credits address, parameters and deployment block from the chain.
    """
    from framecast.client.networks import join_network

    entry, path = join_network(
        name,
        rpc_url=rpc_url,
        market=market,
        home=client.settings.home,
        deployed_block=deploy_block,
        confirmations=confirmations,
        log_range_limit=log_range_limit,
        force=force,
    )
    _written(client, entry, path, "added")


def _written(client: ClientContext, entry: NetworkEntry, path: Path, verb: str) -> None:
    if client.as_json:
        client.echo_json({**entry.model_dump(mode="json"), "path": str(path)})
        return
    click.secho(f"{verb} network {entry.name} (chain {entry.chain_id}) in {path}", fg="green")
    click.echo(f"  JobMarket  {entry.market}")
    click.echo(f"  Credits    {entry.credits}")
    click.echo(f"  from block {entry.deployed_block}; code hash {entry.code_hash}")
    click.echo(
        f"  use it with `--network {entry.name}`; other hosts join with `framecast network add "
        f"{entry.name} --rpc-url URL --market {entry.market}`"
    )


@command.command("remove")
@click.argument("name")
@pass_client
def remove(client: ClientContext, name: str) -> None:
    """Forget user network NAME (its contracts stay on chain; `network add` finds them again)."""
    path = remove_user_network(client.settings.home, name)
    click.echo(f"removed network {name} ({path})")
