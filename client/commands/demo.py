"""`framecast demo` — the main job end to end on the embedded default (see client/demo.py)."""

from __future__ import annotations

import time

import click

from framecast.client import credits as credit_service
from framecast.client import quote as quotes
from framecast.client.context import ClientContext
from framecast.client.delivery import fetch_and_report, follow_job
from framecast.client.demo import (
    DEMO_DEPOSIT,
    DEMO_MODEL,
    DEMO_PROMPT,
    DEMO_PROVIDER,
    DEMO_WALLET,
    EXPLORER_PORT,
    DemoPaths,
    NodeProcess,
    check_environment,
    ensure_password,
)
from framecast.client.devnet import devnet_account, devnet_up
from framecast.client.jobs.spec import build_spec
from framecast.client.jobs.submit import default_max_price, submit
from framecast.client.jobs.views import job_details
from framecast.shared.amounts import format_fcc
from framecast.shared.chain import reverts
from framecast.shared.chain.bindings import JobState
from framecast.shared.errors import ChainError
from framecast.shared.keystore import Secret


def _say(text: str) -> None:
    click.secho(f"▸ {text}", fg="cyan")


@click.command("demo")
@click.option("--prompt", default=DEMO_PROMPT, show_default=True, help="What to generate.")
@click.option("--seed", default=42, show_default=True, help="Generator seed.")
@click.option("--port", default=8545, show_default=True, help="devnet (anvil) port.")
@click.option("--keep-node", is_flag=True, help="Leave the provider node running afterwards.")
@click.option(
    "--explorer",
    "serve_explorer",
    is_flag=True,
    help="Serve the web explorer afterwards, on the demo job's page, until Ctrl-C.",
)
@click.option("--open", "open_browser", is_flag=True, help="With --explorer: open the page.")
def command(
    prompt: str, seed: int, port: int, keep_node: bool, serve_explorer: bool, open_browser: bool
) -> None:
    """Run the whole market on this machine: devnet, node, wallet, job, verification."""
    started = time.monotonic()
    check_environment()
    client = ClientContext()
    settings = client.settings
    paths = DemoPaths(settings.home / "demo")
    password_file = ensure_password(paths)
    client.overrides.update({"wallet": DEMO_WALLET, "password_file": password_file})
    if settings.deployment is None:
        client.overrides["network"] = "local"  # the demo's chain is the devnet it starts
    client._settings = None  # re-read with the demo's wallet and password file

    _say("starting the local devnet (anvil + Credits + JobMarket)…")
    deployment, fresh = devnet_up(settings.devnet, port)
    if fresh:
        # A new chain invalidates a node state that remembers an older one.
        import shutil

        shutil.rmtree(paths.root / "node-state", ignore_errors=True)
    click.echo(f"  chain {deployment.chain_id} at {deployment.rpc_url}; market {deployment.market}")

    keystores = client.keystores
    if DEMO_WALLET not in keystores.names():
        _say(f"importing the devnet account alice as wallet {DEMO_WALLET!r} (public test key)…")
        key = Secret("0x" + bytes(devnet_account("alice").key).hex())
        keystores.import_key(DEMO_WALLET, key, client.password("demo"))

    node = NodeProcess(paths, settings)
    node.prepare(_say)
    market = client.market(signing=True)
    credits = client.credits(signing=True)
    if not market.get_provider(devnet_account(DEMO_PROVIDER).address).registered:
        node.register(_say)
    node.start(_say)
    try:
        me = client.address()
        provider = devnet_account(DEMO_PROVIDER).address
        before = credit_service.balances(credits, market, me, from_block=deployment.deployed_block)
        earned_before = market.free_balance_of(provider)

        _say("drawing test credits from the faucet…")
        try:
            drip = credit_service.faucet(credits, market)
            click.echo(f"  faucet paid {format_fcc(drip.amount)}")
        except reverts.FaucetCooldown as exc:
            click.echo(f"  faucet: {exc.message} (the wallet already holds credits)")
        _say(f"depositing {format_fcc(DEMO_DEPOSIT)} into the market with a permit (one tx)…")
        credit_service.deposit(credits, market, DEMO_DEPOSIT)

        spec, _entry = build_spec(model=DEMO_MODEL, prompt=prompt, seed=seed)
        listings = quotes.providers(market, from_block=deployment.deployed_block)
        quote = quotes.quote(spec, listings)
        _say(f"submitting a signed request: {prompt!r} on {DEMO_MODEL} (seed {seed})…")
        submitted = submit(
            market,
            credits,
            spec,
            quote,
            max_price=default_max_price(quote),
            claim_timeout_s=settings.claim_timeout_s,
            delivery_window_s=settings.delivery_window_s,
            from_block=deployment.deployed_block,
        )
        job_id = submitted.job_id
        click.echo(f"  job {job_id} escrows up to {format_fcc(submitted.max_price)}")
        state = follow_job(client, job_id)
        if state is not JobState.DELIVERED:
            record = job_details(market, job_id, from_block=deployment.deployed_block)
            raise ChainError(
                f"job {job_id} ended {state.label} instead of delivered ({record.state})",
                fix=f"see why in {paths.node_log}",
            )
        _say("fetching the result and verifying it against the chain…")
        result = paths.output / str(job_id)
        if result.exists():
            # A result of an earlier devnet, whose job ids started over: kept, moved aside.
            kept = result.with_name(f"{job_id}.before-{int(time.time())}")
            result.rename(kept)
            click.echo(f"  an earlier demo's job {job_id} result was moved to {kept}")
        fetch_and_report(client, job_id, result)

        window = deployment.params.challenge_window
        _say(f"waiting out the {window} s challenge window; the node then settles…")
        deadline = time.monotonic() + window + 60
        while market.get_job(job_id).state is not JobState.SETTLED:
            if time.monotonic() > deadline:
                raise ChainError(f"job {job_id} was not settled in time",
                                 fix=f"read {paths.node_log}")  # fmt: skip
            time.sleep(0.5)

        after = credit_service.balances(credits, market, me, from_block=deployment.deployed_block)
        earned = market.free_balance_of(provider) - earned_before
        view = market.get_job(job_id)
        click.secho("\nsummary", bold=True)
        click.echo(
            f"  job            {job_id} ({view.state.label}), price {format_fcc(view.amount)}"
        )
        click.echo(f"  result         {result}")
        for label, b in (("credits before", before), ("credits after", after)):
            click.echo(
                f"  {label:<14} wallet {format_fcc(b.wallet)}, free {format_fcc(b.free)}, "
                f"escrowed {format_fcc(b.escrowed)}"
            )
        click.echo(f"  provider       earned {format_fcc(earned)} (price minus protocol fee)")
        click.echo(f"  took           {time.monotonic() - started:.1f} s")
        click.echo("  the devnet keeps running: `framecast devnet down` stops it")
        page = f"http://127.0.0.1:{EXPLORER_PORT}/jobs/{job_id}"
        if not serve_explorer:
            click.echo(f"  explorer       {page}")
            click.echo(f"                 (serve it: `framecast explorer --job {job_id} --open`)")
    finally:
        if not keep_node:
            node.stop()
    if serve_explorer:
        # After the node stopped: the explorer serves the devnet's blockstore itself.
        from framecast.client.explorer import default_db, open_explorer

        app = open_explorer(
            client.web3(), deployment, db=default_db(settings.home, "local"),
            port=EXPLORER_PORT, serve_store=settings.blocks,
        )  # fmt: skip
        click.secho(f"\nexplorer: {app.job_url(job_id)}  (Ctrl-C stops it)", fg="green")
        if open_browser:
            import webbrowser

            webbrowser.open(app.job_url(job_id))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
