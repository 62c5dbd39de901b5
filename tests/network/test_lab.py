"""The lab itself: hosts reach each other on the test subnet and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.network.lab import Lab, wait_port

SERVE = (
    "import http.server,sys;"
    "http.server.HTTPServer((sys.argv[1],int(sys.argv[2])),"
    "http.server.SimpleHTTPRequestHandler).serve_forever()"
)
GET = "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=2).status)"


def test_hosts_reach_each_other_and_a_partition_cuts_them_off(lab: Lab, tmp_path: Path) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    server = a.popen([sys.executable, "-c", SERVE, a.address, "8080"], log=tmp_path / "a.log")
    try:
        wait_port(b, a.address, 8080)
        assert b.run([sys.executable, "-c", GET, a.url(8080)]).stdout.strip() == "200"
        a.partition()
        cut = b.run([sys.executable, "-c", GET, a.url(8080)], check=False, timeout=30)
        assert cut.returncode != 0
        a.heal()
        wait_port(b, a.address, 8080)
    finally:
        server.kill()


def test_loopback_is_per_host(lab: Lab, tmp_path: Path) -> None:
    """A service on one host's 127.0.0.1 is not there for another host."""
    a, b = lab.add_host("a"), lab.add_host("b")
    server = a.popen([sys.executable, "-c", SERVE, "127.0.0.1", "8081"], log=tmp_path / "a.log")
    try:
        wait_port(a, "127.0.0.1", 8081)
        probe = b.run([sys.executable, "-c", GET, "http://127.0.0.1:8081"], check=False)
        assert probe.returncode != 0
    finally:
        server.kill()


def test_the_lab_has_no_route_out(lab: Lab) -> None:
    a = lab.add_host("a")
    routes = a.run(["ip", "route"]).stdout
    assert "default" not in routes
    assert routes.strip().startswith("10.213.7.0/24")


def test_close_removes_every_namespace(tmp_path: Path) -> None:
    from tests.network.lab import lab_unavailable

    if lab_unavailable():
        pytest.skip(str(lab_unavailable()))
    with Lab(tmp_path) as built:
        built.add_host("x")
        names = [built.switch, built.hosts["x"].netns]
    listed = subprocess.run(
        ["ip", "netns", "list"], check=False, capture_output=True, text=True
    ).stdout
    assert not any(name in listed for name in names)
