"""Runners left behind by a node killed with -9 mid-job (issue 18, item 1).

Starts anvil and `framecast node run` (the process runtime, or Docker with `--runtime
docker --image ID`), submits one long tiny job, and N times: waits until the job runs,
waits a random 0–1.5 s more, kills the node with SIGKILL and starts it again. After each
kill it follows the killed node's runner (the process whose stderr is the node's
`runner.log`, or the running container labelled `io.framecast.runtime`) until it is gone,
and notes whether it was still alive when the restarted node started its own runner for
the same job (two runners of one job: two models in memory, two writers of one folder).

Prints: orphans (runners alive 0.1 s after the kill), their lifetime after the kill
(median / max), and overlaps with the restarted node's runner.

Run: `.venv/bin/python bench/orphan_runners.py [--kills 20] [--runtime docker --image ID]`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
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
#: A runner still alive this long after its node's SIGKILL counts as an orphan.
ORPHAN_S = 0.1
FRAMECAST = str(Path(sys.executable).with_name("framecast"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_runners(log: Path) -> set[str]:
    """Pids (as text) of runner processes writing their stderr to `log`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"framecast.runner" not in cmdline or b"serve" not in cmdline:
                continue
            if (entry / "fd" / "2").readlink() == log:
                found.add(entry.name)
        except OSError:
            continue
    return found


def docker_runners() -> set[str]:
    import docker

    client = docker.from_env()
    try:
        return {
            str(c.id) for c in client.containers.list(filters={"label": "io.framecast.runtime"})
        }
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--image", help="runner image ID for --runtime docker")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="framecast-orphans-"))
    port = free_port()
    anvil = start_anvil(port, home / "anvil.log", detach=False)
    node: subprocess.Popen[bytes] | None = None
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
            "FRAMECAST_NODE_POLL_INTERVAL_S": "0.05",
            "FRAMECAST_NODE_RUNTIME": args.runtime,
        }
        if args.runtime == "docker":
            if not args.image:
                raise SystemExit("--runtime docker needs --image (make docker-image prints it)")
            env["FRAMECAST_NODE_DOCKER_IMAGE"] = args.image
        config = home / "node" / "node.toml"
        run = lambda *a: subprocess.run([FRAMECAST, *a], env=env, check=True, capture_output=True)  # noqa: E731
        run("node", "init", "--config", str(config), "--devnet-account", "provider-1")
        run("node", "register", "--config", str(config), "--bond", "500")
        db_path = home / "node" / "state" / "node.sqlite3"
        runner_log = (home / "node" / "state" / "runner" / "runner.log").resolve()
        node_log = (home / "node.log").open("ab")

        def runners() -> set[str]:
            return process_runners(runner_log) if args.runtime == "process" else docker_runners()

        def start_node() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [FRAMECAST, "node", "run", "--config", str(config)], env=env, stderr=node_log
            )

        def job_row(job_id: int) -> tuple[str, float | None] | None:
            try:
                with sqlite3.connect(db_path) as db:
                    row = db.execute(
                        "SELECT state, run_started_at FROM jobs WHERE job_id = ?", (job_id,)
                    ).fetchone()
            except sqlite3.OperationalError:
                return None
            return (str(row[0]), row[1]) if row else None

        w3 = connect(url)
        alice = devnet_account("alice")
        market = Market(w3, deployment.market, TxSender(w3, alice))
        market.deposit_with_permit(Credits(w3, deployment.credits, TxSender(w3, alice)), 500 * FCC)
        # The longest tiny job the catalog allows: kills land in loading and in the steps.
        spec = default_spec("tiny-cogvideox", TINY_PROMPT, num_frames=17, steps=50)
        now = int(w3.eth.get_block("latest")["timestamp"])
        request = JobRequest.for_spec(
            spec, client=alice.address, max_price=FCC, claim_deadline=now + 3600,
            delivery_window=24 * 3600, nonce=1,
        )  # fmt: skip
        domain = Domain(chain_id=deployment.chain_id, market=deployment.market)
        node = start_node()
        job_id, _ = market.submit_job(
            request, spec.canonical_json(), sign_request(request, domain, alice.key)
        )

        orphans = 0
        lifetimes: list[float] = []
        overlaps = 0
        last_start = 0.0
        for kill in range(args.kills):
            deadline = time.time() + 180
            while True:  # the (re)started node runs the job, with a runner up
                row = job_row(job_id)
                if row and row[0] == "running" and (row[1] or 0) > last_start and runners():
                    last_start = float(row[1] or 0)
                    break
                if row and row[0] in ("pinned", "delivered"):
                    raise SystemExit(f"the job finished before kill {kill + 1}: raise --steps")
                if time.time() > deadline:
                    raise SystemExit(f"job {job_id} never ran again; see {home / 'node.log'}")
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.5))
            before = runners()
            os.kill(node.pid, signal.SIGKILL)
            killed = time.monotonic()
            node.wait()
            node = start_node()  # at once, as a supervisor would
            overlapped = False
            while True:
                now_running = runners()
                if not before & now_running:
                    break
                if now_running - before:
                    overlapped = True
                time.sleep(0.01)
            lived = time.monotonic() - killed
            lifetimes.append(lived)
            orphans += lived >= ORPHAN_S
            overlaps += overlapped
            print(f"kill {kill + 1}: the runner outlived its node by {lived:.2f} s", flush=True)
        print(f"runtime {args.runtime}: {args.kills} kills of `node run` mid-job")
        print(f"orphan runners (alive {ORPHAN_S} s after the kill): {orphans}")
        print(
            f"runner lifetime after the kill: median {statistics.median(lifetimes):.2f} s, "
            f"max {max(lifetimes):.2f} s"
        )
        print(f"orphans still alive when the restarted node's runner started: {overlaps}")
    finally:
        if node is not None and node.poll() is None:
            node.terminate()
            node.wait(timeout=60)
        anvil.terminate()
        anvil.wait()


if __name__ == "__main__":
    main()
