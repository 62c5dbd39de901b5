"""Startup time of `framecast --help` against `python -c pass`, in the same run.

Runs each command N times in fresh subprocesses, interleaved so machine load hits both
alike, and prints medians, the difference (what framecast itself costs) and the ratio.
Target: `framecast --help` under 300 ms absolute. Also prints what unlocking a keystore at
geth's scrypt parameters costs (every signing command pays it once).
Run: `python bench/cli_startup.py [N]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from framecast.client.wallet import GETH_SCRYPT_N, Keystores, Secret

TARGET_MS = 300.0
BIN = Path(sys.executable).parent


def wall_ms(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    framecast = str(BIN / "framecast")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "framecast --help": [framecast, "--help"],
        "framecast wallet --help": [framecast, "wallet", "--help"],
    }
    for command in commands.values():  # warm the page cache and .pyc files
        wall_ms(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(wall_ms(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["python -c pass"]
    print(f"{runs} runs each, median wall time (min … max):")
    for name, values in samples.items():
        extra = (
            ""
            if name == "python -c pass"
            else (f"   +{medians[name] - base:6.1f} ms over python, x{medians[name] / base:.2f}")
        )
        print(
            f"  {name:<24} {medians[name]:7.1f} ms ({min(values):.0f} … {max(values):.0f}){extra}"
        )
    verdict = "OK" if medians["framecast --help"] < TARGET_MS else "OVER"
    print(f"target: framecast --help < {TARGET_MS:.0f} ms → {verdict}")
    print(f"keystore unlock at geth parameters (n=262144, r=8, p=1): {unlock_s():.2f} s")


def unlock_s() -> float:
    with tempfile.TemporaryDirectory() as folder:
        keystores = Keystores(Path(folder), scrypt_n=GETH_SCRYPT_N)
        keystores.import_key("bench", Secret("0x" + "4c" * 32), Secret("bench password"))
        started = time.perf_counter()
        keystores.unlock("bench", Secret("bench password"))
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
