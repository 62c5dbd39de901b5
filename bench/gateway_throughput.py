"""Trustless gateway throughput on loopback: a file served as CAR and fetched with verification.

    .venv/bin/python bench/gateway_throughput.py [--size-mib 100]

Adds a random file to a temporary embedded store, serves it on 127.0.0.1 (ephemeral
port), and times (1) the raw CAR download and (2) the verified retrieval client (hash every
block, assemble, atomic rename). Prints MB/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import httpx

from framecast.shared.ipfs.gateway import serve_gateway
from framecast.shared.ipfs.local import LocalStore
from framecast.shared.ipfs.retrieval import fetch

MIB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="framecast-gw-bench-") as tmp:
        root = Path(tmp)
        source = root / "video.bin"
        with source.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(MIB))
        store = LocalStore(root / "store")
        cid = store.add_path(source)
        with serve_gateway(store) as gateway, httpx.Client(timeout=60) as client:
            url = f"{gateway.url}/ipfs/{cid}?format=car"
            raw_times, fetch_times = [], []
            for i in range(args.repeat):
                start = time.perf_counter()
                with client.stream("GET", url) as response:
                    received = sum(len(chunk) for chunk in response.iter_bytes())
                raw_times.append(time.perf_counter() - start)
                dest = root / f"fetched-{i}"
                start = time.perf_counter()
                fetch(cid, dest, gateway.url, client=client)
                fetch_times.append(time.perf_counter() - start)
                assert dest.stat().st_size == size
                dest.unlink()
        raw, verified = min(raw_times), min(fetch_times)
        print(f"file               {args.size_mib} MiB ({cid}), CAR {received} bytes")
        print(f"CAR download       {raw:.3f} s  {size / raw / 1e6:.0f} MB/s")
        print(f"verified fetch     {verified:.3f} s  {size / verified / 1e6:.0f} MB/s")
        print(f"ratio              {raw / verified:.2f}  (verified / plain download throughput)")


if __name__ == "__main__":
    main()
