"""`framecast demo` through the real console script: the README's main job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

FRAMECAST = str(Path(sys.executable).with_name("framecast"))


@pytest.mark.slow
def test_demo_runs_the_whole_market(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FRAMECAST_HOME": str(tmp_path / "home"),
        "FRAMECAST_KEYSTORE_SCRYPT_N": "1024",
    }
    try:
        done = subprocess.run(
            [FRAMECAST, "demo", "--port", str(free_port())],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "levels 1 (integrity) + 2 (provenance)" in output
        assert "(settled)" in output
        assert "FAIL" not in output
        # It ends by naming the demo job's explorer page and how to serve it.
        assert "explorer       http://127.0.0.1:8700/jobs/1" in output
        assert "framecast explorer --job 1 --open" in output
        # The verified result is on disk, with the provider's receipt.
        result = tmp_path / "home" / "demo" / "result" / "1"
        assert {p.name for p in result.iterdir()} == {"video.mp4", "poster.jpg", "receipt.json"}
    finally:
        subprocess.run([FRAMECAST, "devnet", "down"], env=env, check=False, capture_output=True)
