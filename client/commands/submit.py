"""`framecast submit`: validate, quote, sign, submit, and with --wait follow and fetch."""

from __future__ import annotations

from pathlib import Path

import click

from framecast.client import quote as quotes
from framecast.client.context import (
    Amount,
    ClientContext,
    json_option,
    network_options,
    pass_client,
    wallet_option,
)
from framecast.client.credits import local_time
from framecast.client.delivery import fetch_and_report, follow_job
from framecast.client.inputs import UploadOutcome, input_targets, upload_inputs
from framecast.client.jobs.spec import (
    build_spec,
    check_input_video,
    check_replicas,
    fine_tune_fields,
    guidance_milli,
)
from framecast.client.jobs.submit import default_max_price, submit
from framecast.client.jobs.views import DELIVERED_STATES
from framecast.client.quote import ProviderListing
from framecast.shared.amounts import format_fcc
from framecast.shared.catalog import get_entry
from framecast.shared.chain.bindings import JobState
from framecast.shared.errors import FramecastError, SpecError
from framecast.shared.spec import GenerationSpec


def _upload_inputs(
    client: ClientContext, spec: GenerationSpec, job_id: int, listings: list[ProviderListing]
) -> list[UploadOutcome]:
    """Post each input of the job to the providers that could claim it (none: no inputs)."""
    cids = spec.input_cids()
    if not cids:
        return []
    from framecast.shared.endpoints import is_loopback_url
    from framecast.shared.ipfs.local import LocalStore

    return upload_inputs(
        LocalStore(client.settings.blocks),
        cids,
        job_id=job_id,
        targets=input_targets(listings, spec.model),
        allow_loopback=is_loopback_url(client.rpc_url),
    )


def held_cid(
    client: ClientContext, value: str, option: str, pins: dict[str, tuple[Path, str]]
) -> str:
    """A CID the client's store holds, or a file's CID (the file joins `pins`, to be added to
    the store once the job is submitted): inputs reach the providers from the store, so a
    CID the client does not hold is refused before signing, and nothing is written first."""
    from framecast.shared.ipfs import cid_of_path
    from framecast.shared.ipfs.cid import CID
    from framecast.shared.ipfs.local import LocalStore

    path = Path(value)
    if path.is_file():
        cid_text = cid_of_path(path)
        pins[option.lstrip("-")] = (path, cid_text)
        return cid_text
    try:
        cid = CID.parse(value)
    except FramecastError:
        raise SpecError(
            f"{option} {value!r} is neither a file nor a CID",
            field=option.lstrip("-"),
            fix="pass a CID from `framecast dataset pack` / a job's receipt, or a file path",
        ) from None
    blocks = client.settings.blocks
    # Opening the store creates its folders: look only where one already is.
    if not blocks.is_dir() or not LocalStore(blocks).has(cid):
        raise SpecError(
            f"{option} {value} is not in your store ({blocks})",
            field=option.lstrip("-"),
            fix="pack the dataset with `framecast dataset pack`, or pass the LoRA file "
            "(`framecast fetch JOB` saves lora.safetensors)",
        )
    return str(cid)


def _pin_input(client: ClientContext, name: str, path: Path, cid: str, job_id: int) -> None:
    """Pin one of the job's input files into the local store, as the signed spec names it."""
    from framecast.shared.errors import SpecError
    from framecast.shared.ipfs.local import LocalStore

    pinned = str(LocalStore(client.settings.blocks).add_path(path))
    if pinned != cid:
        raise SpecError(
            f"{path} changed while job {job_id} was submitted: it is now {pinned}, the job "
            f"names {cid}",
            field=name,
            fix=f"cancel it with `framecast cancel {job_id}` and submit again",
        )


def _render_quote(quote: quotes.Quote, replicas: int = 1) -> None:
    if quote.min_price is None:
        price = "unknown (no provider publishes a price for it)"
    elif quote.min_price == quote.max_price:
        price = format_fcc(quote.min_price)
    else:
        price = f"{format_fcc(quote.min_price)} – {format_fcc(quote.max_price or 0)}"
    if replicas > 1 and quote.min_price is not None:
        low, high = quote.min_price * replicas, (quote.max_price or 0) * replicas
        total = format_fcc(low) if low == high else f"{format_fcc(low)} – {format_fcc(high)}"
        price = f"{price} per replica × {replicas} = {total}"
    eta = f"~{quote.expected_seconds} s" if quote.expected_seconds is not None else "unknown"
    click.echo(
        f"quote: {quote.providers} provider(s) serve {quote.model}; "
        f"{quote.work_units:,} work units; price {price}; run time {eta}"
    )
    if quote.profiles:
        # A profile other than the catalog's first may change the frames (tiled, quantized).
        click.echo(
            "memory profile: "
            + ", ".join(f"{name} ({count} provider(s))" for name, count in quote.profiles.items())
        )
    if replicas > quote.providers:
        # Each replica needs its own provider: fewer than k can never fill the set.
        click.echo(
            f"warning: {replicas} replicas need {replicas} distinct providers but "
            f"{quote.providers} serve {quote.model} now; unless more register, the job "
            "expires at its claim deadline (then `framecast reclaim` returns the escrow)",
            err=True,
        )


