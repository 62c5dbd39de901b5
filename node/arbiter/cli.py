"""`framecast arbiter` — the dispute arbiter's commands (contributed by entry point).

The arbiter is an operator role: its key holds the market's ARBITER_ROLE, and it uses a
node config (`framecast node init --devnet-account arbiter` on the devnet) for the RPC,
keystore, weights, runtime and content store it replays with.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from framecast.node.arbiter.service import Arbiter, ArbiterDeps, Decision
from framecast.node.commands.options import _settings, config_option, network_option, rpc_url_option
from framecast.node.config import NodeSettings
from framecast.shared.cli_params import JOB_ID, Seconds
from framecast.shared.errors import ConfigError


@click.group("arbiter")
def arbiter_group() -> None:
    """Dispute arbiter: replay disputed jobs and resolve them on chain."""


@contextmanager
def open_arbiter(settings: NodeSettings) -> Iterator[Arbiter]:
    """Wire an arbiter from a node config: chain, key, runtime, store (closed on exit)."""
    from framecast.node.config import node_network
    from framecast.node.replay import node_retriever, retrieval_fetcher
    from framecast.node.wiring import runtime_factory
    from framecast.shared.chain.bindings import bind
    from framecast.shared.chain.sender import TxSender
    from framecast.shared.keystore import unlock_keystore
    from framecast.shared.networks import connect_network

    account = unlock_keystore(
        settings.keystore,
        password_file=settings.password_file,
        prompt=f"password for {settings.keystore}",
    )
    network = node_network(settings)
    deployment = network.deployment
    w3 = connect_network(network)
    _, market = bind(w3, deployment, TxSender(w3, account))
    if not market.is_arbiter(account.address):
        raise ConfigError(
            f"{account.address} does not hold ARBITER_ROLE in the market {deployment.market}",
            fix="use the arbiter's keystore in this config (on the devnet: "
            "`framecast node init --devnet-account arbiter --config arbiter.toml`)",
        )
    store = settings.store
    make_runtime, image_digest = runtime_factory(settings)
    runtime = make_runtime()
    try:
        yield Arbiter(
            ArbiterDeps(
                deployment=deployment,
                market=market,
                runtime=runtime,
                runtime_name=settings.runtime,
                image_digest=image_digest,
                weights_root=settings.weights_dir,
                state_dir=settings.state_dir,
                store=store,
                # Inputs (image-to-video, control) through the one retrieval path.
                fetch_input=retrieval_fetcher(
                    node_retriever(store, public_gateways=settings.public_gateways)
                ),
                public_gateways=tuple(settings.public_gateways),
            )
        )
    finally:
        runtime.close()


@arbiter_group.command("run")
@config_option
@network_option
@rpc_url_option
@click.option("--log-format", type=click.Choice(["json", "text"]), default="text")
@click.option(
    "--poll",
    type=Seconds(0, 3600, low_open=True),
    default=2.0,
    show_default=True,
    help="Seconds between chain scans.",
)
def run(config_path: Path, log_format: str, poll: float) -> None:
    """Watch for disputes; replay and resolve each until SIGTERM/SIGINT."""
    from framecast.node import logs

    logs.configure(json_logs=log_format == "json")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with open_arbiter(_settings(config_path)) as arbiter:
        click.echo("arbiter watching for disputes…", err=True)
        arbiter.run_forever(stop, poll_interval_s=poll)


@arbiter_group.command("decide")
@click.argument("job_id", metavar="JOB", type=JOB_ID)
@config_option
@network_option
@rpc_url_option
@click.option("--dry-run", is_flag=True, help="Judge and print, but do not resolve on chain.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def decide(job_id: int, config_path: Path, dry_run: bool, as_json: bool) -> None:
    """Judge one disputed JOB now (and resolve it unless --dry-run)."""
    with open_arbiter(_settings(config_path)) as arbiter:
        decision = arbiter.decide(job_id)
        if not dry_run:
            decision = arbiter.resolve(decision)
    if as_json:
        click.echo(decision.model_dump_json(indent=2))
    else:
        render(decision)


def render(decision: Decision) -> None:
    kind = "replicated" if decision.replicated else "single-provider"
    click.echo(
        f"job {decision.job_id} ({kind}, dispute: {decision.claimed_defect}, perceptual "
        f"agreement {'allowed' if decision.perceptual else 'not allowed'})"
    )
    for v in decision.verdicts:
        who = f"replica {v.index}" if v.index is not None else "provider"
        mark = click.style("AT FAULT", fg="red") if v.at_fault else click.style("ok", fg="green")
        click.echo(f"  {who} {v.provider}: {mark} [{v.defect}] {v.detail}")
    click.echo(
        f"  decided in {decision.decide_seconds:.1f} s; fault mask {bin(decision.fault_mask)}"
    )
    if decision.outcome:
        click.echo(
            f"  outcome: {decision.outcome}"
            + (f" (tx {decision.tx_hash})" if decision.tx_hash else "")
        )
    sys.stdout.flush()
