"""Client fixtures: an isolated FRAMECAST_HOME, fast test keystores, a CLI runner bound to
the test chain's deployment."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from framecast.client.cli import root
from tests.conftest import Chain

PASSWORD = "correct horse battery staple"
#: Low scrypt cost for test keystores (geth's 262144 takes seconds per unlock).
TEST_SCRYPT_N = 1024
REPO = Path(__file__).resolve().parents[2]
FRAMECAST = REPO / ".venv" / "bin" / "framecast"
CAST = REPO / "node_modules" / ".bin" / "cast"


@pytest.fixture(autouse=True)
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every client test gets its own home and no FRAMECAST_* from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(("FRAMECAST_", "ETH_", "CAST_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("FRAMECAST_HOME", str(home))
    monkeypatch.setenv("FRAMECAST_KEYSTORE_SCRYPT_N", str(TEST_SCRYPT_N))
    return home


@dataclass
class Cli:
    """Runs `framecast ...` in-process with click's CliRunner."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(root, list(args), input=input, env=self.env)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli(env={"FRAMECAST_PASSWORD": PASSWORD})


@pytest.fixture
def on_chain(chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chain]:
    """The test chain's deployment as the client's deployment file."""
    path = tmp_path / "deployment.json"
    chain.deployment.save(path)
    monkeypatch.setenv("FRAMECAST_DEPLOYMENT", str(path))
    yield chain
