"""`framecast node status`: slots, jobs by state and earnings from the state database."""

from __future__ import annotations

from pathlib import Path

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
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"slots      {busy}/{settings.gpu_slots} busy")
    click.echo(f"earned     {format_fcc(int(report.earned_wei))}")
    jobs = ", ".join(f"{k}: {v}" for k, v in report.jobs.items()) or "none"
    click.echo(f"jobs       {jobs}")
    for job in report.recent:
        extra = f"  {job.reason}" if job.reason else ""
        click.echo(f"  #{job.job_id:<6} {job.state:<10} {job.model or '-'}{extra}")


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
