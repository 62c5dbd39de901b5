"""`framecast status JOB [--wait]`, and the follow-then-fetch flow `submit --wait` shares."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client import jobs as service
from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
)
from framecast.client.credits import format_fcc, local_time
from framecast.shared.chain.bindings import JobState
from framecast.shared.errors import VerificationFailed


def follow_job(client: ClientContext, job_id: int) -> JobState:
    """Follow with a progress bar; Ctrl-C stops following, never the job."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from framecast.client import quote
    from framecast.shared.endpoints import is_loopback_url

    market = client.market()
    from_block = client.deployment().deployed_block
    try:
        with Progress(
            TextColumn("job {task.fields[job]}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=False,
            disable=client.as_json,
        ) as bar:
            task = bar.add_task("submitted", total=100, job=job_id)

            def show(update: service.Progress) -> None:
                text = update.describe()
                done = {"open": 0, "claimed": 10}.get(update.state, 100)
                if update.replicas > 1:
                    # Claims 0→10 %, commits (the runs) 10→60 %, reveals 60→95 %.
                    k = update.replicas
                    done = {
                        "open": round(10 * update.claims / k),
                        "claimed": 10 + round(50 * update.commits / k),
                        "revealing": 60 + round(35 * update.reveals / max(1, update.commits)),
                    }.get(update.state, 100)
                elif update.state == "claimed" and update.node_state:
                    text = f"{update.node_state} on {update.provider}"
                    if update.fraction is not None:
                        # Claim = 10 %, the run 10→95 %, delivery on chain the rest.
                        done = 10 + round(85 * update.fraction)
                        text += f" ({update.fraction:.0%})"
                bar.update(task, completed=done, description=text)

            return service.follow(
                market,
                job_id,
                listings=lambda: quote.providers(market, from_block=from_block),
                on_progress=show,
                allow_loopback=is_loopback_url(client.rpc_url),
                on_notice=lambda text: click.echo(text, err=True),
            )
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following; job {job_id} goes on. Resume with "
            f"`framecast status {job_id} --wait`",
            err=True,
        )
        raise SystemExit(130) from None


def fetch_and_report(client: ClientContext, job_id: int, output: Path | None) -> None:
    """Fetch the delivered result of ``job_id``, verify levels 1–2 and print the summary."""
    from framecast.client.commands.verify import render_report

    settings = client.settings
    deployment = client.deployment()
    job = service.job_details(client.market(), job_id, from_block=deployment.deployed_block)
    if job.replicated:
        from framecast.client.commands.verify import report_replicas

        report_replicas(
            client,
            client.fetch_verified_replicas(job, output or settings.downloads / str(job_id)),
        )
        return
    report = client.fetch_verified(job, output or settings.downloads / str(job_id))
    render_report(client, report)
    if not report.ok:
        raise VerificationFailed(
            report.failure_message() + f"; the downloaded bytes are quarantined in {report.path}",
            fix=f"dispute it with `framecast dispute {job_id}` before the challenge window ends",
        )


@click.command("status")
@click.argument("job_id", metavar="JOB", type=click.IntRange(min=1))
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
        if state in service.DELIVERED_STATES:
            fetch_and_report(client, job_id, output)
            return
    details = service.job_details(
        client.market(), job_id, from_block=client.deployment().deployed_block
    )
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


def _provider_notes(client: ClientContext, job: service.JobDetails) -> list[service.ProviderNote]:
    """For an open job: what each provider that could claim it says (why it skips it)."""
    if job.state != "open" or not job.model:
        return []
    from framecast.client import quote
    from framecast.shared.endpoints import is_loopback_url

    market = client.market()
    listings = quote.providers(market, from_block=client.deployment().deployed_block)
    return service.provider_notes(
        market, job.job_id, job.model, listings, allow_loopback=is_loopback_url(client.rpc_url)
    )


def render_details(job: service.JobDetails) -> None:
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


def _left(job: service.JobDetails) -> str:
    """ " (N s left)" while the challenge window is open: the time a dispute still has."""
    from framecast.client.verify import dispute_seconds_left

    left = dispute_seconds_left(job)
    return f" ({left} s left to dispute)" if left is not None else ""


def render_replicated(job: service.JobDetails) -> None:
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


def _echo_rows(job: service.JobDetails, rows: list[tuple[str, str]]) -> None:
    """Print a job's rows, ending with how its dispute and money went (any kind of job)."""
    if job.dispute_reason:
        rows.append(("disputed for", job.dispute_reason))
    if job.refunded:
        rows.append(("refunded", format_fcc(job.refunded)))
    if job.slashed:
        rows.append(("slashed to you", format_fcc(job.slashed)))
    for label, value in rows:
        click.echo(f"  {label:<14}{value}")
