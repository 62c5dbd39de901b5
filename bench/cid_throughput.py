"""CID throughput vs one plain sha256 pass over the same file, and peak RSS on a big file.

    .venv/bin/python bench/cid_throughput.py [--size-mib 1024] [--rss-size-mib 2048]

Prints both timings and their same-run ratio (≥ 1.0 means computing the unixfs-v1-2025
CID is faster than hashing the file once), then the peak RSS of a fresh process computing
the CID of a larger file. Temp files are random data, removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from framecast.shared.ipfs import cid_of_path

MIB = 1 << 20


def make_file(directory: Path, size_mib: int) -> Path:
    path = directory / f"bench-{size_mib}MiB.bin"
    block = os.urandom(16 * MIB)  # random, so no block dedups; repeated to save time
    with path.open("wb") as out:
        for i in range(0, size_mib, 16):
            out.write(block[: min(16, size_mib - i) * MIB])
            out.write(i.to_bytes(8, "little"))  # keep chunks distinct across repeats
    return path


def sha256_pass(path: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256()
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as source:
        while count := source.readinto(buffer):
            digest.update(view[:count])
    return time.perf_counter() - start


def cid_pass(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    cid = cid_of_path(path)
    return time.perf_counter() - start, cid


def peak_rss_mib(path: Path) -> tuple[float, str]:
    code = (
        "import sys, resource; from framecast.shared.ipfs import cid_of_path;"
        "print(cid_of_path(sys.argv[1]));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    cid, rss_kib = done.stdout.split()
    return int(rss_kib) / 1024, cid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rss-size-mib", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temp files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="framecast-bench-", dir=args.dir) as tmp:
        path = make_file(Path(tmp), args.size_mib)
        sha256_pass(path)  # warm the page cache: both passes then read from memory
        sha_times, cid_times = [], []
        for _ in range(args.repeat):  # interleaved, best of N: fair to both on a shared box
            sha_times.append(sha256_pass(path))
            elapsed, cid = cid_pass(path)
            cid_times.append(elapsed)
        sha, cid_time = min(sha_times), min(cid_times)
        size = args.size_mib * MIB
        print(f"file             {args.size_mib} MiB, cpus={os.cpu_count()}")
        print(f"sha256 one pass  {sha:.3f} s  {size / sha / 1e9:.2f} GB/s")
        print(f"unixfs CID       {cid_time:.3f} s  {size / cid_time / 1e9:.2f} GB/s  {cid}")
        print(f"ratio            {sha / cid_time:.2f}  (CID throughput / sha256 throughput)")
        path.unlink()
        if args.rss_size_mib:
            big = make_file(Path(tmp), args.rss_size_mib)
            rss, big_cid = peak_rss_mib(big)
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS         {rss:.1f} MiB for {args.rss_size_mib} MiB ({big_cid})")
            print(f"(bench process itself: {own:.1f} MiB)")


if __name__ == "__main__":
    main()
