"""`framecast cancel|reclaim|dispute JOB`: the client's actions on its jobs."""

from __future__ import annotations

import hashlib

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
    wallet_option,
)
from framecast.client.jobs import actions
from framecast.client.jobs.views import JobDetails, job_details
from framecast.shared.amounts import format_fcc
from framecast.shared.chain.bindings import DisputeReason
from framecast.shared.cli_params import JOB_ID

#: The defects a client can name. ReplicaMismatch is raised by the market itself when the
#: replicas of a job disagree; a client naming it would only mislead the arbiter.
REASONS: dict[str, DisputeReason] = {
    r.name.lower().replace("_", "-"): r
    for r in DisputeReason
    if r is not DisputeReason.REPLICA_MISMATCH
}


def _show(client: ClientContext, result: actions.ActionResult, headline: str) -> None:
    if client.as_json:
        client.echo_json(result.model_dump(mode="json"))
        return
    click.secho(headline, fg="green")
    click.echo(f"  state     {result.state}")
    click.echo(f"  tx        {result.tx_hash} (block {result.block})")
    if result.refunded:
        click.echo(f"  refunded  {format_fcc(result.refunded)}")
    if result.slashed:
        click.echo(f"  slashed   {format_fcc(result.slashed)} (provider collateral, to you)")
    click.echo(f"  free      {format_fcc(result.free)}")


job_argument = click.argument("job_id", metavar="JOB", type=JOB_ID)


@click.command("cancel")
@job_argument
@wallet_option
@network_options
@json_option
@pass_client
def cancel(client: ClientContext, job_id: int) -> None:
    """Cancel a job no provider has claimed yet; the escrow is freed at once."""
    result = actions.cancel(client.market(signing=True), job_id)
    _show(client, result, f"cancelled job {job_id}")


@click.command("reclaim")
@job_argument
@wallet_option
@network_options
@json_option
@pass_client
def reclaim(client: ClientContext, job_id: int) -> None:
    """Take back the escrow of a job not claimed (or not delivered) in time."""
    result = actions.reclaim(client.market(signing=True), job_id)
    _show(client, result, f"reclaimed job {job_id}")


@click.command("dispute")
@job_argument
@click.option(
    "--reason",
    type=click.Choice(sorted(REASONS)),
    help="Default: verify the result first and dispute what fails.",
)
@wallet_option
@network_options
@json_option
@pass_client
def dispute(client: ClientContext, job_id: int, reason: str | None) -> None:
    """Dispute a delivered job within its challenge window (locks the dispute bond).

    Without --reason the result is fetched and verified first: a result that passes is
    not disputed, one that fails is disputed for what failed, with the sha256 of the
    verification report as evidence.
    """
    from framecast.shared.errors import FramecastError, StorageError

    deployment = client.deployment()
    market = client.market(signing=True)
    evidence = b"\0" * 32
    chosen = REASONS[reason] if reason else None
    if chosen is None:
        job = job_details(market, job_id, from_block=deployment.deployed_block)
        if job.replicated:
            chosen, evidence = _replicated_reason(client, job)
            result = actions.dispute(market, job_id, chosen, evidence)
            _show(client, result, f"disputed job {job_id} ({chosen.name.lower()})")
            return
        try:
            report = client.fetch_verified(job, None)
        except StorageError as exc:
            chosen, evidence = DisputeReason.NOT_RETRIEVABLE, _digest(str(exc))
        else:
            if report.ok:
                raise FramecastError(
                    f"job {job_id} passes verification levels 1–2; not disputing it",
                    fix="pass --reason to dispute anyway (e.g. replay-mismatch after a replay)",
                )
            chosen, evidence = report.dispute_reason(), _digest(report.model_dump_json())
            click.echo(report.failure_message(), err=True)
    result = actions.dispute(market, job_id, chosen, evidence)
    _show(client, result, f"disputed job {job_id} ({chosen.name.lower()})")


def _replicated_reason(client: ClientContext, job: JobDetails) -> tuple[DisputeReason, bytes]:
    """Verify every revealed replica; dispute for the first that fails (a copied replica
    fails level 2: its receipt is another provider's)."""
    from framecast.shared.errors import FramecastError

    report = client.fetch_verified_replicas(job, None)
    failures = report.failures()
    if not failures:
        raise FramecastError(
            f"every revealed replica of job {job.job_id} passes verification levels 1–2; "
            "not disputing it",
            fix="pass --reason to dispute anyway",
        )
    click.echo(report.failure_message(), err=True)
    return failures[0].dispute_reason(), _digest(report.model_dump_json())


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
