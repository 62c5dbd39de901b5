"""`framecast node` — the provider agent's commands (contributed by entry point).

Thin commands over `framecast.node` services: `init` writes a commented config (and, for
the devnet, a keystore and tiny weights), `register` bonds, `run` runs the agent,
`status` shows slots, jobs and earnings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from framecast.node.config import (
    NodeSettings,
    framecast_home,
    load_settings,
    render_toml,
    with_network,
)
from framecast.shared.errors import ConfigError
from framecast.shared.network_choice import NETWORK_META_KEY, chosen_network

DEFAULT_CONFIG = Path(os.environ.get("FRAMECAST_HOME", "~/.framecast")) / "node" / "node.toml"
FCC = 10**18

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


def parse_fcc(value: str, field: str) -> int:
    """A decimal FCC amount (never a float) in wei."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{field} {value!r} is not a number", fix="e.g. 200 or 0.5") from None
    if amount < 0 or amount != amount.quantize(Decimal(1) / FCC):
        raise ConfigError(f"{field} {value!r} must be ≥ 0 with at most 18 decimals")
    return int(amount * FCC)


@click.group("node")
def node_group() -> None:
    """Provider node agent: init, register, run, status."""


@node_group.command("init")
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
            # Built in a subprocess: this command never imports torch itself.
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "framecast.runner",
                    "tiny",
                    "build",
                    "--family",
                    entry.tiny,
                    "--out",
                    str(target),
                ],
                check=True,
            )
            click.echo(f"built tiny weights for {model} in {target}")


def _unlock(settings: NodeSettings) -> Any:
    from framecast.shared.keystore import unlock_keystore

    return unlock_keystore(
        settings.keystore,
        password_file=settings.password_file,
        prompt=f"password for {settings.keystore}",
    )


def offer_uri(settings: NodeSettings, rpc_url: str) -> str:
    """The metadata URI clients quote from: models, price, and the node's advertised
    progress endpoint and gateway (one HTTP server: ``advertise_url``), checked as other
    hosts will check them (`framecast.shared.endpoints.check_remote_url`)."""
    from framecast.shared.provider_metadata import ProviderOffer

    base = settings.advertised_url(rpc_url)
    return ProviderOffer(
        models=settings.models,
        price_per_unit=settings.min_price_per_unit,
        endpoint=base,
        gateway=base,
    ).to_uri()


@node_group.command("register")
@config_option
@network_option
@rpc_url_option
@click.option("--bond", required=True, help="Bond in FCC (at least the market's minimum).")
@click.option(
    "--metadata",
    default="",
    help="Metadata URI describing this provider's offer (default: models, price per unit "
    "and the /jobs endpoint from the config, as a data: URI).",
)
def register(config_path: Path, bond: str, metadata: str) -> None:
    """Approve and lock a bond, registering this node's key as a provider."""
    from framecast.node.config import node_network
    from framecast.shared.chain.bindings import bind
    from framecast.shared.chain.sender import TxSender
    from framecast.shared.networks import connect_network

    settings = _settings(config_path)
    amount = parse_fcc(bond, "--bond")
    network = node_network(settings)
    rpc_url = network.rpc_url
    # The offer is checked before the password prompt: a bad advertise_url fails fast.
    uri = metadata or offer_uri(settings, rpc_url)
    account = _unlock(settings)
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    credits, market = bind(w3, network.deployment, TxSender(w3, account))
    credits.approve(market.address, amount)
    market.register_provider(amount, uri)
    view = market.get_provider(account.address)
    click.echo(f"registered {account.address} with bond {view.bond / FCC:g} FCC")


