"""`framecast verify JOB --replay` (level 3) and `framecast node replay`: the client runs
the node command in a subprocess, the node re-runs the job on the real tiny runner."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from framecast.client import replay as client_replay
from framecast.node.config import NodeSettings, render_toml
from framecast.shared.errors import ConfigError
from framecast.shared.ipfs.store import StoreSettings
from tests.client.conftest import FRAMECAST, PASSWORD, Cli
from tests.conftest import Chain
from tests.node.conftest import AgentFactory
from tests.node.test_agent import step_until, submit_tiny

pytestmark = pytest.mark.slow


def said(result: Result) -> str:
    """What the user reads: output, or the FramecastError the CLI boundary prints."""
    return result.output + str(result.exception or "")


def verifier_config(path: Path, *, deployment: Path, weights_dir: Path, blocks: Path) -> Path:
    """The node config of someone who ran `framecast node init` to replay jobs."""
    settings = NodeSettings(
        deployment=deployment,
        weights_dir=weights_dir,
        state_dir=path.parent / "verifier-state",
        store=StoreSettings(store_path=blocks),
        models=["tiny-cogvideox"],
    )
    path.write_text(render_toml(settings))
    return path


def test_replay_of_a_forged_video_fails_level_3(  # type: ignore[no-untyped-def]
    deliver_job, cli: Cli, tmp_path: Path, client_env: Path, weights_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Levels 1-2 pass (consistent, signed), but the video is not what the model makes.
    job = deliver_job()
    cli("wallet", "import", "--devnet", "alice")
    monkeypatch.setenv("FRAMECAST_NODE_CONFIG", str(tmp_path / "missing.toml"))
    missing = cli("verify", str(job.job_id), "--replay", ok=False)
    assert missing.exit_code == 1
    assert "framecast node init" in said(missing)

    config = verifier_config(
        tmp_path / "node.toml", deployment=tmp_path / "deployment.json",
        weights_dir=weights_dir, blocks=client_env / "blocks",
    )  # fmt: skip
    monkeypatch.setenv("FRAMECAST_NODE_CONFIG", str(config))
    failed = cli("verify", str(job.job_id), "--replay", ok=False)
    assert failed.exit_code == 1
    text = said(failed)
    assert "L3 replay: mismatch" in text
    assert f"job {job.job_id} fails verification at level 3 (replay)" in text

    as_json = cli("verify", str(job.job_id), "--replay", "--json", ok=False)
    report = json.loads(as_json.stdout)
    assert report["level_passed"] == 2
    replay = report["replay"]
    assert replay["verdict"] == "mismatch" and replay["chain_frames_digest"] == "0x" + "ab" * 32
    assert replay["similarity"]["verdict"] == "below_threshold"
    assert replay["similarity"]["min_ssim"] < 0.5


def test_verify_replay_of_a_real_delivery_is_exact_through_the_console_script(
    market_ready: Chain, make_agent: AgentFactory, tmp_path: Path, weights_dir: Path,
    client_env: Path,
) -> None:  # fmt: skip
    agent = make_agent()
    agent.startup()
    job_id = submit_tiny(market_ready, seed=9, prompt="waves on rocks")
    step_until(agent, job_id, {"delivered"})
    provider_blocks = tmp_path / "provider-1-blocks"
    config = verifier_config(
        tmp_path / "node.toml", deployment=tmp_path / "deployment.json",
        weights_dir=weights_dir, blocks=provider_blocks,
    )  # fmt: skip
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(client_env),
        "FRAMECAST_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "FRAMECAST_PASSWORD": PASSWORD,
        "FRAMECAST_STORE_PATH": str(provider_blocks),
        "FRAMECAST_NODE_CONFIG": str(config),
        "NO_COLOR": "1",
    }

    def framecast(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FRAMECAST), *args], env=env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip

    done = framecast("verify", str(job_id), "--replay")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "L3 replay: exact" in done.stdout
    assert (
        f"job {job_id} verified: levels 1 (integrity) + 2 (provenance) + 3 (replay: exact)"
        in done.stdout
    )
    # The node command on its own fetches the result by its CID from the node's store.
    alone = framecast("node", "replay", str(job_id), "--json")
    assert alone.returncode == 0, alone.stderr
    report = json.loads(alone.stdout)
    record = agent.state.require(job_id)
    assert report["verdict"] == "exact" and report["exact_expected"]
    assert report["replay_frames_digest"] == report["chain_frames_digest"] == record.frames_digest
    assert Path(report["result_dir"]).name == "delivered"


def test_replay_without_the_pipelines_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_replay, "REPLAY_MODULES", ("framecast_no_such_module",))
    with pytest.raises(ConfigError) as raised:
        client_replay.check_replay_available()
    assert "framecast_no_such_module" in raised.value.message
    assert raised.value.fix is not None
    assert "pip install 'framecast[node,pipelines]'" in raised.value.fix
    assert "framecast node init" in raised.value.fix
