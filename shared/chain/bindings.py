"""Typed bindings for `Credits` and `JobMarket` over web3.py.

Reads return pydantic models; writes go through a `TxSender` and return its `TxReceipt`
(or the value a caller needs, like a new job id). Method names follow the contract in
snake case so the Solidity NatSpec documents them too.
"""

from __future__ import annotations

import time
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from framecast.shared.chain import reverts
from framecast.shared.chain.artifacts import load_artifact
from framecast.shared.chain.connection import guarded
from framecast.shared.chain.sender import TxReceipt, TxSender
from framecast.shared.deployment import Deployment, MarketParams
from framecast.shared.errors import ChainError, ConfigError, JobNotFound, TransactionFailed
from framecast.shared.request import Domain, JobRequest


class JobState(IntEnum):
    """Mirror of `IJobMarket.JobState`: the one list of job states in Python (names and order
    are checked against the contract by tests/chain/test_job_state.py)."""

    NONE = 0
    OPEN = 1
    CLAIMED = 2
    DELIVERED = 3
    DISPUTED = 4
    SETTLED = 5
    CANCELLED = 6
    EXPIRED = 7
    DEFAULTED = 8
    REJECTED = 9
    RELEASED = 10
    REVEALING = 11

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def solidity_name(self) -> str:
        """The member's name in the contract (`Open`): every state is one word."""
        return self.name.capitalize()


class DisputeReason(IntEnum):
    """Mirror of `IJobMarket.DisputeReason`."""

    HASH_MISMATCH = 0
    SPEC_MISMATCH = 1
    REPLAY_MISMATCH = 2
    NOT_RETRIEVABLE = 3
    REPLICA_MISMATCH = 4


#: `Job.provider` of a replicated job (its providers are in `get_replicas`).
REPLICATED_PROVIDER = "0x0000000000000000000000000000000000000001"


class JobView(BaseModel):
    """A job as stored on chain (see `IJobMarket.Job` for what `deadline` and `amount` mean
    in each state)."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    client: str
    deadline: int
    state: JobState
    fee_bps: int
    delivery_window: int
    provider: str
    amount: int

    @property
    def replicated(self) -> bool:
        """A job with replicas ≥ 2 (`provider` is then a marker, `amount` the per-replica max)."""
        return self.provider == REPLICATED_PROVIDER


def job_not_found(job_id: int, market: str) -> JobNotFound:
    """The one message for a job id the market never saw (`status`, `cancel`, `dispute`...)."""
    return JobNotFound(
        f"job {job_id} does not exist on the market at {market}",
        fix="list jobs with `framecast jobs` (is --network the right one?)",
    )


def _bits(mask: int) -> frozenset[int]:
    return frozenset(i for i in range(8) if mask >> i & 1)


class ReplicaSetView(BaseModel):
    """Replica bookkeeping of a job (`IJobMarket.ReplicaSet`); all zero for a single job."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    replicas: int = Field(description="Providers the request asked for (0: single job).")
    claims: int = Field(description="Replicas claimed so far.")
    commits: int = Field(description="Replicas that committed.")
    reveals: int = Field(description="Replicas that revealed a matching result.")
    committed: frozenset[int] = Field(description="Indexes of replicas that committed.")
    revealed: frozenset[int] = Field(description="Indexes of replicas that revealed.")
    settled: frozenset[int] = Field(description="Indexes of replicas closed out.")
    perceptual: bool = Field(description="Perceptual agreement attested by the arbiter suffices.")
    bonded: bool = Field(description="The client disputed with a bond (not an automatic dispute).")
    escrow: int = Field(description="Escrowed prices still held (dispute bond excluded).")


class ReplicaView(BaseModel):
    """One replica of a replicated job, with its progress flags."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    index: int = Field(description="Claim order, 0-based; bit `index` of the fault mask.")
    provider: str
    price: int
    commitment: bytes
    frames_digest: bytes = Field(description="Revealed frames digest (zero until revealed).")
    committed: bool
    revealed: bool
    settled: bool


class ProviderView(BaseModel):
    """A provider's bond record."""

    model_config = ConfigDict(frozen=True)

    address: str
    bond: int
    locked: int
    exit_available_at: int
    registered: bool

    @property
    def unlocked(self) -> int:
        return self.bond - self.locked


def _contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


