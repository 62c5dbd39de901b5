"""Fine-tune jobs on the tiny model: training speed, replay exact-match rate, LoRA size.

Run: `.venv/bin/python bench/finetune.py [--jobs N] [--steps S]`. A "provider" generates
three tiny CogVideoX clips, packs them as a dataset (`framecast dataset pack`'s service)
into an embedded store, then runs N fine-tune jobs (different seeds) in one warm process
runtime, inputs fetched from the store as the agent fetches them, and signs real receipts.
Each job is replayed by `framecast.node.replay.replay_job` in a fresh runner process
(re-training; the LoRA's sha256 is the digest compared). Last, one-step jobs at ranks
1..16 give the LoRA file size per rank. Prints the training speed (steps/s, from the
runner's `train_s`), the exact-match rate and the sizes, and the torch threads used.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from eth_account import Account

from framecast.client.datasets import pack_dataset
from framecast.node.models import build_tiny
from framecast.node.replay import fetch_inputs, replay_job, store_fetcher
from framecast.node.result import write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.deployment import Deployment, MarketParams
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.spec import GenerationSpec

MODEL = "tiny-cogvideox"
CLIPS = ("a red cat walks in the city", "a blue dog runs in the forest", "a bird flies")
MODULES = ["to_k", "to_out.0", "to_q", "to_v"]
ALL_MODULES = ["ff.net.0.proj", "ff.net.2", *MODULES]
DEPLOYMENT = Deployment(
    network="bench", chain_id=31337, rpc_url="http://127.0.0.1:1", credits="0x" + "11" * 20,
    market="0x" + "22" * 20, deployed_block=0,
    params=MarketParams(min_bond=0, collateral_bps=0, dispute_bond=0, challenge_window=60,
                        resolve_window=60, reveal_window=60, exit_cooldown=0,
                        protocol_fee_bps=0),
)  # fmt: skip


def run(
    node: ProcessRuntime, root: Path, weights: Path, store: LocalStore, spec: GenerationSpec,
    name: str,
) -> tuple[RunnerEvent, Path]:  # fmt: skip
    job_dir = root / name
    inputs = fetch_inputs(spec, job_dir, store_fetcher(store))
    out = job_dir / "out"
    event = node.run(
        RunRequest(job_id=name, spec=spec, model_dir=str(weights / MODEL), output_dir=str(out),
                   inputs_dir=str(inputs) if inputs else None),
        job_dir=job_dir, on_event=lambda _e: None, timeout_s=600,
    )  # fmt: skip
    assert event.output is not None, event.error
    return event, out


def fine_tune(dataset: str, seed: int, steps: int, rank: int, modules: list[str]) -> GenerationSpec:
    return default_spec(
        MODEL, TINY_PROMPT, task="fine-tune", seed=seed, steps=steps, inputs={"dataset": dataset},
        fine_tune={"rank": rank, "alpha": rank, "learning_rate_micro": 1000, "modules": modules},
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    provider = Account.from_key("0x" + "42" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = root / "weights"
        build_tiny("tiny-cogvideox", weights / MODEL)
        store = LocalStore(root / "blocks")
        node = ProcessRuntime(log_dir=root / "provider-logs")
        exact = 0
        speeds: list[float] = []
        threads = 0
        try:
            folder = root / "clips"
            folder.mkdir()
            for index, prompt in enumerate(CLIPS):
                clip = default_spec(MODEL, prompt, seed=100 + index)
                event, out = run(node, root, weights, store, clip, f"clip-{index}")
                shutil.copyfile(out / "video.mp4", folder / f"clip{index}.mp4")
                (folder / f"clip{index}.txt").write_text(prompt, encoding="utf-8")
            dataset = pack_dataset(store, folder, model=MODEL).cid
            print(f"dataset {dataset}: {len(CLIPS)} clips of 9 frames 32x32")
            for index in range(args.jobs):
                job_id = index + 1
                spec = fine_tune(dataset, 1000 + 7 * index, args.steps, 4, MODULES)
                event, out = run(node, root, weights, store, spec, f"job-{job_id}")
                assert event.output is not None
                threads = event.output.environment.torch_threads
                speeds.append(spec.steps / event.metrics["train_s"])
                write_receipt(
                    out_dir=out, output=event.output, spec=spec, job_id=job_id,
                    request_digest="0x" + "00" * 32, deployment=DEPLOYMENT, provider=provider,
                    runtime="process", image_digest=None, timings=event.metrics,
                )  # fmt: skip
                fresh = ProcessRuntime(log_dir=root / "replay-logs")
                try:
                    report = replay_job(
                        job_id=job_id, spec_bytes=spec.canonical_json(), result_dir=out,
                        runtime=fresh, runtime_name="process", image_digest=None,
                        weights_root=weights, work_dir=root / f"replay-{job_id}",
                        chain_frames_digest="0x" + event.output.frames_digest, timeout_s=600,
                        fetch_input=store_fetcher(store),
                    )  # fmt: skip
                finally:
                    fresh.close()
                exact += report.verdict == "exact"
                print(
                    f"job {job_id} seed {spec.seed}: {spec.steps} steps in "
                    f"{event.metrics['train_s']:.2f} s ({speeds[-1]:.2f} steps/s), total "
                    f"{event.metrics['total_s']:.2f} s; replay {report.verdict} "
                    f"({report.replay_seconds:.2f} s)"
                )
            print("\nLoRA size per rank (one-step jobs):")
            for modules, label in ((MODULES, "attention"), (ALL_MODULES, "attention-ff")):
                for rank in (1, 2, 4, 8, 16):
                    spec = fine_tune(dataset, 1, 1, rank, modules)
                    _, out = run(node, root, weights, store, spec, f"size-{label}-{rank}")
                    size = (out / "lora.safetensors").stat().st_size
                    print(f"  rank {rank:2d} {label:12} ({len(modules)} modules): {size:7,d} bytes")
        finally:
            node.close()
    print(
        f"\ntiny fine-tune training speed ({threads} torch threads): median "
        f"{statistics.median(speeds):.2f} steps/s (min {min(speeds):.2f}, max {max(speeds):.2f})"
    )
    print(f"replay exact-match rate: {exact}/{args.jobs} = {exact / args.jobs:.0%}")
    return 0 if exact == args.jobs else 1


if __name__ == "__main__":
    raise SystemExit(main())
