"""Packaging: every Python package folder is listed in pyproject (a wheel is complete),
and the client's import graph stays light."""

from __future__ import annotations

import ast
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


def _framecast_imports(folder: str) -> dict[str, set[str]]:
    """Every `framecast.*` module each file under ``folder`` imports (top level or local)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = {n for n in names if n.startswith("framecast.")}
    return found


def test_the_runner_imports_only_shared() -> None:
    # The images install the runner and run it alone: client and node code never runs there.
    strays = {
        path: sorted(n for n in names if not n.startswith(("framecast.shared", "framecast.runner")))
        for path, names in _framecast_imports("docker/runner").items()
    }
    assert {path: names for path, names in strays.items() if names} == {}


def test_the_provider_never_imports_the_arbiter() -> None:
    # The arbiter is an operator that may use the node's replay and runtime, not the reverse.
    strays = {
        path: sorted(n for n in names if n.startswith("framecast.node.arbiter"))
        for path, names in _framecast_imports("node").items()
        if not path.startswith("node/arbiter/")
    }
    assert {path: names for path, names in strays.items() if names} == {}


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, ``from pkg import name`` counted as ``pkg.name`` too
    (a submodule imported by name from its package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _command_modules(folder: str, package: str, shared: set[str]) -> dict[Path, str]:
    """The command modules under ``folder`` (module name by path), less ``__init__`` and
    the ``shared`` option modules every command may use."""
    return {
        path: f"{package}.{path.stem}"
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.stem != "__init__" and path.stem not in shared
    }


def _cross_imports(commands: dict[Path, str], groups: set[str]) -> dict[str, list[str]]:
    """Per command module, the other command modules (or the ``groups`` modules that
    gather them) it imports."""
    forbidden = set(commands.values()) | groups
    return {
        str(path.relative_to(ROOT)): sorted((_imported_modules(path) & forbidden) - {own})
        for path, own in commands.items()
    }


def test_client_commands_do_not_import_each_other() -> None:
    # Thin commands: what two commands share lives outside client/commands/
    # (client/context.py for options, client/delivery.py for the follow-and-fetch flow).
    commands = _command_modules("client/commands", "framecast.client.commands", shared=set())
    assert len(commands) >= 10  # the check looks at the real folder
    strays = _cross_imports(commands, {"framecast.client.cli"})
    assert {path: names for path, names in strays.items() if names} == {}


def test_node_commands_do_not_import_each_other() -> None:
    # node/commands/options.py holds what node and arbiter commands share; node/cli.py
    # only groups the commands.
    commands = _command_modules("node/commands", "framecast.node.commands", shared={"options"})
    assert len(commands) >= 5
    commands[ROOT / "node" / "arbiter" / "cli.py"] = "framecast.node.arbiter.cli"
    strays = _cross_imports(commands, {"framecast.node.cli"})
    assert {path: names for path, names in strays.items() if names} == {}
