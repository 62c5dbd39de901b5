"""`framecast node status`: slots, jobs by state and earnings from the state database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from framecast.node.commands.options import _settings, config_option
from framecast.shared.amounts import format_fcc
from framecast.shared.errors import ConfigError


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path, as_json: bool) -> None:
    """Slots, jobs by state and earnings, from the node's state database."""
    from framecast.node.state import BUSY, StateStore

    settings = _settings(config_path)
    if not settings.database.exists():
        raise ConfigError(
            f"no node state at {settings.database}", fix="run the node with `framecast node run`"
        )
    state = StateStore(settings.database)
    counts = state.counts()
    busy = sum(counts[s] for s in BUSY)
    recent = sorted(state.in_states(*counts), key=lambda j: j.updated_at)[-10:]
    report = NodeStatus(
        slots=settings.gpu_slots,
        slots_busy=busy,
        jobs={k: v for k, v in counts.items() if v},
        earned_wei=str(state.total_earned()),
        recent=[
            JobLine(
                job_id=j.job_id,
                state=j.state,
                model=j.model,
                progress=j.progress,
                reason=j.reason,
                result_cid=j.result_cid,
            )
            for j in reversed(recent)
        ],
    )
    state.close()
    if settings.runtime == "ray":
        from framecast.node.wiring import ray_cluster

        # A second driver on the cluster: the running node's actors are listed by name.
        cluster = ray_cluster(settings)
        try:
            report.cluster = cluster.view(settings.models).model_dump(mode="json")
        finally:
            cluster.close()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    if report.cluster is not None:
        _render_cluster(report.cluster)
    else:
        click.echo(f"slots      {busy}/{settings.gpu_slots} busy")
    click.echo(f"earned     {format_fcc(int(report.earned_wei))}")
    jobs = ", ".join(f"{k}: {v}" for k, v in report.jobs.items()) or "none"
    click.echo(f"jobs       {jobs}")
    for job in report.recent:
        extra = f"  {job.reason}" if job.reason else ""
        click.echo(f"  #{job.job_id:<6} {job.state:<10} {job.model or '-'}{extra}")


def _render_cluster(cluster: dict[str, Any]) -> None:
    click.echo(
        f"cluster    {cluster['address']}: {cluster['free_gpus']:g}/{cluster['gpus']:g} "
        f"{cluster['gpu_resource']} free on {len(cluster['hosts'])} host(s)"
    )
    for host in cluster["hosts"]:
        vram = host["vram_per_gpu_gb"]
        card = f", {vram:g} GiB each" if vram else ", VRAM undeclared"
        click.echo(
            f"  host {host['address']:<16} {host['free_gpus']:g}/{host['gpus']:g} free{card}"
        )
    for actor in cluster["actors"]:
        busy = f"job {actor['busy_job']}" if actor["busy_job"] else "idle"
        click.echo(f"  actor {actor['name']}  {busy}")
    for model in cluster["models"]:
        line = model["unservable"] or f"{model['free_slots']} job(s) can start now"
        click.echo(f"  model {model['model']:<20} {model['gpus_per_job']} GPU/job: {line}")


class JobLine(BaseModel):
    """One job in `node status`."""

    job_id: int
    state: str
    model: str | None
    progress: float
    reason: str | None
    result_cid: str | None


class NodeStatus(BaseModel):
    """`framecast node status --json`."""

    slots: int
    slots_busy: int
    jobs: dict[str, int]
    earned_wei: str
    recent: list[JobLine]
    #: runtime = ray: the cluster's hosts, GPUs, runner actors and what each model can get.
    cluster: dict[str, Any] | None = None
