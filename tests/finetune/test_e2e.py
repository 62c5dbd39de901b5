"""End to end through the CLI with a real agent (tiny CogVideoX, process runtime, its own
store) behind its HTTP server on 127.0.0.1, and the client with a store of its own:
pack a dataset of generated clips, fine-tune on it, generate with the LoRA."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from framecast.shared.catalog import TINY_PROMPT
from framecast.shared.receipt import Receipt
from tests.client.conftest import Cli
from tests.client_jobs.conftest import (
    cli,
    client_env,
    make_agent,
    market_ready,
    on_chain,
    tiny_cogvideox_dir,
    weights_dir,
)
from tests.client_jobs.test_inputs import Served, serve
from tests.conftest import Chain
from tests.finetune.conftest import Dataset
from tests.node.conftest import AgentFactory

__all__ = ["cli", "client_env", "make_agent", "market_ready", "on_chain", "serve",
           "tiny_cogvideox_dir", "weights_dir"]  # fmt: skip

pytestmark = pytest.mark.slow


def receipt_of(folder: Path) -> Receipt:
    return Receipt.from_json((folder / "receipt.json").read_bytes())


def test_pack_fine_tune_then_generate_with_the_lora_by_cid(
    market_ready: Chain, make_agent: AgentFactory, serve: type[Served], on_chain: Chain,
    cli: Cli, client_env: Path, dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    agent = make_agent()
    agent.startup()
    node = serve(agent)
    monkeypatch.setenv("FRAMECAST_GATEWAY_URL", node.url)
    stop = threading.Event()
    loop = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        cli("wallet", "import", "--devnet", "alice")
        packed = cli.json("dataset", "pack", str(dataset.folder), "--model", "tiny-cogvideox")
        assert packed["clips"] == 3 and packed["cid"] == dataset.cid
        # A bad dataset is refused before anything is signed, naming the file.
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "a.mp4").write_bytes(b"junk")
        refused = cli("dataset", "pack", str(tmp_path / "bad"), "--model", "tiny-cogvideox",
                      ok=False)  # fmt: skip
        assert "a.mp4 is unreadable" in str(refused.exception)
        # Out-of-bounds rank: refused before the password prompt and the chain.
        too_big = cli("submit", "--model", "tiny-cogvideox", "--prompt", TINY_PROMPT,
                      "--dataset", packed["cid"], "--rank", "64", ok=False)  # fmt: skip
        assert "fine_tune.rank" in str(too_big.exception) and "1..16" in str(too_big.exception)

        tuned = tmp_path / "tuned"
        done = cli(
            "submit", "--model", "tiny-cogvideox", "--prompt", TINY_PROMPT, "--seed", "5",
            "--dataset", packed["cid"], "--steps", "4", "--rank", "4", "--alpha", "8",
            "--learning-rate", "1e-3", "--modules", "to_v,to_q", "--wait", "-o", str(tuned),
        )  # fmt: skip
        assert "verified: levels 1 (integrity) + 2 (provenance)" in done.output, done.output
        record = receipt_of(tuned).body.fine_tune
        assert record is not None and f"lora  {record.lora_cid}" in done.output
        assert record.dataset_cid == packed["cid"] and record.modules == ["to_q", "to_v"]
        assert sorted(p.name for p in tuned.iterdir()) == [
            "lora.safetensors", "poster.jpg", "receipt.json", "train_log.jsonl", "video.mp4",
        ]  # fmt: skip

        styled, base = tmp_path / "styled", tmp_path / "base"
        common = ("--model", "tiny-cogvideox", "--prompt", TINY_PROMPT, "--seed", "5",
                  "--steps", "2", "--wait")  # fmt: skip
        done = cli("submit", *common, "--lora", str(tuned / "lora.safetensors"), "-o", str(styled))
        assert "verified: levels 1" in done.output, done.output
        cli("submit", *common, "-o", str(base))
        styled_body, base_body = receipt_of(styled).body, receipt_of(base).body
        # The generation with the LoRA is the fine-tune's sample; the base model's differs.
        assert styled_body.frames_digest == record.sample_frames_digest
        assert styled_body.frames_digest != base_body.frames_digest
        assert styled_body.style is not None and record.lora_cid in styled_body.style
        status = cli.json("status", "1")
        assert status["frames_digest"] == record.lora_sha256
        report = cli.json("verify", "1")
        assert report["ok"] and report["level_passed"] == 2
    finally:
        stop.set()
        loop.join(timeout=60)
