"""Compiled contract artifacts (ABI + bytecode) that the Python side loads.

They are committed under ``compiled/`` so a client needs neither forge nor solc. Export
them after ``forge build`` with ``python -m framecast.shared.chain.artifacts``; CI runs it
with ``--check`` and fails when a rebuild differs from what is committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from framecast.shared.errors import ConfigError

ARTIFACT_DIR = Path(__file__).with_name("compiled")
CONTRACTS: tuple[str, ...] = ("Credits", "JobMarket", "ReplicatedJobs")

#: Where a library's address goes in a linking contract's bytecode: source file -> library
#: name -> byte ranges (solc's ``linkReferences``).
LinkReferences = dict[str, dict[str, list[dict[str, int]]]]


class Artifact(BaseModel):
    """What deployment and bindings need of one compiled contract."""

    model_config = ConfigDict(frozen=True)

    contract: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    #: Libraries to link into ``bytecode`` before deploying it (JobMarket: ReplicatedJobs).
    link_references: LinkReferences = {}

    def libraries(self) -> list[str]:
        """Names of the libraries whose addresses ``bytecode`` needs, in a stable order."""
        return sorted({name for refs in self.link_references.values() for name in refs})

    def linked_bytecode(self, addresses: dict[str, str]) -> str:
        """``bytecode`` with each library's placeholder replaced by its address in ``addresses``."""
        code = list(self.bytecode.removeprefix("0x"))
        for refs in self.link_references.values():
            for name, ranges in refs.items():
                if name not in addresses:
                    raise ConfigError(
                        f"{self.contract} needs library {name} linked and no address was given",
                        fix=f"deploy {name} first and pass its address",
                    )
                address = addresses[name].removeprefix("0x").lower()
                # Offsets are in bytes; the placeholder `__$<hash>$__` spans 2 hex digits each.
                for span in ranges:
                    start, length = 2 * span["start"], 2 * span["length"]
                    code[start : start + length] = address
        linked = "".join(code)
        bytes.fromhex(linked)  # every placeholder is filled: what is left is plain hex
        return "0x" + linked


@cache
def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract ``name``."""
    path = ARTIFACT_DIR / f"{name}.json"
    try:
        return Artifact.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"contract artifact {path} is missing",
            fix="reinstall framecast, or run `make artifacts` in a source checkout",
        ) from None


def _from_forge(out_dir: Path, name: str) -> Artifact:
    raw = json.loads((out_dir / f"{name}.sol" / f"{name}.json").read_text())
    return Artifact(
        contract=name,
        abi=raw["abi"],
        bytecode=raw["bytecode"]["object"],
        deployed_bytecode=raw["deployedBytecode"]["object"],
        link_references=raw["bytecode"].get("linkReferences", {}),
    )


def _render(artifact: Artifact) -> str:
    return json.dumps(artifact.model_dump(), indent=1, sort_keys=True) + "\n"


def export(out_dir: Path, *, check: bool) -> list[str]:
    """Write (or with ``check``, compare) artifacts from forge's ``out``; returns drifted names."""
    drifted = []
    for name in CONTRACTS:
        rendered = _render(_from_forge(out_dir, name))
        target = ARTIFACT_DIR / f"{name}.json"
        current = target.read_text() if target.exists() else None
        if current != rendered:
            drifted.append(name)
            if not check:
                target.write_text(rendered)
    return drifted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    default_out = Path(__file__).resolve().parents[2] / "contracts" / "out"
    parser.add_argument("--out", type=Path, default=default_out, help="forge's out directory")
    parser.add_argument("--check", action="store_true", help="fail if artifacts are stale")
    args = parser.parse_args(argv)
    drifted = export(args.out, check=args.check)
    if args.check and drifted:
        print(
            f"stale contract artifacts: {', '.join(drifted)} — run "
            "`cd contracts && forge build && python -m framecast.shared.chain.artifacts` "
            "and commit shared/chain/compiled/",
            file=sys.stderr,
        )
        return 1
    print("artifacts " + ("up to date" if not drifted else "written: " + ", ".join(drifted)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
