"""`framecast explorer`: serve the read-only web explorer for the chosen network."""

from __future__ import annotations

import json
import sys
import threading
import webbrowser
from pathlib import Path

import click

from framecast.client.context import ClientContext, json_option, network_options, pass_client


@click.command("explorer")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (the pages are read-only; keep loopback unless you "
              "serve them behind https).")  # fmt: skip
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535),
              help="Port to serve on (0: a free one).")  # fmt: skip
@click.option("--db", metavar="PATH|URL",
              help="Index database: a SQLite file, or a postgresql:// URL (needs the "
              "explorer-postgres extra); default: <home>/explorer/<network>.sqlite3.")  # fmt: skip
@click.option("--gateway", "gateways", multiple=True, metavar="URL",
              help="Trustless gateway the pages fetch videos from, after the provider's "
              "own (repeatable); default: FRAMECAST_GATEWAY_URL and public_gateways.")  # fmt: skip
@click.option(
    "--serve-store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also serve this embedded blockstore as a gateway for the pages "
    "(default on the local devnet: <home>/blocks, where its node pins).",
)
@click.option(
    "--node-url",
    metavar="URL",
    help="The local node's HTTP port, for the Node page (slots and jobs).",
)
@click.option(
    "--reindex",
    is_flag=True,
    help="Drop the index and rebuild it from the chain (after a schema change).",
)
@click.option("--confirmations", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Blocks an event must be buried under before it is indexed.")  # fmt: skip
@click.option("--job", "job_id", type=click.IntRange(min=0), help="Print this job's page URL.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@network_options
@json_option
@pass_client
def command(
    client: ClientContext, host: str, port: int, db: str | None, gateways: tuple[str, ...],
    serve_store: Path | None, node_url: str | None, reindex: bool, confirmations: int,
    job_id: int | None, open_browser: bool,
) -> None:  # fmt: skip
    """Serve the explorer (jobs, gallery, credits, providers, node) until Ctrl-C."""
    from framecast.client.explorer import default_db, open_explorer
    from framecast.shared.endpoints import is_loopback_url

    settings = client.settings
    network = client.network()
    if serve_store is None and is_loopback_url(client.rpc_url) and settings.blocks.is_dir():
        serve_store = settings.blocks
    listed = list(gateways) or [
        g for g in [settings.gateway_url, *settings.public_gateways] if g is not None
    ]
    app = open_explorer(
        client.web3(), client.deployment(),
        db=db or default_db(settings.home, network.name), host=host, port=port,
        gateways=listed, node_url=node_url, allow_loopback=is_loopback_url(client.rpc_url),
        reindex=reindex, confirmations=confirmations, serve_store=serve_store,
    )  # fmt: skip
    url = app.job_url(job_id) if job_id is not None else app.url
    status = app.indexer.status
    if client.as_json:
        # One line, flushed: a script reads it while the server keeps running.
        info = {"url": app.url, "page": url, "network": network.name,
                "indexed_to": status.cursor, "events": status.events}  # fmt: skip
        click.echo(json.dumps(info))
        sys.stdout.flush()
    else:
        click.secho(f"explorer for {network.name} at {url}", fg="green")
        click.echo(f"  indexed to block {status.cursor} ({status.events} events); Ctrl-C stops")
    if open_browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
