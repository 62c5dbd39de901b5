"""`framecast verify PATH_OR_JOB`: levels 1–2 of DESIGN §8."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client import jobs as service
from framecast.client.context import (
    ClientContext,
    json_option,
    maps_rpc_errors,
    network_options,
    pass_client,
)
from framecast.client.verify import LEVEL_NAMES, VerifyReport
from framecast.shared.errors import VerificationFailed


def render_report(client: ClientContext, report: VerifyReport) -> None:
    if client.as_json:
        client.echo_json(report.model_dump(mode="json"))
        return
    for check in report.checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        line = f"  {mark} L{check.level} {check.name}"
        if not check.ok:
            line += f": expected {check.expected}, got {check.actual}"
            if check.detail:
                line += f" ({check.detail})"
        click.echo(line)
    click.echo(f"  --   L2 frames_digest: {report.frames_digest}")
    if report.ok:
        passed = " + ".join(f"{n} ({LEVEL_NAMES[n]})" for n in (1, 2))
        click.secho(f"job {report.job_id} verified: levels {passed}", fg="green")
        click.echo(f"  cid   {report.result_cid}")
        click.echo(f"  path  {report.path}")


@click.command("verify")
@click.argument("target", metavar="PATH_OR_JOB")
@click.option(
    "--job",
    "job_id",
    type=click.IntRange(min=1),
    help="With a PATH: the job it claims to be (default: the receipt's job id).",
)
@network_options
@json_option
@pass_client
@maps_rpc_errors
def command(client: ClientContext, target: str, job_id: int | None) -> None:
    """Check a result folder, or a job's result (fetched, then discarded), against the chain."""
    from framecast.client.verify import fetch_verified, verify_dir
    from framecast.shared.receipt import Receipt

    deployment = client.deployment()
    market = client.market()
    path = Path(target)
    if target.isdigit() and not path.exists():
        settings = client.settings
        job = service.job_details(market, int(target), from_block=deployment.deployed_block)
        report = fetch_verified(
            job,
            None,
            chain_id=deployment.chain_id,
            market=deployment.market,
            gateway_url=settings.gateway_url,
            blocks=settings.blocks,
            quarantine=settings.quarantine,
        )
    else:
        if not path.is_dir():
            raise click.BadParameter(
                f"{target} is neither a job id nor a result folder", param_hint="PATH_OR_JOB"
            )
        if job_id is None:
            try:
                job_id = Receipt.from_json((path / "receipt.json").read_bytes()).body.job_id
            except OSError:
                raise VerificationFailed(
                    f"{path} has no readable receipt.json to name its job",
                    fix="pass --job JOB",
                ) from None
        job = service.job_details(market, job_id, from_block=deployment.deployed_block)
        report = verify_dir(path, job, chain_id=deployment.chain_id, market=deployment.market)
    render_report(client, report)
    if not report.ok:
        where = f"; quarantined in {report.path}" if report.quarantined else ""
        raise VerificationFailed(
            report.failure_message() + where,
            fix=f"dispute it with `framecast dispute {report.job_id}` in the challenge window",
        )