@click.command("submit")
@click.option("--prompt", required=True, help="What the video shows.")
@click.option("--model", required=True, help="Catalog model id (unknown ids list the known).")
@click.option("--seed", type=click.IntRange(min=0), help="Generator seed (default: random).")
@click.option("--frames", "num_frames", type=int, help="Frame count (default: the model's).")
@click.option("--fps", type=int, help="Frames per second (default: the model's).")
@click.option("--width", type=int, help="Width in pixels (default: the model's).")
@click.option("--height", type=int, help="Height in pixels (default: the model's).")
@click.option("--steps", type=int, help="Denoising steps (default: the model's).")
@click.option("--guidance", help="Guidance scale, up to 3 decimals (default: the model's).")
@click.option("--negative", help="Negative prompt.")
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Init image (image-to-video); added to the content store by CID.",
)
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Source video (video-edit): one frame per output frame at the output size.",
)
@click.option(
    "--control",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Control video (pose / depth / edge maps) for controlled models, one frame per "
    "output frame at the output size.",
)
@click.option("--style", help="Style preset id from the catalog.")
@click.option(
    "--lora",
    help="Generate with a LoRA: its CID (in your store) or a lora.safetensors file "
    "(e.g. a fine-tune job's result).",
)
@click.option("--lora-scale", help="Scale of --lora, up to 3 decimals (default 1).")
@click.option(
    "--dataset",
    help="Fine-tune on this dataset CID (`framecast dataset pack`); the job trains a LoRA "
    "and --steps are optimiser steps.",
)
@click.option("--rank", type=int, help="Fine-tune: LoRA rank (default: the model's).")
@click.option("--alpha", type=int, help="Fine-tune: LoRA alpha (default: the model's).")
@click.option("--learning-rate", help="Fine-tune: learning rate, e.g. 1e-4 (default: the model's).")
@click.option(
    "--modules",
    help="Fine-tune: comma-separated modules to adapt, e.g. to_q,to_v (default: the model's).",
)
@click.option(
    "--max-price",
    type=Amount(),
    help="Most to pay per replica, FCC (default: the quote's top); the escrow is this × "
    "--replicas.",
)
@click.option(
    "--replicas",
    type=int,
    default=1,
    show_default=True,
    help="Independent providers that each run the job (1..5); the results must agree.",
)
@click.option(
    "--perceptual",
    is_flag=True,
    help="With --replicas ≥ 2: accept replicas whose frames agree perceptually (attested by "
    "the arbiter), not only identical digests.",
)
@click.option(
    "--claim-timeout",
    type=click.IntRange(min=30),
    help="Seconds to wait for a claim (FRAMECAST_CLAIM_TIMEOUT_S, default 600).",
)
@click.option(
    "--delivery-window",
    type=click.IntRange(min=60, max=7 * 24 * 3600),
    help="Seconds from claim to delivery (FRAMECAST_DELIVERY_WINDOW_S, default 900).",
)
@click.option("--wait", is_flag=True, help="Follow to delivery, then fetch and verify.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --wait: result folder (default <home>/jobs/JOB).",
)
@wallet_option
@network_options
@json_option
@pass_client
def command(
    client: ClientContext,
    prompt: str,
    model: str,
    seed: int | None,
    num_frames: int | None,
    fps: int | None,
    width: int | None,
    height: int | None,
    steps: int | None,
    guidance: str | None,
    negative: str | None,
    image: Path | None,
    video: Path | None,
    control: Path | None,
    style: str | None,
    lora: str | None,
    lora_scale: str | None,
    dataset: str | None,
    rank: int | None,
    alpha: int | None,
    learning_rate: str | None,
    modules: str | None,
    max_price: int | None,
    replicas: int,
    perceptual: bool,
    claim_timeout: int | None,
    delivery_window: int | None,
    wait: bool,
    output: Path | None,
) -> None:
    """Sign and submit a video job (inputs: --image, --video, --control; or with --dataset
    a fine-tune job); --wait follows it with a progress bar."""
    check_replicas(replicas, perceptual)  # before anything else touches state
    fine_tune = None
    pins: dict[str, tuple[Path, str]] = {}  # option -> (file, its CID): pinned once submitted
    if dataset is not None:
        fine_tune = fine_tune_fields(
            get_entry(model),
            dataset_cid=held_cid(client, dataset, "--dataset", pins),
            rank=rank,
            alpha=alpha,
            learning_rate=learning_rate,
            steps=steps,
            modules=[m.strip() for m in modules.split(",") if m.strip()] if modules else None,
        )
    elif any(v is not None for v in (rank, alpha, learning_rate, modules)):
        raise SpecError(
            "--rank, --alpha, --learning-rate and --modules are for fine-tune jobs",
            field="fine_tune",
            fix="add --dataset CID to fine-tune, or drop them",
        )
    lora_cid = held_cid(client, lora, "--lora", pins) if lora is not None else None
    files = {"image": image, "video": video, "control": control}
    # Inputs travel by CID: computed here without touching the store, pinned once the job is
    # submitted (a refused spec or a failed submit leaves the store as it was), then
    # uploaded to the providers.
    cids: dict[str, str] = {}
    if any(files.values()):
        from framecast.shared.ipfs import cid_of_path

        cids = {name: cid_of_path(path) for name, path in files.items() if path}
    # Validated before the password prompt and the network: bad input fails fast.
    spec, _entry = build_spec(
        model=model,
        prompt=prompt,
        negative=negative,
        seed=seed,
        num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        style=style,
        image_cid=cids.get("image"),
        video_cid=cids.get("video"),
        control_cid=cids.get("control"),
        lora_cid=lora_cid,
        lora_scale_milli=guidance_milli(lora_scale) if lora_scale is not None else 1000,
        fine_tune=fine_tune,
    )
    for name in ("video", "control"):
        path = files[name]
        if path is not None:
            check_input_video(path, name, spec)
    market = client.market(signing=True)
    deployment = client.deployment()
    listings = quotes.providers(market, from_block=deployment.deployed_block)
    quote = quotes.quote(spec, listings)
    if not client.as_json:
        _render_quote(quote, replicas)
    settings = client.settings
    submitted = submit(
        market,
        client.credits(signing=True),
        spec,
        quote,
        max_price=max_price if max_price is not None else default_max_price(quote),
        claim_timeout_s=claim_timeout or settings.claim_timeout_s,
        delivery_window_s=delivery_window or settings.delivery_window_s,
        from_block=deployment.deployed_block,
        replicas=replicas,
        perceptual=perceptual,
    )
    for name, path in files.items():
        if path is not None:
            _pin_input(client, f"inputs.{name}", path, cids[name], submitted.job_id)
    for option, (path, cid) in pins.items():
        _pin_input(client, option, path, cid, submitted.job_id)
    uploads = _upload_inputs(client, spec, submitted.job_id, listings)
    if client.as_json:
        client.echo_json(
            {
                **submitted.model_dump(mode="json"),
                "input_uploads": [u.model_dump() for u in uploads],
            }
        )
    else:
        click.secho(f"submitted job {submitted.job_id}", fg="green")
        click.echo(f"  tx          {submitted.tx_hash} (block {submitted.block})")
        if submitted.replicas > 1:
            click.echo(
                f"  max price   {format_fcc(submitted.max_price)} per replica × "
                f"{submitted.replicas} = {format_fcc(submitted.escrow)} (escrowed)"
            )
            if submitted.perceptual:
                click.echo("  agreement   perceptual (attested by the arbiter) or identical")
        else:
            click.echo(f"  max price   {format_fcc(submitted.max_price)} (escrowed)")
        click.echo(f"  seed        {spec.seed}")
        click.echo(f"  claim by    {local_time(submitted.claim_deadline)}")
        for upload in uploads:
            color = "green" if upload.ok else "yellow"
            click.secho(
                f"  input       {upload.cid} → {upload.provider}: {upload.detail}", fg=color
            )
        if spec.input_cids() and not any(u.ok for u in uploads):
            click.echo(
                "warning: no provider took the job's inputs; a provider claims only once it "
                "holds them (from its gateways), else it skips the job: `framecast status "
                f"{submitted.job_id}` says why",
                err=True,
            )
    if not wait:
        if not client.as_json:
            click.echo(f"follow it with `framecast status {submitted.job_id} --wait`")
        return
    state = follow_job(client, submitted.job_id)
    if state in DELIVERED_STATES:
        fetch_and_report(client, submitted.job_id, output)
    elif state is JobState.RELEASED:
        click.echo(
            f"job {submitted.job_id} was released by its provider (its run failed): the price "
            "and a share of the provider's collateral are back in your free balance; "
            f"`framecast status {submitted.job_id}` shows why, submit again to retry",
            err=True,
        )
    else:
        click.echo(f"job {submitted.job_id} ended {state.label}", err=True)
