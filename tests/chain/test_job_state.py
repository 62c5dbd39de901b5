"""The Python `JobState` is the contract's `enum JobState`: same names, same order, and the
enum the compiled ABI passes around; reverts render states by those names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from framecast.shared.chain import reverts
from framecast.shared.chain.artifacts import CONTRACTS, load_artifact
from framecast.shared.chain.bindings import JobState

ROOT = Path(__file__).resolve().parents[2]
INTERFACE = ROOT / "contracts" / "src" / "interfaces" / "IJobMarket.sol"


def _solidity_states() -> list[str]:
    source = INTERFACE.read_text()
    # Comments first: the members are annotated with `// 1: escrowed, ...`.
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    source = re.sub(r"//[^\n]*", "", source)
    match = re.search(r"\benum\s+JobState\s*\{([^}]*)\}", source)
    assert match is not None, f"no `enum JobState` in {INTERFACE}"
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


def _abi_params(node: Any) -> list[dict[str, Any]]:
    """Every parameter (inputs, outputs, tuple components) anywhere in an ABI."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "internalType" in node:
            found.append(node)
        for value in node.values():
            found.extend(_abi_params(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_abi_params(item))
    return found


def test_names_and_order_match_the_contract() -> None:
    names = _solidity_states()
    assert [state.solidity_name for state in JobState] == names
    assert [state.value for state in JobState] == list(range(len(names)))


def test_the_abi_carries_that_enum_as_uint8() -> None:
    params = [
        p
        for contract in CONTRACTS
        for p in _abi_params(load_artifact(contract).abi)
        if "JobState" in p["internalType"]
    ]
    # getJob's view, JobRefunded, InvalidJobState at least.
    assert len(params) >= 3
    assert {(p["internalType"], p["type"]) for p in params} == {
        ("enum IJobMarket.JobState", "uint8")
    }


def test_reverts_name_states_as_the_contract_does() -> None:
    selector = keccak(text="InvalidJobState(uint256,uint8)")[:4]
    for state, name in zip(JobState, _solidity_states(), strict=True):
        data = selector + abi_encode(["uint256", "uint8"], [7, state.value])
        decoded = reverts.decode_revert(data)
        assert isinstance(decoded, reverts.InvalidJobState)
        assert f"job 7 is {name}," in decoded.message
    unknown = reverts.decode_revert(selector + abi_encode(["uint256", "uint8"], [7, 200]))
    assert "job 7 is 200," in unknown.message
