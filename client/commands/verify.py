"""`framecast verify PATH_OR_JOB [--replay]`: levels 1–2 of docs/protocol.md §8 (3 on request)."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from framecast.client.context import (
    ClientContext,
    json_option,
    network_options,
    pass_client,
)
from framecast.client.delivery import render_report, report_replicas
from framecast.client.jobs.views import JobDetails, job_details
from framecast.client.verify import VerifyReport
from framecast.shared.cli_params import JOB_ID
from framecast.shared.errors import VerificationFailed

if TYPE_CHECKING:
    from framecast.shared.replay_report import ReplayReport


@click.command("verify")
@click.argument("target", metavar="PATH_OR_JOB")
@click.option(
    "--job",
    "job_id",
    type=JOB_ID,
    help="With a PATH: the job it claims to be (default: the receipt's job id).",
)
@click.option(
    "--replay",
    is_flag=True,
    help="Level 3: after levels 1–2 pass, re-run the job here (`framecast node replay`) "
    "and compare frames; needs framecast[node,pipelines] and `framecast node init`. "
    "Single-provider jobs only.",
)
@network_options
@json_option
@pass_client
def command(client: ClientContext, target: str, job_id: int | None, replay: bool) -> None:
    """Check a result folder, or a job's result (fetched, then discarded), against the chain."""
    with ExitStack() as stack:
        _verify(client, target, job_id, replay, stack)


def _verify(
    client: ClientContext, target: str, job_id: int | None, replay: bool, stack: ExitStack
) -> None:
    from framecast.client.verify import verify_dir
    from framecast.shared.receipt import Receipt

    if replay:
        from framecast.client.replay import check_replay_available

        check_replay_available()  # before any download
    deployment = client.deployment()
    market = client.market()
    path = Path(target)
    if target.isdigit() and not path.exists():
        number = JOB_ID.convert(target, None, click.get_current_context())
        job = job_details(market, number, from_block=deployment.deployed_block)
        if job.replicated:
            _refuse_replay(job, replay)
            report_replicas(
                client,
                client.fetch_verified_replicas(job, None),
            )
            return
        # A replay needs the files: keep the verified download until it is done.
        keep = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="framecast-")))
        report = client.fetch_verified(job, keep / "result" if replay else None)
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
        job = job_details(market, job_id, from_block=deployment.deployed_block)
        if job.replicated:
            _refuse_replay(job, replay)
            report = _verify_replica_dir(path, job, deployment.chain_id, deployment.market)
        else:
            report = verify_dir(path, job, chain_id=deployment.chain_id, market=deployment.market)
    if not report.ok or not replay:
        render_report(client, report)
    if not report.ok:
        where = f"; quarantined in {report.path}" if report.quarantined else ""
        raise VerificationFailed(
            report.failure_message() + where,
            fix=f"dispute it with `framecast dispute {report.job_id}` in the challenge window",
        )
    if replay:
        from framecast.client.replay import run_replay

        if not client.as_json:
            render_report(client, report)
            click.echo(f"  ..   L3 replaying job {report.job_id} with `framecast node replay`…")
        outcome = run_replay(
            report.job_id,
            Path(report.path),
            # The node side resolves the same network (or the same explicit file).
            deployment=client.settings.deployment,
            rpc_url=client.settings.rpc_url,
            network=None if client.settings.deployment else client.network().name,
        )
        render_replay(client, report, outcome)
        if not outcome.passed:
            raise VerificationFailed(
                f"job {report.job_id} fails verification at level 3 (replay): {outcome.reason}",
                fix=f"dispute it with `framecast dispute {report.job_id}` in the challenge "
                f"window; the replay is kept in {outcome.replay_dir}",
            )


def render_replay(client: ClientContext, report: VerifyReport, outcome: ReplayReport) -> None:
    """Level 3 after levels 1–2: one line per fact, or the combined JSON."""
    if client.as_json:
        data = report.model_dump(mode="json")
        data["replay"] = json.loads(outcome.model_dump_json())
        client.echo_json(data)
        return
    color = {"exact": "green", "perceptual": "yellow"}.get(outcome.verdict, "red")
    mark = click.style("ok  ", fg="green") if outcome.passed else click.style("FAIL", fg="red")
    click.echo(f"  {mark} L3 replay: {click.style(outcome.verdict, fg=color)} — {outcome.reason}")
    click.echo(f"         chain frames_digest  {outcome.chain_frames_digest}")
    click.echo(f"         replay frames_digest {outcome.replay_frames_digest}")
    if outcome.passed:
        click.secho(
            f"job {report.job_id} verified: levels 1 (integrity) + 2 (provenance) + "
            f"3 (replay: {outcome.verdict})",
            fg="green",
        )


def _refuse_replay(job: JobDetails, replay: bool) -> None:
    if replay:
        raise VerificationFailed(
            f"--replay is for single-provider jobs; job {job.job_id} has {job.replicas} "
            "replicas, whose agreement the market already compares",
            fix=f"verify its replicas with `framecast verify {job.job_id}` (levels 1–2), and "
            f"replay one with `framecast node replay {job.job_id} --replica I`",
        )


def _verify_replica_dir(path: Path, job: JobDetails, chain_id: int, market: str) -> VerifyReport:
    """A result folder of a replicated job: checked as the replica that revealed its CID."""
    from framecast.client.verify import replica_deliveries
    from framecast.shared.ipfs import cid_of_path
    from framecast.shared.verification import verify_dir as verify_delivery

    cid = cid_of_path(path)
    for replica, delivery in replica_deliveries(job, chain_id=chain_id, market=market):
        if replica.result_cid == cid:
            return verify_delivery(path, delivery)
    raise VerificationFailed(
        f"{path} (CID {cid}) is not the result any replica of job {job.job_id} revealed",
        fix=f"`framecast status {job.job_id}` lists each replica's result CID",
    )
