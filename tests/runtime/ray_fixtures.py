"""A real Ray cluster for the tests: `ray start --head` plus worker hosts, each its own
process group (so one "host" can be stopped without touching the others, or another
lab's Ray), token authentication on, GPUs emulated by a custom resource.

Every process is started here with `--block` in a new session and ended by its process
group id; nothing is found by name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: The custom resource standing in for one GPU (the tests run on CPUs).
FAKE_GPU = "fake_gpu"
#: GiB per emulated card.
CARD_GB = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


class RayTestCluster:
    """Head and workers on this machine, on 127.0.0.1, with a token."""

    def __init__(
        self, root: Path, *, node_ip: str = "127.0.0.1", prefix: list[str] | None = None
    ) -> None:
        #: Where the head listens, and the command prefix that runs a process on its host
        #: (`ip netns exec NS` when the head lives in a network namespace).
        self.node_ip = node_ip
        self.prefix = prefix or []
        # Ray's unix socket paths must stay short: a temp dir under /tmp named by our pid.
        self.temp = Path(f"/tmp/fcray-{os.getpid()}-{secrets.token_hex(2)}")
        self.temp.mkdir(parents=True)
        self.root = root
        self.token = secrets.token_hex(16)
        self.token_file = root / "ray-token"
        self.token_file.write_text(self.token)
        self.port = _free_port()
        self.address = f"{node_ip}:{self.port}"
        self.head: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }

    def _spawn(
        self, args: list[str], log_name: str, prefix: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.root / log_name).open("ab")
        try:
            return subprocess.Popen(
                [*(prefix or []), ray_bin(), "start", "--block", "--disable-usage-stats", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        finally:
            log.close()

    def start_head(self) -> None:
        self.head = self._spawn(
            [
                "--head",
                f"--port={self.port}",
                f"--node-ip-address={self.node_ip}",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--temp-dir={self.temp}",
                "--object-store-memory=100000000",
            ],
            "ray-head.log",
            self.prefix,
        )
        self._wait_hosts(1)

    def add_worker(
        self,
        gpus: int = 1,
        card_gb: int = CARD_GB,
        *,
        prefix: list[str] | None = None,
        node_ip: str = "127.0.0.1",
        wait: bool = True,
    ) -> subprocess.Popen[bytes]:
        resources = f'{{"{FAKE_GPU}": {gpus}, "vram_gb": {gpus * card_gb}}}'
        index = len(self.workers)
        worker = self._spawn(
            [
                f"--address={self.address}",
                f"--node-ip-address={node_ip}",
                f"--num-cpus={gpus}",
                f"--resources={resources}",
                "--object-store-memory=100000000",
            ],
            f"ray-worker-{index}.log",
            prefix,
        )
        self.workers.append(worker)
        if wait:
            self._wait_hosts(1 + len([w for w in self.workers if w.poll() is None]))
        return worker

    def alive_hosts(self) -> int:
        out = subprocess.run(
            [*self.prefix, sys.executable, "-c", _COUNT_HOSTS, self.address],
            env=self.env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(out.stdout.strip() or 0)

    def _wait_hosts(self, count: int, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.head is not None and self.head.poll() is not None:
                raise RuntimeError(f"ray head exited; see {self.root / 'ray-head.log'}")
            if self.alive_hosts() >= count:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {count} hosts in {timeout_s} s")

    def stop_worker(self, worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        """What `ray stop` does on that host: its raylet and workers go (one group)."""
        _end_group(worker, sig)

    def close(self) -> None:
        for worker in self.workers:
            _end_group(worker, signal.SIGTERM)
        if self.head is not None:
            _end_group(self.head, signal.SIGTERM)
        subprocess.run(["rm", "-rf", str(self.temp)], check=False)


def _end_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # `ray start --block` stops its children on SIGTERM; SIGKILL leftovers of the group.
    time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


_COUNT_HOSTS = """
import sys, ray, logging
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


requires_ray = pytest.mark.skipif(
    not ray_available(), reason="needs the ray extra: pip install 'framecast[ray]'"
)
