"""`framecast wallet new|import|list|address|export-address` — encrypted keystores."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    pass_client,
    password_file_option,
    wallet_option,
)
from framecast.client.wallet import WalletInfo, check_name, parse_private_key
from framecast.shared.errors import WalletError
from framecast.shared.keystore import Secret
from framecast.shared.textfiles import read_user_text


def _show(client: ClientContext, info: WalletInfo, headline: str) -> None:
    if client.as_json:
        client.echo_json(info.model_dump(mode="json"))
        return
    click.secho(headline, fg="green")
    click.echo(f"  address   {info.address}")
    click.echo(f"  keystore  {info.path}")


@click.group("wallet")
def command() -> None:
    """Create, import and list encrypted wallets (geth / Foundry keystores)."""


@command.command("new")
@click.option("--name", default="default", show_default=True, help="Wallet name.")
@password_file_option
@json_option
@pass_client
def new(client: ClientContext, name: str) -> None:
    """Create a wallet with a fresh random key."""
    check_name(name)
    password = client.password(f"New password for wallet {name!r}", confirm=True)
    info = client.keystores.create(name, password)
    _show(client, info, f"created wallet {name!r}")


@command.command("import")
@click.option("--name", help="Wallet name (default: the devnet account's name).")
@click.option(
    "--private-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the hex private key (else it is asked for, hidden).",
)
@click.option(
    "--keystore",
    "keystore_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An existing geth / Foundry keystore file to copy in.",
)
@click.option(
    "--devnet",
    "devnet_name",
    metavar="ACCOUNT",
    help="A named devnet account (alice, bob, provider-1, ...): PUBLIC test keys, devnet only.",
)
@password_file_option
@json_option
@pass_client
def import_(
    client: ClientContext,
    name: str | None,
    private_key_file: Path | None,
    keystore_file: Path | None,
    devnet_name: str | None,
) -> None:
    """Import a private key (prompted, never on the command line), a keystore file, or a
    devnet test account."""
    sources = [s for s in (private_key_file, keystore_file, devnet_name) if s is not None]
    if len(sources) > 1:
        raise click.UsageError("give at most one of --private-key-file, --keystore, --devnet")
    name = check_name(name or devnet_name or "default")
    keystores = client.keystores
    if name in keystores.names():
        raise WalletError(
            f"a wallet named {name!r} already exists ({keystores.path(name)})",
            fix="pick another --name; framecast never overwrites a keystore",
        )
    if keystore_file is not None:
        password = client.password(f"Password of {keystore_file.name}")
        info = keystores.import_keystore(name, keystore_file, password)
        _show(client, info, f"imported keystore as wallet {name!r}")
        return
    if devnet_name is not None:
        from framecast.client.devnet import devnet_account

        key = Secret("0x" + bytes(devnet_account(devnet_name).key).hex())
        click.secho(
            f"note: {devnet_name!r} is a PUBLIC anvil test key — for the local devnet only",
            fg="yellow",
            err=True,
        )
    elif private_key_file is not None:
        text = read_user_text(
            private_key_file,
            what="private key file",
            error=WalletError,
            fix="give a file holding the hex private key (64 hex digits, optional 0x)",
        )
        key = parse_private_key(text)
    else:
        key = parse_private_key(click.prompt("Private key (hex)", hide_input=True, err=True))
    password = client.password(f"New password for wallet {name!r}", confirm=True)
    info = keystores.import_key(name, key, password)
    _show(client, info, f"imported wallet {name!r}")


@command.command("list")
@json_option
@pass_client
def list_(client: ClientContext) -> None:
    """List wallets and their addresses (no password needed)."""
    wallets = client.keystores.list()
    if client.as_json:
        client.echo_json([w.model_dump(mode="json") for w in wallets])
        return
    if not wallets:
        click.echo(
            f"no wallets in {client.settings.keystores} — create one with `framecast wallet new`"
        )
        return
    width = max(len(w.name) for w in wallets)
    for w in wallets:
        click.echo(f"{w.name:<{width}}  {w.address or '(address not recorded: unlock once)'}")


def _address(client: ClientContext) -> tuple[str, str]:
    name = client.wallet_name()
    return name, client.address()


@command.command("address")
@wallet_option
@json_option
@pass_client
def address(client: ClientContext) -> None:
    """Print the wallet's address."""
    name, addr = _address(client)
    if client.as_json:
        client.echo_json({"name": name, "address": addr})
    else:
        click.echo(addr)


@command.command("export-address")
@wallet_option
@json_option
@pass_client
def export_address(client: ClientContext) -> None:
    """Print the address as shell exports: `eval "$(framecast wallet export-address)"` sets
    ETH_FROM (Foundry's sender) and FRAMECAST_WALLET. Never exports a key."""
    name, addr = _address(client)
    if client.as_json:
        client.echo_json({"FRAMECAST_WALLET": name, "ETH_FROM": addr})
        return
    click.echo(f"export FRAMECAST_WALLET={name}")
    click.echo(f"export ETH_FROM={addr}")
