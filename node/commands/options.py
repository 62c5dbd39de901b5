"""What the `framecast node` commands (and `framecast arbiter`) share: the `--config`,
`--network`, `--rpc-url` and `--weights-dir` options, loading the node config the command
line chose and unlocking the node's key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from framecast.node.config import NodeSettings, load_settings, with_network
from framecast.shared.network_choice import NETWORK_META_KEY, chosen_network

DEFAULT_CONFIG = Path(os.environ.get("FRAMECAST_HOME", "~/.framecast")) / "node" / "node.toml"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="FRAMECAST_NODE_CONFIG",
    help="Node config (TOML).",
)


#: Where `--rpc-url` of a node command leaves its value in click's shared meta.
_RPC_META_KEY = "framecast.node.rpc_url"


def _store_meta(key: str) -> Any:
    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.meta[key] = value

    return store


#: ``--network NAME``: the same choice as the root `framecast --network` (either place works).
network_option = click.option(
    "--network",
    metavar="NAME",
    expose_value=False,
    callback=_store_meta(NETWORK_META_KEY),
    help="Network to serve (or FRAMECAST_NETWORK); default: the config's `network`.",
)
#: ``--rpc-url URL``: overrides the config's rpc_url and the network's.
rpc_url_option = click.option(
    "--rpc-url",
    metavar="URL",
    expose_value=False,
    callback=_store_meta(_RPC_META_KEY),
    help="RPC endpoint (default: the config's rpc_url, else the network's).",
)


def _chosen_network() -> str | None:
    ctx = click.get_current_context(silent=True)
    return chosen_network(ctx.meta if ctx is not None else {})


def _settings(config_path: Path) -> NodeSettings:
    """The node config, serving the network and RPC the command line chose (if any)."""
    settings = with_network(load_settings(config_path.expanduser()), _chosen_network())
    ctx = click.get_current_context(silent=True)
    rpc_url = ctx.meta.get(_RPC_META_KEY) if ctx is not None else None
    if rpc_url:
        settings = settings.model_copy(update={"rpc_url": rpc_url})
    return settings


def _unlock(settings: NodeSettings) -> Any:
    from framecast.shared.keystore import unlock_keystore

    return unlock_keystore(
        settings.keystore,
        password_file=settings.password_file,
        prompt=f"password for {settings.keystore}",
    )


# huggingface_hub is imported only by a pull (node.models.hub_download).


def _weights_dir(config_path: Path, override: Path | None) -> Path:
    """--weights-dir, else the node config's weights_dir (one setting for node and CLI)."""
    if override is not None:
        return override
    return _node_settings(config_path).weights_dir


def _node_settings(config_path: Path) -> NodeSettings:
    """The node config if there is one, else the defaults."""
    return _settings(config_path) if config_path.expanduser().exists() else NodeSettings()


_WEIGHTS_DIR = click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FRAMECAST_WEIGHTS_DIR",
    default=None,
    help="Where model weights live (default: the node config's weights_dir).",
)
