"""`framecast dataset pack DIR`: check a fine-tune dataset and pack it by CID."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client.context import ClientContext, json_option, pass_client


@click.group("dataset")
def dataset() -> None:
    """Fine-tune datasets: folders of clips and captions, packed by CID."""


@dataset.command("pack")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Catalog model the dataset will fine-tune.")
@click.option("--frames", "num_frames", type=int, help="Frames per clip (default: the model's).")
@click.option("--width", type=int, help="Clip width (default: the model's).")
@click.option("--height", type=int, help="Clip height (default: the model's).")
@json_option
@pass_client
def pack(
    client: ClientContext,
    folder: Path,
    model: str,
    num_frames: int | None,
    width: int | None,
    height: int | None,
) -> None:
    """Check FOLDER (clips + captions.jsonl or NAME.txt per clip) and pack it; prints the CID.

    Pass the CID to `framecast submit --dataset CID` to fine-tune on it.
    """
    from framecast.client.datasets import pack_dataset
    from framecast.shared.ipfs.local import LocalStore

    packed = pack_dataset(
        LocalStore(client.settings.blocks),
        folder,
        model=model,
        num_frames=num_frames,
        width=width,
        height=height,
    )
    if client.as_json:
        client.echo_json(packed.model_dump())
        return
    click.echo(packed.cid)
    click.echo(
        f"  {packed.clips} clip(s), {packed.bytes} bytes, {packed.num_frames} frames of "
        f"{packed.width}x{packed.height} for {packed.model}",
        err=True,
    )