@node_group.command("run")
@config_option
@network_option
@rpc_url_option
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json")
@click.option("--grace", default=30.0, show_default=True, help="Seconds to finish jobs on stop.")
def run(config_path: Path, log_format: str, grace: float) -> None:
    """Run the agent until SIGTERM/SIGINT; running jobs finish or are parked safely."""
    from framecast.node import logs
    from framecast.node.config import node_network
    from framecast.node.http import serve_node_http
    from framecast.node.wiring import build_agent, node_routes

    logs.configure(json_logs=log_format == "json")
    settings = _settings(config_path)
    address = settings.http_address()  # a bad http_bind fails before the password prompt
    agent = build_agent(settings, _unlock(settings))
    rpc_url = node_network(settings).rpc_url
    if settings.advertise_url is not None:
        settings.advertised_url(rpc_url)  # refuse an unreachable advertise_url at start
    agent.startup()
    server = None
    if address is not None:
        server = serve_node_http(node_routes(agent), *address, legacy=settings.http_bind is None)
        host, port = address[0], server.server_address[1]
        bound = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        click.echo(f"metrics on {bound}/metrics", err=True)
        click.echo(f"gateway on {bound}/ipfs/ and jobs on {bound}/jobs/ID", err=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        agent.run_forever(stop)
    finally:
        agent.shutdown(grace_s=grace)
        if server:
            server.shutdown()
        agent.state.close()


@node_group.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path, as_json: bool) -> None:
    """Slots, jobs by state and earnings, from the node's state database."""
    from framecast.node.state import BUSY, StateStore

    settings = _settings(config_path)
    if not settings.database.exists():
        raise ConfigError(
            f"no node state at {settings.database}", fix="run the node with `framecast node run`"
        )
    state = StateStore(settings.database)
    counts = state.counts()
    busy = sum(counts[s] for s in BUSY)
    recent = sorted(state.in_states(*counts), key=lambda j: j.updated_at)[-10:]
    report = NodeStatus(
        slots=settings.gpu_slots,
        slots_busy=busy,
        jobs={k: v for k, v in counts.items() if v},
        earned_wei=str(state.total_earned()),
        recent=[
            JobLine(
                job_id=j.job_id,
                state=j.state,
                model=j.model,
                progress=j.progress,
                reason=j.reason,
                result_cid=j.result_cid,
            )
            for j in reversed(recent)
        ],
    )
    state.close()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"slots      {busy}/{settings.gpu_slots} busy")
    click.echo(f"earned     {int(report.earned_wei) / FCC:g} FCC")
    jobs = ", ".join(f"{k}: {v}" for k, v in report.jobs.items()) or "none"
    click.echo(f"jobs       {jobs}")
    for job in report.recent:
        extra = f"  {job.reason}" if job.reason else ""
        click.echo(f"  #{job.job_id:<6} {job.state:<10} {job.model or '-'}{extra}")


class JobLine(BaseModel):
    """One job in `node status`."""

    job_id: int
    state: str
    model: str | None
    progress: float
    reason: str | None
    result_cid: str | None


class NodeStatus(BaseModel):
    """`framecast node status --json`."""

    slots: int
    slots_busy: int
    jobs: dict[str, int]
    earned_wei: str
    recent: list[JobLine]


# -- weights -------------------------------------------------------------------------------
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


@node_group.group("models")
def models_group() -> None:
    """Model weights on this provider: pull and verify."""


@models_group.command("pull")
@click.argument("model_id", metavar="MODEL")
@config_option
@_WEIGHTS_DIR
def models_pull(model_id: str, config_path: Path, weights_dir: Path | None) -> None:
    """Download MODEL's pinned revision and verify every file against its manifest.

    MODEL is a catalog id, e.g. text2video-zero-pose. The pull also fetches the entry's
    components from their own repos (a ControlNet into MODEL_DIR/controlnet/) and the LoRA
    of every style trained on MODEL into MODEL_DIR/loras/FILE (each checked against the
    style's sha256; LoRAs pinned by CID come from the node's content store), so the node
    can serve any style a client names. Nothing is put in place unless all of it verifies.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from framecast.node.models import check_pullable, lora_styles, pull, store_fetcher
    from framecast.shared.ipfs.store import open_store

    entry = check_pullable(model_id)  # refuse before drawing a progress bar
    settings = _node_settings(config_path)
    target = weights_dir if weights_dir is not None else settings.weights_dir
    by_cid = any(s.lora is not None and s.lora.cid for s in lora_styles(entry))
    fetch_cid = store_fetcher(open_store(settings.store)) if by_cid else None
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"pulling {model_id}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        path = pull(model_id, target, progress=progress, fetch_cid=fetch_cid)
    styles = [s.id for s in lora_styles(entry)]
    with_styles = f" (with the LoRAs of styles {', '.join(styles)})" if styles else ""
    click.echo(f"{model_id}: verified{with_styles}, {path}")


@models_group.command("list")
@click.option("--all", "include_missing", is_flag=True, help="Also list models not present.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
@_WEIGHTS_DIR
def models_list(
    include_missing: bool, as_json: bool, config_path: Path, weights_dir: Path | None
) -> None:
    """Models present under the weights dir, each verified against its manifest.

    The check covers the entry's components (controlnet/) and the LoRAs of the styles
    trained on it (loras/): `incomplete` means a style's LoRA is missing, `invalid` that
    a file is missing or corrupted (the problem names it with expected and actual sha256).
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from framecast.node.models import list_models

    target = _weights_dir(config_path, weights_dir)
    models = list_models(target, include_missing=include_missing)
    if as_json:
        click.echo(json.dumps([m.as_json() for m in models], indent=2))
        return
    if not models:
        click.echo(f"no models under {target}; pull one with `framecast node models pull`")
        return
    table = Table("model", "state", "files", "size", "styles", "problem")
    for m in models:
        color = {"verified": "green", "invalid": "red"}.get(m.state, "yellow")
        table.add_row(
            m.id,
            f"[{color}]{m.state}[/]",
            str(m.files),
            f"{m.size_bytes / 1e6:.1f} MB",
            ", ".join(m.styles),
            m.problem or "",
        )
    Console().print(table)


