"""`framecast node run`: the agent until SIGTERM/SIGINT, with its HTTP server.

Started while its RPC does not answer, the node waits (capped backoff, one log line each
way, `/healthz` 503 with the reason) instead of exiting; only a configuration error (a
wrong chain id, no market at the address) ends it.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import click

from framecast.node.commands.options import (
    _settings,
    _unlock,
    config_option,
    network_option,
    rpc_url_option,
)
from framecast.shared.cli_params import Seconds


@click.command("run")
@config_option
@network_option
@rpc_url_option
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json")
@click.option(
    "--grace",
    type=Seconds(0, 24 * 3600),
    default=30.0,
    show_default=True,
    help="Seconds to finish jobs on stop.",
)
def run(config_path: Path, log_format: str, grace: float) -> None:
    """Run the agent until SIGTERM/SIGINT; running jobs finish or are parked safely."""
    from web3 import Web3

    from framecast.node import logs
    from framecast.node.config import node_network
    from framecast.node.http import NodeRoutes, serve_node_http
    from framecast.node.metrics import NodeMetrics, waiting_report
    from framecast.node.wiring import (
        build_agent,
        connect_chain,
        node_routes,
        until_chain_answers,
    )
    from framecast.shared.errors import RpcUnavailable
    from framecast.shared.ipfs.store import open_store

    logs.configure(json_logs=log_format == "json")
    settings = _settings(config_path)
    address = settings.http_address()  # a bad http_bind fails before the password prompt
    account = _unlock(settings)
    rpc_url = node_network(settings).rpc_url
    if settings.advertise_url is not None:
        settings.advertised_url(rpc_url)  # refuse an unreachable advertise_url at start
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = open_store(settings.store)
    metrics = NodeMetrics(settings.gpu_slots)
    since = time.time()
    waiting: list[RpcUnavailable | None] = [None]
    server = None
    if address is not None:
        # Up before the chain: /healthz answers "not ready, waiting for the RPC" meanwhile.
        starting = NodeRoutes(
            store=store,
            metrics=metrics,
            health=lambda: waiting_report(
                rpc_url, waiting[0].reason if waiting[0] else None, since
            ),
        )
        server = serve_node_http(starting, *address, legacy=settings.http_bind is None)
        host, port = address[0], server.server_address[1]
        bound = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        click.echo(f"metrics on {bound}/metrics", err=True)
        click.echo(f"gateway on {bound}/ipfs/ and jobs on {bound}/jobs/ID", err=True)

    def note(exc: RpcUnavailable | None) -> None:
        waiting[0] = exc

    chain: list[Web3] = []
    try:
        if not until_chain_answers(
            settings, lambda: chain.append(connect_chain(settings)), stop=stop, on_waiting=note
        ):
            return  # stopped while waiting: nothing started, nothing to park
        agent = build_agent(settings, account, w3=chain[-1], store=store, metrics=metrics)
        try:
            if not until_chain_answers(settings, agent.startup, stop=stop, on_waiting=note):
                return
            if server is not None:
                server.routes = node_routes(agent)
            agent.run_forever(stop)
        finally:
            agent.shutdown(grace_s=grace)
            agent.state.close()
    finally:
        if server:
            server.shutdown()
