"""`framecast node doctor`: what this provider host lacks, and what to do about it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from framecast.node.commands.options import (
    _node_settings,
    config_option,
    network_option,
    rpc_url_option,
)

_COLOR = {"ok": "green", "warn": "yellow", "fail": "red"}


@click.command("doctor")
@config_option
@network_option
@rpc_url_option
@click.option("--no-chain", is_flag=True, help="Skip the chain checks (key, bond, clock).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(config_path: Path, no_chain: bool, as_json: bool) -> None:
    """Check GPUs, driver vs the image's CUDA, Docker's NVIDIA runtime, which models fit
    which card (and with which memory profile), disk, weights, chain, key, bond, the
    advertised URL and the clock. Exits 1 when a check fails."""
    from rich.console import Console

    from framecast.node.doctor import run_doctor

    report = run_doctor(
        _node_settings(config_path), chain=not no_chain, config_path=config_path.expanduser()
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        console = Console(width=200, highlight=False)
        for check in report.checks:
            mark = f"[{_COLOR[check.status]}]{check.status.upper():>4}[/]"
            console.print(f"{mark} {check.name:<10} ", end="")
            console.print(check.detail, markup=False)
            if check.fix:
                console.print(f"{'':<16}fix: {check.fix}", markup=False)
    if not report.ok:
        raise SystemExit(1)
