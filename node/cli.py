"""`framecast node` — the provider agent's command group (contributed by entry point)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from framecast.node.models import check_pullable, list_models, pull
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table


@click.group("node")
def node_group() -> None:
    """Provider node agent: init, register, run, status."""


# -- weights -------------------------------------------------------------------------------
# huggingface_hub is imported only by a pull (node.models.hub_download).

_WEIGHTS_DIR = click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FRAMECAST_WEIGHTS_DIR",
    default=lambda: Path.home() / ".framecast" / "weights",
    show_default="~/.framecast/weights",
    help="Where model weights live (mounted read-only into runner containers).",
)


@node_group.group("models")
def models_group() -> None:
    """Model weights on this provider: pull and verify."""


@models_group.command("pull")
@click.argument("model_id", metavar="MODEL")
@_WEIGHTS_DIR
def models_pull(model_id: str, weights_dir: Path) -> None:
    """Download MODEL's pinned revision and verify every file against its manifest.

    MODEL is a catalog id, e.g. cogvideox-2b (the issue's `models pull ID` form).
    """

    check_pullable(model_id)  # refuse before drawing a progress bar
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"pulling {model_id}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        path = pull(model_id, weights_dir, progress=progress)
    click.echo(f"{model_id}: verified, {path}")


@models_group.command("list")
@click.option("--all", "include_missing", is_flag=True, help="Also list models not present.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_WEIGHTS_DIR
def models_list(include_missing: bool, as_json: bool, weights_dir: Path) -> None:
    """Models present under the weights dir, each verified against its manifest."""

    models = list_models(weights_dir, include_missing=include_missing)
    if as_json:
        click.echo(json.dumps([m.as_json() for m in models], indent=2))
        return
    if not models:
        click.echo(f"no models under {weights_dir}; pull one with `framecast node models pull`")
        return
    table = Table("model", "state", "files", "size", "problem")
    for m in models:
        color = {"verified": "green", "invalid": "red"}.get(m.state, "yellow")
        table.add_row(
            m.id,
            f"[{color}]{m.state}[/]",
            str(m.files),
            f"{m.size_bytes / 1e6:.1f} MB",
            m.problem or "",
        )
    Console().print(table)
