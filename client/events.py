"""Reading the market's history: chunked log queries, topics, block times, chain time.

Shared by every client service that rebuilds state from events (credits, jobs, quotes);
the log queries themselves go through `framecast.shared.chain.history.LogReader`, the one
reader the node uses too (adaptive ranges for RPCs that cap them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from web3 import Web3
from web3.types import LogReceipt

from framecast.shared.chain.history import (
    DEFAULT_LOG_RANGE,
    LogReader,
    address_topic,
    hex_of,
    uint_topic,
)

__all__ = [
    "DEFAULT_CHUNK_BLOCKS",
    "BlockTimes",
    "address_topic",
    "batches",
    "chain_now",
    "duration",
    "hex_of",
    "logs",
    "next_block_time",
    "uint_topic",
]

DEFAULT_CHUNK_BLOCKS = DEFAULT_LOG_RANGE


def logs(
    w3: Web3,
    address: str,
    topics: list[Any],
    *,
    from_block: int,
    to_block: int,
    chunk_blocks: int,
) -> list[LogReceipt]:
    """eth_getLogs over [from_block, to_block] through the one adaptive `LogReader`."""
    return LogReader(w3, max_range=chunk_blocks).logs(
        address, topics, from_block=from_block, to_block=to_block
    )


class BlockTimes:
    """Block timestamps, fetched once per block."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._cache: dict[int, int] = {}

    def __getitem__(self, block: int) -> int:
        if block not in self._cache:
            self._cache[block] = int(self._w3.eth.get_block(block)["timestamp"])
        return self._cache[block]


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chain_now(w3: Web3) -> int:
    # Chain time, not the wall clock: deadlines are judged by block timestamps (and a
    # devnet may have been warped ahead).
    return int(w3.eth.get_block("latest")["timestamp"])


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def next_block_time(w3: Web3) -> int:
    """The earliest timestamp a transaction sent now can be judged at.

    An idle devnet (anvil automine) mines no blocks, so its latest timestamp stands still
    while deadlines pass; the next block gets the wall clock. A chain warped ahead keeps
    its own, later time.
    """
    import time

    return max(chain_now(w3), int(time.time()))