class _Binding:
    """Every call goes through `guarded`: a failure is the tree's error naming the RPC URL
    and the contract function (and the job, for `_job_read` / `_job_send`)."""

    def __init__(self, w3: Web3, name: str, address: str, sender: TxSender | None) -> None:
        self.name = name
        self.w3 = w3
        self.contract = _contract(w3, name, address)
        self.address = self.contract.address
        self._sender = sender

    @property
    def sender(self) -> TxSender:
        if self._sender is None:
            raise ConfigError(
                f"{type(self).__name__} binding has no wallet to send from",
                fix="unlock a wallet (e.g. --wallet NAME) for commands that send transactions",
            )
        return self._sender

    def _send(self, fn_name: str, *args: Any, what: str | None = None, **context: Any) -> TxReceipt:
        sender = self.sender
        with guarded(self.w3, what or f"{self.name}.{fn_name}", **context):
            return sender.send(getattr(self.contract.functions, fn_name)(*args))

    def _read(self, fn_name: str, *args: Any, what: str | None = None, **context: Any) -> Any:
        with guarded(self.w3, what or f"{self.name}.{fn_name}", **context):
            fn = getattr(self.contract.functions, fn_name)(*args)
            if self._sender is not None:
                return self._sender.call(fn)
            return fn.call()

    def _job_send(self, fn_name: str, job_id: int, *args: Any) -> TxReceipt:
        what = f"{self.name}.{fn_name} for job {job_id}"
        try:
            return self._send(fn_name, job_id, *args, what=what, job_id=job_id)
        except reverts.InvalidJobState as exc:
            # The contract reports an unknown id as "state None": say what `status` says.
            if exc.error_args.get("state") == JobState.NONE:
                raise job_not_found(job_id, self.address) from None
            raise

    def _job_read(self, fn_name: str, job_id: int, *args: Any) -> Any:
        what = f"{self.name}.{fn_name} for job {job_id}"
        return self._read(fn_name, job_id, *args, what=what, job_id=job_id)

    def _chain_id(self) -> int:
        with guarded(self.w3, "eth_chainId"):
            return int(self.w3.eth.chain_id)

    def events(self, receipt: TxReceipt, event: str) -> list[Any]:
        """Decoded `event` logs of this contract in a receipt."""
        return list(
            getattr(self.contract.events, event)().process_receipt(receipt.raw, errors=DISCARD)
        )


class Credits(_Binding):
    """The credits token."""

    def __init__(self, w3: Web3, address: str, sender: TxSender | None = None) -> None:
        super().__init__(w3, "Credits", address, sender)

    def balance_of(self, account: str) -> int:
        return int(self._read("balanceOf", Web3.to_checksum_address(account)))

    def faucet(self) -> TxReceipt:
        return self._send("faucet")

    def faucet_available_at(self, account: str) -> int:
        return int(self._read("faucetAvailableAt", Web3.to_checksum_address(account)))

    def drip_amount(self) -> int:
        return int(self._read("dripAmount"))

    def mint(self, to: str, amount: int) -> TxReceipt:
        return self._send("mint", Web3.to_checksum_address(to), amount)

    def approve(self, spender: str, amount: int) -> TxReceipt:
        return self._send("approve", Web3.to_checksum_address(spender), amount)

    def transfer(self, to: str, amount: int) -> TxReceipt:
        return self._send("transfer", Web3.to_checksum_address(to), amount)

    def permit_signature(
        self, owner: LocalAccount, spender: str, value: int, deadline: int
    ) -> tuple[int, bytes, bytes]:
        """EIP-2612 permit (v, r, s) signed by ``owner`` for ``spender``."""
        nonce = int(self._read("nonces", owner.address))
        name = str(self._read("name"))
        signed = owner.sign_typed_data(
            domain_data={
                "name": name,
                "version": "1",
                "chainId": self._chain_id(),
                "verifyingContract": self.address,
            },
            message_types={
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ]
            },
            message_data={
                "owner": owner.address,
                "spender": Web3.to_checksum_address(spender),
                "value": value,
                "nonce": nonce,
                "deadline": deadline,
            },
        )
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