# -- replay (docs/protocol.md §8 level 3) --------------------------------------------------


@node_group.command("replay")
@click.argument("job_id", metavar="JOB", type=click.IntRange(min=1))
@config_option
@click.option(
    "--result",
    "result_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The job's verified result folder (default: fetched by the CID delivered on chain).",
)
@click.option("--gateway", metavar="URL", help="Trustless gateway to fetch the result from.")
@network_option
@click.option(
    "--deployment",
    "deployment_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deployment file to use instead of the network's (default: the node config's).",
)
@click.option("--rpc-url", metavar="URL", help="RPC endpoint (default: the node config's).")
@_WEIGHTS_DIR
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds the replay may run.")
@click.option(
    "--replica",
    type=click.IntRange(min=0),
    help="Replicated job: which replica's revealed result to replay (its index).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def replay(
    job_id: int,
    config_path: Path,
    result_dir: Path | None,
    gateway: str | None,
    deployment_path: Path | None,
    rpc_url: str | None,
    weights_dir: Path | None,
    timeout: float,
    replica: int | None,
    as_json: bool,
) -> None:
    """Re-run JOB with its signed spec and compare frames with the delivery.

    Exit 0 on an exact or perceptual match, 1 on a mismatch.
    """
    from framecast.node.config import node_network
    from framecast.node.replay import (
        fetch_result,
        new_work_dir,
        read_chain_job,
        replay_job,
        store_fetcher,
    )
    from framecast.node.wiring import runtime_factory
    from framecast.shared.chain.bindings import Market
    from framecast.shared.errors import VerificationFailed
    from framecast.shared.networks import check_no_conflict, connect_network

    settings = _settings(config_path)
    if weights_dir is not None:
        settings = settings.model_copy(update={"weights_dir": weights_dir})
    if deployment_path is not None:
        check_no_conflict(_chosen_network(), deployment_path, framecast_home())
        settings = settings.model_copy(update={"deployment": deployment_path})
    if rpc_url is not None:
        settings = settings.model_copy(update={"rpc_url": rpc_url})
    network = node_network(settings)
    deployment = network.deployment
    w3 = connect_network(network, timeout=settings.rpc_timeout_s)
    chain_job = read_chain_job(
        Market(w3, deployment.market), job_id, from_block=deployment.deployed_block, replica=replica
    )
    if chain_job.result_cid is None:
        raise VerificationFailed(
            f"job {job_id} has no delivery on chain to replay",
            fix=f"wait for delivery (`framecast status {job_id} --wait`)",
        )
    from framecast.shared.ipfs.store import open_store

    work_dir = new_work_dir(settings.state_dir, job_id)
    store = settings.store
    if result_dir is None:
        result_dir = work_dir / "delivered"
        fetch_result(chain_job.result_cid, result_dir, store=store, gateway_url=gateway)
    make_runtime, image_digest = runtime_factory(settings)
    click.echo(f"replaying job {job_id} on the {settings.runtime} runtime…", err=True)
    runtime = make_runtime()
    try:
        report = replay_job(
            job_id=job_id,
            spec_bytes=chain_job.spec,
            result_dir=result_dir,
            runtime=runtime,
            runtime_name=settings.runtime,
            image_digest=image_digest,
            weights_root=settings.weights_dir,
            work_dir=work_dir,
            chain_frames_digest=chain_job.frames_digest,
            timeout_s=timeout,
            # Inputs (image-to-video, control) come from the node's store, as in the agent.
            fetch_input=store_fetcher(open_store(store)),
        )
    finally:
        runtime.close()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        _render_replay(report)
    if not report.passed:
        raise VerificationFailed(
            f"replay of job {job_id}: mismatch ({report.reason})",
            fix=f"dispute it with `framecast dispute {job_id}` in the challenge window; "
            f"the replay is kept in {report.replay_dir}",
        )


def _render_replay(report: Any) -> None:
    color = {"exact": "green", "perceptual": "yellow"}.get(report.verdict, "red")
    click.secho(f"replay of job {report.job_id}: {report.verdict}", fg=color)
    env = report.replay_environment
    click.echo(
        f"  ran      {report.model} seed {report.seed} on {env.runtime}/{env.device}"
        f"{' ' + env.gpu if env.gpu else ''} (torch {env.torch}) in {report.replay_seconds:.1f} s"
    )
    click.echo(f"  chain    {report.chain_frames_digest}")
    click.echo(f"  replay   {report.replay_frames_digest}")
    if report.environment_differences:
        click.echo(f"  differs  {', '.join(report.environment_differences)}")
    click.echo(f"  reason   {report.reason}")
    click.echo(f"  files    {report.replay_dir}")
