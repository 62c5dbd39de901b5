"""Job commands in-process (CliRunner) against anvil: validation before signing, quotes,
views, verification with quarantine, and the client's actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from framecast.shared.mp4 import read_video_info
from framecast.shared.provider_metadata import ProviderOffer, parse_offer
from tests.chain.conftest import FCC, fund_market, register
from tests.client_jobs.conftest import PRICE_PER_UNIT, TINY_UNITS, Cli, offer_provider
from tests.conftest import Chain


def said(result: Result) -> str:
    """What the user reads: output, or the FramecastError the CLI boundary prints."""
    return result.output + str(result.exception or "")


TINY = ["--model", "tiny-cogvideox", "--prompt", "a red cat", "--seed", "7"]


def test_offer_uri_round_trips_and_degrades() -> None:
    offer = ProviderOffer(models=["tiny-cogvideox"], price_per_unit=10**30, endpoint="http://h:1")
    assert parse_offer(offer.to_uri()) == offer
    assert parse_offer("framecast:tiny-cogvideox,cogvideox-2b").models == [  # type: ignore[union-attr]
        "tiny-cogvideox",
        "cogvideox-2b",
    ]
    assert parse_offer("ipfs://meta") is None
    assert parse_offer("data:application/json,{not json") is None


def test_mp4_reader_matches_what_was_encoded(tmp_path: Path) -> None:
    from tests.client_jobs.conftest import write_tiny_video

    write_tiny_video(tmp_path / "v.mp4", frames=13, size=48, fps=12)
    info = read_video_info(tmp_path / "v.mp4")
    assert (info.num_frames, info.width, info.height, info.fps) == (13, 48, 48, 12)


def test_submit_rejects_bad_input_before_signing(cli: Cli) -> None:
    # No wallet, no chain: validation comes first.
    unknown = cli("submit", "--model", "nope", "--prompt", "x", ok=False)
    assert unknown.exit_code == 1
    assert "unknown model 'nope'" in said(unknown) and "tiny-cogvideox" in said(unknown)
    bounds = cli("submit", *TINY, "--frames", "8", ok=False)
    assert bounds.exit_code == 1
    assert "num_frames" in said(bounds) and "5..17, 4k+1" in said(bounds)
    guidance = cli("submit", *TINY, "--guidance", "6.0001", ok=False)
    assert "at most 3 decimals" in said(guidance)


def test_submit_checks_control_and_source_videos_before_signing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.client_jobs.conftest import write_tiny_video

    # No wallet, no chain: the inputs are checked first (added to the client's own store).
    monkeypatch.setenv("FRAMECAST_HOME", str(tmp_path / "home"))
    vace = ["--model", "tiny-wan-vace", "--prompt", "a red cat", "--seed", "7"]
    missing = cli("submit", *vace, ok=False)
    assert missing.exit_code == 1 and "needs inputs.control" in said(missing)
    write_tiny_video(tmp_path / "short.mp4", frames=5, size=32)
    short = cli("submit", *vace, "--control", str(tmp_path / "short.mp4"), ok=False)
    assert short.exit_code == 1
    assert "(inputs.control) has 5 frames of 32x32; the spec asks for 9 frames of 32x32" in said(
        short
    )
    write_tiny_video(tmp_path / "wide.mp4", frames=9, size=48)
    wide = cli("submit", *vace, "--control", str(tmp_path / "wide.mp4"), ok=False)
    assert "has 9 frames of 48x48" in said(wide)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    junk = cli("submit", *vace, "--control", str(tmp_path / "junk.mp4"), ok=False)
    assert "(--control) is not a readable MP4 video" in said(junk)
    edit = ["--model", "tiny-wan-v2v", "--prompt", "a red cat", "--seed", "7"]
    assert "needs inputs.video" in said(cli("submit", *edit, ok=False))
    wrong = cli("submit", *edit, "--video", str(tmp_path / "short.mp4"), ok=False)
    assert "(inputs.video) has 5 frames" in said(wrong)
    # An input the model does not take names the flag to drop.
    stray = cli("submit", *TINY, "--control", str(tmp_path / "wide.mp4"), ok=False)
    assert "takes no control video" in said(stray) and "drop --control" in said(stray)


def test_submit_without_credits_shows_balance_and_faucet(on_chain: Chain, cli: Cli) -> None:
    register(on_chain, "provider-1")
    offer_provider(on_chain)
    cli("wallet", "import", "--devnet", "bob")
    result = cli("submit", *TINY, ok=False)
    assert result.exit_code == 1
    assert "0 FCC free in the market" in said(result)
    assert "10,000 FCC in the wallet" in said(result)
    assert "framecast credits deposit --amount 0.000000000018432" in said(result)
    assert "framecast credits faucet" in said(result)


def test_submit_quotes_signs_and_status_reads_it_back(on_chain: Chain, cli: Cli) -> None:
    register(on_chain, "provider-1")
    offer_provider(on_chain)
    register(on_chain, "provider-2")  # advertises nothing readable: counted out, no crash
    fund_market(on_chain, "alice", 10 * FCC)
    cli("wallet", "import", "--devnet", "alice")
    submitted = cli.json("submit", *TINY)
    ask = TINY_UNITS * PRICE_PER_UNIT
    assert submitted["quote"]["providers"] == 1
    assert int(submitted["quote"]["min_price"]) == ask == int(submitted["max_price"])
    assert submitted["quote"]["expected_seconds"] is None
    job_id = submitted["job_id"]
    second = cli.json("submit", *TINY, "--max-price", "0.5")
    assert second["nonce"] == submitted["nonce"] + 1

    status = cli.json("status", str(job_id))
    assert status["state"] == "open" and status["model"] == "tiny-cogvideox"
    assert status["request_digest"] == submitted["request_digest"]
    assert status["spec"]["seed"] == 7
    listed = cli.json("jobs", "--mine")
    assert [row["job_id"] for row in listed] == [second["job_id"], job_id]
    assert "open" in cli("status", str(job_id)).output

    cancelled = cli.json("cancel", str(job_id))
    assert cancelled["state"] == "cancelled" and int(cancelled["refunded"]) == ask
    too_early = cli("reclaim", str(second["job_id"]), ok=False)
    assert "claim deadline is in" in said(too_early)


def test_reclaim_after_nobody_claims(on_chain: Chain, cli: Cli) -> None:
    fund_market(on_chain, "alice", 10 * FCC)
    cli("wallet", "import", "--devnet", "alice")
    job = cli.json("submit", *TINY, "--max-price", "1", "--claim-timeout", "30")
    # Past the deadline in chain time (earlier tests may have left anvil's clock offset).
    on_chain.warp(job["claim_deadline"] - on_chain.now() + 1)
    waited = cli("status", str(job["job_id"]), "--wait", ok=False)
    assert "no provider claimed job" in said(waited)
    assert f"framecast reclaim {job['job_id']}" in said(waited)
    result = cli.json("reclaim", str(job["job_id"]))
    assert result["state"] == "expired" and int(result["refunded"]) == FCC


def test_good_result_verifies_and_fetches(deliver_job, cli: Cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = deliver_job()
    cli("wallet", "import", "--devnet", "alice")
    report = cli.json("verify", str(job.job_id))
    assert report["ok"] and report["level_passed"] == 2
    assert "not recomputed" in report["frames_digest"]
    names = {check["name"] for check in report["checks"]}
    assert {"receipt_gpu", "receipt_image_digest", "receipt_num_frames", "spec_bytes"} <= names
    out = tmp_path / "out"
    fetched = cli.json("fetch", str(job.job_id), "-o", str(out))
    assert fetched["ok"] and sorted(p.name for p in out.iterdir()) == [
        "poster.jpg",
        "receipt.json",
        "video.mp4",
    ]
    assert cli.json("verify", str(out))["ok"]


def test_tampered_video_fails_level_1_and_is_quarantined(  # type: ignore[no-untyped-def]
    deliver_job, cli: Cli, tmp_path: Path, client_env: Path
) -> None:
    def tamper(result: Path) -> None:
        video = result / "video.mp4"
        video.write_bytes(video.read_bytes() + b"\0")

    job = deliver_job(tamper)
    out = tmp_path / "out"
    failed = cli("fetch", str(job.job_id), "-o", str(out), ok=False)
    assert failed.exit_code == 1
    assert "level 1 (integrity): video_sha256 expected 0x" in said(failed)
    assert not out.exists()
    kept = client_env / "quarantine" / str(job.job_id)
    assert (kept / "video.mp4").read_bytes() == (job.result_dir / "video.mp4").read_bytes()

    cli("wallet", "import", "--devnet", "alice")
    disputed = cli.json("dispute", str(job.job_id))
    assert disputed["state"] == "disputed"
    assert cli.json("status", str(job.job_id))["dispute_reason"] == "hash_mismatch"


def test_forged_receipt_fails_level_2(deliver_job, cli: Cli) -> None:  # type: ignore[no-untyped-def]
    def forge(result: Path) -> None:
        receipt = json.loads((result / "receipt.json").read_text())
        receipt["body"]["seed"] = 8  # the signature no longer recovers to the provider
        (result / "receipt.json").write_text(json.dumps(receipt))

    job = deliver_job(forge)
    failed = cli("verify", str(job.job_id), ok=False)
    assert "level 2 (provenance): receipt_signer" in said(failed)
    assert "forged or altered" in said(failed)
    # A genuine receipt of provider-2 in a result that provider-1 claimed and delivered.
    other = deliver_job(sign_as="provider-2")
    failed = cli("verify", str(other.job_id), ok=False)
    assert "level 2 (provenance): receipt_signer" in said(failed)
    assert "the result was made by another provider" in said(failed)