class Market(_Binding):
    """The JobMarket registry and escrow."""

    def __init__(self, w3: Web3, address: str, sender: TxSender | None = None) -> None:
        super().__init__(w3, "JobMarket", address, sender)

    # -- views
    def domain(self) -> Domain:
        return Domain(chain_id=self._chain_id(), market=self.address)

    def get_job(self, job_id: int) -> JobView:
        raw = self._job_read("getJob", job_id)
        return JobView(
            job_id=job_id,
            client=raw[0],
            deadline=raw[1],
            state=JobState(raw[2]),
            fee_bps=raw[3],
            delivery_window=raw[4],
            provider=raw[5],
            amount=raw[6],
        )

    def get_provider(self, provider: str) -> ProviderView:
        address = Web3.to_checksum_address(provider)
        raw = self._read("getProvider", address)
        return ProviderView(
            address=address, bond=raw[0], locked=raw[1], exit_available_at=raw[2], registered=raw[3]
        )

    def free_balance_of(self, account: str) -> int:
        return int(self._read("freeBalanceOf", Web3.to_checksum_address(account)))

    def escrow_of(self, job_id: int) -> int:
        return int(self._job_read("escrowOf", job_id))

    def collateral_for(self, price: int) -> int:
        return int(self._read("collateralFor", price))

    def is_nonce_used(self, client: str, nonce: int) -> bool:
        return bool(self._read("isNonceUsed", Web3.to_checksum_address(client), nonce))

    def hash_request(self, request: JobRequest) -> bytes:
        return bytes(self._read("hashRequest", request.as_tuple()))

    def next_job_id(self) -> int:
        return int(self._read("nextJobId"))

    def fees_owed(self) -> int:
        return int(self._read("feesOwed"))

    def protocol_fee_bps(self) -> int:
        return int(self._read("protocolFeeBps"))

    def params(self) -> MarketParams:
        return MarketParams(
            min_bond=self._read("MIN_BOND"),
            collateral_bps=self._read("COLLATERAL_BPS"),
            dispute_bond=self._read("DISPUTE_BOND"),
            challenge_window=self._read("CHALLENGE_WINDOW"),
            resolve_window=self._read("RESOLVE_WINDOW"),
            exit_cooldown=self._read("EXIT_COOLDOWN"),
            protocol_fee_bps=self._read("protocolFeeBps"),
            reveal_window=self._read("REVEAL_WINDOW"),
        )

    def is_arbiter(self, account: str) -> bool:
        """Whether `account` holds the market's ARBITER_ROLE (may call resolve)."""
        role = self._read("ARBITER_ROLE")
        return bool(self._read("hasRole", role, Web3.to_checksum_address(account)))

    def get_replica_set(self, job_id: int) -> ReplicaSetView:
        raw = self._job_read("getReplicaSet", job_id)
        return ReplicaSetView(
            job_id=job_id,
            replicas=raw[0],
            claims=raw[1],
            commits=raw[2],
            reveals=raw[3],
            committed=_bits(raw[4]),
            revealed=_bits(raw[5]),
            settled=_bits(raw[6]),
            perceptual=raw[7],
            bonded=raw[8],
            escrow=raw[9],
        )

    def get_replica(
        self, job_id: int, index: int, replica_set: ReplicaSetView | None = None
    ) -> ReplicaView:
        """Replica `index` (all zero if there is none); pass the set to save a read."""
        rs = replica_set or self.get_replica_set(job_id)
        raw = self._job_read("getReplica", job_id, index)
        return ReplicaView(
            job_id=job_id,
            index=index,
            provider=raw[0],
            price=raw[1],
            commitment=bytes(raw[2]),
            frames_digest=bytes(raw[3]),
            committed=index in rs.committed,
            revealed=index in rs.revealed,
            settled=index in rs.settled,
        )

    def get_replicas(self, job_id: int) -> list[ReplicaView]:
        """Every claimed replica of a job, in claim order (empty for a single job)."""
        rs = self.get_replica_set(job_id)
        return [self.get_replica(job_id, i, rs) for i in range(rs.claims)]

    def replica_index(self, job_id: int, provider: str) -> int | None:
        """The index of `provider`'s replica of the job, or None."""
        wanted = Web3.to_checksum_address(provider)
        for replica in self.get_replicas(job_id):
            if replica.provider == wanted:
                return replica.index
        return None

    def replica_commitment(
        self,
        job_id: int,
        provider: str,
        result_cid: bytes,
        video_sha256: bytes,
        frames_digest: bytes,
        salt: bytes,
    ) -> bytes:
        """The contract's own `replicaCommitment` (the Python one is `shared.replicas`)."""
        return bytes(
            self._job_read(
                "replicaCommitment",
                job_id,
                Web3.to_checksum_address(provider),
                result_cid,
                video_sha256,
                frames_digest,
                salt,
            )
        )

    # -- client funds
    def deposit(self, amount: int) -> TxReceipt:
        return self._send("deposit", amount)

    def deposit_with_permit(self, credits: Credits, amount: int, *, ttl_s: int = 600) -> TxReceipt:
        """Deposit in one transaction: sign an EIP-2612 permit, then `depositWithPermit`."""
        deadline = int(time.time()) + ttl_s
        v, r, s = credits.permit_signature(self.sender.account, self.address, amount, deadline)
        return self._send("depositWithPermit", amount, deadline, v, r, s)

    def withdraw(self, amount: int, to: str | None = None) -> TxReceipt:
        return self._send("withdraw", amount, Web3.to_checksum_address(to or self.sender.address))

    # -- providers
    def register_provider(self, bond: int, metadata_uri: str) -> TxReceipt:
        return self._send("registerProvider", bond, metadata_uri)

    def update_metadata(self, metadata_uri: str) -> TxReceipt:
        return self._send("updateMetadata", metadata_uri)

    def add_bond(self, amount: int) -> TxReceipt:
        return self._send("addBond", amount)

    def request_exit(self) -> TxReceipt:
        return self._send("requestExit")

    def cancel_exit(self) -> TxReceipt:
        return self._send("cancelExit")

    def withdraw_bond(self, amount: int, to: str | None = None) -> TxReceipt:
        return self._send(
            "withdrawBond", amount, Web3.to_checksum_address(to or self.sender.address)
        )

    # -- jobs
    def submit_job(
        self, request: JobRequest, spec: bytes, signature: bytes
    ) -> tuple[int, TxReceipt]:
        """Submit a signed request; returns the new job id and the receipt."""
        receipt = self._send("submitJob", request.as_tuple(), spec, signature)
        events = self.events(receipt, "JobSubmitted")
        if len(events) != 1:
            raise TransactionFailed(
                f"submitJob mined in {receipt.tx_hash} without a JobSubmitted event",
                tx_hash=receipt.tx_hash,
            )
        return int(events[0]["args"]["jobId"]), receipt

    def invalidate_nonce(self, nonce: int) -> TxReceipt:
        return self._send("invalidateNonce", nonce)

    def cancel_job(self, job_id: int) -> TxReceipt:
        return self._job_send("cancelJob", job_id)

    def claim_job(self, job_id: int, price: int) -> TxReceipt:
        return self._job_send("claimJob", job_id, price)

    def release_job(self, job_id: int) -> TxReceipt:
        return self._job_send("releaseJob", job_id)

    def deliver(
        self, job_id: int, result_cid: bytes, video_sha256: bytes, frames_digest: bytes
    ) -> TxReceipt:
        return self._job_send("deliver", job_id, result_cid, video_sha256, frames_digest)

    def dispute(
        self, job_id: int, reason: DisputeReason, evidence: bytes = b"\0" * 32
    ) -> TxReceipt:
        return self._job_send("dispute", job_id, int(reason), evidence)

    def resolve(self, job_id: int, provider_at_fault: bool) -> TxReceipt:
        return self._job_send("resolve", job_id, provider_at_fault)

    def commit_result(self, job_id: int, commitment: bytes) -> TxReceipt:
        """Commit a replica's result (see `framecast.shared.replicas.replica_commitment`)."""
        return self._job_send("commitResult", job_id, commitment)

    def reveal_result(
        self,
        job_id: int,
        result_cid: bytes,
        video_sha256: bytes,
        frames_digest: bytes,
        salt: bytes,
    ) -> TxReceipt:
        """Reveal the result committed to; it must hash to the commitment."""
        return self._job_send("revealResult", job_id, result_cid, video_sha256, frames_digest, salt)

    def resolve_replicas(self, job_id: int, fault: int | set[int] | frozenset[int]) -> TxReceipt:
        """Arbiter: decide a replicated dispute; `fault` is a bit mask or a set of indexes."""
        mask = fault if isinstance(fault, int) else sum(1 << i for i in fault)
        return self._job_send("resolveReplicas", job_id, mask)

    def settle(self, job_id: int) -> TxReceipt:
        return self._job_send("settle", job_id)

    def reclaim(self, job_id: int) -> TxReceipt:
        return self._job_send("reclaim", job_id)

    # -- admin
    def set_protocol_fee(self, fee_bps: int) -> TxReceipt:
        return self._send("setProtocolFee", fee_bps)

    def withdraw_fees(self, to: str, amount: int) -> TxReceipt:
        return self._send("withdrawFees", Web3.to_checksum_address(to), amount)


def bind(
    w3: Web3, deployment: Deployment, sender: TxSender | None = None
) -> tuple[Credits, Market]:
    """Both bindings for a deployment, after checking code exists at the addresses."""
    for name, address in (("Credits", deployment.credits), ("JobMarket", deployment.market)):
        with guarded(w3, f"eth_getCode of {name}"):
            code = w3.eth.get_code(Web3.to_checksum_address(address))
        if not code:
            raise ChainError(
                f"no {name} contract at {address} on chain {deployment.chain_id}",
                fix="the chain was reset: run `framecast devnet up` again to redeploy",
            )
    return Credits(w3, deployment.credits, sender), Market(w3, deployment.market, sender)
