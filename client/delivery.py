"""Following a job to delivery and reporting its verified result, in the terminal: the
flow `submit --wait`, `status --wait`, `fetch` and `demo` share (commands do not import
each other, so it lives here, next to the context they all take)."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client.context import ClientContext
from framecast.client.jobs.follow import Progress, follow
from framecast.client.jobs.views import job_details
from framecast.client.verify import LEVEL_NAMES, ReplicatedReport, VerifyReport
from framecast.shared.chain.bindings import JobState
from framecast.shared.errors import VerificationFailed


def follow_job(client: ClientContext, job_id: int) -> JobState:
    """Follow with a progress bar; Ctrl-C stops following, never the job."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as ProgressBar  # `Progress` is the job's update

    from framecast.client import quote
    from framecast.shared.endpoints import is_loopback_url

    market = client.market()
    from_block = client.deployment().deployed_block
    try:
        with ProgressBar(
            TextColumn("job {task.fields[job]}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=False,
            disable=client.as_json,
        ) as bar:
            task = bar.add_task("submitted", total=100, job=job_id)

            def show(update: Progress) -> None:
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

            return follow(
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
    settings = client.settings
    deployment = client.deployment()
    job = job_details(client.market(), job_id, from_block=deployment.deployed_block)
    if job.replicated:
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
        _fine_tune_lines(Path(report.path))
    _dispute_window(report.job_id, report.dispute_seconds_left)


def _fine_tune_lines(path: Path) -> None:
    """A verified fine-tune result: the LoRA's CID (what `submit --lora` takes) and loss."""
    from framecast.shared.receipt import Receipt

    receipt = path / "receipt.json"
    if not (path / "lora.safetensors").is_file() or not receipt.is_file():
        return
    record = Receipt.from_json(receipt.read_bytes()).body.fine_tune
    if record is None:
        return
    click.echo(
        f"  lora  {record.lora_cid} (rank {record.rank}, {record.steps} steps, "
        f"final loss {record.final_loss_micro / 1e6:.4f})"
    )
    click.echo(f"  use it: framecast submit --lora {path / 'lora.safetensors'} ...")


def _dispute_window(job_id: int, left: int | None) -> None:
    """How long is left to dispute (a delivered job inside its challenge window)."""
    if left is not None:
        click.echo(f"  {left} s left to dispute (`framecast dispute {job_id}`)")


def report_replicas(client: ClientContext, report: ReplicatedReport) -> None:
    """Per replica: passed, failed (with why) or copied; raises if any revealed one fails."""
    if client.as_json:
        client.echo_json(report.model_dump(mode="json"))
    else:
        for replica in report.replicas:
            head = f"replica {replica.index} ({replica.provider}, {replica.outcome})"
            if replica.ok:
                click.echo(f"  {click.style('ok  ', fg='green')} {head}: levels 1–2 pass")
            else:
                click.echo(f"  {click.style('FAIL', fg='red')} {head}: {replica.failure_message()}")
            if replica.result_cid:
                click.echo(f"         cid {replica.result_cid}")
            if replica.report is not None and replica.report.quarantined:
                click.echo(f"         quarantined in {replica.report.path}")
        if report.digests_agree is not None:
            click.echo(f"  frames digests {'agree' if report.digests_agree else 'DIFFER'}")
        if report.ok:
            click.secho(
                f"job {report.job_id} verified: all {len(report.replicas)} revealed replicas pass "
                "levels 1 (integrity) + 2 (provenance)",
                fg="green",
            )
        if report.path:
            click.echo(f"  path  {report.path} (replica {report.kept_replica})")
        _dispute_window(report.job_id, report.dispute_seconds_left)
    if not report.ok:
        kept = ""
        if report.path:
            kept = f"; replica {report.kept_replica} passed and is in {report.path}"
        raise VerificationFailed(
            report.failure_message() + kept,
            fix=f"dispute it with `framecast dispute {report.job_id}` in the challenge window",
        )
