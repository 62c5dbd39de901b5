"""Packaging: every Python package folder is listed in pyproject (a wheel is complete),
and the client's import graph stays light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"client": "framecast.client", "node": "framecast.node", "shared": "framecast.shared",
          "docker/runner": "framecast.runner"}  # fmt: skip


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {v: k for k, v in MAPPED.items()}
    listed = set(config["packages"])
    found = set()
    for folder, package in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - found == set(), "these listed packages have no __init__.py"


def test_client_never_imports_heavy_libraries() -> None:
    code = (
        "import sys, framecast.client.cli as c\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(c.root, ['--help'])\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'docker', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
