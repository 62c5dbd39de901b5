"""Event intake: backfill `JobSubmitted` from the last processed block in bounded chunks,
then follow new blocks, acting only on blocks buried under `confirmations`.

Reorgs: the hash of the last processed block is checked on every poll. When the chain no
longer has it, the cursor walks back through recorded hashes to the newest block the
chain still agrees with; jobs seen after it are dropped (if not yet acted on) and the rest
are handed back for a chain re-check.

Replicated requests (k ≥ 2 providers) are recorded with their `replicas` and `perceptual`
fields; the agent serves them by commit-reveal (see `framecast.node.agent`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound

from framecast.node.state import JobRecord, StateStore
from framecast.shared.chain.bindings import Market
from framecast.shared.chain.history import LogReader
from framecast.shared.errors import SpecError
from framecast.shared.request import JobRequest
from framecast.shared.spec import decode_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    """What one poll found."""

    new_jobs: list[int]
    reorged: list[int]
    head: int
    safe: int


class EventIntake:
    """Turns confirmed `JobSubmitted` logs into `seen` (or `skipped`) job records."""

    def __init__(
        self,
        w3: Web3,
        market: Market,
        state: StateStore,
        *,
        start_block: int,
        confirmations: int,
        chunk: int,
    ) -> None:
        self.w3 = w3
        self.market = market
        self.state = state
        self.start_block = start_block
        self.confirmations = confirmations
        self.chunk = chunk
        # The one log reader: it shrinks its range when the RPC refuses `chunk` blocks.
        self.reader = LogReader(w3, max_range=chunk)

    def poll(self) -> PollResult:
        """Process every confirmed block not processed yet (in chunks); check for reorgs."""
        reorged = self._check_reorg()
        head = self.w3.eth.block_number
        safe = head - self.confirmations
        new: list[int] = []
        cursor = self.state.cursor()
        start = cursor[0] + 1 if cursor else self.start_block
        while start <= safe:
            end = min(safe, start + self.reader.range - 1)
            logs = self.reader.events(
                self.market, ("JobSubmitted",), from_block=start, to_block=end
            )
            for entry in logs:
                job_id = self._record(entry)
                if job_id is not None:
                    new.append(job_id)
            end_hash = self._block_hash(end)
            if end_hash is None:
                break  # the block vanished under us: the next poll's reorg check rewinds
            self.state.advance(end, end_hash)
            start = end + 1
        return PollResult(new, reorged, head, safe)

    def _block_hash(self, number: int) -> str | None:
        """The chain's hash of block ``number``; None when the chain has no such block
        (a reorg onto a shorter chain). Transport errors propagate: an RPC that does not
        answer says nothing about the chain, and the agent's step backs off and retries."""
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return HexBytes(block["hash"]).to_0x_hex()

    def _check_reorg(self) -> list[int]:
        cursor = self.state.cursor()
        if cursor is None:
            return []
        number, known = cursor
        current = self._block_hash(number)
        if current == known:
            return []
        fork_block, fork_hash = self.start_block - 1, ""
        head = self.w3.eth.block_number
        for candidate, candidate_hash in self.state.known_blocks():
            if candidate > head:
                continue
            if self._block_hash(candidate) == candidate_hash:
                fork_block, fork_hash = candidate, candidate_hash
                break
        log.warning(
            "reorg: block %s changed (%s → %s); rewinding to %s",
            number,
            known,
            current or "gone",
            fork_block,
        )
        return self.state.rewind(fork_block, fork_hash)

    def _record(self, entry: Any) -> int | None:
        args = entry["args"]
        job_id = int(args["jobId"])
        spec_bytes = bytes(args["spec"])
        model: str | None = None
        reason: str | None = None
        try:
            spec = decode_spec(spec_bytes)
            model = spec.model
            if spec.spec_hash() != bytes(args["specHash"]):
                reason = "spec hash in the event does not match the spec"
            elif spec.model_id() != bytes(args["modelId"]):
                reason = "modelId does not match the spec's model"
        except SpecError as exc:
            reason = f"malformed spec: {exc}"
        request = JobRequest.from_event(args)
        now = time.time()
        record = JobRecord(
            job_id=job_id,
            state="skipped" if reason else "seen",
            block_number=int(entry["blockNumber"]),
            block_hash=HexBytes(entry["blockHash"]).to_0x_hex(),
            client=args["client"],
            model=model,
            spec=spec_bytes,
            max_price=request.max_price,
            claim_deadline=request.claim_deadline,
            delivery_window=request.delivery_window,
            replicas=request.replicas,
            perceptual=request.perceptual,
            request_digest="0x" + request.digest(self.market.domain()).hex(),
            reason=reason,
            seen_at=now,
            updated_at=now,
        )
        if reason:
            log.info("job %s skipped: %s", job_id, reason)
        return job_id if self.state.add_seen(record) else None
