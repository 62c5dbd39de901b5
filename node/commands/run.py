"""`framecast node run`: the agent until SIGTERM/SIGINT, with its HTTP server."""

from __future__ import annotations

import signal
import threading
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
