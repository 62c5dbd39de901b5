"""FCC amounts as text: the one parser and the one formatter.

Amounts are integers in wei of FCC (18 decimals) everywhere; text becomes wei only through
`parse_amount` (``decimal.Decimal`` with enough digits, never float) and wei becomes text
only through `format_fcc`, so a message never shows an amount a float rounded (1e30 FCC
through a float reads 1,000,000,000,000,000,019,884,624,838,656).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

DECIMALS = 18
FCC = 10**DECIMALS

#: Far above any supply of FCC (uint256 wei is about 1.2e59 FCC): a bound that keeps the
#: exact arithmetic below finite, checked before it.
_MAX_EXPONENT = 60


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """``"12.5"`` FCC → wei, exactly. Raises ValueError saying what is wrong (the caller
    names the field)."""
    cleaned = text.strip().replace("_", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number of FCC (e.g. 12.5)") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise ValueError(f"{text!r} must be {bound}")
    if value != 0 and value.adjusted() > _MAX_EXPONENT:
        raise ValueError(f"{text!r} is far larger than any supply of FCC")
    # Exact arithmetic: the default context keeps 28 digits and would silently round
    # 10 billion FCC plus one wei.
    with localcontext() as exact:
        exact.prec = 100
        wei = value.scaleb(DECIMALS)
        if wei != wei.to_integral_value():
            raise ValueError(f"{text!r} has more than {DECIMALS} decimals")
        return int(wei)


def format_fcc(wei: int, *, unit: bool = True, group: bool = True) -> str:
    """Wei → ``"1,234.5 FCC"``: every significant decimal, none padded, never rounded.

    ``group=False`` leaves out the thousands separators: for an amount shown inside a
    command line to paste (`parse_amount` does not read commas).
    """
    whole, frac = divmod(abs(wei), FCC)
    text = f"{whole:,}" if group else str(whole)
    if frac:
        text += "." + f"{frac:0{DECIMALS}d}".rstrip("0")
    if wei < 0:
        text = "-" + text
    return f"{text} FCC" if unit else text
