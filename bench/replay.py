"""Honest-replay match rate and replay wall time (docs/protocol.md §8 level 3) on the tiny model.

Run: `.venv/bin/python bench/replay.py [--jobs N]`. A "provider" runs N tiny CogVideoX jobs
(different seeds and prompts) in one warm process runtime and signs real receipts, as the
agent does; each job is then replayed by `framecast.node.replay.replay_job` in a fresh
runner process (cold: process start, imports, model load, job), as `framecast node
replay` does. Prints the verdicts, the exact-match rate and the replay wall times.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from eth_account import Account

from framecast.node.models import build_tiny
from framecast.node.replay import replay_job
from framecast.node.result import write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import default_spec
from framecast.shared.deployment import Deployment, MarketParams
from framecast.shared.runner_protocol import RunRequest

PROMPTS = ["a red cat", "a blue car", "snow on a hill", "a small boat", "city lights at night"]
DEPLOYMENT = Deployment(
    network="bench",
    chain_id=31337,
    rpc_url="http://127.0.0.1:1",
    credits="0x" + "11" * 20,
    market="0x" + "22" * 20,
    deployed_block=0,
    params=MarketParams(
        min_bond=0,
        collateral_bps=0,
        dispute_bond=0,
        challenge_window=60,
        resolve_window=60,
        reveal_window=60,
        exit_cooldown=0,
        protocol_fee_bps=0,
    ),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    provider = Account.from_key("0x" + "42" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = root / "weights"
        build_tiny("tiny-cogvideox", weights / "tiny-cogvideox")
        node = ProcessRuntime(log_dir=root / "provider-logs")
        verdicts: Counter[str] = Counter()
        walls: list[float] = []
        runs: list[float] = []
        try:
            for index in range(args.jobs):
                job_id = index + 1
                spec = default_spec(
                    "tiny-cogvideox", PROMPTS[index % len(PROMPTS)], seed=1000 + 7 * index
                )
                out = root / f"job-{job_id}" / "out"
                event = node.run(
                    RunRequest(job_id=f"job-{job_id}", spec=spec,
                               model_dir=str(weights / "tiny-cogvideox"), output_dir=str(out)),
                    job_dir=out.parent, on_event=lambda _e: None, timeout_s=300,
                )  # fmt: skip
                assert event.output is not None, event.error
                write_receipt(
                    out_dir=out, output=event.output, spec=spec, job_id=job_id,
                    request_digest="0x" + "00" * 32, deployment=DEPLOYMENT, provider=provider,
                    runtime="process", image_digest=None, timings=event.metrics,
                )  # fmt: skip
                fresh = ProcessRuntime(log_dir=root / "replay-logs")
                start = time.perf_counter()
                try:
                    report = replay_job(
                        job_id=job_id, spec_bytes=spec.canonical_json(), result_dir=out,
                        runtime=fresh, runtime_name="process", image_digest=None,
                        weights_root=weights, work_dir=root / f"replay-{job_id}",
                        chain_frames_digest="0x" + event.output.frames_digest, timeout_s=300,
                    )  # fmt: skip
                finally:
                    fresh.close()
                wall = time.perf_counter() - start
                verdicts[report.verdict] += 1
                walls.append(wall)
                runs.append(report.replay_seconds)
                print(
                    f"job {job_id:2d} seed {spec.seed} {spec.prompt!r:24} {report.verdict:10} "
                    f"replay wall {wall:5.2f} s (runner {report.replay_seconds:5.2f} s)"
                )
        finally:
            node.close()
    exact = verdicts["exact"]
    print(f"\nhonest-replay exact-match rate: {exact}/{args.jobs} = {exact / args.jobs:.0%}")
    print(f"verdicts: {dict(verdicts)}")
    print(
        f"replay wall s (fresh runner process): median {statistics.median(walls):.2f}, "
        f"min {min(walls):.2f}, max {max(walls):.2f}; run step median "
        f"{statistics.median(runs):.2f}"
    )
    return 0 if exact == args.jobs else 1


if __name__ == "__main__":
    raise SystemExit(main())
