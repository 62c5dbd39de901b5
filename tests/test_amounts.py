"""FCC amounts are parsed and printed exactly, in every message, including amounts no
float can hold (a float keeps 53 bits: 1e30 FCC through one reads ...019,884,624,838,656)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from framecast.shared.amounts import FCC, format_fcc, parse_amount
from framecast.shared.chain import reverts

REPO = Path(__file__).resolve().parents[1]
#: Amounts a float rounds: past 2^53 wei, and whole FCC past 2^53.
UNFLOATABLE = [10**30 * FCC, 10**30 * FCC + 1, 2**96 - 1, 2**256 - 1, 9_007_199_254_740_993 * FCC]


@pytest.mark.parametrize("wei", UNFLOATABLE)
def test_format_and_parse_round_trip_exactly(wei: int) -> None:
    text = format_fcc(wei, unit=False, group=False)
    assert parse_amount(text) == wei
    assert format_fcc(wei).replace(",", "").removesuffix(" FCC") == text
    # What the float path printed, for contrast: it loses the low digits.
    assert f"{wei / 10**18:.0f}" != text


def _revert(name: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=f"{name}({','.join(types)})")[:4] + encode(types, values)


@pytest.mark.parametrize(
    ("name", "types", "values", "amounts"),
    [
        ("InsufficientBalance", ["address", "uint256", "uint256"],
         ["0x" + "11" * 20, 5 * FCC, 10**30 * FCC + 1], [5 * FCC, 10**30 * FCC + 1]),
        ("ERC20InsufficientBalance", ["address", "uint256", "uint256"],
         ["0x" + "11" * 20, 2**96 - 1, 2**255], [2**96 - 1, 2**255]),
        ("BondTooLow", ["address", "uint256", "uint256"],
         ["0x" + "11" * 20, 1, 10**40], [1, 10**40]),
        ("AmountTooLarge", ["uint256"], [10**60], [10**60, 2**96 - 1]),
    ],
)  # fmt: skip
def test_revert_messages_print_amounts_exactly(
    name: str, types: list[str], values: list[object], amounts: list[int]
) -> None:
    error = reverts.decode_revert(_revert(name, types, values))
    assert type(error).__name__ == name
    for wei in amounts:
        assert format_fcc(wei) in error.message


def test_no_module_formats_wei_through_a_float() -> None:
    """The one formatter is `format_fcc`: no `/ 10**18`, `/ FCC` or `:g} FCC` elsewhere."""
    pattern = re.compile(r"/\s*(10\s*\*\*\s*18|1e18|FCC)\b|:g\}\s*FCC")
    offenders = []
    for folder in ("client", "node", "shared", "docker"):
        for path in (REPO / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
