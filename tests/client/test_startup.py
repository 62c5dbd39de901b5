"""The client stays light: no torch, diffusers or docker, whatever command is asked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "docker")

PROBE = """
import contextlib, io, json, sys
from framecast.client.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def imported_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [("--help",), ("wallet", "--help"), ("credits", "--help"), ("credits", "balance", "--help")],
)
def test_client_never_imports_heavy_packages(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "click" in modules  # the probe did run the CLI
    assert not modules & set(HEAVY), args


def test_root_help_does_not_even_import_web3() -> None:
    modules = imported_by("--help")
    assert not modules & {"web3", "eth_account", "pydantic_settings"}
