"""`framecast devnet up|down|status` — the local chain for development and the demo."""

from __future__ import annotations

import json

import click

from framecast.client.config import ClientSettings
from framecast.client.devnet import devnet_down, devnet_status, devnet_up
from framecast.shared.deployment import Deployment


def _show(deployment: Deployment, as_json: bool, headline: str) -> None:
    if as_json:
        click.echo(json.dumps(deployment.model_dump(mode="json"), indent=2))
        return
    click.secho(headline, fg="green")
    click.echo(f"  rpc        {deployment.rpc_url}  (chain {deployment.chain_id})")
    click.echo(f"  Credits    {deployment.credits}")
    click.echo(f"  JobMarket  {deployment.market}")
    for name, address in deployment.accounts.items():
        click.echo(f"  {name:<10} {address}")


@click.group("devnet")
def command() -> None:
    """Manage the local development chain (anvil + framecast contracts)."""


@command.command("up")
@click.option("--port", default=8545, show_default=True, help="anvil port on 127.0.0.1.")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
def up(port: int, as_json: bool) -> None:
    """Start anvil, deploy the contracts and fund the named accounts."""
    settings = ClientSettings()
    deployment, started = devnet_up(settings.devnet, port)
    headline = "devnet started" if started else "devnet already running"
    _show(deployment, as_json, f"{headline}; deployment in {settings.devnet.deployment}")


@command.command("down")
def down() -> None:
    """Stop the devnet's anvil."""
    stopped = devnet_down(ClientSettings().devnet)
    click.echo("devnet stopped" if stopped else "no devnet was running")


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
def status(as_json: bool) -> None:
    """Show whether the devnet runs and where its contracts are."""
    deployment = devnet_status(ClientSettings().devnet)
    if deployment is None:
        if as_json:
            click.echo("null")
        else:
            click.echo("devnet is not running — start it with `framecast devnet up`")
        return
    _show(deployment, as_json, "devnet running")
