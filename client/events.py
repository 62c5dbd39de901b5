"""Reading the market's history: chunked log queries, topics, block times, chain time.

Shared by every client service that rebuilds state from events (credits, jobs, quotes),
so each asks the RPC the same bounded way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from web3 import Web3
from web3.types import FilterParams, LogReceipt

#: Blocks per eth_getLogs call: public RPCs cap ranges (often 10k) or result sizes.
DEFAULT_CHUNK_BLOCKS = 5_000


def logs(
    w3: Web3,
    address: str,
    topics: list[Any],
    *,
    from_block: int,
    to_block: int,
    chunk_blocks: int,
) -> list[LogReceipt]:
    """eth_getLogs over [from_block, to_block] in chunks, so no call exceeds RPC limits."""
    found: list[LogReceipt] = []
    for start in range(from_block, to_block + 1, chunk_blocks):
        params: FilterParams = {
            "address": Web3.to_checksum_address(address),
            "fromBlock": start,
            "toBlock": min(start + chunk_blocks - 1, to_block),
            "topics": topics,
        }
        found.extend(w3.eth.get_logs(params))
    return found


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


def address_topic(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


def uint_topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def hex_of(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


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
