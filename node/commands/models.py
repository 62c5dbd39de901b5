"""`framecast node models pull|list`: model weights on this provider, pulled and verified.

huggingface_hub is imported only by a pull (node.models.hub_download).
"""

from __future__ import annotations

from pathlib import Path

import click

from framecast.node.commands.options import (
    _WEIGHTS_DIR,
    _node_settings,
    _weights_dir,
    config_option,
)


@click.group("models")
def models_group() -> None:
    """Model weights on this provider: pull and verify."""


@models_group.command("pull")
@click.argument("model_id", metavar="MODEL")
@config_option
@_WEIGHTS_DIR
def models_pull(model_id: str, config_path: Path, weights_dir: Path | None) -> None:
    """Download MODEL's pinned revision and verify every file against its manifest.

    MODEL is a catalog id, e.g. text2video-zero-pose. The pull also fetches the entry's
    components from their own repos (a ControlNet into MODEL_DIR/controlnet/) and the LoRA
    of every style trained on MODEL into MODEL_DIR/loras/FILE (each checked against the
    style's sha256; LoRAs pinned by CID come from the node's content store), so the node
    can serve any style a client names. Nothing is put in place unless all of it verifies.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from framecast.node.models import check_pullable, lora_styles, pull, store_fetcher
    from framecast.shared.ipfs.store import open_store

    entry = check_pullable(model_id)  # refuse before drawing a progress bar
    settings = _node_settings(config_path)
    target = weights_dir if weights_dir is not None else settings.weights_dir
    by_cid = any(s.lora is not None and s.lora.cid for s in lora_styles(entry))
    fetch_cid = store_fetcher(open_store(settings.store)) if by_cid else None
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

        path = pull(model_id, target, progress=progress, fetch_cid=fetch_cid)
    styles = [s.id for s in lora_styles(entry)]
    with_styles = f" (with the LoRAs of styles {', '.join(styles)})" if styles else ""
    click.echo(f"{model_id}: verified{with_styles}, {path}")


@models_group.command("list")
@click.option("--all", "include_missing", is_flag=True, help="Also list models not present.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
@_WEIGHTS_DIR
def models_list(
    include_missing: bool, as_json: bool, config_path: Path, weights_dir: Path | None
) -> None:
    """Models present under the weights dir, each verified against its manifest.

    The check covers the entry's components (controlnet/) and the LoRAs of the styles
    trained on it (loras/): `incomplete` means a style's LoRA is missing, `invalid` that
    a file is missing or corrupted (the problem names it with expected and actual sha256).
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from framecast.node.models import list_models

    target = _weights_dir(config_path, weights_dir)
    models = list_models(target, include_missing=include_missing)
    if as_json:
        click.echo(json.dumps([m.as_json() for m in models], indent=2))
        return
    if not models:
        click.echo(f"no models under {target}; pull one with `framecast node models pull`")
        return
    table = Table("model", "state", "files", "size", "styles", "problem")
    for m in models:
        color = {"verified": "green", "invalid": "red"}.get(m.state, "yellow")
        table.add_row(
            m.id,
            f"[{color}]{m.state}[/]",
            str(m.files),
            f"{m.size_bytes / 1e6:.1f} MB",
            ", ".join(m.styles),
            m.problem or "",
        )
    Console().print(table)
