"""Provider node figures on anvil with the tiny model, the node in its own process.

- pickup latency: from the block holding `JobSubmitted` (the client's receipt) to the
  runner starting the job (the node's `run_started_at`), p50/p95 over N jobs submitted one
  at a time into an idle node, woken by head subscription and by polling alone (the same
  node restarted with `subscribe_heads = false`), with their same-run ratio;
- throughput: M jobs submitted at once, submit → delivered, in jobs per minute;
- the agent's RSS (and its runner's) after the run.

Run: `.venv/bin/python bench/node_pickup.py [--jobs 50] [--burst 20]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from framecast.client.devnet import deploy_devnet, start_anvil
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.chain.bindings import Credits, Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.devnet import devnet_account
from framecast.shared.chain.sender import TxSender
from framecast.shared.request import Domain, JobRequest, sign_request

FCC = 10**18
FRAMECAST = str(Path(sys.executable).with_name("framecast"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50, help="jobs for the pickup latency")
    parser.add_argument("--burst", type=int, default=20, help="jobs for the throughput run")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="framecast-bench-"))
    port = free_port()
    anvil = start_anvil(port, home / "anvil.log", detach=False)
    node = None
    try:
        url = f"http://127.0.0.1:{port}"
        deployment = deploy_devnet(url)
        deployment.save(home / "deployment.json")
        env = {
            **os.environ,
            "FRAMECAST_HOME": str(home),
            "FRAMECAST_PASSWORD": "bench",
            "FRAMECAST_KEYSTORE_SCRYPT_N": "4096",
            "FRAMECAST_NODE_DEPLOYMENT": str(home / "deployment.json"),
            "FRAMECAST_NODE_METRICS_PORT": "0",
            "FRAMECAST_NODE_STORE__STORE_PATH": str(home / "blocks"),
        }
        config = home / "node" / "node.toml"
        run = lambda *a: subprocess.run([FRAMECAST, *a], env=env, check=True, capture_output=True)  # noqa: E731
        run("node", "init", "--config", str(config), "--devnet-account", "provider-1")
        run("node", "register", "--config", str(config), "--bond", "500")
        log = (home / "node.log").open("wb")

        def start_node(subscribe: bool) -> subprocess.Popen[bytes]:
            flag = {"FRAMECAST_NODE_SUBSCRIBE_HEADS": "true" if subscribe else "false"}
            return subprocess.Popen(
                [FRAMECAST, "node", "run", "--config", str(config)],
                env={**env, **flag},
                stderr=log,
            )

        node = start_node(subscribe=True)
        db_path = home / "node" / "state" / "node.sqlite3"

        w3 = connect(url)
        alice = devnet_account("alice")
        market = Market(w3, deployment.market, TxSender(w3, alice))
        market.deposit_with_permit(Credits(w3, deployment.credits, TxSender(w3, alice)), 5000 * FCC)
        domain = Domain(chain_id=deployment.chain_id, market=deployment.market)
        nonces = iter(range(10**6))

        def submit() -> tuple[int, float]:
            spec = default_spec("tiny-cogvideox", TINY_PROMPT, seed=next(nonces))
            now = int(w3.eth.get_block("latest")["timestamp"])
            request = JobRequest.for_spec(
                spec, client=alice.address, max_price=FCC, claim_deadline=now + 3600,
                delivery_window=3600, nonce=next(nonces),
            )  # fmt: skip
            job_id, _ = market.submit_job(
                request, spec.canonical_json(), sign_request(request, domain, alice.key)
            )
            return job_id, time.time()

        def wait_state(
            job_id: int, column: str, states: tuple[str, ...], timeout: float = 120
        ) -> float:
            deadline = time.time() + timeout
            while time.time() < deadline:
                row = None
                if db_path.exists():
                    try:
                        with sqlite3.connect(db_path) as db:
                            row = db.execute(
                                f"SELECT state, {column}, updated_at FROM jobs WHERE job_id = ?",
                                (job_id,),
                            ).fetchone()
                    except sqlite3.OperationalError:
                        pass  # the node is still creating its schema
                if row and row[0] in states:
                    return float(row[1] if row[1] is not None else row[2])
                time.sleep(0.01)
            raise SystemExit(f"job {job_id} did not reach {states}; see {home / 'node.log'}")

        # Warm-up: the first job starts the runner and loads the model.
        job_id, _ = submit()
        wait_state(job_id, "updated_at", ("delivered",))

        def pickup_latencies() -> list[float]:
            found = []
            for _ in range(args.jobs):
                job_id, mined = submit()
                started = wait_state(job_id, "run_started_at", ("running", "pinned", "delivered"))
                found.append(started - mined)
                wait_state(job_id, "updated_at", ("delivered",))
            return sorted(found)

        def show(label: str, pickups: list[float]) -> float:
            p50 = statistics.median(pickups)
            p95 = pickups[int(0.95 * (len(pickups) - 1))]
            print(
                f"pickup latency ({label}) over {len(pickups)} jobs: p50 {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms, max {pickups[-1] * 1000:.0f} ms"
            )
            return p50

        subscribed = show("head subscription", pickup_latencies())
        node.terminate()
        node.wait(timeout=60)
        node = start_node(subscribe=False)
        # Warm the restarted node's runner before timing it.
        job_id, _ = submit()
        wait_state(job_id, "updated_at", ("delivered",))
        polled = show("polling every 0.2 s", pickup_latencies())
        print(
            f"subscription / polling p50 ratio: {subscribed / polled:.2f} "
            "(target p50 < 100 ms with subscriptions)"
        )

        started = time.time()
        burst = [submit()[0] for _ in range(args.burst)]
        for job_id in burst:
            wait_state(job_id, "updated_at", ("delivered",), timeout=600)
        elapsed = time.time() - started
        print(f"throughput: {args.burst} jobs submitted at once, all delivered in {elapsed:.1f} s "
              f"= {args.burst / elapsed * 60:.1f} jobs/min (1 slot, tiny model, CPU)")  # fmt: skip
        kids = children(node.pid)
        print(f"agent RSS {rss_mib(node.pid):.0f} MiB; runner RSS "
              + ", ".join(f"{rss_mib(k):.0f} MiB" for k in kids))  # fmt: skip
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=60)
        anvil.terminate()
        anvil.wait()


if __name__ == "__main__":
    main()
