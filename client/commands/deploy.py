"""`framecast deploy` — Credits + JobMarket on any EVM chain, recorded as a user network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from framecast.client.context import ClientContext, json_option, pass_client, wallet_option
from framecast.shared.errors import ConfigError


def _params(values: tuple[str, ...]) -> Any:
    """DEVNET_PARAMS with ``--param KEY=VALUE`` overrides, validated by MarketParams."""
    from pydantic import ValidationError

    from framecast.shared.chain.deploy import DEVNET_PARAMS
    from framecast.shared.deployment import MarketParams

    fields = DEVNET_PARAMS.model_dump()
    for item in values:
        key, _, value = item.partition("=")
        if key not in fields or not value.strip().isdigit():
            raise click.BadParameter(
                f"{item!r}: expected KEY=INTEGER with KEY one of {', '.join(fields)}",
                param_hint="'--param'",
            )
        fields[key] = int(value)
    try:
        return MarketParams(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"--param {first['loc'][0]}: {first['msg']}", fix="choose a value within the bound"
        ) from None


@click.command("deploy")
@click.option("--rpc-url", required=True, metavar="URL", help="RPC endpoint of the target chain.")
@click.option(
    "--keystore",
    "keystore_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keystore (Web3 Secret Storage) of the deployer, who pays the gas and becomes the "
    "contracts' admin (default: the wallet chosen by --wallet / FRAMECAST_WALLET).",
)
@wallet_option
@click.option(
    "--network-name",
    metavar="NAME",
    help="Name to record the deployment under (default: the registry's name of the chain, "
    "else chain-<id>).",
)
@click.option("--arbiter", metavar="ADDR", help="Account given ARBITER_ROLE (default: deployer).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Market parameter (repeatable), e.g. challenge_window=3600; default: the devnet's "
    "(15 s challenge window), fit for tests only.",
)
@click.option("--confirmations", type=click.IntRange(0, 1000), help="Default: the registry's.")
@click.option("--log-range-limit", type=click.IntRange(1, 1_000_000), help="Default: registry's.")
@click.option("--force", is_flag=True, help="Replace a user network of this name.")
@json_option
@pass_client
def command(
    client: ClientContext,
    rpc_url: str,
    keystore_path: Path | None,
    network_name: str | None,
    arbiter: str | None,
    params: tuple[str, ...],
    confirmations: int | None,
    log_range_limit: int | None,
    force: bool,
) -> None:
    """Deploy Credits + JobMarket to the chain at --rpc-url and record it as a network.

    Afterwards every command reaches it with `--network NAME`, and other hosts join it with
    `framecast network add NAME --rpc-url URL --market ADDR`.
    """
    from framecast.client.networks import connect_rpc, deploy_network
    from framecast.shared.keystore import unlock_keystore
    from framecast.shared.networks import DEV_CHAIN_ID, check_new_name, name_for_chain

    market_params = _params(params)
    if arbiter is not None and not _is_address(arbiter):
        raise click.BadParameter(
            f"{arbiter!r} is not a 20-byte hex address", param_hint="'--arbiter'"
        )
    w3 = connect_rpc(rpc_url)
    chain_id = int(w3.eth.chain_id)
    name = network_name or name_for_chain(chain_id)
    home = client.settings.home
    check_new_name(home, name, chain_id, force=force)  # before asking for a password
    if keystore_path is not None:
        deployer = unlock_keystore(
            keystore_path, password=client.password(f"Password for {keystore_path}")
        )
    else:
        deployer = client.account()
    if not client.as_json:
        click.echo(f"deploying to chain {chain_id} from {deployer.address}…", err=True)
    if not params and chain_id != DEV_CHAIN_ID:
        # The devnet's windows (a 15 s challenge) leave no time to dispute on a public chain.
        click.secho(
            "note: the devnet's market parameters; for a public chain pass e.g. "
            "--param challenge_window=3600 --param resolve_window=86400",
            fg="yellow",
            err=True,
        )
    entry, path = deploy_network(
        w3,
        deployer,
        name=name,
        rpc_url=rpc_url,
        home=home,
        arbiter=arbiter,
        params=market_params,
        confirmations=confirmations,
        log_range_limit=log_range_limit,
        force=force,
    )
    if client.as_json:
        client.echo_json({**entry.model_dump(mode="json"), "path": str(path)})
        return
    click.secho(f"deployed network {name} (chain {chain_id}); recorded in {path}", fg="green")
    click.echo(f"  JobMarket  {entry.market}")
    click.echo(f"  Credits    {entry.credits}")
    click.echo(f"  admin      {deployer.address}; arbiter {arbiter or deployer.address}")
    click.echo(f"  from block {entry.deployed_block}; code hash {entry.code_hash}")
    click.echo(
        f"  use it with `--network {name}`; other hosts join with `framecast network add "
        f"{name} --rpc-url URL --market {entry.market}`"
    )


def _is_address(value: str) -> bool:
    from eth_utils.address import is_hex_address

    return bool(is_hex_address(value))
