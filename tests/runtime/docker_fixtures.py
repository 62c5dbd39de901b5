"""Docker fixtures shared by the runtime and node tests: a daemon (the one that answers,
else Debian's dockerd started here as root and stopped at the end; non-root without a
daemon skips with the reason) and the CPU runner image for the current sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.client import DockerClient

from framecast.node.runtime.docker import connect
from framecast.shared.errors import RuntimeUnavailable

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "docker" / "test-image" / "build.sh"
CACHE = REPO / ".cache" / "docker"


# -- daemon, image, model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client() -> Iterator[DockerClient]:
    try:
        client = connect(timeout_s=30)
    except RuntimeUnavailable as exc:
        no_daemon = exc
    else:
        yield client
        client.close()
        return
    if os.geteuid() != 0:
        pytest.skip(f"no Docker daemon and not root, so none can be started here: {no_daemon}")
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed: run `make docker-setup` (apt-get install docker.io)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "dockerd-tests.log").open("ab") as log:
        proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--bridge=none"], stdout=log, stderr=log
        )
    try:
        client = _wait_for_daemon(proc)
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_daemon(proc: subprocess.Popen[bytes]) -> DockerClient:
    deadline = time.monotonic() + 60
    while True:
        try:
            return connect(timeout_s=30)
        except RuntimeUnavailable:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def runner_image(docker_client: DockerClient) -> str:
    """ID of the CPU runner image for the current sources (built if missing)."""
    built = subprocess.run(
        [str(BUILD_SCRIPT)], check=False, capture_output=True, text=True, timeout=900
    )
    if built.returncode != 0:
        pytest.fail(f"building the runner image failed:\n{built.stderr[-4000:]}")
    return built.stdout.strip().splitlines()[-1]
