"""Time to resolve a dispute, and the outcome, on anvil with the tiny model.

Run: `.venv/bin/python bench/dispute.py [--rounds N]`. Each round a provider runs a tiny
CogVideoX job for real (warm process runtime) and delivers it; the client disputes. Half the
rounds the delivery is honest, half it is another seed's frames under a receipt that claims
the job's spec (consistent and signed: only a replay can tell). Then one 2-replica job where
one replica did not run the job (automatic ReplicaMismatch dispute). The arbiter
(`framecast.node.arbiter`, its own warm runner) fetches, verifies, replays and resolves.
Prints, per case, seconds from the arbiter's poll (the dispute already mined) to its resolve
transaction mined, the decide part of it (fetch + levels 1-2 + replay), and whether it
ruled correctly.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount

from framecast.client.devnet import deploy_devnet, start_anvil
from framecast.node.arbiter.service import Arbiter, ArbiterDeps
from framecast.node.models import build_tiny
from framecast.node.result import pin_result, write_receipt
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.catalog import default_spec
from framecast.shared.chain.bindings import Credits, DisputeReason, Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.devnet import devnet_account
from framecast.shared.chain.sender import TxSender
from framecast.shared.deployment import Deployment
from framecast.shared.ipfs import parse_cid
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.store import StoreSettings
from framecast.shared.replicas import new_salt, replica_commitment
from framecast.shared.request import Domain, JobRequest, sign_request
from framecast.shared.runner_protocol import RunRequest
from framecast.shared.spec import GenerationSpec

FCC = 10**18
MODEL = "tiny-cogvideox"


class Bench:
    def __init__(self, url: str, root: Path) -> None:
        self.deployment: Deployment = deploy_devnet(url)
        self.w3 = connect(url)
        self.root = root
        self.weights = root / "weights"
        build_tiny("tiny-cogvideox", self.weights / MODEL)
        self.blocks = root / "blocks"
        self.store = LocalStore(self.blocks)
        self.provider_runtime = ProcessRuntime(log_dir=root / "provider-logs")
        self.domain = Domain(chain_id=self.deployment.chain_id, market=self.deployment.market)
        self.nonce = 0
        alice = self.account("alice")
        self.market("alice").deposit_with_permit(
            Credits(self.w3, self.deployment.credits, TxSender(self.w3, alice)), 500 * FCC
        )
        for name in ("provider-1", "provider-2"):
            credits = Credits(
                self.w3, self.deployment.credits, TxSender(self.w3, self.account(name))
            )
            credits.approve(self.deployment.market, 300 * FCC)
            self.market(name).register_provider(300 * FCC, f"ipfs://{name}")

    @staticmethod
    def account(name: str) -> LocalAccount:
        return devnet_account(name)

    def market(self, name: str) -> Market:
        return Market(self.w3, self.deployment.market, TxSender(self.w3, self.account(name)))

    def submit(self, spec: GenerationSpec, replicas: int = 1) -> tuple[int, str]:
        alice = self.account("alice")
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=FCC, claim_deadline=now + 600,
            delivery_window=600, nonce=self.nonce, replicas=replicas,
        )  # fmt: skip
        self.nonce += 1
        signature = sign_request(request, self.domain, alice.key)
        job_id, _ = self.market("alice").submit_job(request, spec.canonical_json(), signature)
        return job_id, "0x" + request.digest(self.domain).hex()

    def result(
        self, job_id: int, digest: str, spec: GenerationSpec, ran: GenerationSpec, name: str
    ) -> tuple[bytes, bytes, bytes]:
        out = self.root / f"{name}-{job_id}" / "out"
        final = self.provider_runtime.run(
            RunRequest(job_id=f"{name}-{job_id}", spec=ran, model_dir=str(self.weights / MODEL),
                       output_dir=str(out)),
            job_dir=out.parent, on_event=lambda _e: None, timeout_s=300,
        )  # fmt: skip
        assert final.output is not None, final.error
        receipt = write_receipt(
            out_dir=out, output=final.output, spec=spec, job_id=job_id, request_digest=digest,
            deployment=self.deployment, provider=self.account(name), runtime="process",
            image_digest=None, timings={},
        )  # fmt: skip
        cid = bytes(parse_cid(pin_result(self.store, out)))
        body = receipt.body
        return cid, bytes.fromhex(body.video_sha256[2:]), bytes.fromhex(body.frames_digest[2:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="single-provider disputes")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        anvil = start_anvil(port, root / "anvil.log", detach=False)
        arbiter_runtime = ProcessRuntime(log_dir=root / "arbiter-logs")
        try:
            bench = Bench(f"http://127.0.0.1:{port}", root)
            arbiter = Arbiter(
                ArbiterDeps(
                    deployment=bench.deployment, market=bench.market("arbiter"),
                    runtime=arbiter_runtime, runtime_name="process", image_digest=None,
                    weights_root=bench.weights, state_dir=root / "arbiter",
                    store=StoreSettings(store_path=bench.blocks),
                )
            )  # fmt: skip
            rows: list[tuple[str, float, float, bool]] = []
            for index in range(args.rounds):
                honest = index % 2 == 0
                spec = default_spec(MODEL, "a red cat walks in the city", seed=500 + index)
                ran = spec if honest else default_spec(MODEL, "a red cat", seed=9000 + index)
                job_id, digest = bench.submit(spec)
                bench.market("provider-1").claim_job(job_id, FCC // 2)
                cid, sha, frames = bench.result(job_id, digest, spec, ran, "provider-1")
                bench.market("provider-1").deliver(job_id, cid, sha, frames)
                bench.market("alice").dispute(job_id, DisputeReason.REPLAY_MISMATCH)
                started = time.time()
                [decision] = arbiter.step()
                wall = time.time() - started
                correct = decision.provider_at_fault != honest
                label = "honest delivery" if honest else "other frames, same receipt"
                for v in decision.verdicts:
                    print(f"job {job_id}: {v.replay_verdict or v.defect}: {v.detail[:120]}")
                rows.append((label, wall, decision.decide_seconds, correct))
            # A 2-replica job where replica 1 did not run the job.
            spec = default_spec(MODEL, "a red cat walks in the city", seed=4242)
            job_id, digest = bench.submit(spec, replicas=2)
            reveals = {}
            for name, ran in (
                ("provider-1", spec),
                ("provider-2", default_spec(MODEL, "a red cat", seed=1)),
            ):
                bench.market(name).claim_job(job_id, FCC // 2)
                reveals[name] = bench.result(job_id, digest, spec, ran, name)
            salts = {name: new_salt() for name in reveals}
            for name, (cid, sha, frames) in reveals.items():
                address = bench.account(name).address
                commitment = replica_commitment(job_id, address, cid, sha, frames, salts[name])
                bench.market(name).commit_result(job_id, commitment)
            for name, (cid, sha, frames) in reveals.items():
                bench.market(name).reveal_result(job_id, cid, sha, frames, salts[name])
            started = time.time()
            [decision] = arbiter.step()
            wall = time.time() - started
            rows.append(
                (
                    "2 replicas, one did not run",
                    wall,
                    decision.decide_seconds,
                    decision.fault_mask == 0b10,
                )
            )
        finally:
            arbiter_runtime.close()
            anvil.terminate()
            anvil.wait()
    print(f"{'case':<30} {'resolve s':>10} {'decide s':>9}  ruled")
    for label, wall, decide, correct in rows:
        print(f"{label:<30} {wall:>10.2f} {decide:>9.2f}  {'correct' if correct else 'WRONG'}")
    walls = [r[1] for r in rows]
    print(
        f"\n{sum(r[3] for r in rows)}/{len(rows)} ruled correctly; dispute → resolve mined: "
        f"median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
        "the first includes the arbiter runner's cold start"
    )
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
