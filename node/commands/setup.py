"""`framecast node init` (a commented config; on the devnet also a keystore and tiny
weights) and `framecast node register` (bond and publish the node's offer)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from framecast.node.commands.options import (
    _chosen_network,
    _settings,
    _unlock,
    config_option,
    network_option,
    rpc_url_option,
)
from framecast.node.config import NodeSettings, framecast_home, render_toml
from framecast.node.gpus import GpuDetector
from framecast.shared.amounts import format_fcc
from framecast.shared.cli_params import FccAmount
from framecast.shared.errors import ConfigError


@click.command("init")
@config_option
@network_option
@click.option("--devnet-account", help="Use this named devnet account (e.g. provider-1).")
@click.option("--model", "models", multiple=True, help="Model id to serve (repeatable).")
@click.option("--state-dir", type=click.Path(path_type=Path), help="Override state_dir.")
@click.option("--password-file", type=click.Path(path_type=Path), help="Keystore password file.")
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
def init(
    config_path: Path,
    devnet_account: str | None,
    models: tuple[str, ...],
    state_dir: Path | None,
    password_file: Path | None,
    force: bool,
) -> None:
    """Write a commented node config; with --devnet-account also a keystore and tiny weights."""
    from framecast.shared.catalog import get_entry

    path = config_path.expanduser()
    if path.exists() and not force:
        raise ConfigError(f"node config {path} exists", fix="pass --force to overwrite it")
    overrides: dict[str, Any] = {}
    if models:
        for model in models:
            get_entry(model)  # unknown ids fail here, listing the known ones
        overrides["models"] = list(models)
    if state_dir:
        overrides["state_dir"] = state_dir
    if password_file:
        overrides["password_file"] = password_file
    network = _chosen_network()
    if network:
        from framecast.shared.networks import all_networks

        known = all_networks(framecast_home())
        if network not in known:
            raise ConfigError(
                f"unknown network {network!r} (known: {', '.join(sorted(known))})",
                fix=f"join it first with `framecast network add {network} --rpc-url URL "
                "--market ADDR`",
            )
        overrides["network"] = network
    home = path.parent
    overrides.setdefault("keystore", home / "provider.json")
    overrides.setdefault("weights_dir", home / "weights")
    overrides.setdefault("state_dir", home / "state")
    settings = NodeSettings(**overrides)
    if devnet_account:
        _devnet_setup(settings, devnet_account)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_toml(settings))
    click.echo(f"wrote {path}")


def _devnet_setup(settings: NodeSettings, name: str) -> None:
    from framecast.node.models import build_tiny
    from framecast.shared.catalog import get_entry
    from framecast.shared.chain.devnet import devnet_account
    from framecast.shared.errors import WalletError
    from framecast.shared.keystore import (
        encrypt_key,
        keystore_address,
        read_password,
        write_keystore,
    )

    account = devnet_account(name)
    if settings.keystore.exists():
        # A keystore names its address in clear: never hand one account's key to another role.
        try:
            held = keystore_address(settings.keystore)
        except WalletError:
            held = None  # no readable keystore: `node run` says so when it unlocks it
        if held is not None and held != account.address:
            raise ConfigError(
                f"{settings.keystore} already holds the key of {held}, not of {name} "
                f"({account.address})",
                fix="give this config its own folder (`--config DIR/node.toml`) or remove the "
                "old keystore",
            )
    else:
        password = read_password(settings.password_file, prompt="new keystore password")
        scrypt_n = int(os.environ.get("FRAMECAST_KEYSTORE_SCRYPT_N", "262144"))
        write_keystore(
            settings.keystore, encrypt_key(bytes(account.key), password, scrypt_n=scrypt_n)
        )
        click.echo(f"keystore for {name} ({account.address}) in {settings.keystore}")
    for model in settings.models:
        entry = get_entry(model)
        target = settings.weights_dir / model
        if entry.tiny and not target.exists():
            build_tiny(entry, target)  # in a subprocess: no torch import here
            click.echo(f"built tiny weights for {model} in {target}")


def offer_uri(settings: NodeSettings, rpc_url: str, detect: GpuDetector | None = None) -> str:
    """The metadata URI clients quote from: the models that fit this host's GPUs with the
    memory profile each runs, price, and the node's advertised progress endpoint and
    gateway (one HTTP server: ``advertise_url``), checked as other hosts will check them
    (`framecast.shared.endpoints.check_remote_url`)."""
    from framecast.node.gpus import detect_gpus, require_plans
    from framecast.shared.catalog import get_entry
    from framecast.shared.provider_metadata import ProviderOffer

    base = settings.advertised_url(rpc_url)
    cards = (detect or detect_gpus)()
    plans, _refused = require_plans(
        [get_entry(m) for m in settings.models], cards, settings.memory_profiles
    )
    return ProviderOffer(
        models=list(plans),
        profiles={m: plan.profile.name for m, plan in plans.items()},
        price_per_unit=settings.min_price_per_unit,
        endpoint=base,
        gateway=base,
    ).to_uri()


def _check_bond(credits: Any, market: Any, provider: str, amount: int) -> None:
    """What registerProvider would refuse, refused before the approve is sent (a refused
    registration must not leave an allowance and spent gas behind)."""
    from framecast.shared.chain.reverts import refusal

    if market.get_provider(provider).registered:
        raise refusal("AlreadyRegistered", provider=provider)
    if amount > 2**96 - 1:
        raise refusal("AmountTooLarge", amount=amount)
    min_bond = market.params().min_bond
    if amount < min_bond:
        raise refusal("BondTooLow", provider=provider, bond=amount, minBond=min_bond)
    held = credits.balance_of(provider)
    if held < amount:
        raise refusal("ERC20InsufficientBalance", sender=provider, balance=held, needed=amount)


@click.command("register")
@config_option
@network_option
@rpc_url_option
@click.option(
    "--bond", required=True, type=FccAmount(), help="Bond in FCC (at least the market's minimum)."
)
@click.option(
    "--metadata",
    default="",
    help="Metadata URI describing this provider's offer (default: models, price per unit "
    "and the /jobs endpoint from the config, as a data: URI).",
)
def register(config_path: Path, bond: int, metadata: str) -> None:
    """Approve and lock a bond, registering this node's key as a provider."""
    from framecast.node.config import node_network
    from framecast.shared.chain.bindings import bind
    from framecast.shared.chain.sender import TxSender
    from framecast.shared.networks import connect_network

    settings = _settings(config_path)
    amount = bond
    network = node_network(settings)
    rpc_url = network.rpc_url
    # The offer is checked before the password prompt: a bad advertise_url fails fast.
    uri = metadata or offer_uri(settings, rpc_url)
    account = _unlock(settings)
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    credits, market = bind(w3, network.deployment, TxSender(w3, account))
    _check_bond(credits, market, account.address, amount)
    credits.approve(market.address, amount)
    market.register_provider(amount, uri)
    view = market.get_provider(account.address)
    click.echo(f"registered {account.address} with bond {format_fcc(view.bond)}")
