"""Node settings: one pydantic-settings object from a TOML file and `FRAMECAST_NODE_*` env.

Precedence: environment > TOML file > defaults. `framecast node init` writes a commented
TOML with every field below; the comments come from the field descriptions.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from framecast.shared.errors import ConfigError
from framecast.shared.ipfs.store import StoreSettings
from framecast.shared.network_choice import DEFAULT_NETWORK
from framecast.shared.networks import (
    NAME_PATTERN,
    ResolvedNetwork,
    check_no_conflict,
    select_network,
)
from framecast.shared.textfiles import read_user_text


def framecast_home() -> Path:
    """`FRAMECAST_HOME` (default ~/.framecast): shared with the client on one machine."""
    return Path(os.environ.get("FRAMECAST_HOME", "~/.framecast")).expanduser()


class NodeSettings(BaseSettings):
    """Everything a provider node needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="FRAMECAST_NODE_",
        env_nested_delimiter="__",
        extra="forbid",
        # A NaN or infinite timeout, interval or margin is never what an operator meant.
        allow_inf_nan=False,
    )
    #: Set by `load_settings` before construction; TOML is read from here.
    toml_path: ClassVar[Path | None] = None

    network: str = Field(
        DEFAULT_NETWORK,
        pattern=NAME_PATTERN,
        description="Network to serve (`framecast network list`): `local` is this machine's "
        "devnet; --network / FRAMECAST_NETWORK on the command line win.",
    )
    deployment: Path | None = Field(
        None,
        description="Deployment file to use instead of the network's (older configs name the "
        "devnet's here).",
    )
    rpc_url: str | None = Field(
        None, description="RPC endpoint; default: the network's (FRAMECAST_RPC_<NAME>, its file)."
    )
    keystore: Path = Field(
        default_factory=lambda: framecast_home() / "node" / "provider.json",
        description="Web3 Secret Storage keystore of the provider key.",
    )
    password_file: Path | None = Field(
        None,
        description="File holding the keystore password (else FRAMECAST_PASSWORD or a prompt).",
    )
    models: list[str] = Field(
        default_factory=lambda: ["tiny-cogvideox"],
        description="Catalog ids this node serves; their weights must be present and verified.",
    )
    memory_profiles: dict[str, str] = Field(
        default_factory=dict,
        description='Memory profile to run per model id (e.g. {ltx-video = "model-offload"}); '
        "unset: the best profile that fits the GPU (`framecast node doctor` shows the choice).",
    )
    weights_dir: Path = Field(
        default_factory=lambda: framecast_home() / "node" / "weights",
        description="One folder per model id with its weights.",
    )
    gpu_slots: int = Field(1, ge=1, le=64, description="Jobs run at once (one per GPU).")
    # 3e9 wei per unit: a 49-frame 720×480 50-step CogVideoX job (8.5e8 units) asks about
    # 2.5 FCC, roughly 45 s of an H100 if a credit is worth a cent.
    min_price_per_unit: int = Field(
        3_000_000_000,
        ge=0,
        description="Least price in wei of FCC per work unit (frames × width × height × steps).",
    )
    confirmations: int = Field(
        0, ge=0, le=1000, description="Blocks a JobSubmitted event must be buried under."
    )
    runtime: Literal["process", "docker", "ray"] = Field(
        "process",
        description="`process` (no isolation: development, CPU), `docker`, or `ray` (jobs "
        "run on the Ray cluster at ray_address; capacity follows its free GPUs).",
    )
    ray_address: str = Field(
        "127.0.0.1:6379",
        max_length=300,
        description="runtime = ray: the cluster's GCS address HOST:PORT (`ray start --head`).",
    )
    ray_auth_token_file: Path | None = Field(
        None,
        description="runtime = ray: file holding the cluster's auth token (RAY_AUTH_MODE=token; "
        "`ray get-auth-token`); unset: RAY_AUTH_TOKEN / Ray's default token file, if any.",
    )
    ray_gpu_resource: str = Field(
        "GPU",
        max_length=64,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="runtime = ray: the resource one GPU is (GPU; a custom name emulates GPUs).",
    )
    ray_weights_dir: Path | None = Field(
        None,
        description="runtime = ray: where the workers hold one folder per model (pulled with "
        "`framecast node models pull` on each host); unset: the same path as weights_dir.",
    )
    ray_max_jobs: int = Field(
        64, ge=1, le=4096, description="runtime = ray: most jobs in flight on the cluster."
    )
    docker_image: str | None = Field(
        None, description="Runner image (pinned by digest) for runtime = docker."
    )
    state_dir: Path = Field(
        default_factory=lambda: framecast_home() / "node" / "state",
        description="SQLite state and job folders.",
    )
    store: StoreSettings = Field(
        default_factory=lambda: StoreSettings(store_path=framecast_home() / "blocks"),
        description="Where results are pinned.",
    )
    public_gateways: list[str] = Field(
        default_factory=list,
        description="Trustless IPFS gateways tried, in order, after the store and a "
        "provider's own gateway: for results (arbiter, replay) and for job inputs no client "
        "uploaded (fetched before claiming).",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Legacy: host of the HTTP server when http_bind is unset."
    )
    metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="Legacy: port of the HTTP server when http_bind is unset (0: no server).",
    )
    http_bind: str | None = Field(
        None,
        max_length=300,
        description="HOST:PORT the node's HTTP server listens on (/ipfs/ gateway, /jobs/{id}, "
        "/healthz, /metrics, input upload); port 0 picks a free port; when set, "
        "metrics_host/metrics_port are ignored; unset: metrics_host:metrics_port.",
    )
    advertise_url: str | None = Field(
        None,
        max_length=256,
        description="Base URL other hosts reach the HTTP server at, published in the offer "
        "(e.g. http://203.0.113.7:9464); unset: the bind address if it and the RPC are loopback.",
    )
    input_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest input CAR a client may upload (bytes; bigger ones get 413).",
    )
    input_wait_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Seconds after seeing a job to wait for its inputs before skipping it "
        "(never past the claim deadline).",
    )
    poll_interval_s: float = Field(0.2, gt=0, le=60, description="Seconds between chain polls.")
    subscribe_heads: bool = Field(
        True,
        description="Wake on new blocks by eth_subscribe where the RPC offers it (polling stays "
        "the fallback).",
    )
    ws_url: str | None = Field(
        None,
        pattern=r"^wss?://",
        description="WebSocket RPC for head subscriptions; default: the RPC URL with ws(s)://.",
    )
    rpc_timeout_s: float = Field(
        4.0, gt=0, le=120, description="Seconds one RPC request may take (tried twice)."
    )
    backfill_chunk: int = Field(2000, ge=1, le=100_000, description="Blocks per log query.")
    job_timeout_s: float = Field(
        3600, gt=0, description="Longest a job may run (capped by its delivery deadline)."
    )
    delivery_margin_s: int = Field(
        20, ge=0, description="Seconds kept before deliver-by for pinning and the deliver tx."
    )

    @field_validator(
        "deployment",
        "keystore",
        "password_file",
        "weights_dir",
        "state_dir",
        "ray_auth_token_file",
        "ray_weights_dir",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("store")
    @classmethod
    def _expand_store(cls, value: StoreSettings) -> StoreSettings:
        # Every user of the store (agent, replay, arbiter) gets a usable path.
        return value.model_copy(update={"store_path": Path(value.store_path).expanduser()})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    @property
    def database(self) -> Path:
        return self.state_dir / "node.sqlite3"

    def http_address(self) -> tuple[str, int] | None:
        """(host, port) of the HTTP server, or None when it is off (legacy metrics_port 0)."""
        if self.http_bind is None:
            if not self.metrics_port:
                return None
            return self.metrics_host, self.metrics_port
        host, sep, port = self.http_bind.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                f"node config field `http_bind`: {self.http_bind!r} is not HOST:PORT",
                fix='e.g. http_bind = "127.0.0.1:9464" (or "0.0.0.0:9464" with advertise_url)',
            )
        return host, int(port)

    def advertised_url(self, rpc_url: str, bound_port: int | None = None) -> str | None:
        """The base URL published in the offer, checked as other hosts will check it.

        ``rpc_url`` decides whether loopback is fine (the whole market on this machine);
        ``bound_port`` replaces a bind port of 0 once the server listens.
        """
        from framecast.shared.endpoints import check_remote_url, is_loopback_url

        allow_loopback = is_loopback_url(rpc_url)
        if self.advertise_url is not None:
            return check_remote_url(
                self.advertise_url, field="advertise_url", allow_loopback=allow_loopback
            )
        address = self.http_address()
        if address is None:
            return None
        host, port = address
        port = bound_port or port
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        if not port:
            raise ConfigError(
                "the HTTP server binds port 0 (any free port): the offer cannot name it",
                fix="set advertise_url, or a fixed port in http_bind",
            )
        return check_remote_url(
            url, field="advertise_url (unset: the bind address)", allow_loopback=allow_loopback
        )


