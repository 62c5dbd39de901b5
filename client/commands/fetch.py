"""`framecast fetch JOB -o DIR`: verified retrieval of a job's result."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
)
from framecast.client.delivery import fetch_and_report
from framecast.shared.cli_params import JOB_ID


@click.command("fetch")
@click.argument("job_id", metavar="JOB", type=JOB_ID)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Result folder, new or empty (default <home>/jobs/JOB).",
)
@click.option("--gateway", metavar="URL", help="Trustless gateway (or FRAMECAST_GATEWAY_URL).")
@network_options
@json_option
@pass_client
def command(client: ClientContext, job_id: int, output: Path | None, gateway: str | None) -> None:
    """Download a delivered result, verify it (levels 1–2) and keep it only if it passes."""
    if gateway:
        client.overrides["gateway_url"] = gateway
    fetch_and_report(client, job_id, output)
