"""Gas for one job's whole life on anvil, from receipts.

Prints per-call gas for submit, claim, deliver, settle (and the other lifecycle calls) for
a first job (cold nonce word, first payout to the provider) and a steady-state job, with
the whole-life total against the 250k target, and the whole life of a 2-replica job
(submit, 2 claims, 2 commits, 2 reveals, settle). Run: `python bench/gas.py`.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from framecast.client.devnet import deploy_devnet, devnet_account, start_anvil
from framecast.shared.chain.bindings import Credits, DisputeReason, Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.sender import TxSender
from framecast.shared.replicas import replica_commitment
from framecast.shared.request import Domain, JobRequest, sign_request
from framecast.shared.spec import parse_spec

FCC = 10**18
TARGET = 250_000
CID = bytes.fromhex("01701220") + bytes(range(32))  # CIDv1 dag-pb sha2-256: 36 bytes


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    anvil = start_anvil(port, Path(tempfile.mkdtemp()) / "anvil.log", detach=False)
    try:
        run(f"http://127.0.0.1:{port}")
    finally:
        anvil.terminate()
        anvil.wait()


def run(url: str) -> None:
    deployment = deploy_devnet(url)
    w3 = connect(url)
    alice, provider, arbiter = (devnet_account(n) for n in ("alice", "provider-1", "arbiter"))
    a_market = Market(w3, deployment.market, TxSender(w3, alice))
    a_credits = Credits(w3, deployment.credits, TxSender(w3, alice))
    p_market = Market(w3, deployment.market, TxSender(w3, provider))
    p_credits = Credits(w3, deployment.credits, TxSender(w3, provider))
    arb_market = Market(w3, deployment.market, TxSender(w3, arbiter))
    provider2 = devnet_account("provider-2")
    p2_market = Market(w3, deployment.market, TxSender(w3, provider2))
    Credits(w3, deployment.credits, TxSender(w3, provider2)).approve(deployment.market, 500 * FCC)
    p2_market.register_provider(500 * FCC, "ipfs://provider-2")
    domain = Domain(chain_id=deployment.chain_id, market=deployment.market)

    def warp(seconds: int) -> None:
        w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    gas: dict[str, int] = {}
    gas["depositWithPermit"] = a_market.deposit_with_permit(a_credits, 1000 * FCC).gas_used
    p_credits.approve(deployment.market, 500 * FCC)
    gas["registerProvider"] = p_market.register_provider(500 * FCC, "ipfs://provider").gas_used

    spec = parse_spec(
        {
            "model": "cogvideox-2b",
            "prompt": "a red fox running through fresh snow at dawn, cinematic, 35mm film",
            "negative_prompt": "blurry, low quality",
            "seed": 42,
            "num_frames": 49,
            "fps": 8,
            "width": 720,
            "height": 480,
            "steps": 50,
            "guidance_milli": 6000,
        }
    )
    spec_bytes = spec.canonical_json()
    nonce = iter(range(10_000))

    def job_life(label: str, price: int, max_price: int) -> dict[str, int]:
        now = int(w3.eth.get_block("latest")["timestamp"])
        request = JobRequest.for_spec(
            spec,
            client=alice.address,
            max_price=max_price,
            claim_deadline=now + 3600,
            delivery_window=600,
            nonce=next(nonce),
        )
        signature = sign_request(request, domain, alice.key)
        job_id, submit = a_market.submit_job(request, spec_bytes, signature)
        claim = p_market.claim_job(job_id, price)
        deliver = p_market.deliver(job_id, CID, b"\x01" * 32, b"\x02" * 32)
        warp(deployment.params.challenge_window)
        settle = a_market.settle(job_id)
        row = {
            "submitJob": submit.gas_used,
            "claimJob": claim.gas_used,
            "deliver": deliver.gas_used,
            "settle": settle.gas_used,
        }
        row["total"] = sum(row.values())
        print(
            f"{label:<34} submit {row['submitJob']:>7,}  claim {row['claimJob']:>7,}  "
            f"deliver {row['deliver']:>7,}  settle {row['settle']:>7,}  "
            f"total {row['total']:>7,}  ({row['total'] / TARGET:.2f} × target)"
        )
        return row

    print(f"spec: {len(spec_bytes)} bytes canonical JSON; result CID: {len(CID)} bytes")
    print(f"target: whole life (submit+claim+deliver+settle) <= {TARGET:,} gas\n")
    job_life("first job (cold nonce word, payee)", 8 * FCC, 10 * FCC)
    job_life("steady state, price < max (refund)", 8 * FCC, 10 * FCC)
    steady = job_life("steady state, price = max", 10 * FCC, 10 * FCC)

    def replicated_life(label: str) -> int:
        now = int(w3.eth.get_block("latest")["timestamp"])
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=10 * FCC, claim_deadline=now + 3600,
            delivery_window=600, nonce=next(nonce), replicas=2,
        )  # fmt: skip
        signature = sign_request(request, domain, alice.key)
        job_id, submit = a_market.submit_job(request, spec_bytes, signature)
        replicas = ((p_market, provider.address), (p2_market, provider2.address))
        claims = [m.claim_job(job_id, 8 * FCC).gas_used for m, _ in replicas]
        salt = b"\x05" * 32
        commits = [
            m.commit_result(
                job_id, replica_commitment(job_id, who, CID, b"\x01" * 32, b"\x02" * 32, salt)
            ).gas_used
            for m, who in replicas
        ]
        reveals = [
            m.reveal_result(job_id, CID, b"\x01" * 32, b"\x02" * 32, salt).gas_used
            for m, _ in replicas
        ]
        warp(deployment.params.challenge_window)
        settle = a_market.settle(job_id).gas_used
        total = submit.gas_used + sum(claims) + sum(commits) + sum(reveals) + settle
        print(
            f"{label:<34} submit {submit.gas_used:>7,}  claims {sum(claims):>7,}  "
            f"commits {sum(commits):>7,}  reveals {sum(reveals):>7,}  settle {settle:>7,}  "
            f"total {total:>7,}"
        )
        return total

    print()
    replicated_life("2 replicas, first")
    replicated = replicated_life("2 replicas, steady state")

    # The other lifecycle calls, one each.
    now = int(w3.eth.get_block("latest")["timestamp"])

    def submit_one(window: int = 600) -> int:
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=10 * FCC, claim_deadline=now + 3600,
            delivery_window=window, nonce=next(nonce),
        )  # fmt: skip
        return a_market.submit_job(request, spec_bytes, sign_request(request, domain, alice.key))[0]

    gas["cancelJob"] = a_market.cancel_job(submit_one()).gas_used
    job = submit_one(window=60)
    p_market.claim_job(job, 10 * FCC)
    warp(61)
    gas["reclaim (missed delivery, slash)"] = a_market.reclaim(job).gas_used
    now = int(w3.eth.get_block("latest")["timestamp"])
    job = submit_one()
    p_market.claim_job(job, 10 * FCC)
    p_market.deliver(job, CID, b"\x01" * 32, b"\x02" * 32)
    gas["dispute"] = a_market.dispute(job, DisputeReason.HASH_MISMATCH).gas_used
    gas["resolve (provider at fault)"] = arb_market.resolve(job, True).gas_used
    gas["withdraw"] = a_market.withdraw(FCC).gas_used
    print()
    for name, used in gas.items():
        print(f"{name:<34} {used:>9,}")
    verdict = "meets" if steady["total"] <= TARGET else "MISSES"
    print(f"\nsteady-state whole life {steady['total']:,} gas {verdict} the {TARGET:,} target")
    per = replicated / 2
    print(f"2-replica steady-state whole life {replicated:,} gas ({per:,.0f} per replica)")


if __name__ == "__main__":
    main()
