"""The explorer over a devnet with many jobs: indexer catch-up rate, page load times,
page weight.

    .venv/bin/python bench/explorer.py [--jobs 10000] [--db postgresql://…] [--loads 200]

Starts its own anvil, deploys the contracts, and makes ``--jobs`` real jobs (each one
submitJob signed by alice, claimJob and deliver by provider-1: three transactions and three
events, plus the blocks they are mined in), sent as raw transactions with automine off and
mined 100 to a block. Then it times:

* the indexer's catch-up from the deployment block into a fresh database (SQLite by
  default, or ``--db``): events per second, the whole history read through `LogReader`;
* ``--loads`` sequential GETs of random job pages and of the feed against the explorer's
  server, each a full HTML answer over loopback: p50 / p95;
* the weight of a job page: its HTML plus the static JS and CSS it loads (uncompressed; the
  video is fetched from the gateway, not counted).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framecast.client.devnet import deploy_devnet, devnet_account, start_anvil
from framecast.client.explorer import open_explorer
from framecast.client.explorer.indexer import Indexer
from framecast.client.explorer.store import Store
from framecast.shared.chain.bindings import bind
from framecast.shared.chain.connection import connect
from framecast.shared.chain.sender import TxSender
from framecast.shared.ipfs import cid_of_path, parse_cid
from framecast.shared.request import JobRequest
from framecast.shared.spec import GenerationSpec
from tests.conftest import free_port

FCC = 10**18
PER_BLOCK = 100
PRICE = 10**12


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _send_all(rpc_url: str, txs: list[dict], account) -> None:  # type: ignore[no-untyped-def]
    """Sign and send ``txs`` (nonces already set), one JSON-RPC batch and one mined block
    per PER_BLOCK transactions (one HTTP round trip each, not one per transaction)."""
    with httpx.Client(timeout=60) as http:
        for offset in range(0, len(txs), PER_BLOCK):
            batch = [
                {"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction",
                 "params": ["0x" + account.sign_transaction(tx).raw_transaction.hex()]}
                for n, tx in enumerate(txs[offset : offset + PER_BLOCK])
            ]  # fmt: skip
            answers = http.post(rpc_url, json=batch).json()
            errors = [a["error"] for a in answers if "error" in a]
            if errors:
                raise SystemExit(f"the devnet refused a transaction: {errors[0]}")
            http.post(rpc_url, json={"jsonrpc": "2.0", "id": 0, "method": "evm_mine"})
            last = answers[-1]["result"]
            receipt = http.post(
                rpc_url,
                json={
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "eth_getTransactionReceipt",
                    "params": [last],
                },
            )
            if receipt.json()["result"]["status"] != "0x1":
                raise SystemExit("a transaction reverted")


def _encoder(contract, name: str):  # type: ignore[no-untyped-def]
    """Calldata of ``name`` without web3's per-call ABI validation (25 ms a call here)."""
    from eth_abi import encode
    from eth_utils import function_abi_to_4byte_selector

    entry = next(e for e in contract.abi if e.get("type") == "function" and e["name"] == name)

    def kind(item: dict) -> str:  # type: ignore[type-arg]
        if item["type"].startswith("tuple"):
            inner = ",".join(kind(c) for c in item["components"])
            return f"({inner})" + item["type"][len("tuple") :]
        return str(item["type"])

    types = [kind(i) for i in entry["inputs"]]
    selector = function_abi_to_4byte_selector(entry)
    return lambda *args: "0x" + (selector + encode(types, list(args))).hex()


