"""Named networks: which chain, which contracts, which RPC — chosen by `--network NAME`.

Two sources, one model (`NetworkEntry`):

- the **registry** committed with framecast (``networks.toml`` next to this module): the
  networks framecast knows by name. ``local`` is this machine's devnet, whose addresses
  come from the deployment file `framecast devnet up` writes; public testnets are listed
  as ``not-deployed`` until an official deployment exists (no address is ever invented).
- **user networks**, one TOML file each under ``<home>/networks/NAME.toml``, written by
  `framecast deploy` and `framecast network add`. A user network may carry a registry
  name (e.g. ``sepolia``) only on that network's chain id; ``local`` is never shadowed.

`resolve_network` turns a name into a `ResolvedNetwork`: the `Deployment` every command
binds to, with the RPC URL picked from (in order) an explicit override (``--rpc-url``), the
network's own variable (e.g. ``FRAMECAST_RPC_SEPOLIA``), the user file, the registry default.
`select_network` adds the older way in: an explicit deployment file (``--deployment``).
Nothing here imports web3 except `connect_network`, so `wallet list` stays fast.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from framecast.shared.deployment import Deployment, MarketParams, load_deployment
from framecast.shared.errors import ChainMismatch, ConfigError, RpcUnavailable
from framecast.shared.network_choice import DEFAULT_NETWORK
from framecast.shared.request import Address

if TYPE_CHECKING:
    from web3 import Web3

REGISTRY_PATH = Path(__file__).with_name("networks.toml")
#: Confirmations and getLogs span for a chain the registry does not know.
DEFAULT_CONFIRMATIONS = 2
DEFAULT_LOG_RANGE_LIMIT = 2000
#: Chain id anvil and hardhat use by default: a development chain, nothing to wait for.
DEV_CHAIN_ID = 31337

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
NetworkName = Annotated[
    str,
    Field(pattern=NAME_PATTERN, description="Lower-case letters, digits and dashes, ≤ 40."),
]
CodeHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
NetworkStatus = Literal["devnet", "deployed", "not-deployed"]


def devnet_deployment_file(home: Path) -> Path:
    """The deployment file `framecast devnet up` writes under the framecast home."""
    return home / "devnet" / "deployment.json"


def user_networks_dir(home: Path) -> Path:
    return home / "networks"


def rpc_env_for(name: str) -> str:
    """The variable that holds a network's RPC URL: ``FRAMECAST_RPC_<NAME>``."""
    return "FRAMECAST_RPC_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


class NetworkEntry(BaseModel):
    """One named network: a chain and, once deployed, framecast's contracts on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: NetworkName
    chain_id: int = Field(gt=0, description="EIP-155 chain id the RPC must answer.")
    status: NetworkStatus = Field(
        description="`devnet` (addresses from the devnet file), `deployed` (addresses here) "
        "or `not-deployed` (no framecast contracts on this chain yet)."
    )
    rpc_env: str = Field(
        pattern=r"^FRAMECAST_RPC_[A-Z0-9_]+$",
        description="Environment variable holding this network's RPC URL; it wins over rpc_url.",
    )
    rpc_url: str | None = Field(
        None,
        pattern=r"^(https?|wss?)://",
        description="Default RPC endpoint, where one is public and needs no key; else none.",
    )
    confirmations: int = Field(
        ge=0, le=1000, description="Blocks an event must be buried under before a node acts."
    )
    log_range_limit: int = Field(
        ge=1, le=1_000_000, description="Most blocks one eth_getLogs request may span."
    )
    market: Address | None = Field(None, description="JobMarket address (deployed only).")
    credits: Address | None = Field(None, description="Credits (ERC-20) address (deployed only).")
    deployed_block: int | None = Field(
        None, ge=0, description="First block of the deployment: event scans start here."
    )
    code_hash: CodeHash | None = Field(
        None, description="keccak256 of the JobMarket's runtime code on this chain."
    )
    params: MarketParams | None = Field(None, description="The market's immutable parameters.")

    @model_validator(mode="after")
    def _addresses_match_status(self) -> NetworkEntry:
        placed = {
            "market": self.market,
            "credits": self.credits,
            "deployed_block": self.deployed_block,
            "code_hash": self.code_hash,
            "params": self.params,
        }
        if self.status == "deployed":
            missing = [key for key, value in placed.items() if value is None]
            if missing:
                raise ValueError(f"a deployed network needs {', '.join(missing)}")
        else:
            present = [key for key, value in placed.items() if value is not None]
            if present:
                raise ValueError(
                    f"a {self.status} network has no {', '.join(present)} "
                    "(its deployment lives elsewhere)"
                )
        return self

    def deployment(self, rpc_url: str) -> Deployment:
        """The contracts of a deployed network, reached through ``rpc_url``."""
        assert self.status == "deployed"
        return Deployment.model_validate(
            {
                "network": self.name,
                "chain_id": self.chain_id,
                "rpc_url": rpc_url,
                "credits": self.credits,
                "market": self.market,
                "deployed_block": self.deployed_block,
                "params": self.params,
            }
        )


class ResolvedNetwork(BaseModel):
    """A network ready to use: its deployment (with the RPC URL chosen) and chain habits."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Network name, or the deployment file's `network`.")
    source: str = Field(description="Where the addresses came from (a file path).")
    deployment: Deployment
    rpc_source: str = Field(description="What chose the RPC URL (an option, a variable, a file).")
    rpc_env: str | None = Field(None, description="The network's RPC variable, if it has one.")
    confirmations: int = Field(ge=0)
    log_range_limit: int = Field(ge=1)
    code_hash: str | None = None

    @property
    def rpc_url(self) -> str:
        return self.deployment.rpc_url

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id


