"""Hosts in network namespaces: a test network that exists only inside them.

A ``Lab`` makes one namespace holding a bridge (the switch) and one namespace per host,
each joined to the switch by a veth pair and given an address on a private test subnet.
No host has a default route and the switch namespace has no uplink, so the subnet cannot
reach, or be reached from, anything outside the lab: every packet a test sends stays
between its own hosts. Each host also has its own loopback, so a service one host binds
to 127.0.0.1 is invisible to the others — exactly the mistake a one-machine test hides.

Names carry the test process's pid so parallel runs on one machine never collide, and
``close`` removes every namespace (which removes the veths with them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The lab's subnet. It exists only inside the lab's namespaces (no route leads to it).
SUBNET = "10.213.7"
PREFIX = 24


def lab_unavailable() -> str | None:
    """Why a lab cannot be built here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, as CI does)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing (apt-get install iproute2)"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One host of the lab: a namespace, an address and a FRAMECAST_HOME of its own."""

    name: str
    netns: str
    address: str
    home: Path
    _switch: str
    _port: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, "FRAMECAST_HOME": str(self.home), **self.env, **(extra or {})}
        # Proxies configured on the machine would send the lab's traffic elsewhere.
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.pop(key, None)
        env["NO_PROXY"] = "*"
        return env

    def run(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(command),
            check=False,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(
        self, command: Sequence[str], *, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        return subprocess.Popen(
            self.argv(command),
            env=self.environment(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def partition(self) -> None:
        """Cut this host off the switch (its processes keep running)."""
        _ip("-n", self._switch, "link", "set", self._port, "down")

    def heal(self) -> None:
        _ip("-n", self._switch, "link", "set", self._port, "up")

    def url(self, port: int) -> str:
        return f"http://{self.address}:{port}"


class Lab:
    """A switch and hosts; use as a context manager."""

    def __init__(self, root: Path, *, subnet: str = SUBNET, prefix: str = "fc") -> None:
        # Another lab on the machine (the Ray tests) passes its own subnet and name prefix.
        self.root = root
        self.subnet = subnet
        self.tag = f"{prefix}{os.getpid() % 100000}"
        self.switch = f"{self.tag}sw"
        self.hosts: dict[str, Host] = {}
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        netns = f"{self.tag}{name}"
        inner, port = f"{self.tag}i{index}", f"{self.tag}p{index}"
        _ip("netns", "add", netns)
        _ip("link", "add", inner, "type", "veth", "peer", "name", port)
        _ip("link", "set", inner, "netns", netns)
        _ip("link", "set", port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "link", "set", inner, "name", "eth0")
        address = f"{self.subnet}.{index}"
        _ip("-n", netns, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        host = Host(name, netns, address, home, self.switch, port)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            pids = subprocess.run(
                ["ip", "netns", "pids", host.netns], check=False, capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", host.netns], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", self.switch], check=False, capture_output=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_port(host: Host, address: str, port: int, timeout: float = 30.0) -> None:
    """Wait until ``address:port`` accepts a TCP connection as seen from ``host``."""
    probe = (
        "import socket,sys;s=socket.socket();s.settimeout(1);"
        f"sys.exit(s.connect_ex(({address!r},{port})))"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.run(["python3", "-c", probe], check=False, timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{address}:{port} not reachable from {host.name} in {timeout} s")


__all__ = ["SUBNET", "Host", "Lab", "lab_unavailable", "wait_port"]
