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
from web3.exceptions import TimeExhausted
from web3.types import Nonce, RPCEndpoint, TxParams, Wei

from framecast.shared.chain.connection import endpoint_of, guarded
from framecast.shared.errors import (
    ChainError,
    ContractRevert,
    RpcError,
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


def _label(fn: ContractFunction | ContractConstructor) -> str:
    return str(getattr(fn, "fn_name", None) or "constructor")


class TxSender:
    """Sends transactions for one local account.

    Whatever goes wrong comes out as the tree's error (the connection maps web3's): a
    revert as the decoded `ContractRevert`, a transport failure as `RpcUnavailable` after
    ``retries`` retries of the whole request (each itself tried by the connection), a
    refused transaction as `TransactionFailed`.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        retries: int = 3,
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
        #: False once the endpoint said it has no eth_maxPriorityFeePerGas.
        self._priority_method = True

    @property
    def address(self) -> str:
        return str(self.account.address)

    def call(self, fn: ContractFunction) -> Any:
        """Read through a contract function, with typed reverts and retried transport errors."""
        with guarded(self.w3, _label(fn)):
            return self._retry(lambda: fn.call({"from": self.account.address}))

    def send(
        self, fn: ContractFunction | ContractConstructor, *, gas_margin: float = 1.25
    ) -> TxReceipt:
        """Simulate, sign, send and wait; raises the decoded revert if the call would fail."""
        with guarded(self.w3, _label(fn)):
            return self._send(fn, gas_margin)

    def _send(self, fn: ContractFunction | ContractConstructor, gas_margin: float) -> TxReceipt:
        base: TxParams = {"from": self.account.address}
        estimate = self._retry(lambda: fn.estimate_gas(base))
        with self._lock:
            nonce = self._next_nonce()
            params: TxParams = {
                "from": self.account.address,
                "nonce": Nonce(nonce),
                "gas": int(estimate * gas_margin) + 10_000,
                "chainId": self._retry(lambda: self.w3.eth.chain_id),
            }
            params.update(self.fees())  # the 1559 pair, or a legacy gasPrice
            tx = fn.build_transaction(params)
            signed = self.account.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = self._send_raw(signed.raw_transaction, HexBytes(signed.hash))
            self._nonce = nonce + 1
        with guarded(self.w3, _label(fn), tx_hash=tx_hash.to_0x_hex()):
            return self._wait(tx_hash, tx)

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._retry(
                lambda: self.w3.eth.get_transaction_count(self.account.address, "pending")
            )
        return self._nonce

    def fees(self) -> TxParams:
        """Fee fields for the next transaction.

        EIP-1559 where the latest block has a base fee: maxFeePerGas = 2 × base fee +
        priority fee (two base fees of headroom survive six full blocks of 12.5 % growth),
        the priority fee from ``eth_maxPriorityFeePerGas``, or, where the endpoint lacks
        that method (several L2 RPCs), ``eth_gasPrice`` less the base fee. A chain without
        a base fee (pre-London, some L2s) gets a legacy ``gasPrice``.
        """
        latest = self._retry(lambda: self.w3.eth.get_block("latest"))
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": Wei(int(self._retry(lambda: self.w3.eth.gas_price)))}
        priority = self._priority_fee(int(base_fee))
        return {
            "maxFeePerGas": Wei(2 * int(base_fee) + priority),
            "maxPriorityFeePerGas": Wei(priority),
        }

    def _priority_fee(self, base_fee: int) -> int:
        if self._priority_method:
            try:
                # The raw method: web3's `max_priority_fee` falls back on its own, silently.
                return int(
                    self._retry(
                        lambda: self.w3.manager.request_blocking(
                            RPCEndpoint("eth_maxPriorityFeePerGas"), []
                        )
                    ),
                    16,
                )
            except RpcError:
                self._priority_method = False
        gas_price = int(self._retry(lambda: self.w3.eth.gas_price))
        return max(0, gas_price - base_fee)

    def _send_raw(self, raw: bytes, expected_hash: HexBytes) -> HexBytes:
        for attempt in range(self.retries + 1):
            try:
                return HexBytes(self.w3.eth.send_raw_transaction(raw))
            except RpcError as exc:
                text = exc.rpc_message.lower()
                if "already known" in text or "already imported" in text:
                    # A retried send whose first try did arrive: same bytes, same hash.
                    return expected_hash
                if "nonce too low" in text or "nonce too high" in text:
                    self._nonce = None
                    raise ChainError(
                        f"nonce of {self.account.address} is out of sync with the chain "
                        f"({exc.rpc_message})",
                        fix="retry; another process may be sending from the same account",
                        url=exc.url,
                    ) from None
                raise TransactionFailed(
                    f"RPC {exc.url} rejected the transaction: {exc.rpc_message}",
                    fix="check the account's balance and the fee (`framecast credits "
                    "balance`), then retry",
                    url=exc.url,
                    tx_hash=expected_hash.to_0x_hex(),
                ) from None
            except RpcUnavailable as exc:
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
        except ContractRevert as exc:
            exc.tx_hash = tx_hash
            exc.context["tx_hash"] = tx_hash
            return exc
        except TransactionFailed as exc:
            return TransactionFailed(exc.message, tx_hash=tx_hash)
        except RpcError as exc:
            return TransactionFailed(
                f"transaction {tx_hash} reverted: {exc.rpc_message}", tx_hash=tx_hash
            )
        return TransactionFailed(
            f"transaction {tx_hash} reverted (out of gas or state changed before mining)",
            tx_hash=tx_hash,
        )

    def _retry(self, action: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return action()
            except RpcUnavailable as exc:
                if attempt == self.retries:
                    raise self._unavailable(exc) from None
                self._sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _unavailable(self, exc: RpcUnavailable) -> RpcUnavailable:
        return RpcUnavailable(
            exc.url or endpoint_of(self.w3),
            f"{exc.reason}, after {self.retries} retries",
            method=exc.method,
            fix=exc.fix,
            tx_hash=exc.context.get("tx_hash"),
        )