def make_jobs(rpc_url: str, jobs: int, tmp: Path) -> tuple[object, float]:
    deployment = deploy_devnet(rpc_url)
    w3 = connect(rpc_url, expected_chain_id=deployment.chain_id)
    alice, provider = devnet_account("alice"), devnet_account("provider-1")
    credits_a, market_a = bind(w3, deployment, TxSender(w3, alice))
    credits_p, market_p = bind(w3, deployment, TxSender(w3, provider))
    credits_a.faucet()
    market_a.deposit_with_permit(credits_a, credits_a.balance_of(alice.address))
    credits_p.approve(deployment.market, 200 * FCC)
    market_p.register_provider(200 * FCC, "ipfs://bench")
    result = tmp / "result"
    result.mkdir()
    (result / "video.mp4").write_bytes(b"\0" * 1024)
    cid = bytes(parse_cid(cid_of_path(result)))
    domain = market_a.domain()
    contract = market_a.contract
    submit_data, claim_data, deliver_data = (
        _encoder(contract, n) for n in ("submitJob", "claimJob", "deliver")
    )
    first_id = market_a.next_job_id()
    now = int(w3.eth.get_block("latest")["timestamp"])
    fees = {"maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
    common = {"chainId": deployment.chain_id, "to": deployment.market, **fees}
    started = time.monotonic()
    w3.provider.make_request("evm_setAutomine", [False])
    nonce_a = w3.eth.get_transaction_count(alice.address)
    submits = []
    for i in range(jobs):
        spec = GenerationSpec(
            model="tiny-cogvideox", prompt=f"bench job {i}: a red fox in the snow",
            seed=i, num_frames=9, fps=8, width=32, height=32, steps=2, guidance_milli=6000,
        )  # fmt: skip
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=10**15, claim_deadline=now + 86_400,
            delivery_window=86_400, nonce=10**6 + i,
        )  # fmt: skip
        # The EIP-712 digest signed as `sign_request` does, with the key parsed once.
        signature = alice.unsafe_sign_hash(request.digest(domain)).signature
        data = submit_data(request.as_tuple(), spec.canonical_json(), signature)
        submits.append(common | {"data": data, "nonce": nonce_a + i, "gas": 400_000})
    _send_all(rpc_url, submits, alice)
    nonce_p = w3.eth.get_transaction_count(provider.address)
    claims = [
        common | {"data": claim_data(first_id + i, PRICE),
                  "nonce": nonce_p + i, "gas": 200_000}
        for i in range(jobs)
    ]  # fmt: skip
    _send_all(rpc_url, claims, provider)
    digest = b"\x11" * 32
    delivers = [
        common | {"data": deliver_data(first_id + i, cid, digest, digest),
                  "nonce": nonce_p + jobs + i, "gas": 200_000}
        for i in range(jobs)
    ]  # fmt: skip
    _send_all(rpc_url, delivers, provider)
    w3.provider.make_request("evm_setAutomine", [True])
    return deployment, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--db", help="index database URL (default: a fresh SQLite file)")
    parser.add_argument("--loads", type=int, default=200, help="page loads per page kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as tmp_dir:
        tmp = Path(tmp_dir)
        port = free_port()
        anvil = start_anvil(port, tmp / "anvil.log", detach=False)
        try:
            rpc_url = f"http://127.0.0.1:{port}"
            deployment, made = make_jobs(rpc_url, args.jobs, tmp)
            w3 = connect(rpc_url, expected_chain_id=deployment.chain_id)  # type: ignore[attr-defined]
            print(f"made {args.jobs} jobs ({3 * args.jobs} transactions) in {made:.1f} s")
            db = args.db or str(tmp / "index.sqlite3")
            store = Store(db)
            store.prepare(chain_id=deployment.chain_id, market=deployment.market, reindex=True)  # type: ignore[attr-defined]
            _, market = bind(w3, deployment, None)  # type: ignore[arg-type]
            indexer = Indexer(store, w3, market, deployed_block=deployment.deployed_block)  # type: ignore[attr-defined]
            started = time.monotonic()
            events = indexer.poll()
            took = time.monotonic() - started
            store.close()
            kind = "PostgreSQL" if args.db else "SQLite"
            rate = events / took
            print(
                f"indexer catch-up: {events} events in {took:.1f} s = {rate:,.0f} events/s ({kind})"
            )
            app = open_explorer(w3, deployment, db=db, poll_s=5.0)  # type: ignore[arg-type]
            try:
                ids = [int(r["job_id"]) for r in app.store.job_rows()]
                client = httpx.Client(timeout=30)
                figures = {}
                for kind, pick in (
                    ("job page", lambda: f"/jobs/{random.choice(ids)}"),
                    ("feed", lambda: "/"),
                ):
                    times = []
                    for _ in range(args.loads):
                        path = pick()
                        t0 = time.perf_counter()
                        answer = client.get(app.url + path)
                        times.append(time.perf_counter() - t0)
                        assert answer.status_code == 200, (path, answer.status_code)
                    figures[kind] = times
                for page, times in figures.items():
                    p50, p95 = 1000 * statistics.median(times), 1000 * _percentile(times, 0.95)
                    print(f"{page:>9}: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(times)} loads")
                html = client.get(f"{app.url}/jobs/{ids[0]}").content
                feed = client.get(app.url + "/").content
                static = sum(
                    len(client.get(f"{app.url}/static/{name}").content)
                    for name in ("app.js", "verify.js", "style.css")
                )
                print(f"page weight: job page {len(html):,} B + static {static:,} B = "
                      f"{len(html) + static:,} B; feed {len(feed):,} B + static "
                      f"(uncompressed, video excluded)")  # fmt: skip
                ratio = statistics.median(figures["feed"]) / statistics.median(figures["job page"])
                print(f"ratio feed p50 / job page p50: {ratio:.2f}")
            finally:
                app.close()
        finally:
            anvil.terminate()
            anvil.wait(timeout=10)


if __name__ == "__main__":
    main()
