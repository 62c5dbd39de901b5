"""Submit → verified on one host and across hosts, in one run, with their ratio.

Both markets run the same code in network namespaces (root only; see
`tests/network/lab.py`, the one lab harness, used here rather than written twice):

- one host: chain, provider node and client share one namespace, one FRAMECAST_HOME and
  loopback — the single-machine setup of `make demo` (the client reads the node's store);
- across hosts: chain, provider and client each in their own namespace and home, joined
  only by the lab's subnet: the client fetches the result from the provider's advertised
  gateway and verifies it block by block.

Each job is `framecast submit --wait` (sign, escrow, follow, fetch, verify) timed from the
client's side, tiny model, warm runner (a first job warms each node up).

Run (as root): `.venv/bin/python bench/network.py [--jobs 5]`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.network.lab import Host, Lab, lab_unavailable, wait_port

FRAMECAST = str(Path(sys.executable).with_name("framecast"))
RPC_PORT = 8545
NODE_PORT = 9464


def prepare(host: Host) -> None:
    host.env.update(
        {"FRAMECAST_PASSWORD": "bench", "FRAMECAST_KEYSTORE_SCRYPT_N": "4096", "NO_COLOR": "1"}
    )


def framecast(host: Host, *args: str) -> str:
    return host.run([FRAMECAST, *args], timeout=600).stdout


def market(
    chain: Host, provider: Host, client: Host, logs: Path, *, bind: str
) -> tuple[list[str], subprocess.Popen[bytes]]:
    """Start the chain, a provider and a funded client; the network arguments to use."""
    up = framecast(chain, "devnet", "up", "--host", bind, "--port", str(RPC_PORT))
    net: list[str] = []
    if chain is not client:
        join = re.search(r"network add devnet --rpc-url (\S+) --market (0x[0-9a-fA-F]{40})", up)
        assert join, up
        for host in (provider, client):
            wait_port(host, chain.address, RPC_PORT)
            framecast(host, "network", "add", "lab", "--rpc-url", join[1], "--market", join[2])
        net = ["--network", "lab"]
        provider.env["FRAMECAST_NODE_HTTP_BIND"] = f"{provider.address}:{NODE_PORT}"
        provider.env["FRAMECAST_NODE_ADVERTISE_URL"] = provider.url(NODE_PORT)
    framecast(provider, *net, "node", "init", "--devnet-account", "provider-1")
    framecast(provider, *net, "node", "register", "--bond", "200")
    node = provider.popen([FRAMECAST, *net, "node", "run"], log=logs / f"{provider.name}.log")
    framecast(client, *net, "wallet", "import", "--devnet", "alice")
    framecast(client, *net, "credits", "faucet")
    framecast(client, *net, "credits", "deposit", "--amount", "60")
    return net, node


def timed_jobs(client: Host, net: list[str], jobs: int) -> list[float]:
    framecast(client, *net, "submit", "--model", "tiny-cogvideox", "--prompt", "warm", "--wait")
    times = []
    for seed in range(jobs):
        started = time.perf_counter()
        out = framecast(
            client, *net, "submit", "--model", "tiny-cogvideox", "--prompt", "a red cat walks",
            "--seed", str(seed + 10), "--wait",
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        assert "verified" in out, out
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5, help="timed jobs per market")
    args = parser.parse_args()
    reason = lab_unavailable()
    if reason:
        raise SystemExit(f"cannot build the lab: {reason}")
    root = Path(tempfile.mkdtemp(prefix="framecast-bench-net-"))
    results: dict[str, list[float]] = {}
    for label in ("one host", "across hosts"):
        with Lab(root / label.replace(" ", "-")) as lab:
            if label == "one host":
                only = lab.add_host("single")
                prepare(only)
                net, node = market(only, only, only, root, bind="127.0.0.1")
                client = only
            else:
                chain, provider, client = (lab.add_host(n) for n in ("chain", "prov", "client"))
                for host in (chain, provider, client):
                    prepare(host)
                net, node = market(chain, provider, client, root, bind=chain.address)
            try:
                results[label] = timed_jobs(client, net, args.jobs)
            finally:
                node.terminate()
                node.wait(timeout=60)
    for label, times in results.items():
        print(
            f"submit → verified, {label}: median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}) over {len(times)} jobs"
        )
    ratio = statistics.median(results["across hosts"]) / statistics.median(results["one host"])
    print(f"across hosts / one host (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
