"""`framecast explorer` as a user runs it: the real console script in a subprocess, its
startup line, a served page, and one-line errors for a bad database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import FRAMECAST
from tests.conftest import Chain, free_port
from tests.explorer.conftest import Market


def _env(chain: Chain, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "deployment.json"
    chain.deployment.save(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    return env | {"FRAMECAST_HOME": str(tmp_path / "home"), "FRAMECAST_DEPLOYMENT": str(path)}


@pytest.mark.slow
def test_the_command_serves_the_job_page_it_prints(market: Market, tmp_path: Path) -> None:
    job_id = market.submit("served by the command")
    market.deliver(job_id, "served by the command")
    port = free_port()
    process = subprocess.Popen(
        [str(FRAMECAST), "explorer", "--port", str(port), "--job", str(job_id), "--json",
         "--db", str(tmp_path / "index.sqlite3")],
        env=_env(market.chain, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            assert process.stderr is not None
            pytest.fail(f"the explorer did not start: {process.stderr.read()}")
        started = json.loads(line)
        assert started["page"] == f"http://127.0.0.1:{port}/jobs/{job_id}"
        assert started["events"] > 0
        page = httpx.get(started["page"], timeout=10)
        assert page.status_code == 200 and "served by the command" in page.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run(chain: Chain, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FRAMECAST), "explorer", "--port", "0", *args],
        env=_env(chain, tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_wrong_schema_version_is_one_line_naming_it_and_the_fix(
    chain: Chain, tmp_path: Path
) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    done = _run(chain, tmp_path, "--db", str(db))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "schema version 0" in lines[0] and "--reindex" in lines[0]
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_url_is_one_line(chain: Chain, tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    done = _run(chain, tmp_path, "--db", f"postgresql://u:pw@127.0.0.1:{free_port()}/x")
    assert done.returncode == 1
    assert done.stderr.startswith("error: the explorer database postgresql://u:***@")
    assert "unreachable" in done.stderr and "Traceback" not in done.stderr
