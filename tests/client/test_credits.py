"""`framecast credits` against a real anvil: faucet, one-transaction deposit, withdraw,
balances split by job state, history from events, and the errors users meet."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framecast.shared.amounts import format_fcc, parse_amount
from framecast.shared.chain import reverts
from framecast.shared.errors import ConfigError, RpcUnavailable
from tests.chain.conftest import FCC, fund_market, register, signed_job
from tests.client.conftest import Cli
from tests.conftest import Chain, free_port

CID = bytes.fromhex("01551220") + b"\x11" * 32


def alice(cli: Cli) -> str:
    return str(cli.json("wallet", "import", "--devnet", "alice")["address"])


# --------------------------------------------------------------------------- amounts
@given(st.integers(min_value=1, max_value=10**30))
def test_amount_text_round_trips_exactly(wei: int) -> None:
    assert parse_amount(format_fcc(wei, unit=False).replace(",", "")) == wei


def test_amounts_parse_as_decimals_never_floats() -> None:
    assert parse_amount("0.1") == 10**17
    assert parse_amount("1_000.000000000000000001") == 1000 * FCC + 1
    assert format_fcc(1234 * FCC + 5 * 10**17) == "1,234.5 FCC"
    for bad in ("abc", "-1", "0", "1e-19", "NaN", "inf"):
        with pytest.raises(ValueError):
            parse_amount(bad)
    assert Decimal("0.1") * FCC == parse_amount("0.1")


def test_bad_amount_is_a_usage_error_naming_the_field(cli: Cli, on_chain: Chain) -> None:
    alice(cli)
    result = cli("credits", "deposit", "--amount", "1.2.3", ok=False)
    assert result.exit_code == 2
    assert "--amount" in result.output and "not a decimal number" in result.output


# --------------------------------------------------------------------------- faucet
def test_faucet_drips_then_says_when_next_in_local_time(cli: Cli, on_chain: Chain) -> None:
    address = alice(cli)
    before = on_chain.credits().balance_of(address)
    drip = cli.json("credits", "faucet")
    assert int(drip["wallet"]) == before + int(drip["amount"]) > before
    result = cli("credits", "faucet", ok=False)
    assert isinstance(result.exception, reverts.FaucetCooldown)
    # e.g. "... available at 2026-11-25 10:00:00 UTC (in 23 h 59 min)"
    assert re.search(r"available at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*\(in ", str(result.exception))


# --------------------------------------------------------------------------- deposit / withdraw
def test_deposit_is_one_transaction_with_permit(cli: Cli, on_chain: Chain) -> None:
    address = alice(cli)
    nonce = on_chain.w3.eth.get_transaction_count(address)
    done = cli.json("credits", "deposit", "--amount", "12.5")
    assert on_chain.w3.eth.get_transaction_count(address) == nonce + 1
    assert int(done["free"]) == 12 * FCC + FCC // 2
    assert on_chain.market().free_balance_of(address) == int(done["free"])
    assert done["tx_hash"].startswith("0x")

    out = cli("credits", "withdraw", "--amount", "2.5").stdout
    assert "withdrew 2.5 FCC" in out and "free      10 FCC" in out


def test_insufficient_credits_show_balance_and_faucet(cli: Cli, on_chain: Chain) -> None:
    alice(cli)
    too_much = cli("credits", "deposit", "--amount", "1000000", ok=False)
    message = str(too_much.exception)
    assert "10,000 FCC" in message or "10000" in message  # the wallet balance
    assert "framecast credits faucet" in message
    no_free = cli("credits", "withdraw", "--amount", "1", ok=False)
    assert isinstance(no_free.exception, reverts.InsufficientBalance)
    assert "0 FCC free" in str(no_free.exception)
    assert "framecast credits faucet" in str(no_free.exception)


# --------------------------------------------------------------------------- balance / history
def test_balance_splits_escrow_by_job_state(cli: Cli, on_chain: Chain) -> None:
    address = alice(cli)
    chain = on_chain
    fund_market(chain, "alice", 100 * FCC)
    register(chain, "provider-1")
    market = chain.market("alice")

    def submit(nonce: int, **kw: int) -> int:
        job = signed_job(chain, nonce=nonce, **kw)
        return market.submit_job(job.request, job.spec_bytes, job.signature)[0]

    defaulted = submit(0, max_price=10 * FCC, delivery_window=60)
    chain.market("provider-1").claim_job(defaulted, 10 * FCC)
    chain.warp(61)
    chain.market("bob").reclaim(defaulted)  # refund 10 + slashed collateral 5
    cancelled = submit(1, max_price=5 * FCC)
    market.cancel_job(cancelled)
    delivered = submit(2, max_price=10 * FCC)  # claimed at 8: 2 refunded at once
    chain.market("provider-1").claim_job(delivered, 8 * FCC)
    # The challenge window is 15 s on the devnet: deliver last, read at once.
    chain.market("provider-1").deliver(delivered, CID, b"\x22" * 32, b"\x33" * 32)
    open_job = submit(3, max_price=7 * FCC)

    shown = cli.json("credits", "balance")
    assert shown["address"] == address
    assert int(shown["escrowed"]) == 8 * FCC + 7 * FCC
    assert int(shown["in_challenge"]) == 8 * FCC
    assert int(shown["refunded"]) == 2 * FCC + 5 * FCC + 10 * FCC
    assert int(shown["slashed"]) == 5 * FCC
    assert shown["open_jobs"] == 2
    assert int(shown["free"]) == chain.market().free_balance_of(address)
    assert shown["provider"] is None
    text = cli("credits", "balance").stdout
    for label in ("wallet", "free", "escrowed", "in challenge", "refunded", "slashed"):
        assert label in text

    provider = cli.json("credits", "balance", "--address", chain.account("provider-1").address)
    assert int(provider["provider"]["bond"]) == 195 * FCC  # 200 - 5 slashed
    assert int(provider["provider"]["locked"]) == 4 * FCC  # collateral of the delivered job

    rows = cli.json("credits", "history")
    jobs = {r["job_id"]: r for r in rows if r["kind"] == "job"}
    assert {j: r["what"] for j, r in jobs.items()} == {
        delivered: "delivered",
        cancelled: "cancelled",
        defaulted: "defaulted",
        open_job: "open",
    }
    assert int(jobs[delivered]["price"]) == 8 * FCC
    assert int(jobs[delivered]["refunded"]) == 2 * FCC
    assert int(jobs[defaulted]["slashed"]) == 5 * FCC
    transfers = [r["what"] for r in rows if r["kind"] == "transfer"]
    assert transfers == ["minted", "deposit"]
    blocks = [r["block"] for r in rows]
    assert blocks == sorted(blocks)
    table = cli("credits", "history").stdout
    assert "deposit" in table and "defaulted" in table


def test_history_chunks_and_faucet_rows(cli: Cli, on_chain: Chain) -> None:
    from framecast.client import credits as service

    address = alice(cli)
    cli("credits", "faucet")
    cli("credits", "deposit", "--amount", "1")
    chain = on_chain
    for chunk in (1, 3, 5000):  # same rows whatever the chunking of eth_getLogs
        rows = service.history(
            chain.credits(), chain.market(), address,
            from_block=chain.deployment.deployed_block, chunk_blocks=chunk,
        )  # fmt: skip
        assert [r.what for r in rows] == ["minted", "faucet", "deposit"]


# --------------------------------------------------------------------------- failures
def test_rpc_unreachable_names_url_and_devnet_up(
    cli: Cli, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "dead.json"
    chain.deployment.model_copy(update={"rpc_url": dead}).save(path)
    monkeypatch.setenv("FRAMECAST_DEPLOYMENT", str(path))
    result = cli("credits", "balance", "--address", "0x" + "11" * 20, ok=False)
    assert isinstance(result.exception, RpcUnavailable)
    assert dead in str(result.exception)
    assert "framecast devnet up" in str(result.exception)


def test_missing_deployment_says_how_to_get_one(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        "credits", "balance", "--address", "0x" + "11" * 20,
        "--deployment", str(tmp_path / "none.json"), ok=False,
    )  # fmt: skip
    assert isinstance(result.exception, ConfigError)
    assert "framecast devnet up" in str(result.exception)


def test_json_of_every_read_command_parses(cli: Cli, on_chain: Chain) -> None:
    alice(cli)
    for args in (("wallet", "list"), ("wallet", "address"), ("credits", "balance"),
                 ("credits", "history")):  # fmt: skip
        json.loads(cli(*args, "--json").stdout)


def test_rpc_lost_after_connecting_is_still_rpc_unavailable(
    cli: Cli, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An endpoint that answers the connect check, then fails every other call with 500.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if request.get("method") == "eth_chainId":
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x7a69"})
                self.send_response(200)
            else:
                body = "{}"
                self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        path = tmp_path / "flaky.json"
        chain.deployment.model_copy(update={"rpc_url": url}).save(path)
        monkeypatch.setenv("FRAMECAST_DEPLOYMENT", str(path))
        result = cli("credits", "balance", "--address", "0x" + "11" * 20, ok=False)
    finally:
        server.shutdown()
    assert isinstance(result.exception, RpcUnavailable), result.exception
    assert url in str(result.exception)