# -- the registry and user files -------------------------------------------------------------


@cache
def registry() -> dict[str, NetworkEntry]:
    """The committed networks, by name."""
    return _parse(REGISTRY_PATH.read_text(encoding="utf-8"), str(REGISTRY_PATH))


def _parse(text: str, label: str) -> dict[str, NetworkEntry]:
    try:
        tables = tomllib.loads(text).get("networks", {})
        return {
            name: NetworkEntry.model_validate({"name": name, **table})
            for name, table in tables.items()
        }
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"network registry {label} is invalid: {exc}") from None


def user_network_file(home: Path, name: str) -> Path:
    return user_networks_dir(home) / f"{name}.toml"


def load_user_network(path: Path) -> NetworkEntry:
    """One user network file; its name is the file's stem."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        entry = NetworkEntry.model_validate({"name": path.stem, **table})
    except OSError as exc:
        raise ConfigError(f"cannot read network file {path} ({type(exc).__name__})") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        detail = f"`{'.'.join(map(str, first['loc']))}`: {first['msg']}" if first else str(exc)
        raise ConfigError(
            f"network file {path} is invalid ({detail})",
            fix=f"fix it, or remove it with `framecast network remove {path.stem}` and add it "
            "again",
        ) from None
    _check_against_registry(entry, path)
    return entry


def _check_against_registry(entry: NetworkEntry, path: Path) -> None:
    known = registry().get(entry.name)
    if known is None:
        return
    if known.status == "devnet":
        raise ConfigError(
            f"network file {path} redefines `{entry.name}`, this machine's devnet",
            fix="rename the file to another network name (a devnet on another host is joined "
            "as its own network, e.g. `framecast network add devnet …`)",
        )
    if known.chain_id != entry.chain_id:
        raise ChainMismatch(
            f"network file {path} puts `{entry.name}` on chain {entry.chain_id}, but "
            f"{entry.name} is chain {known.chain_id}",
            fix="remove the file (`framecast network remove NAME`) and add the deployment "
            "under a name of its own",
        )


def user_networks(home: Path) -> dict[str, NetworkEntry]:
    """Every network this user deployed or added, by name."""
    folder = user_networks_dir(home)
    if not folder.is_dir():
        return {}
    return {path.stem: load_user_network(path) for path in sorted(folder.glob("*.toml"))}


def all_networks(home: Path) -> dict[str, tuple[NetworkEntry, str]]:
    """Registry and user networks by name, each with where it is defined (user files win)."""
    found: dict[str, tuple[NetworkEntry, str]] = {
        name: (entry, "registry") for name, entry in registry().items()
    }
    for name, entry in user_networks(home).items():
        found[name] = (entry, str(user_network_file(home, name)))
    return found


def check_new_name(home: Path, name: str, chain_id: int | None, *, force: bool) -> None:
    """Refuse a name a new user network cannot take (before any gas is spent)."""
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(
            f"network name {name!r} is not allowed",
            fix="use lower-case letters, digits and dashes (at most 40), e.g. `my-testnet`",
        )
    known = registry().get(name)
    if known is not None and known.status == "devnet":
        raise ConfigError(
            f"`{name}` is this machine's devnet (`framecast devnet up`)",
            fix="give the network another name (e.g. `devnet` for a devnet on another host)",
        )
    if known is not None and chain_id is not None and known.chain_id != chain_id:
        raise ChainMismatch(
            f"the RPC serves chain {chain_id}, but {name} is chain {known.chain_id}",
            fix=f"point --rpc-url at a {name} endpoint, or choose another network name",
        )
    path = user_network_file(home, name)
    if path.exists() and not force:
        raise ConfigError(
            f"network {name} already exists ({path})",
            fix="choose another name, or pass --force to replace the file",
        )


def save_user_network(home: Path, entry: NetworkEntry, *, header: str) -> Path:
    """Write ``entry`` as ``<home>/networks/NAME.toml`` atomically (mode 0600: RPC URLs may
    carry keys)."""
    path = user_network_file(home, entry.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{entry.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_toml(entry, header=header))
    Path(tmp).replace(path)
    return path


def remove_user_network(home: Path, name: str) -> Path:
    path = user_network_file(home, name)
    if not path.exists():
        where = "the registry" if name in registry() else "this machine"
        raise ConfigError(
            f"there is no user network {name} to remove (it is in {where})",
            fix="list them with `framecast network list`",
        )
    path.unlink()
    return path


def render_toml(entry: NetworkEntry, *, header: str) -> str:
    """The TOML of one user network (flat keys, then the params table)."""
    data = entry.model_dump(mode="json", exclude={"name", "params"}, exclude_none=True)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in data.items()]
    if entry.params is not None:
        lines += ["", "[params]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.params.model_dump().items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def name_for_chain(chain_id: int) -> str:
    """A registry name for ``chain_id`` (not the devnet's), else ``chain-<id>``."""
    for name, entry in registry().items():
        if entry.chain_id == chain_id and entry.status != "devnet":
            return name
    return f"chain-{chain_id}"


def habits_for_chain(chain_id: int) -> tuple[int, int]:
    """(confirmations, log_range_limit) the registry advises for ``chain_id``, else defaults."""
    for entry in registry().values():
        if entry.chain_id == chain_id:
            return entry.confirmations, entry.log_range_limit
    if chain_id == DEV_CHAIN_ID:
        return 0, DEFAULT_LOG_RANGE_LIMIT
    return DEFAULT_CONFIRMATIONS, DEFAULT_LOG_RANGE_LIMIT


# -- choosing and resolving -------------------------------------------------------------------


def resolve_network(name: str, *, home: Path, rpc_url: str | None = None) -> ResolvedNetwork:
    """The deployment of network ``name`` and the RPC to reach it (``rpc_url`` overrides)."""
    networks = all_networks(home)
    if name not in networks:
        raise ConfigError(
            f"unknown network {name!r} (known: {', '.join(sorted(networks))})",
            fix=f"join it with `framecast network add {name} --rpc-url URL --market ADDR`, or "
            "list the networks with `framecast network list`",
        )
    entry, where = networks[name]
    if entry.status == "not-deployed":
        raise ConfigError(
            f"network {name} (chain {entry.chain_id}) has no framecast deployment yet",
            fix=f"deploy one with `framecast deploy --rpc-url URL --keystore FILE "
            f"--network-name {name}`, or join one with `framecast network add {name} "
            "--rpc-url URL --market ADDR`",
        )
    if entry.status == "devnet":
        return _resolve_devnet(entry, home, rpc_url)
    url, rpc_source = pick_rpc(entry, rpc_url, file_url=None)
    return ResolvedNetwork(
        name=name,
        source=where,
        deployment=entry.deployment(url),
        rpc_source=rpc_source,
        rpc_env=entry.rpc_env,
        confirmations=entry.confirmations,
        log_range_limit=entry.log_range_limit,
        code_hash=entry.code_hash,
    )


def _resolve_devnet(entry: NetworkEntry, home: Path, rpc_url: str | None) -> ResolvedNetwork:
    path = devnet_deployment_file(home)
    deployment = load_deployment(path)
    if deployment.chain_id != entry.chain_id:
        raise ChainMismatch(
            f"the devnet deployment file {path} is for chain {deployment.chain_id}, but "
            f"network {entry.name} is chain {entry.chain_id}",
            fix="recreate it with `framecast devnet down && framecast devnet up`",
        )
    url, rpc_source = pick_rpc(entry, rpc_url, file_url=deployment.rpc_url)
    return ResolvedNetwork(
        name=entry.name,
        source=str(path),
        deployment=deployment.model_copy(update={"rpc_url": url}),
        rpc_source=rpc_source,
        rpc_env=entry.rpc_env,
        confirmations=entry.confirmations,
        log_range_limit=entry.log_range_limit,
    )


def pick_rpc(entry: NetworkEntry, override: str | None, file_url: str | None) -> tuple[str, str]:
    if override:
        return override, "--rpc-url (or the rpc_url setting)"
    from_env = os.environ.get(entry.rpc_env)
    if from_env:
        return from_env, entry.rpc_env
    if file_url:
        return file_url, "the devnet deployment file"
    if entry.rpc_url:
        return entry.rpc_url, "the network's default"
    raise ConfigError(
        f"network {entry.name} has no RPC URL",
        fix=f"set {entry.rpc_env}=URL (or pass --rpc-url URL)",
    )


def from_deployment_file(path: Path, *, rpc_url: str | None = None) -> ResolvedNetwork:
    """A network made of an explicit deployment file (``--deployment``)."""
    deployment = load_deployment(path)
    if rpc_url:
        deployment = deployment.model_copy(update={"rpc_url": rpc_url})
    confirmations, log_range_limit = habits_for_chain(deployment.chain_id)
    return ResolvedNetwork(
        name=deployment.network,
        source=str(path),
        deployment=deployment,
        rpc_source="--rpc-url (or the rpc_url setting)" if rpc_url else "the deployment file",
        confirmations=confirmations,
        log_range_limit=log_range_limit,
    )


def select_network(
    chosen: str | None,
    *,
    deployment_file: Path | None,
    home: Path,
    rpc_url: str | None = None,
    configured: str | None = None,
) -> ResolvedNetwork:
    """The network a command uses.

    ``chosen`` (``--network`` / FRAMECAST_NETWORK) and an explicit ``deployment_file`` may
    not disagree; without either, the ``configured`` network (a node's `network`), else
    ``local``.
    """
    if deployment_file is not None:
        check_no_conflict(chosen, deployment_file, home)
        return from_deployment_file(deployment_file, rpc_url=rpc_url)
    return resolve_network(chosen or configured or DEFAULT_NETWORK, home=home, rpc_url=rpc_url)


def check_no_conflict(chosen: str | None, deployment_file: Path, home: Path) -> None:
    """Refuse a chosen network next to an explicit deployment file of another network."""
    if chosen and not _is_devnet_file(chosen, deployment_file, home):
        raise ConfigError(
            f"both network {chosen} and the deployment file {deployment_file} are given",
            fix="choose one: drop --deployment / FRAMECAST_DEPLOYMENT (or `deployment` in "
            "the node config), or drop --network / FRAMECAST_NETWORK",
        )


def _is_devnet_file(name: str, path: Path, home: Path) -> bool:
    # A node config written before networks existed names the devnet file itself: that is
    # what `local` means, so choosing `local` does not conflict with it.
    entry = registry().get(name)
    devnet = devnet_deployment_file(home)
    return bool(
        entry is not None
        and entry.status == "devnet"
        and path.expanduser().resolve() == devnet.expanduser().resolve()
    )


def connect_network(network: ResolvedNetwork, *, timeout: float | None = None) -> Web3:
    """A Web3 on the network's RPC, after checking it serves the network's chain."""
    from framecast.shared.chain.connection import DEFAULT_RPC_TIMEOUT_S, connect
    from framecast.shared.chain.history import limit_log_range

    try:
        w3 = connect(network.rpc_url, timeout=timeout or DEFAULT_RPC_TIMEOUT_S)
    except RpcUnavailable as exc:
        if network.rpc_env is not None and network.name != DEFAULT_NETWORK:
            # Not the devnet: `framecast devnet up` would not help; say where the URL came from.
            exc.fix = (
                f"check the RPC of network {network.name} (set by {network.rpc_source}); set "
                f"{network.rpc_env}=URL or pass --rpc-url"
            )
        raise
    served = int(w3.eth.chain_id)
    if served != network.chain_id:
        raise ChainMismatch(
            f"RPC {network.rpc_url} serves chain {served}, but network {network.name} "
            f"({network.source}) is on chain {network.chain_id}",
            fix=f"point the RPC (set by {network.rpc_source}) at chain {network.chain_id}, or "
            "choose the network of that chain with --network",
        )
    # Every log reader on this endpoint starts at the network's known getLogs limit.
    limit_log_range(w3, network.log_range_limit)
    return w3
