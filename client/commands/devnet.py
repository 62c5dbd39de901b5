"""`framecast devnet up|down|status` — the local chain for development and the demo."""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

import click

from framecast.client.config import ClientSettings
from framecast.client.devnet import (
    LOOPBACK,
    DevnetPaths,
    devnet_down,
    devnet_status,
    devnet_up,
    shared_url,
)
from framecast.shared.deployment import Deployment


def _show(deployment: Deployment, paths: DevnetPaths, as_json: bool, headline: str) -> None:
    host = paths.bound_host()
    port = urlsplit(deployment.rpc_url).port or 8545
    # Bound beyond the default loopback address: say how other hosts (or namespaces) join.
    shared = None if host in (LOOPBACK, "::1") else shared_url(host, port)
    if as_json:
        data = deployment.model_dump(mode="json")
        click.echo(json.dumps({**data, "bind": host, "shared_rpc_url": shared}, indent=2))
        return
    click.secho(headline, fg="green")
    click.echo(f"  rpc        {deployment.rpc_url}  (chain {deployment.chain_id})")
    click.echo(f"  Credits    {deployment.credits}")
    click.echo(f"  JobMarket  {deployment.market}")
    for name, address in deployment.accounts.items():
        click.echo(f"  {name:<10} {address}")
    if shared is not None:
        click.echo(f"  other hosts reach it at {shared}; on each of them run:")
        click.echo(
            f"    framecast network add devnet --rpc-url {shared} --market {deployment.market}"
        )
        click.echo("  and then use `--network devnet` (or FRAMECAST_NETWORK=devnet) there.")


def _ip(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an IP address (e.g. 0.0.0.0 for every interface, or one of "
            "this machine's addresses)"
        ) from None


@click.group("devnet")
def command() -> None:
    """Manage the local development chain (anvil + framecast contracts)."""


@command.command("up")
@click.option("--port", default=8545, show_default=True, help="anvil port.")
@click.option(
    "--host",
    metavar="ADDR",
    callback=_ip,
    help="Address anvil listens on (default 127.0.0.1): an address of this machine, or "
    "0.0.0.0, so that providers on other hosts can join. Anyone who reaches it can spend "
    "the devnet's public test accounts: use it on a private network only.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
def up(port: int, host: str | None, as_json: bool) -> None:
    """Start anvil, deploy the contracts and fund the named accounts."""
    settings = ClientSettings()
    deployment, started = devnet_up(settings.devnet, port, host)
    headline = "devnet started" if started else "devnet already running"
    _show(
        deployment,
        settings.devnet,
        as_json,
        f"{headline}; deployment in {settings.devnet.deployment}",
    )


@command.command("down")
def down() -> None:
    """Stop the devnet's anvil."""
    stopped = devnet_down(ClientSettings().devnet)
    click.echo("devnet stopped" if stopped else "no devnet was running")


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
def status(as_json: bool) -> None:
    """Show whether the devnet runs and where its contracts are."""
    paths = ClientSettings().devnet
    deployment = devnet_status(paths)
    if deployment is None:
        if as_json:
            click.echo("null")
        else:
            click.echo("devnet is not running — start it with `framecast devnet up`")
        return
    _show(deployment, paths, as_json, "devnet running")
