"""`framecast status JOB [--wait]`, and the follow-then-fetch flow `submit --wait` shares."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
)
from framecast.client.credits import local_time
from framecast.client.delivery import fetch_and_report, follow_job
from framecast.client.jobs.follow import ProviderNote, provider_notes
from framecast.client.jobs.views import DELIVERED_STATES, JobDetails, job_details
from framecast.shared.amounts import format_fcc
from framecast.shared.cli_params import JOB_ID


@click.command("status")
@click.argument("job_id", metavar="JOB", type=JOB_ID)
@click.option("--wait", is_flag=True, help="Follow the job to delivery, then fetch and verify.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --wait: result folder (default <home>/jobs/JOB).",
)
@network_options
@json_option
@pass_client
def command(client: ClientContext, job_id: int, wait: bool, output: Path | None) -> None:
    """Show a job's state, price, deadlines and result (rebuilt from chain events)."""
    if wait:
        state = follow_job(client, job_id)
        if state in DELIVERED_STATES:
            fetch_and_report(client, job_id, output)
            return
    details = job_details(client.market(), job_id, from_block=client.deployment().deployed_block)
    notes = _provider_notes(client, details)
    if client.as_json:
        client.echo_json(
            {**details.model_dump(mode="json"), "providers": [n.model_dump() for n in notes]}
        )
        return
    render_details(details)
    if notes:
        click.echo("  what providers say:")
    for note in notes:
        if note.problem:
            click.echo(f"    {note.provider}: answer ignored ({note.problem})")
        elif note.state is None:
            click.echo(f"    {note.provider}: has not seen the job (or does not answer)")
        else:
            why = f": {note.reason}" if note.reason else ""
            click.echo(f"    {note.provider}: {note.state}{why}")


def _provider_notes(client: ClientContext, job: JobDetails) -> list[ProviderNote]:
    """For an open job: what each provider that could claim it says (why it skips it)."""
    if job.state != "open" or not job.model:
        return []
    from framecast.client import quote
    from framecast.shared.endpoints import is_loopback_url

    market = client.market()
    listings = quote.providers(market, from_block=client.deployment().deployed_block)
    return provider_notes(
        market, job.job_id, job.model, listings, allow_loopback=is_loopback_url(client.rpc_url)
    )


def render_details(job: JobDetails) -> None:
    click.secho(f"job {job.job_id}: {job.state}", bold=True)
    if job.replicated:
        render_replicated(job)
        return
    rows: list[tuple[str, str]] = [
        ("client", job.client),
        ("model", job.model or "(invalid spec)"),
        ("prompt", str((job.spec or {}).get("prompt", ""))),
        ("max price", format_fcc(job.max_price)),
        ("submitted", f"block {job.submitted_block}, tx {job.submitted_tx}"),
    ]
    if job.state == "open":
        rows.append(("claim by", local_time(job.claim_deadline)))
    if job.provider:
        rows.append(("provider", job.provider))
        rows.append(("price", format_fcc(job.price or 0)))
    if job.state == "claimed" and job.deliver_by:
        rows.append(("deliver by", local_time(job.deliver_by)))
    if job.result_cid:
        rows.append(("result", job.result_cid))
        rows.append(("video sha256", job.video_sha256 or ""))
        rows.append(("frames digest", job.frames_digest or ""))
    if job.state == "delivered" and job.challenge_ends:
        rows.append(("dispute until", local_time(job.challenge_ends) + _left(job)))
    _echo_rows(job, rows)
    expired = job.chain_time > job.deadline
    if job.state == "open" and expired:
        click.echo(f"no provider claimed it in time: `framecast reclaim {job.job_id}`")
    elif job.state == "claimed" and expired:
        click.echo(f"the provider missed its deadline: `framecast reclaim {job.job_id}`")
    elif job.result_cid:
        click.echo(f"fetch and verify with `framecast fetch {job.job_id} -o DIR`")


def _left(job: JobDetails) -> str:
    """ " (N s left)" while the challenge window is open: the time a dispute still has."""
    from framecast.client.verify import dispute_seconds_left

    left = dispute_seconds_left(job)
    return f" ({left} s left to dispute)" if left is not None else ""


def render_replicated(job: JobDetails) -> None:
    """A replicated job: the request, its phase deadline, then one block per replica."""
    click.secho(f"job {job.job_id}: {job.state}", bold=True)
    claimed = len(job.replica_list)
    agreement = "perceptual (arbiter-attested) or identical" if job.perceptual else "identical"
    rows: list[tuple[str, str]] = [
        ("client", job.client),
        ("model", job.model or "(invalid spec)"),
        ("prompt", str((job.spec or {}).get("prompt", ""))),
        ("replicas", f"{job.replicas} ({claimed} claimed); agreement: {agreement} frames"),
        (
            "max price",
            f"{format_fcc(job.max_price)} per replica × {job.replicas} = "
            f"{format_fcc(job.max_price * job.replicas)} escrowed",
        ),
        ("submitted", f"block {job.submitted_block}, tx {job.submitted_tx}"),
    ]
    phase = {
        "open": "claim by",
        "claimed": "commit by",
        "revealing": "reveal by",
        "delivered": "dispute until",
        "disputed": "resolve by",
    }.get(job.state)
    if phase:
        left = _left(job) if job.state == "delivered" else ""
        rows.append((phase, local_time(job.deadline) + left))
    if job.digests_agree is not None:
        rows.append(("digests", "agree" if job.digests_agree else "DIFFER"))
    if job.frames_digest:
        rows.append(("agreed digest", job.frames_digest))
    _echo_rows(job, rows)
    for r in job.replica_list:
        click.echo(f"  replica {r.index}: {r.provider} at {format_fcc(r.price)} — {r.outcome}")
        if r.result_cid:
            click.echo(f"      result        {r.result_cid}")
            click.echo(f"      video sha256  {r.video_sha256}")
            click.echo(f"      frames digest {r.frames_digest}")
        if r.payout is not None:
            click.echo(f"      paid          {format_fcc(r.payout)}")
        if r.refunded or r.slashed:
            click.echo(
                f"      refunded      {format_fcc(r.refunded)} (+ {format_fcc(r.slashed)} slashed)"
            )
    if job.state in ("open", "claimed", "revealing") and job.chain_time > job.deadline:
        click.echo(f"the {phase} deadline has passed: `framecast reclaim {job.job_id}`")
    elif any(r.result_cid for r in job.replica_list):
        click.echo(f"fetch and verify every replica with `framecast verify {job.job_id}`")


def _echo_rows(job: JobDetails, rows: list[tuple[str, str]]) -> None:
    """Print a job's rows, ending with how its dispute and money went (any kind of job)."""
    if job.dispute_reason:
        rows.append(("disputed for", job.dispute_reason))
    if job.refunded:
        rows.append(("refunded", format_fcc(job.refunded)))
    if job.slashed:
        rows.append(("slashed to you", format_fcc(job.slashed)))
    for label, value in rows:
        click.echo(f"  {label:<14}{value}")
