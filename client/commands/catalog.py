"""`framecast catalog pin|fit`: maintaining the model catalog (a maintainer's commands).

`pin` talks to the Hugging Face hub (huggingface_hub, imported by the service when it
runs); `fit` reads catalog data only. Neither imports torch or diffusers.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from framecast.shared.catalog import DATA_DIR

_CATALOG_DIR = click.option(
    "--catalog-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DATA_DIR,
    show_default="the packaged catalog (shared/catalog in a checkout)",
    help="Folder holding models.toml and manifests/ to read and write.",
)


@click.group("catalog")
def catalog() -> None:
    """Maintain the model catalog: pin entries to hub commits, fit entries onto GPUs."""


@catalog.command("pin")
@click.argument("model_id", metavar="MODEL", required=False)
@click.option("--revision", help="Branch, tag or commit to pin (default: main).")
@click.option("--all", "pin_every", is_flag=True, help="Pin every hub entry (at its revision).")
@_CATALOG_DIR
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def pin(
    model_id: str | None, revision: str | None, pin_every: bool, catalog_dir: Path, as_json: bool
) -> None:
    """Pin MODEL to a commit of its repo: revision and every file's sha256 into the catalog.

    The files are those the diffusers pipeline loads (model_index.json and, per component,
    configs, tokenizer and one weights format; the entry's `variant` picks e.g. fp16). LFS
    files take their sha256 from the hub's metadata, the rest are downloaded and hashed.
    Components (a ControlNet) are pinned from their own repos. The hub is HF_ENDPOINT
    (default https://huggingface.co). `--all` pins every entry at its current revision
    (unpinned ones at main) and reports each; then review and commit the diff.
    """
    from framecast.client.catalog import pin as pin_one
    from framecast.client.catalog import pin_all
    from framecast.shared.errors import ConfigError

    if pin_every == (model_id is not None):
        raise ConfigError(
            "give exactly one of MODEL and --all", fix="e.g. `framecast catalog pin ltx-video`"
        )
    if pin_every:
        if revision is not None:
            raise ConfigError(
                "--revision applies to one model, not --all",
                fix="pin that model alone with --revision",
            )
        results = pin_all(catalog_dir=catalog_dir)
        failed = [model for model, outcome in results if isinstance(outcome, str)]
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {"model": m, "error": o} if isinstance(o, str) else o.as_json()
                        for m, o in results
                    ],
                    indent=2,
                )
            )
        else:
            for model, outcome in results:
                if isinstance(outcome, str):
                    click.echo(f"{model}: error: {outcome}")
                else:
                    click.echo(_line(outcome))
        if failed:
            raise SystemExit(1)
        return
    assert model_id is not None
    result = pin_one(model_id, revision=revision, catalog_dir=catalog_dir)
    click.echo(json.dumps(result.as_json(), indent=2) if as_json else _line(result))


def _line(result: object) -> str:
    from framecast.client.catalog import PinResult

    assert isinstance(result, PinResult)
    parts = "; ".join(
        f"{p.role or 'model'} {p.repo}@{p.commit[:12]}: {len(p.manifest)} files, "
        f"{p.size_bytes / 1e9:.2f} GB"
        for p in result.parts
    )
    return f"{result.model}: pinned {parts} → {result.manifest_file}"


@catalog.command("fit")
@click.option(
    "--gpu-mib",
    "memory_mib",
    type=click.IntRange(1, 16 * 1024 * 1024),
    multiple=True,
    help="A card's total memory in MiB as nvidia-smi reports it (repeatable); "
    "default: 8, 12, 16, 24, 48 and 80 GB cards.",
)
@click.option("--tiny", "include_tiny", is_flag=True, help="Include the tiny test entries.")
@_CATALOG_DIR
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def fit(memory_mib: tuple[int, ...], include_tiny: bool, catalog_dir: Path, as_json: bool) -> None:
    """The memory profile each catalog entry runs on each card size (`-`: does not fit)."""
    from rich.console import Console
    from rich.table import Table

    from framecast.client.catalog import fit as fit_table

    table = fit_table(memory_mib=memory_mib, catalog_dir=catalog_dir, include_tiny=include_tiny)
    if as_json:
        click.echo(json.dumps(table.as_json(), indent=2))
        return
    out = Table("model", *table.sizes)
    for model, row in table.rows.items():
        out.add_row(
            model,
            *(
                "-"
                if name is None
                else name + ("" if table.numerics[model][name] == "reference" else " *")
                for name in row
            ),
        )
    Console(width=200).print(out)
    click.echo("* changes numerics (VAE tiling or quantized weights): replays run the same profile")
