"""The explorer's indexer: the market's events into the index database (client/explorer/store.py).

It reads every market event through the shared `LogReader` (bounded, adaptive ranges),
from the deployment block on, in steps of ``step_blocks`` so the feed fills while a long
history is still being read, then follows new blocks. Each step is one transaction: the
events, their blocks (hash and timestamp), the jobs they touch and the cursor commit
together, so a restart resumes at the last committed block and never counts twice.

Reorgs: the cursor block's hash is compared with the chain's on every poll. When they
differ, the indexer walks back over the blocks it stored until one agrees, deletes what it
indexed above that block and recomputes the jobs those events touched from the events that
remain (the same `apply_event` that built them), then reads forward again.

A failing RPC does not stop the indexer: it records since when it is stale (the pages
show "stale since …" with what they last knew) and retries each poll.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from web3 import Web3

from framecast.client.explorer.store import Store
from framecast.shared.chain.bindings import JobState, Market
from framecast.shared.chain.history import LogReader, hex_of
from framecast.shared.errors import ChainError, FramecastError
from framecast.shared.spec import decode_spec

log = logging.getLogger(__name__)

#: Every event the market emits (IJobMarket); all are indexed, even those no page shows
#: yet, so a new page needs no re-read of the chain.
MARKET_EVENTS = (
    "Deposited",
    "Withdrawn",
    "ProviderRegistered",
    "ProviderMetadataUpdated",
    "BondAdded",
    "ExitRequested",
    "ExitCancelled",
    "BondWithdrawn",
    "JobSubmitted",
    "JobCancelled",
    "JobClaimed",
    "JobDelivered",
    "JobDisputed",
    "JobResolved",
    "JobSettled",
    "JobRefunded",
    "JobReleased",
    "DisputeBondReturned",
    "NonceInvalidated",
    "ProtocolFeeChanged",
    "FeesWithdrawn",
    "ReplicasFilled",
    "ResultCommitted",
    "ResultRevealed",
    "ReplicasAgreed",
    "ReplicaDefaulted",
    "ReplicasResolved",
)

#: Prompts longer than this are cut in the index (the spec allows 2,000 characters; a
#: hostile spec that is not canonical JSON is kept out of the feed's rows).
MAX_PROMPT_CHARS = 2000


# --------------------------------------------------------------------------- arguments
def args_to_json(args: Mapping[str, Any]) -> str:
    """An event's decoded arguments as JSON text: bytes as 0x hex, ints as numbers."""
    return json.dumps(
        {k: hex_of(v) if isinstance(v, bytes | bytearray) else v for k, v in args.items()},
        separators=(",", ":"),
    )


class ArgTypes:
    """The ABI types of each market event's arguments, to rebuild bytes from stored hex."""

    def __init__(self, market: Market) -> None:
        self._bytes: dict[str, set[str]] = {}
        for item in market.contract.abi:
            entry = cast(dict[str, Any], item)
            if entry.get("type") == "event":
                self._bytes[entry["name"]] = {
                    i["name"] for i in entry["inputs"] if str(i["type"]).startswith("bytes")
                }

    def restore(self, name: str, stored: str) -> dict[str, Any]:
        args: dict[str, Any] = json.loads(stored)
        for key in self._bytes.get(name, ()):
            if isinstance(args.get(key), str):
                args[key] = bytes.fromhex(args[key][2:])
        return args


class EventDecoder:
    """The market's logs decoded straight from the ABI with eth_abi.

    web3's ``process_log`` costs ~7 ms a log here (it rebuilds and validates the event's
    ABI on every call), which bounded catch-up at ~300 events/s; this keeps one decoder per
    topic and yields the same shape (``event``, ``args`` with checksummed addresses and
    bytes, ``blockNumber``, ``logIndex``, ``transactionHash``, ``blockHash``), which
    tests/explorer/test_indexer.py checks against web3's through `read_job`.
    """

    def __init__(self, market: Market) -> None:
        from eth_utils.abi import event_abi_to_log_topic

        self.topics: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        for item in market.contract.abi:
            entry = cast(dict[str, Any], item)
            if entry.get("type") == "event" and entry["name"] in MARKET_EVENTS:
                topic = hex_of(event_abi_to_log_topic(cast(Any, entry)))
                self.topics[topic] = (entry["name"], list(entry["inputs"]))

    def decode(self, log: Mapping[str, Any]) -> dict[str, Any]:
        from eth_abi.abi import decode

        name, inputs = self.topics[hex_of(log["topics"][0])]
        indexed = [i for i in inputs if i["indexed"]]
        plain = [i for i in inputs if not i["indexed"]]
        values: dict[str, Any] = {}
        for item, topic in zip(indexed, log["topics"][1:], strict=True):
            values[item["name"]] = decode([item["type"]], bytes(topic))[0]
        data = log["data"]
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        for item, value in zip(plain, decode([i["type"] for i in plain], raw), strict=True):
            values[item["name"]] = value
        args = {}
        for item in inputs:
            value = values[item["name"]]
            if item["type"] == "address":
                value = Web3.to_checksum_address(value)
            args[item["name"]] = value
        return {
            "event": name,
            "args": args,
            "blockNumber": int(log["blockNumber"]),
            "logIndex": int(log["logIndex"]),
            "transactionHash": log["transactionHash"],
            "blockHash": log["blockHash"],
        }


