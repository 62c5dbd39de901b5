"""The transaction sender: the one owner of an account's nonces.

Every write goes through `TxSender.send`, which simulates first (so a revert becomes a
typed `ContractRevert` before any gas is spent), signs, sends, retries transient RPC
failures with backoff, and waits for the receipt. Nonces are tracked locally under a
lock so concurrent callers never collide, and resynced from the chain when it disagrees.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import Nonce, TxParams, Wei

from framecast.shared.chain.connection import TRANSIENT_ERRORS
from framecast.shared.chain.reverts import decode_revert
from framecast.shared.errors import (
    ChainError,
    ContractRevert,
    RpcUnavailable,
    TransactionFailed,
)

T = TypeVar("T")


class TxReceipt(BaseModel):
    """What callers need of a mined transaction; ``raw`` keeps web3's receipt for log decoding."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    tx_hash: str
    block_number: int
    gas_used: int
    raw: Any


def revert_from(
    exc: Exception, *, tx_hash: str | None = None
) -> ContractRevert | TransactionFailed:
    """Typed exception from web3's contract errors (which carry only selector + data)."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(bytes.fromhex(data[2:]), tx_hash=tx_hash)
    return TransactionFailed(f"transaction reverted: {exc}", tx_hash=tx_hash)


_CONTRACT_ERRORS = (ContractCustomError, ContractPanicError, ContractLogicError)


class TxSender:
    """Sends transactions for one local account."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        retries: int = 5,
        backoff_s: float = 0.2,
        receipt_timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.retries = retries
        self.backoff_s = backoff_s
        self.receipt_timeout_s = receipt_timeout_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._nonce: int | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    def call(self, fn: ContractFunction) -> Any:
        """Read through a contract function, with typed reverts and retried transport errors."""
        try:
            return self._retry(lambda: fn.call({"from": self.account.address}))
        except _CONTRACT_ERRORS as exc:
            raise revert_from(exc) from None

    def send(
        self, fn: ContractFunction | ContractConstructor, *, gas_margin: float = 1.25
    ) -> TxReceipt:
        """Simulate, sign, send and wait; raises the decoded revert if the call would fail."""
        base: TxParams = {"from": self.account.address}
        try:
            estimate = self._retry(lambda: fn.estimate_gas(base))
        except _CONTRACT_ERRORS as exc:
            raise revert_from(exc) from None
        with self._lock:
            nonce = self._next_nonce()
            fees = self._fees()
            params: TxParams = {
                "from": self.account.address,
                "nonce": Nonce(nonce),
                "gas": int(estimate * gas_margin) + 10_000,
                "maxFeePerGas": Wei(fees["maxFeePerGas"]),
                "maxPriorityFeePerGas": Wei(fees["maxPriorityFeePerGas"]),
                "chainId": self._retry(lambda: self.w3.eth.chain_id),
            }
            tx = fn.build_transaction(params)
            signed = self.account.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = self._send_raw(signed.raw_transaction, HexBytes(signed.hash))
            self._nonce = nonce + 1
        return self._wait(tx_hash, tx)

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._retry(
                lambda: self.w3.eth.get_transaction_count(self.account.address, "pending")
            )
        return self._nonce

    def _fees(self) -> dict[str, int]:
        latest = self._retry(lambda: self.w3.eth.get_block("latest"))
        base_fee = int(latest.get("baseFeePerGas", 0) or 0)
        priority = int(self._retry(lambda: self.w3.eth.max_priority_fee))
        # Two base fees of headroom survive six full blocks of fee growth.
        return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}

    def _send_raw(self, raw: bytes, expected_hash: HexBytes) -> HexBytes:
        for attempt in range(self.retries + 1):
            try:
                return HexBytes(self.w3.eth.send_raw_transaction(raw))
            except Web3RPCError as exc:
                text = str(exc).lower()
                if "already known" in text or "already imported" in text:
                    # A retried send whose first try did arrive: same bytes, same hash.
                    return expected_hash
                if "nonce too low" in text or "nonce too high" in text:
                    self._nonce = None
                    raise ChainError(
                        f"nonce of {self.account.address} is out of sync with the chain ({exc})",
                        fix="retry; another process may be sending from the same account",
                    ) from None
                raise TransactionFailed(f"RPC rejected the transaction: {exc}") from None
            except TRANSIENT_ERRORS as exc:
                if attempt == self.retries:
                    raise self._unavailable(exc) from None
                self._sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _wait(self, tx_hash: HexBytes, tx: TxParams) -> TxReceipt:
        try:
            receipt = self._retry(
                lambda: self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self.receipt_timeout_s, poll_latency=0.05
                )
            )
        except TimeExhausted:
            raise TransactionFailed(
                f"transaction {tx_hash.to_0x_hex()} was not mined within "
                f"{self.receipt_timeout_s:.0f} s",
                fix="check the node's mining / gas price; the transaction may still be mined",
                tx_hash=tx_hash.to_0x_hex(),
            ) from None
        if receipt["status"] != 1:
            raise self._replay_revert(tx, receipt)
        return TxReceipt(
            tx_hash=tx_hash.to_0x_hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            raw=receipt,
        )

    def _replay_revert(self, tx: TxParams, receipt: Any) -> ChainError:
        """Re-run a failed transaction as a call at its block to learn why it reverted."""
        call: TxParams = {"from": tx["from"], "to": tx["to"], "data": tx["data"]}
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"])
        except _CONTRACT_ERRORS as exc:
            return revert_from(exc, tx_hash=tx_hash)
        except Web3RPCError as exc:
            return TransactionFailed(f"transaction {tx_hash} reverted: {exc}", tx_hash=tx_hash)
        return TransactionFailed(
            f"transaction {tx_hash} reverted (out of gas or state changed before mining)",
            tx_hash=tx_hash,
        )

    def _retry(self, action: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return action()
            except TRANSIENT_ERRORS as exc:
                if attempt == self.retries:
                    raise self._unavailable(exc) from None
                self._sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _unavailable(self, exc: BaseException) -> RpcUnavailable:
        endpoint = getattr(self.w3.provider, "endpoint_uri", None) or "the RPC endpoint"
        return RpcUnavailable(str(endpoint), f"{type(exc).__name__} after {self.retries} retries")
