"""Replicated jobs (k-of-n) from the client CLI against anvil: submit --replicas, the
per-replica status, verification of every replica (and of a copied one), reclaim and
dispute. The providers' side is driven with the bindings: claim, commit, reveal of real
result directories pinned into the client's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.replicas import new_salt, replica_commitment
from framecast.shared.spec import decode_spec
from tests.chain.conftest import FCC, fund_market, register
from tests.client_jobs.conftest import (
    PRICE_PER_UNIT,
    TINY_UNITS,
    Cli,
    build_result,
    offer_provider,
)
from tests.client_jobs.test_commands import TINY, said
from tests.conftest import Chain

ASK = TINY_UNITS * PRICE_PER_UNIT
PROVIDERS = ("provider-1", "provider-2")


def _market_ready(chain: Chain, cli: Cli) -> None:
    for name in PROVIDERS:
        register(chain, name)
        offer_provider(chain, name)
    fund_market(chain, "alice", 10 * FCC)
    cli("wallet", "import", "--devnet", "alice")


def _result(
    chain: Chain, cli: Cli, tmp_path: Path, client_env: Path, job_id: int, sign_as: str
) -> tuple[bytes, bytes, bytes]:
    """A result made (and receipt signed) by ``sign_as``, pinned where the client reads;
    returns the binary (cid, video sha256, frames digest) a reveal takes."""
    job = cli.json("status", str(job_id))
    spec = decode_spec(bytes.fromhex(job["spec_hex"][2:]))
    out = tmp_path / f"result-{job_id}-{sign_as}"
    video, frames = build_result(
        out,
        chain,
        job_id=job_id,
        request_digest=job["request_digest"],
        spec=spec,
        sign_as=sign_as,
    )
    cid = str(LocalStore(client_env / "blocks").add_path(out))
    return bytes(parse_cid(cid)), bytes.fromhex(video[2:]), bytes.fromhex(frames[2:])


def _commit_and_reveal(chain: Chain, job_id: int, results: dict[str, tuple[bytes, ...]]) -> None:
    """Every replica commits before anyone reveals, then each reveals."""
    salts = {}
    for name, (cid, video, frames) in results.items():
        salts[name] = new_salt()
        provider = chain.account(name).address
        commitment = replica_commitment(job_id, provider, cid, video, frames, salts[name])
        chain.market(name).commit_result(job_id, commitment)
    for name, (cid, video, frames) in results.items():
        chain.market(name).reveal_result(job_id, cid, video, frames, salts[name])


def _submit_claimed(cli: Cli, chain: Chain) -> dict[str, Any]:
    job = cli.json("submit", *TINY, "--replicas", "2")
    for name in PROVIDERS:
        chain.market(name).claim_job(job["job_id"], ASK)
    return job


def test_submit_replicas_is_validated_before_signing(cli: Cli) -> None:
    # No wallet and no chain: the bounds are checked first.
    for bad in ("0", "6"):
        result = cli("submit", *TINY, "--replicas", bad, ok=False)
        assert result.exit_code == 1
        assert "replicas must be in 1..5" in said(result) and f"got {bad}" in said(result)
    lone = cli("submit", *TINY, "--perceptual", ok=False)
    assert "perceptual agreement needs at least 2 replicas" in said(lone)
    assert "--replicas 2" in said(lone)


def test_submit_replicas_escrows_per_replica_price_times_k(on_chain: Chain, cli: Cli) -> None:
    _market_ready(on_chain, cli)
    alice = on_chain.account("alice").address
    free_before = on_chain.market().free_balance_of(alice)
    text = cli("submit", *TINY, "--replicas", "2", "--perceptual")
    assert "per replica × 2" in text.output and "(escrowed)" in text.output
    job = cli.json("submit", *TINY, "--replicas", "2", "--perceptual")
    assert job["replicas"] == 2 and job["perceptual"] is True
    assert int(job["max_price"]) == ASK and int(job["escrow"]) == 2 * ASK
    assert on_chain.market().free_balance_of(alice) == free_before - 4 * ASK
    assert on_chain.market().escrow_of(job["job_id"]) == 2 * ASK

    on_chain.market("provider-1").claim_job(job["job_id"], ASK)
    status = cli.json("status", str(job["job_id"]))
    assert status["state"] == "open" and status["replicas"] == 2 and status["perceptual"]
    assert [(r["index"], r["outcome"]) for r in status["replica_list"]] == [(0, "claimed")]
    assert status["replica_list"][0]["provider"] == on_chain.account("provider-1").address
    assert status["digests_agree"] is None
    rows = cli.json("jobs", "--mine")
    assert rows[0]["job_id"] == job["job_id"] and rows[0]["replicas"] == 2
    shown = cli("status", str(job["job_id"])).output
    assert "2 (1 claimed)" in shown and "replica 0:" in shown


def test_honest_replicas_status_verify_fetch_and_dispute(  # type: ignore[no-untyped-def]
    on_chain: Chain, cli: Cli, tmp_path: Path, client_env: Path
) -> None:
    _market_ready(on_chain, cli)
    job_id = _submit_claimed(cli, on_chain)["job_id"]
    assert cli.json("status", str(job_id))["state"] == "claimed"
    results = {n: _result(on_chain, cli, tmp_path, client_env, job_id, n) for n in PROVIDERS}
    _commit_and_reveal(on_chain, job_id, results)

    status = cli.json("status", str(job_id))
    assert status["state"] == "delivered" and status["digests_agree"] is True
    replicas = status["replica_list"]
    assert [r["outcome"] for r in replicas] == ["revealed", "revealed"]
    assert [r["provider"] for r in replicas] == [on_chain.account(n).address for n in PROVIDERS]
    # Each replica made its own result: same video, own receipt, so its own CID.
    assert replicas[0]["result_cid"] != replicas[1]["result_cid"]
    assert replicas[0]["frames_digest"] == replicas[1]["frames_digest"] == status["frames_digest"]
    assert "digests       agree" in cli("status", str(job_id)).output

    report = cli.json("verify", str(job_id))
    assert report["ok"] and report["replicated"]
    assert [(r["index"], r["ok"], r["copied_from"]) for r in report["replicas"]] == [
        (0, True, None),
        (1, True, None),
    ]
    out = tmp_path / "out"
    fetched = cli.json("fetch", str(job_id), "-o", str(out))
    assert fetched["kept_replica"] == 0 and fetched["path"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["poster.jpg", "receipt.json", "video.mp4"]
    assert cli.json("verify", str(out))["ok"]  # a folder is matched to its replica by CID
    replay = cli("verify", str(job_id), "--replay", ok=False)
    assert "--replay is for single-provider jobs" in said(replay)

    disputed = cli.json("dispute", str(job_id), "--reason", "spec-mismatch")
    assert disputed["state"] == "disputed"
    assert cli.json("status", str(job_id))["dispute_reason"] == "spec_mismatch"


def test_copied_replica_is_named(  # type: ignore[no-untyped-def]
    on_chain: Chain, cli: Cli, tmp_path: Path, client_env: Path
) -> None:
    _market_ready(on_chain, cli)
    job_id = _submit_claimed(cli, on_chain)["job_id"]
    original = _result(on_chain, cli, tmp_path, client_env, job_id, "provider-1")
    # provider-2 commits to (and reveals) provider-1's result: the digests agree.
    _commit_and_reveal(on_chain, job_id, {"provider-1": original, "provider-2": original})
    assert cli.json("status", str(job_id))["digests_agree"] is True

    failed = cli("verify", str(job_id), ok=False)
    assert failed.exit_code == 1
    assert "copied result: replica 1 delivered replica 0's CID" in said(failed)
    assert "the result was made by another provider" in said(failed)
    assert "ok  " in failed.output and "replica 0" in failed.output  # the original passes
    kept = client_env / "quarantine" / f"{job_id}-replica-1"
    assert (kept / "receipt.json").is_file()

    out = tmp_path / "out"
    fetched = cli("fetch", str(job_id), "-o", str(out), ok=False)
    assert f"replica 0 passed and is in {out}" in said(fetched)
    assert (out / "video.mp4").is_file()

    disputed = cli.json("dispute", str(job_id))  # verifies, disputes what failed
    assert disputed["state"] == "disputed"
    assert cli.json("status", str(job_id))["dispute_reason"] == "spec_mismatch"


def test_reclaim_of_unfilled_replicated_job_refunds_everything(on_chain: Chain, cli: Cli) -> None:
    _market_ready(on_chain, cli)
    alice = on_chain.account("alice").address
    free_before = on_chain.market().free_balance_of(alice)
    job = cli.json("submit", *TINY, "--replicas", "2", "--claim-timeout", "30")
    on_chain.market("provider-1").claim_job(job["job_id"], ASK)
    too_early = cli("reclaim", str(job["job_id"]), ok=False)
    assert "claim deadline is in" in said(too_early)

    on_chain.warp(job["claim_deadline"] - on_chain.now() + 1)
    waited = cli("status", str(job["job_id"]), "--wait", ok=False)
    assert "only 1 of 2 replicas" in said(waited)
    assert f"framecast reclaim {job['job_id']}" in said(waited)
    result = cli.json("reclaim", str(job["job_id"]))
    assert result["state"] == "expired" and int(result["refunded"]) == 2 * ASK
    assert int(result["free"]) == free_before
    status = cli.json("status", str(job["job_id"]))
    assert [r["outcome"] for r in status["replica_list"]] == ["refunded"]
    assert on_chain.market().get_provider(on_chain.account("provider-1").address).locked == 0


def test_reclaim_past_commit_deadline_defaults_the_silent_replica(  # type: ignore[no-untyped-def]
    on_chain: Chain, cli: Cli, tmp_path: Path, client_env: Path
) -> None:
    _market_ready(on_chain, cli)
    job_id = _submit_claimed(cli, on_chain)["job_id"]
    cid, video, frames = _result(on_chain, cli, tmp_path, client_env, job_id, "provider-1")
    salt = new_salt()
    provider = on_chain.account("provider-1").address
    on_chain.market("provider-1").commit_result(
        job_id, replica_commitment(job_id, provider, cid, video, frames, salt)
    )
    too_early = cli("reclaim", str(job_id), ok=False)
    assert "commit deadline is in" in said(too_early)
    deadline = cli.json("status", str(job_id))["deadline"]
    on_chain.warp(deadline - on_chain.now() + 1)
    waited = cli("status", str(job_id), "--wait", ok=False)
    assert "only 1 of 2 replicas" in said(waited) and "commit deadline" in said(waited)

    result = cli.json("reclaim", str(job_id))
    assert result["state"] == "revealing"
    assert int(result["refunded"]) == ASK and int(result["slashed"]) > 0
    on_chain.market("provider-1").reveal_result(job_id, cid, video, frames, salt)
    # A lone survivor has nobody to agree with: the market disputes it automatically.
    status = cli.json("status", str(job_id))
    assert status["state"] == "disputed" and status["dispute_reason"] == "replica_mismatch"
    assert [r["outcome"] for r in status["replica_list"]] == ["revealed", "defaulted"]
    assert cli.json("verify", str(job_id))["ok"]  # the survivor's own result is genuine


def test_each_replica_is_fetched_from_its_own_providers_gateway(  # type: ignore[no-untyped-def]
    on_chain: Chain, cli: Cli, tmp_path: Path, client_env: Path
) -> None:
    """No shared store: each provider pins its replica into its own store and serves it on
    its own gateway, advertised in its on-chain offer; the client fetches each from there."""
    import json
    import shutil

    from framecast.shared.ipfs.cid import CID
    from framecast.shared.ipfs.gateway import serve_gateway
    from framecast.shared.provider_metadata import ProviderOffer

    def advertise(name: str, gateway: str) -> None:
        offer = ProviderOffer(
            models=["tiny-cogvideox"], price_per_unit=PRICE_PER_UNIT, gateway=gateway
        )
        on_chain.market(name).update_metadata(offer.to_uri())

    _market_ready(on_chain, cli)
    # A chain ahead of the wall clock keeps its latest block's time while no block is mined:
    # the challenge window cannot run out while a loaded machine fetches and verifies.
    on_chain.warp(3600)
    job_id = _submit_claimed(cli, on_chain)["job_id"]
    stores = {n: LocalStore(tmp_path / f"blocks-{n}") for n in PROVIDERS}
    results = {}
    for name in PROVIDERS:
        results[name] = _result(on_chain, cli, tmp_path, client_env, job_id, name)
        made = tmp_path / f"result-{job_id}-{name}"
        assert stores[name].add_path(made) == CID.from_bytes(results[name][0])
    shutil.rmtree(client_env / "blocks")  # the client holds neither replica
    with serve_gateway(stores["provider-1"]) as one, serve_gateway(stores["provider-2"]) as two:
        advertise("provider-1", one.url)
        advertise("provider-2", two.url)
        _commit_and_reveal(on_chain, job_id, results)
        report = cli.json("verify", str(job_id))
        assert report["ok"], report
        assert [(r["index"], r["ok"]) for r in report["replicas"]] == [(0, True), (1, True)]
        # No block since the reveal: the whole challenge window is left.
        window = on_chain.market().params().challenge_window
        assert report["dispute_seconds_left"] == window
        assert "left to dispute" in cli("verify", str(job_id)).output
        out = tmp_path / "out"
        fetched = cli.json("fetch", str(job_id), "-o", str(out))
        assert fetched["kept_replica"] == 0
        assert sorted(p.name for p in out.iterdir()) == ["poster.jpg", "receipt.json", "video.mp4"]
        one_url, two_url = one.url, two.url
    # provider-2's gateway is gone: only its replica is unretrievable, and the error names
    # its gateway; provider-1's replica is still fetched from provider-1's own.
    with serve_gateway(stores["provider-1"]) as one_again:
        advertise("provider-1", one_again.url)
        failed = json.loads(cli("verify", str(job_id), "--json", ok=False).stdout)
    by_index = {r["index"]: r for r in failed["replicas"]}
    assert by_index[0]["ok"] is True
    assert by_index[1]["ok"] is False
    assert two_url in by_index[1]["error"] and one_url not in by_index[1]["error"]