def _address_of(name: str, args: Mapping[str, Any]) -> str | None:
    """The party an event is about (provider, client or account), lower-case, for lookups."""
    for key in ("provider", "client", "account"):
        if key in args:
            return str(args[key]).lower()
    return None


# --------------------------------------------------------------------------- job rows
_STATE_AFTER = {
    "JobSubmitted": JobState.OPEN,
    "JobClaimed": JobState.CLAIMED,
    "JobDelivered": JobState.DELIVERED,
    "ReplicasAgreed": JobState.DELIVERED,
    "JobDisputed": JobState.DISPUTED,
    "JobSettled": JobState.SETTLED,
    "JobCancelled": JobState.CANCELLED,
    "JobReleased": JobState.RELEASED,
    "ResultRevealed": JobState.REVEALING,
}


def _prompt_and_model(spec: bytes) -> tuple[str | None, str | None]:
    """The prompt and model of a spec; a spec that does not decode still shows its prompt
    when it is JSON (any client can submit any bytes: the market checks only their hash)."""
    try:
        decoded = decode_spec(spec)
        return decoded.prompt, decoded.model
    except FramecastError:
        pass
    try:
        data = json.loads(spec.decode("utf-8", errors="replace"))
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    prompt, model = data.get("prompt"), data.get("model")
    return (
        str(prompt)[:MAX_PROMPT_CHARS] if prompt is not None else None,
        str(model)[:128] if model is not None else None,
    )


def apply_event(
    row: dict[str, Any] | None, name: str, args: Mapping[str, Any], block: int
) -> dict[str, Any] | None:
    """A job's summary row after event ``name`` (None until its `JobSubmitted`)."""
    if name == "JobSubmitted":
        prompt, model = _prompt_and_model(bytes(args["spec"]))
        return {
            "job_id": int(args["jobId"]),
            "client": str(args["client"]),
            "model": model,
            "prompt": prompt,
            "state": JobState.OPEN.label,
            "max_price": str(int(args["maxPrice"])),
            "price": None,
            "provider": None,
            "replicas": int(args["replicas"]),
            "result_cid": None,
            "video_sha256": None,
            "submitted_block": block,
            "claimed_block": None,
            "delivered_block": None,
            "updated_block": block,
        }
    if row is None:
        return None
    row = dict(row)
    row["updated_block"] = block
    replicated = int(row["replicas"]) > 1
    if name == "JobClaimed":
        row["claimed_block"] = row["claimed_block"] or block
        if not replicated:
            row["provider"] = str(args["provider"])
            row["price"] = str(int(args["price"]))
        else:
            # A replica claim: the job stays open until the set fills.
            row["price"] = str(int(row["price"] or 0) + int(args["price"]))
            row["state"] = JobState.CLAIMED.label if int(args["deliverBy"]) else JobState.OPEN.label
            return row
    if name in ("JobDelivered", "ResultRevealed") and (
        row["result_cid"] is None or name == "JobDelivered"
    ):
        from framecast.shared.ipfs.cid import CID

        row["result_cid"] = str(CID.from_bytes(bytes(args["resultCid"])))
        row["video_sha256"] = hex_of(args["videoSha256"])
        if name == "ResultRevealed" and row["provider"] is None:
            row["provider"] = str(args["provider"])
    if name in ("JobDelivered", "ReplicasAgreed"):
        row["delivered_block"] = block
    if name == "JobRefunded":
        row["state"] = JobState(int(args["state"])).label
    elif name == "JobResolved":
        row["state"] = JobState.REJECTED.label if bool(args["providerAtFault"]) else row["state"]
    elif name in _STATE_AFTER:
        row["state"] = _STATE_AFTER[name].label
    return row


# --------------------------------------------------------------------------- the indexer
@dataclass
class Status:
    """What the pages say about the index's freshness."""

    head: int | None = None
    cursor: int | None = None
    last_ok: float | None = None
    stale_since: float | None = None
    error: str | None = None
    reorgs: int = 0
    events: int = 0
    changed: list[int] = field(default_factory=list)


