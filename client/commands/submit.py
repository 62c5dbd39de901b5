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
from framecast.client.jobs.spec import build_spec, check_replicas
from framecast.client.jobs.submit import default_max_price, submit
from framecast.client.jobs.views import DELIVERED_STATES
from framecast.client.quote import ProviderListing
from framecast.shared.amounts import format_fcc
from framecast.shared.chain.bindings import JobState
from framecast.shared.spec import GenerationSpec


def _upload_inputs(
    client: ClientContext, spec: GenerationSpec, job_id: int, listings: list[ProviderListing]
) -> list[UploadOutcome]:
    """Post each input of the job to the providers that could claim it (none: no inputs)."""
    cids = spec.inputs.cids()
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


def _pin_input(client: ClientContext, image: Path, cid: str | None, job_id: int) -> None:
    """Pin the job's input image into the local store, as the signed spec names it."""
    from framecast.shared.errors import SpecError
    from framecast.shared.ipfs.local import LocalStore

    pinned = str(LocalStore(client.settings.blocks).add_path(image))
    if pinned != cid:
        raise SpecError(
            f"{image} changed while job {job_id} was submitted: it is now {pinned}, the job "
            f"names {cid}",
            field="inputs.image",
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
@click.option("--style", help="Style preset id from the catalog.")
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
    style: str | None,
    max_price: int | None,
    replicas: int,
    perceptual: bool,
    claim_timeout: int | None,
    delivery_window: int | None,
    wait: bool,
    output: Path | None,
) -> None:
    """Sign and submit a text-to-video job; --wait follows it with a progress bar."""
    check_replicas(replicas, perceptual)  # before anything else touches state
    image_cid = None
    if image is not None:
        # Inputs travel by CID: computed here without touching the store, pinned once the
        # job is submitted (a refused spec or a failed submit leaves the store as it was),
        # then uploaded to the providers.
        from framecast.shared.ipfs import cid_of_path

        image_cid = cid_of_path(image)
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
        image_cid=image_cid,
    )
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
    if image is not None:
        _pin_input(client, image, image_cid, submitted.job_id)
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
        if spec.inputs.cids() and not any(u.ok for u in uploads):
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
