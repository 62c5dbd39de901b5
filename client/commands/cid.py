"""`framecast cid PATH`: print the IPFS CID (unixfs-v1-2025) of a file or directory."""

from __future__ import annotations

import json
from pathlib import Path

import click

from framecast.shared.ipfs import cid_of_path


@click.command(name="cid")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {path, cid} as JSON.")
def command(path: Path, as_json: bool) -> None:
    """Print the IPFS CID of PATH, exactly as `ipfs add` (unixfs-v1-2025 profile) computes it.

    Streams the content in constant memory; symlinks are followed.
    """
    cid = cid_of_path(path)
    if as_json:
        click.echo(json.dumps({"path": str(path), "cid": cid}))
    else:
        click.echo(cid)
