"""`framecast jobs [--mine]`: recent jobs on the market, from `JobSubmitted` events."""

from __future__ import annotations

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
    wallet_option,
)
from framecast.client.jobs.views import list_jobs
from framecast.shared.amounts import format_fcc


@click.command("jobs")
@click.option("--mine", is_flag=True, help="Only jobs the wallet submitted.")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Newest jobs to show.",
)
@wallet_option
@network_options
@json_option
@pass_client
def command(client: ClientContext, mine: bool, limit: int) -> None:
    """List recent jobs (all clients, or --mine), newest first."""
    rows = list_jobs(
        client.market(),
        from_block=client.deployment().deployed_block,
        client=client.address() if mine else None,
        limit=limit,
    )
    if client.as_json:
        client.echo_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        click.echo("no jobs yet — submit one with `framecast submit --prompt ... --model ...`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("job", "state", "model", "k", "max price", "client", "prompt"):
        table.add_column(column, justify="right" if column in {"job", "k", "max price"} else "left")
    for row in rows:
        prompt = row.prompt or ""
        table.add_row(
            str(row.job_id),
            row.state,
            row.model or "?",
            str(row.replicas) + ("~" if row.perceptual else ""),
            format_fcc(row.max_price, unit=False),
            f"{row.client[:8]}…{row.client[-4:]}",
            prompt if len(prompt) <= 40 else prompt[:39] + "…",
        )
    Console().print(table)