class Indexer:
    """Follows the market's events into a `Store` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        w3: Web3,
        market: Market,
        *,
        deployed_block: int,
        confirmations: int = 0,
        step_blocks: int = 2_000,
        max_range: int | None = None,
    ) -> None:
        self.store = store
        self.w3 = w3
        self.market = market
        self.deployed_block = deployed_block
        self.confirmations = confirmations
        self.step_blocks = step_blocks
        self.reader = LogReader(w3, max_range=max_range) if max_range else LogReader(w3)
        self.types = ArgTypes(market)
        self.decoder = EventDecoder(market)
        self.status = Status()
        self._listeners: list[Callable[[list[int]], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_change(self, listener: Callable[[list[int]], None]) -> None:
        """Call ``listener(job_ids)`` after each committed step that changed jobs."""
        self._listeners.append(listener)

    # -- one poll
    def poll(self) -> int:
        """Index what the chain has past the cursor, up to ``step_blocks`` at a time until
        caught up; returns how many events were added. Raises ChainError when the RPC fails."""
        added = 0
        head = int(self.w3.eth.block_number) - self.confirmations
        self.status.head = head
        self._check_reorg()
        while True:
            cursor = self.store.cursor()
            start = cursor[0] + 1 if cursor else self.deployed_block
            if start > head:
                break
            end = min(head, start + self.step_blocks - 1)
            added += self._step(start, end)
        now = time.time()
        self.status.last_ok, self.status.stale_since, self.status.error = now, None, None
        return added

    def _step(self, start: int, end: int) -> int:
        events = [
            self.decoder.decode(entry)
            for entry in self.reader.logs(
                self.market.address, [list(self.decoder.topics)], from_block=start, to_block=end
            )
        ]
        hashes = {int(e["blockNumber"]): hex_of(e["blockHash"]) for e in events}
        end_block = self.w3.eth.get_block(end)
        hashes[end] = hex_of(end_block["hash"])
        times = self._block_times(sorted(hashes), known={end: int(end_block["timestamp"])})
        changed: dict[int, dict[str, Any] | None] = {}
        with self.store.transaction():
            self.store.executemany(
                "INSERT INTO blocks (number, hash, time) VALUES (?, ?, ?) "
                "ON CONFLICT (number) DO UPDATE SET hash = excluded.hash, time = excluded.time",
                [(n, h, times[n]) for n, h in sorted(hashes.items())],
            )
            rows = []
            for event in events:
                name, args = str(event["event"]), dict(event["args"])
                job_id = int(args["jobId"]) if "jobId" in args else None
                rows.append(
                    (
                        int(event["blockNumber"]),
                        int(event["logIndex"]),
                        hex_of(event["transactionHash"]),
                        name,
                        job_id,
                        _address_of(name, args),
                        args_to_json(args),
                    )
                )
                if job_id is not None:
                    if job_id not in changed:
                        found = self.store.job_rows("job_id = ?", (job_id,))
                        changed[job_id] = found[0] if found else None
                    changed[job_id] = apply_event(
                        changed[job_id], name, args, int(event["blockNumber"])
                    )
            self.store.executemany(
                "INSERT INTO events (block, log_index, tx_hash, name, job_id, address, args) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (block, log_index) DO NOTHING",
                rows,
            )
            for row in changed.values():
                if row is not None:
                    self.store.put_job(row)
            self.store.set_meta("cursor_block", str(end))
            self.store.set_meta("cursor_hash", hashes[end])
        self.status.cursor = end
        self.status.events += len(rows)
        self._notify([j for j, r in changed.items() if r is not None])
        return len(rows)

    def _block_times(self, numbers: list[int], known: dict[int, int]) -> dict[int, int]:
        """Timestamps of ``numbers``, in JSON-RPC batches (one round trip per 200 blocks)."""
        times = dict(known)
        wanted = [n for n in numbers if n not in times]
        for offset in range(0, len(wanted), 200):
            chunk = wanted[offset : offset + 200]
            try:
                with self.w3.batch_requests() as batch:
                    for number in chunk:
                        batch.add(self.w3.eth.get_block(number))
                    blocks = batch.execute()
                for number, block in zip(chunk, blocks, strict=True):
                    times[number] = int(cast(Any, block)["timestamp"])
            except ChainError:
                raise
            except Exception:  # an RPC without batch support: one call per block
                for number in chunk:
                    times[number] = int(self.w3.eth.get_block(number)["timestamp"])
        return times

    def _check_reorg(self) -> None:
        cursor = self.store.cursor()
        if cursor is None:
            return
        number, stored = cursor
        if hex_of(self.w3.eth.get_block(number)["hash"]) == stored:
            return
        fork = self._fork_point(number)
        log.warning("reorg: block %d changed; rewinding the index to block %d", number, fork)
        self.status.reorgs += 1
        self.rewind(fork)

    def _fork_point(self, below: int) -> int:
        """The newest stored block the chain still agrees with (deployment − 1 if none)."""
        for number, stored in self.store.query(
            "SELECT number, hash FROM blocks WHERE number < ? ORDER BY number DESC", (below,)
        ):
            try:
                block = self.w3.eth.get_block(int(number))
            except ChainError:
                raise
            except Exception:  # a block the chain no longer has (rolled back past it)
                continue
            if hex_of(block["hash"]) == stored:
                return int(number)
        return self.deployed_block - 1

    def rewind(self, fork: int) -> None:
        """Forget everything above block ``fork`` and recompute the jobs it touched."""
        with self.store.transaction():
            touched = [
                int(r[0])
                for r in self.store.query(
                    "SELECT DISTINCT job_id FROM events WHERE block > ? AND job_id IS NOT NULL",
                    (fork,),
                )
            ]
            self.store.execute("DELETE FROM events WHERE block > ?", (fork,))
            self.store.execute("DELETE FROM blocks WHERE number > ?", (fork,))
            for job_id in touched:
                self.store.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
                row: dict[str, Any] | None = None
                for name, block, args in self.store.query(
                    "SELECT name, block, args FROM events WHERE job_id = ? "
                    "ORDER BY block, log_index",
                    (job_id,),
                ):
                    row = apply_event(row, str(name), self.types.restore(name, args), int(block))
                if row is not None:
                    self.store.put_job(row)
            if fork < self.deployed_block:
                self.store.execute("DELETE FROM meta WHERE key IN ('cursor_block', 'cursor_hash')")
            else:
                stored = self.store.query("SELECT hash FROM blocks WHERE number = ?", (fork,))
                self.store.set_meta("cursor_block", str(fork))
                self.store.set_meta("cursor_hash", str(stored[0][0]))
        self.status.cursor = fork
        self._notify(touched)

    def _notify(self, job_ids: list[int]) -> None:
        if not job_ids:
            return
        for listener in self._listeners:
            listener(job_ids)

    # -- the follow loop
    def start(self, poll_s: float = 1.0) -> Indexer:
        self._thread = threading.Thread(
            target=self._run, args=(poll_s,), name="explorer-indexer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_once(self) -> int:
        """One poll that records a failing RPC as staleness instead of raising (the pages
        then say since when they are stale); index database errors still raise."""
        try:
            return self.poll()
        except ChainError as exc:
            if self.status.stale_since is None:
                self.status.stale_since = time.time()
            self.status.error = str(exc).splitlines()[0][:300]
            log.warning("explorer indexer: %s", self.status.error)
            return 0

    def _run(self, poll_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except FramecastError as exc:  # the index database: say so, keep trying
                self.status.stale_since = self.status.stale_since or time.time()
                self.status.error = str(exc).splitlines()[0][:300]
                log.error("explorer index database: %s", self.status.error)
            self._stop.wait(poll_s)


def job_events(store: Store, types: ArgTypes, job_id: int) -> list[dict[str, Any]]:
    """Job ``job_id``'s stored events in chain order, shaped like web3's decoded logs
    (what `framecast.shared.chain.history.job_history` reads), with their block times."""
    out = []
    for block, log_index, tx_hash, name, args, stamp in store.query(
        "SELECT e.block, e.log_index, e.tx_hash, e.name, e.args, b.time FROM events e "
        "LEFT JOIN blocks b ON b.number = e.block WHERE e.job_id = ? "
        "ORDER BY e.block, e.log_index",
        (job_id,),
    ):
        out.append(
            {
                "event": str(name),
                "args": types.restore(str(name), str(args)),
                "blockNumber": int(block),
                "logIndex": int(log_index),
                "transactionHash": str(tx_hash),
                "time": int(stamp) if stamp is not None else None,
            }
        )
    return out


def provider_uris(store: Store) -> dict[str, str]:
    """Each provider's latest metadata URI from the index (lower-case address keys)."""
    latest: dict[str, str] = {}
    for address, args in store.query(
        "SELECT address, args FROM events WHERE name IN "
        "('ProviderRegistered', 'ProviderMetadataUpdated') ORDER BY block, log_index"
    ):
        latest[str(address)] = str(json.loads(args)["metadataURI"])
    return latest
