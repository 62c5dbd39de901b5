"""One reader of the market's history: eth_getLogs in chunks, and a job rebuilt from them.

Every party (client views, the node's intake, replay, the arbiter) reads events the same
way, through `LogReader`: bounded block ranges, so no call exceeds what an RPC accepts.
Public RPCs cap ranges differently (Alchemy's free tier: 10 blocks; Infura: 10,000; QuickNode:
10,000; erigon/geth-style `--rpc.logs.maxrange`) and say so in their own words; when one
answers that a range is too large, the reader halves the range, retries the same blocks and
remembers the smaller range for every later query to that RPC.

`read_job` turns one job's events (every job event has the job id as its first indexed
topic) into a `JobHistory`: its request and spec, claims, single delivery or replica
commits and reveals, disputes and how it closed. Views, replay and the arbiter build on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.types import FilterParams, LogReceipt

from framecast.shared.chain.bindings import DisputeReason, Market
from framecast.shared.request import JobRequest

log = logging.getLogger(__name__)

#: Blocks per eth_getLogs call to start from (the network registry may set a smaller one).
DEFAULT_LOG_RANGE = 5_000

#: The words RPCs use to refuse a range or a result set as too large (case-insensitive):
#: Infura "query returned more than 10000 results" (-32005) and "range 1000000 exceeds
#: limit of 10000" (-32602); Alchemy "Log response size exceeded ..." and "... up to a 10
#: block range"; QuickNode "eth_getLogs is limited to a 10,000 range" (-32614, HTTP 413);
#: Tenderly "range N is bigger than range limit 2000"; erigon "block range too large, max
#: range: N"; others "block range is bigger than maxBlockRange", "block range too high",
#: "block range is larger than max block range", "exceed maximum block range".
RANGE_ERROR = re.compile(
    r"query returned more than|log response size exceeded|range too (large|high|wide)"
    r"|block range|max(imum)? (block )?range|maxblockrange|range limit|exceeds? (the )?limit"
    r"|is limited to a [\d,]+ range|too many (results|logs)",
    re.IGNORECASE,
)

#: Ranges learned per RPC endpoint in this process: a new reader starts where the last
#: one for that endpoint settled instead of being refused again.
_learned: dict[str, int] = {}


def is_range_error(exc: BaseException) -> bool:
    """True when ``exc`` is an RPC's refusal of an eth_getLogs range or result size.

    The connection maps library errors into the tree (`RpcError`, `RpcUnavailable` for an
    HTTP 413), keeping the library's exception as the cause: both are looked at.
    """
    cause = exc.__cause__
    return _is_range_refusal(exc) or (cause is not None and _is_range_refusal(cause))


def _is_range_refusal(exc: BaseException) -> bool:
    text = str(exc)
    response = getattr(exc, "response", None)  # requests.HTTPError carries the reply
    if response is not None:
        if getattr(response, "status_code", None) == 413:
            return True
        text += " " + str(getattr(response, "text", ""))
    rpc_response = getattr(exc, "rpc_response", None)
    if rpc_response:
        text += " " + str(rpc_response)
    return bool(RANGE_ERROR.search(text))


def _endpoint(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", None) or id(w3.provider))


def limit_log_range(w3: Web3, max_range: int) -> None:
    """Cap every reader of this endpoint at ``max_range`` blocks (a network's known limit).

    Readers are made deep inside read paths (quotes, history, job views); the network a
    process joined knows its RPC's limit once, so it is recorded here beside what readers
    learn from refusals, rather than threaded through every call.
    """
    key = _endpoint(w3)
    _learned[key] = min(max_range, _learned.get(key, max_range))


class LogReader:
    """eth_getLogs over any block span, in ranges the RPC accepts (adaptive, see above)."""

    def __init__(self, w3: Web3, *, max_range: int = DEFAULT_LOG_RANGE) -> None:
        if max_range < 1:
            raise ValueError(f"max_range must be ≥ 1 (got {max_range})")
        self.w3 = w3
        self.max_range = max_range
        self._key = _endpoint(w3)
        self.range = min(max_range, _learned.get(self._key, max_range))

    def logs(
        self, address: str, topics: list[Any], *, from_block: int, to_block: int
    ) -> list[LogReceipt]:
        """Every log of ``address`` matching ``topics`` in [from_block, to_block], in order."""
        found: list[LogReceipt] = []
        start = from_block
        checksum = Web3.to_checksum_address(address)
        while start <= to_block:
            end = min(start + self.range - 1, to_block)
            params: FilterParams = {
                "address": checksum,
                "fromBlock": start,
                "toBlock": end,
                "topics": topics,
            }
            try:
                batch = self.w3.eth.get_logs(params)
            except Exception as exc:  # web3 or transport: only range refusals are handled
                span = end - start + 1
                if span <= 1 or not is_range_error(exc):
                    raise
                self.range = max(1, span // 2)
                _learned[self._key] = self.range
                log.info(
                    "the RPC refused %d blocks of logs (%s); retrying with %d",
                    span,
                    str(exc)[:200],
                    self.range,
                )
                continue
            found.extend(batch)
            start = end + 1
        return found

    def events(
        self,
        market: Market,
        names: tuple[str, ...] | list[str],
        *,
        from_block: int,
        to_block: int | None = None,
        topics: list[Any] | None = None,
    ) -> list[Any]:
        """The market's events ``names`` (decoded), optionally filtered by the further
        indexed ``topics``, in chain order."""
        contract_events = market.contract.events
        by_topic = {
            getattr(contract_events, name).topic: getattr(contract_events, name) for name in names
        }
        end = self.w3.eth.block_number if to_block is None else to_block
        raw = self.logs(
            market.address,
            [list(by_topic), *(topics or [])],
            from_block=from_block,
            to_block=end,
        )
        return [by_topic[hex_of(entry["topics"][0])]().process_log(entry) for entry in raw]


def hex_of(value: Any) -> str:
    """``0x`` hex of bytes (or of a hex string with or without the prefix)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def uint_topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def address_topic(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


def _cid_text(raw: bytes) -> str:
    from framecast.shared.ipfs.cid import CID

    return str(CID.from_bytes(raw))


# --------------------------------------------------------------------------- job history
class Logged(BaseModel):
    """Where an event is on chain."""

    model_config = ConfigDict(frozen=True)

    block_number: int = Field(ge=0)
    tx_hash: str


class Submission(Logged):
    """`JobSubmitted`: the client's signed request and the spec bytes it signed."""

    request: JobRequest
    spec_hex: str = Field(description="The spec bytes as submitted (canonical JSON), hex.")

    def spec_bytes(self) -> bytes:
        return bytes.fromhex(self.spec_hex[2:])


class Claim(Logged):
    provider: str
    price: int = Field(ge=0)
    refund: int = Field(ge=0, description="maxPrice - price, returned to the client.")
    deliver_by: int = Field(ge=0, description="0 on a replica claim before the set fills.")


class Result(Logged):
    """A delivered result (`JobDelivered`) or a revealed replica (`ResultRevealed`)."""

    provider: str
    index: int | None = Field(None, description="Replica index; None for `JobDelivered`.")
    result_cid: str
    video_sha256: str
    frames_digest: str
    challenge_ends: int | None = Field(None, description="`JobDelivered` only.")


class Commit(Logged):
    provider: str
    index: int
    commitment: str


class Dispute(Logged):
    client: str
    reason: DisputeReason
    evidence: str
    resolve_by: int


class Settlement(Logged):
    provider: str
    payout: int


class Refund(Logged):
    """Money back to the client: `JobCancelled`, `JobRefunded`, `JobReleased`."""

    kind: str = Field(description="cancelled, refunded or released.")
    refund: int
    slashed: int = Field(0, description="Provider collateral (JobReleased: its penalty).")


class ReplicaDefault(Logged):
    provider: str
    index: int
    refund: int
    slashed: int


class Agreement(Logged):
    """`ReplicasAgreed`."""

    frames_digest: str
    challenge_ends: int


class JobHistory(BaseModel):
    """One job as its events tell it, in chain order (a later event of a kind wins)."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    submitted: Submission | None = None
    claims: list[Claim] = Field(default_factory=list)
    deliveries: list[Result] = Field(default_factory=list, description="JobDelivered.")
    commits: list[Commit] = Field(default_factory=list)
    reveals: list[Result] = Field(default_factory=list, description="ResultRevealed.")
    disputes: list[Dispute] = Field(default_factory=list)
    settlements: list[Settlement] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    defaults: list[ReplicaDefault] = Field(default_factory=list)
    commit_by: int | None = Field(None, description="ReplicasFilled: the commit deadline.")
    agreement: Agreement | None = None

    @property
    def replicated(self) -> bool:
        return self.submitted is not None and self.submitted.request.replicas > 1

    @property
    def claim(self) -> Claim | None:
        return self.claims[-1] if self.claims else None

    @property
    def delivery(self) -> Result | None:
        """The (last) `JobDelivered` of a single-provider job."""
        return self.deliveries[-1] if self.deliveries else None

    @property
    def dispute(self) -> Dispute | None:
        return self.disputes[-1] if self.disputes else None

    def reveal(self, index: int) -> Result | None:
        """Replica ``index``'s (last) reveal."""
        found = [r for r in self.reveals if r.index == index]
        return found[-1] if found else None

    def results(self) -> list[Result]:
        """What was delivered: each replica's last reveal (index order), or the delivery."""
        if not self.replicated:
            return self.deliveries[-1:]
        by_index = {r.index: r for r in self.reveals}
        return [by_index[i] for i in sorted(i for i in by_index if i is not None)]

    @property
    def refunded(self) -> int:
        """Escrow returned to the client: claim surplus, cancel, refunds, releases."""
        return sum(c.refund for c in self.claims) + sum(r.refund for r in self.refunds)

    @property
    def slashed(self) -> int:
        return sum(r.slashed for r in self.refunds)


#: Every event that carries a job id as its first indexed topic.
JOB_EVENTS = (
    "JobSubmitted",
    "JobClaimed",
    "JobDelivered",
    "JobDisputed",
    "JobSettled",
    "JobCancelled",
    "JobRefunded",
    "JobReleased",
    "ReplicasFilled",
    "ResultCommitted",
    "ResultRevealed",
    "ReplicasAgreed",
    "ReplicaDefaulted",
)


def read_job(
    market: Market, job_id: int, *, from_block: int, reader: LogReader | None = None
) -> JobHistory:
    """Rebuild job ``job_id`` from the market's events since ``from_block``."""
    reader = reader or LogReader(market.w3)
    events = reader.events(market, JOB_EVENTS, from_block=from_block, topics=[uint_topic(job_id)])
    return job_history(job_id, events)


def job_history(job_id: int, events: Iterable[Mapping[str, Any]]) -> JobHistory:
    """A `JobHistory` from job ``job_id``'s decoded events in chain order (web3's decoded
    logs, or the same shape rebuilt from an index: ``event``, ``args``, ``blockNumber``,
    ``transactionHash``); events of other kinds are skipped."""
    fields: dict[str, Any] = {
        "claims": [],
        "deliveries": [],
        "commits": [],
        "reveals": [],
        "disputes": [],
        "settlements": [],
        "refunds": [],
        "defaults": [],
    }
    for event in events:
        name, args = str(event["event"]), event["args"]
        where = {
            "block_number": int(event["blockNumber"]),
            "tx_hash": hex_of(event["transactionHash"]),
        }
        if name == "JobSubmitted":
            fields["submitted"] = Submission(
                **where, request=JobRequest.from_event(args), spec_hex=hex_of(bytes(args["spec"]))
            )
        elif name == "JobClaimed":
            fields["claims"].append(
                Claim(
                    **where,
                    provider=str(args["provider"]),
                    price=int(args["price"]),
                    refund=int(args["refund"]),
                    deliver_by=int(args["deliverBy"]),
                )
            )
        elif name in ("JobDelivered", "ResultRevealed"):
            result = Result(
                **where,
                provider=str(args["provider"]),
                index=int(args["index"]) if name == "ResultRevealed" else None,
                result_cid=_cid_text(bytes(args["resultCid"])),
                video_sha256=hex_of(args["videoSha256"]),
                frames_digest=hex_of(args["framesDigest"]),
                challenge_ends=int(args["challengeEnds"]) if name == "JobDelivered" else None,
            )
            fields["deliveries" if name == "JobDelivered" else "reveals"].append(result)
        elif name == "ResultCommitted":
            fields["commits"].append(
                Commit(
                    **where,
                    provider=str(args["provider"]),
                    index=int(args["index"]),
                    commitment=hex_of(args["commitment"]),
                )
            )
        elif name == "JobDisputed":
            fields["disputes"].append(
                Dispute(
                    **where,
                    client=str(args["client"]),
                    reason=DisputeReason(int(args["reason"])),
                    evidence=hex_of(args["evidence"]),
                    resolve_by=int(args["resolveBy"]),
                )
            )
        elif name == "JobSettled":
            fields["settlements"].append(
                Settlement(**where, provider=str(args["provider"]), payout=int(args["payout"]))
            )
        elif name == "JobCancelled":
            fields["refunds"].append(Refund(**where, kind="cancelled", refund=int(args["refund"])))
        elif name == "JobRefunded":
            fields["refunds"].append(
                Refund(
                    **where,
                    kind="refunded",
                    refund=int(args["refund"]),
                    slashed=int(args["slashed"]),
                )
            )
        elif name == "JobReleased":
            fields["refunds"].append(
                Refund(
                    **where,
                    kind="released",
                    refund=int(args["refund"]),
                    slashed=int(args["penalty"]),
                )
            )
        elif name == "ReplicasFilled":
            fields["commit_by"] = int(args["commitBy"])
        elif name == "ReplicasAgreed":
            fields["agreement"] = Agreement(
                **where,
                frames_digest=hex_of(args["framesDigest"]),
                challenge_ends=int(args["challengeEnds"]),
            )
        elif name == "ReplicaDefaulted":
            fields["defaults"].append(
                ReplicaDefault(
                    **where,
                    provider=str(args["provider"]),
                    index=int(args["index"]),
                    refund=int(args["refund"]),
                    slashed=int(args["slashed"]),
                )
            )
    return JobHistory(job_id=job_id, **fields)


def provider_uris(
    market: Market, *, from_block: int, reader: LogReader | None = None
) -> dict[str, str]:
    """Each provider's latest metadata URI (`ProviderRegistered` / `ProviderMetadataUpdated`)."""
    reader = reader or LogReader(market.w3)
    latest: dict[str, str] = {}
    for event in reader.events(
        market, ("ProviderRegistered", "ProviderMetadataUpdated"), from_block=from_block
    ):
        # Logs arrive in chain order: a later URI replaces an earlier one.
        latest[str(event["args"]["provider"])] = str(event["args"]["metadataURI"])
    return latest