def load_settings(path: Path | None, **overrides: Any) -> NodeSettings:
    """Settings from the TOML at ``path`` (if any) and the environment."""
    if path is not None:
        _check_toml(path)
    NodeSettings.toml_path = path
    try:
        return NodeSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"node config field `{field}`: {first['msg']}",
            fix=f"fix it in {path or 'the FRAMECAST_NODE_* environment'}",
        ) from None
    finally:
        NodeSettings.toml_path = None


def _check_toml(path: Path) -> None:
    """The file at ``path`` is readable UTF-8 TOML, else a `ConfigError` naming the file and
    the line and column of the first fault (pydantic-settings would raise the parser's own
    exception, a traceback for the user)."""
    text = read_user_text(
        path,
        what="node config",
        error=ConfigError,
        fix="create one with `framecast node init` (or pass --config PATH)",
    )
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The parser's message ends with "(at line L, column C)" or "(at end of document)".
        raise ConfigError(
            f"node config {path} is not valid TOML: {exc}",
            fix="fix the TOML at that place (`framecast node init --force` writes a fresh one)",
        ) from None


def with_network(settings: NodeSettings, chosen: str | None) -> NodeSettings:
    """``settings`` serving the network chosen on the command line (None: as configured).

    A config that names a deployment file of its own conflicts with a chosen network,
    except the devnet's file with `local` (what `node init` wrote before networks existed).
    """
    if not chosen:
        return settings
    if settings.deployment is not None:
        check_no_conflict(chosen, settings.deployment, framecast_home())
    return settings.model_copy(update={"network": chosen, "deployment": None})


def node_network(settings: NodeSettings) -> ResolvedNetwork:
    """The deployment and RPC this node serves: its deployment file, else its network."""
    return select_network(
        None,
        deployment_file=settings.deployment,
        home=framecast_home(),
        rpc_url=settings.rpc_url,
        configured=settings.network,
    )


def render_toml(settings: NodeSettings) -> str:
    """A commented TOML of ``settings``: each field preceded by its description."""
    lines = [
        "# framecast provider node configuration",
        "# Env overrides: FRAMECAST_NODE_<FIELD>",
        "",
    ]
    nested: list[str] = []
    for name, info in NodeSettings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, StoreSettings):
            nested.append("")
            nested.append(f"# {info.description}")
            nested.append(f"[{name}]")
            for sub, sub_info in StoreSettings.model_fields.items():
                nested.append(f"# {sub_info.description}")
                nested.append(f"{sub} = {_toml_value(getattr(value, sub))}")
            continue
        lines.append(f"# {info.description}")
        if value is None:
            lines.append(f"# {name} = ")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines + nested) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        # An inline table; keys quoted (model ids hold dots).
        return (
            "{"
            + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + "}"
        )
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
