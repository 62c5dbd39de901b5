"""Click parameter types the client and the node commands share, so that every numeric
option refuses the same bad values the same way: NaN, infinities, negatives, values past
what the chain or a timer can hold, and amounts that are not exact decimals.

A refused value is a click usage error (exit code 2), which the CLI's one error boundary
(`framecast.client.cli.main`) prints as one `error:` line naming the option.
"""

from __future__ import annotations

import math
from typing import Any

import click

from framecast.shared.amounts import parse_amount

#: Job ids are uint256 on chain: a larger number cannot name a job.
UINT256_MAX = 2**256 - 1


class FccAmount(click.ParamType[int]):
    """A decimal amount of FCC ("12.5"), converted to wei exactly (never through a float)."""

    name = "FCC"

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_amount(str(value), allow_zero=self.allow_zero)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Seconds(click.ParamType[float]):
    """A finite number of seconds in ``[low, high]``: NaN and infinity are refused (a
    `time.sleep(nan)` fails, a NaN deadline never passes, an infinite grace never ends)."""

    name = "SECONDS"

    def __init__(self, low: float, high: float, *, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        opening = "(" if self.low_open else "["
        allowed = f"{opening}{self.low:g}, {self.high:g}]"
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds ({allowed})", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            self.fail(f"{value!r} s is outside {allowed} s", param, ctx)
        return number


class JobId(click.ParamType[int]):
    """A job id: a whole number from 1 up to the largest uint256 (what the chain can hold)."""

    name = "JOB"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not text.isascii() or not text.isdigit():
                self.fail(f"{value!r} is not a job id (a whole number, e.g. 12)", param, ctx)
            if len(text) > 78:  # uint256 has 78 digits: no int() of a megabyte of digits
                self.fail(f"{text[:20]}… is not a job id (at most 2^256 - 1)", param, ctx)
            number = int(text)
        if not 1 <= number <= UINT256_MAX:
            self.fail(f"{number} is not a job id (job ids start at 1, up to 2^256 - 1)", param, ctx)
        return number


#: A job id argument or option.
JOB_ID = JobId()
