"""`framecast credits faucet|balance|deposit|withdraw|history`."""

from __future__ import annotations

import click

from framecast.client import credits as service
from framecast.client.context import (
    Amount,
    ClientContext,
    json_option,
    network_options,
    pass_client,
    wallet_option,
)
from framecast.shared.amounts import format_fcc

address_option = click.option(
    "--address",
    metavar="0x…",
    help="Read this address instead of the wallet's (no keystore needed).",
)


def _show_tx(client: ClientContext, result: service.TxResult, headline: str) -> None:
    if client.as_json:
        client.echo_json(result.model_dump(mode="json"))
        return
    click.secho(headline, fg="green")
    click.echo(f"  tx        {result.tx_hash} (block {result.block}, gas {result.gas_used:,})")
    click.echo(f"  wallet    {format_fcc(result.wallet)}")
    click.echo(f"  free      {format_fcc(result.free)}")
    if result.next_faucet_at is not None:
        click.echo(f"  next drip {service.local_time(result.next_faucet_at)}")


@click.group("credits")
def command() -> None:
    """Get, deposit, withdraw and track credits (FCC)."""


@command.command("faucet")
@wallet_option
@network_options
@json_option
@pass_client
def faucet(client: ClientContext) -> None:
    """Draw free test credits into the wallet (rate-limited per address)."""
    result = service.faucet(client.credits(signing=True), client.market())
    _show_tx(client, result, f"received {format_fcc(result.amount)} from the faucet")


@command.command("deposit")
@click.option("--amount", type=Amount(), required=True, help="FCC to deposit, e.g. 25 or 0.5.")
@wallet_option
@network_options
@json_option
@pass_client
def deposit(client: ClientContext, amount: int) -> None:
    """Move credits from the wallet into the market (one transaction, EIP-2612 permit)."""
    result = service.deposit(client.credits(signing=True), client.market(signing=True), amount)
    _show_tx(client, result, f"deposited {format_fcc(amount)}")


@command.command("withdraw")
@click.option("--amount", type=Amount(), required=True, help="Free FCC to withdraw.")
@click.option("--to", metavar="0x…", help="Recipient (default: the wallet).")
@wallet_option
@network_options
@json_option
@pass_client
def withdraw(client: ClientContext, amount: int, to: str | None) -> None:
    """Withdraw free (not escrowed) credits from the market."""
    recipient = client.address(to, option="--to") if to is not None else None
    result = service.withdraw(
        client.credits(signing=True), client.market(signing=True), amount, recipient
    )
    _show_tx(client, result, f"withdrew {format_fcc(amount)}")


@command.command("balance")
@address_option
@wallet_option
@network_options
@json_option
@pass_client
def balance(client: ClientContext, address: str | None) -> None:
    """Show wallet, free, escrowed, in-challenge, refunded and slashed credits."""
    who = client.address(address)
    result = service.balances(
        client.credits(), client.market(), who, from_block=client.deployment().deployed_block
    )
    if client.as_json:
        client.echo_json(result.model_dump(mode="json"))
        return
    fmt = format_fcc
    click.secho(f"credits of {result.address}", bold=True)
    rows = [
        ("wallet", fmt(result.wallet), "in the wallet, not deposited"),
        ("free", fmt(result.free), "deposited, ready for jobs or withdrawal"),
        ("escrowed", fmt(result.escrowed), f"held by {result.open_jobs} unfinished job(s)"),
        ("  in challenge", fmt(result.in_challenge), "delivered, dispute window open"),
        ("refunded", fmt(result.refunded), "returned from jobs (lifetime, now in free)"),
        ("slashed", fmt(result.slashed), "provider collateral paid to you (lifetime)"),
    ]
    if result.provider is not None:
        rows.append(("bond", fmt(result.provider.bond), "provider bond"))
        rows.append(("  locked", fmt(result.provider.locked), "backing claimed jobs"))
    width = max(len(r[1]) for r in rows)
    for label, amount, note in rows:
        click.echo(f"  {label:<15}{amount:>{width}}   {click.style(note, dim=True)}")
    if result.wallet == 0 and result.free == 0:
        click.echo("no credits yet — get some with `framecast credits faucet`")


@command.command("history")
@address_option
@wallet_option
@network_options
@json_option
@pass_client
def history(client: ClientContext, address: str | None) -> None:
    """Jobs and transfers of the wallet, rebuilt from chain events."""
    who = client.address(address)
    rows = service.history(
        client.credits(), client.market(), who, from_block=client.deployment().deployed_block
    )
    if client.as_json:
        client.echo_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        click.echo(f"no jobs or transfers for {who}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"history of {who}", title_justify="left")
    for column in ("time", "block", "kind", "what", "amount", "job / counterparty", "tx"):
        table.add_column(column, justify="right" if column in {"block", "amount"} else "left")
    for row in rows:
        sign = {"in": "+", "out": "-"}.get(row.direction or "", "")
        detail = _job_detail(row) if row.kind == "job" else _short(row.counterparty or "")
        table.add_row(
            service.local_time(row.time),
            str(row.block),
            row.kind,
            row.what,
            sign + format_fcc(row.amount, unit=False),
            detail,
            _short(row.tx_hash),
        )
    Console().print(table)


def _job_detail(row: service.HistoryRow) -> str:
    parts = [f"#{row.job_id}"]
    if row.price is not None:
        parts.append(f"price {format_fcc(row.price, unit=False)}")
    if row.refunded:
        parts.append(f"refunded {format_fcc(row.refunded, unit=False)}")
    if row.slashed:
        parts.append(f"slashed {format_fcc(row.slashed, unit=False)}")
    return ", ".join(parts)


def _short(hex_text: str) -> str:
    return f"{hex_text[:8]}…{hex_text[-4:]}" if len(hex_text) > 14 else hex_text
