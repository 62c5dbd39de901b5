"""One job of the real CogVideoX-2b architecture through a node, replayed in a second process.

What `bench/gpu_check.sh` runs after installing: every step is a real `framecast` command
in its own process, as a provider and a client would run them on one host.

1. build CogVideoX-2b (transformer, 3D VAE, T5-XXL) with random weights on the device
   (`python -m framecast.runner reference`, no hub) and pin that build locally as catalog
   entry `cogvideox-2b-random` (the pin is removed again at the end);
2. a devnet (anvil + the contracts), a provider node (`framecast node run`, process
   runtime: the runner is a subprocess on the device), a funded client wallet;
3. `framecast submit --wait`: quote, sign, the node claims, runs, pins and delivers, the
   client fetches and verifies levels 1-2;
4. `framecast node replay`: a fresh runner process re-runs the signed spec; the frames
   digest must equal the delivered one (docs/protocol.md §8, level 3).

    python bench/gpu_check.py            # CUDA: the full architecture, 49×480×720, 4 steps
    python bench/gpu_check.py --cpu      # the same steps on CPU with narrowed widths

Prints one line per step with its wall seconds; exit status 0 only if every step passed
and the digests agree. This process imports no torch (the runner does, in its own).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MODEL = "cogvideox-2b-random"
PROMPT = "a red cat walks in the city"
REPO = Path(__file__).resolve().parent.parent
LOCAL_PIN = REPO / "shared" / "catalog" / "manifests" / f"{MODEL}.json"


class CheckFailed(Exception):
    """A step of the check failed; the message says which and why."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Check:
    """The steps, sharing one FRAMECAST_HOME and environment."""

    def __init__(self, work: Path, device: str) -> None:
        self.work = work
        self.home = work / "home"
        self.log = work / "logs"
        self.log.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "FRAMECAST_HOME": str(self.home),
            "FRAMECAST_NETWORK": "local",
            "FRAMECAST_WALLET": "alice",
            "FRAMECAST_PASSWORD": secrets.token_urlsafe(16),
            # A check needs no brute-force resistance from its throwaway keystores.
            "FRAMECAST_KEYSTORE_SCRYPT_N": "1024",
            "FRAMECAST_DEVICE": device,
            "NO_COLOR": "1",
        }
        self.started = time.monotonic()
        self.node: subprocess.Popen[bytes] | None = None

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"… {what}", flush=True)
        yield
        took = time.monotonic() - began
        total = time.monotonic() - self.started
        print(f"✓ {what}: {took:.1f} s (total {total:.1f} s)", flush=True)

    def run(self, name: str, *args: str, timeout: float = 600) -> str:
        """A command; its output goes to logs/NAME.log, its stdout is returned."""
        done = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        (self.log / f"{name}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CheckFailed(f"{name} exited {done.returncode}: " + " | ".join(tail))
        return done.stdout

    def framecast(self, name: str, *args: str, timeout: float = 600) -> str:
        return self.run(name, sys.executable, "-m", "framecast.client.cli", *args, timeout=timeout)

    def start_node(self, metrics_port: int) -> None:
        log = (self.log / "node.log").open("ab")
        self.node = subprocess.Popen(
            [sys.executable, "-m", "framecast.client.cli", "node", "run"],
            env=self.env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.node.poll() is not None:
                raise CheckFailed(f"the node exited {self.node.returncode}; see logs/node.log")
            try:
                url = f"http://127.0.0.1:{metrics_port}/healthz"
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise CheckFailed("the node did not become healthy in 120 s; see logs/node.log")

    def close(self) -> None:
        if self.node is not None and self.node.poll() is None:
            self.node.send_signal(signal.SIGTERM)
            try:
                self.node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.node.kill()
        subprocess.run(
            [sys.executable, "-m", "framecast.client.cli", "devnet", "down"],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=60,
        )


def _pixel_spread(video: Path) -> float:
    """Standard deviation of every decoded pixel value (imageio's ffmpeg, no torch)."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    return float(np.stack(frames).std())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="CPU, narrowed widths (self-check)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the job")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    args = parser.parse_args(argv)
    device = "cpu" if args.cpu else "cuda"
    # The GPU job is the real workload's shape at reduced steps; the CPU one fits the
    # narrowed build (its positional table is 8×8 patches: 64×64 pixels).
    frames, width, height = (9, 64, 64) if args.cpu else (49, 720, 480)
    if LOCAL_PIN.exists():
        print(f"{LOCAL_PIN} exists: another check is running here, or one was killed; "
              "remove it and run again", file=sys.stderr)  # fmt: skip
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="framecast-gpu-check-"))
    check = Check(work, device)
    print(f"gpu check on {device}: {frames} frames {width}×{height}, {args.steps} steps; "
          f"logs in {check.log}")  # fmt: skip
    try:
        weights = check.home / "node" / "weights" / MODEL
        with check.step(f"build CogVideoX-2b with random weights on {device} and pin it locally"):
            check.run(
                "build", sys.executable, "-m", "framecast.runner", "reference",
                "--out", str(weights), "--device", device, "--pin", *(["--smoke"] * args.cpu),
            )  # fmt: skip
            size = sum(p.stat().st_size for p in weights.rglob("*") if p.is_file())
            print(f"  {size / 2**30:.2f} GiB in {weights}")
        with check.step("devnet, provider node (process runtime) and a funded wallet"):
            check.framecast("devnet-up", "devnet", "up", "--port", str(_free_port()))
            metrics_port = _free_port()
            check.env["FRAMECAST_NODE_METRICS_PORT"] = str(metrics_port)
            check.framecast(
                "node-init", "node", "init", "--devnet-account", "provider-1", "--model", MODEL
            )
            check.framecast("node-register", "node", "register", "--bond", "200")
            check.start_node(metrics_port)
            check.framecast("wallet", "wallet", "import", "--devnet", "alice")
            check.framecast("faucet", "credits", "faucet")
            check.framecast("deposit", "credits", "deposit", "--amount", "20")
        result = work / "result"
        with check.step("submit --wait: claimed, run, pinned, delivered, verified (levels 1-2)"):
            out = check.framecast(
                "submit", "submit", "--model", MODEL, "--prompt", PROMPT, "--seed", "42",
                "--frames", str(frames), "--width", str(width), "--height", str(height),
                "--steps", str(args.steps), "--wait", "-o", str(result), timeout=900,
            )  # fmt: skip
            if "verified: levels 1 (integrity) + 2 (provenance)" not in out:
                raise CheckFailed(f"submit did not verify; see {check.log / 'submit.log'}")
            spread = _pixel_spread(result / "video.mp4")
            print(f"  delivered video: pixel std {spread:.1f} (0 would mean a blank video)")
            if spread == 0:
                # NaN or saturated activations decode to one colour everywhere, and equal
                # digests of blank videos would prove nothing about determinism.
                raise CheckFailed("the delivered video is one flat colour: the model diverged")
            receipt = json.loads((result / "receipt.json").read_text(encoding="utf-8"))
            body = receipt.get("body", receipt)
            metrics = body.get("timings") or body.get("metrics") or {}
            print(f"  environment: {json.dumps(body.get('environment'))}")
            if metrics:
                print(f"  runner timings: {json.dumps(metrics)}")
        with check.step("node replay: a second runner process re-runs the signed spec"):
            replayed = check.framecast(
                "replay", "node", "replay", "1", "--result", str(result), "--json", timeout=900
            )
            report = json.loads(replayed)
            print(f"  delivered frames digest {report['receipt_frames_digest']}")
            print(f"  replayed  frames digest {report['replay_frames_digest']}")
            if report["verdict"] != "exact" or (
                report["receipt_frames_digest"] != report["replay_frames_digest"]
            ):
                raise CheckFailed(f"replay verdict {report['verdict']}: {report['reason']}")
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    finally:
        check.close()
        LOCAL_PIN.unlink(missing_ok=True)
        if args.workdir is None and "FRAMECAST_GPU_CHECK_KEEP" not in os.environ:
            shutil.rmtree(work, ignore_errors=True)
    print(f"gpu check passed in {time.monotonic() - check.started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
