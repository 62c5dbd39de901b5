"""TxSender fees against real anvil: EIP-1559 (2 × base fee + priority fee), the priority
fee fallback when the RPC lacks eth_maxPriorityFeePerGas, and legacy gasPrice on a chain
without base fee (a pre-London anvil, and a proxy that strips baseFeePerGas)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from hexbytes import HexBytes

from framecast.client.devnet import find_tool
from framecast.shared.chain.bindings import Credits
from framecast.shared.chain.connection import connect
from framecast.shared.chain.devnet import DEVNET_MNEMONIC, devnet_account
from framecast.shared.chain.sender import TxSender
from framecast.shared.errors import RpcUnavailable
from tests.chain.rpc_server import ScriptedRpc
from tests.conftest import Chain, free_port


@pytest.fixture
def rpc(anvil_url: str) -> Iterator[ScriptedRpc]:
    server = ScriptedRpc(anvil_url)
    yield server
    server.close()


def _mined(chain_w3: object, tx_hash: str) -> dict[str, object]:
    return dict(chain_w3.eth.get_transaction(HexBytes(tx_hash)))  # type: ignore[attr-defined]


def test_eip1559_fee_is_two_base_fees_plus_the_priority_fee(chain: Chain) -> None:
    sender = chain.sender("alice")
    base = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    priority = int(chain.w3.manager.request_blocking("eth_maxPriorityFeePerGas", []), 16)
    assert base > 0
    fees = sender.fees()
    assert fees == {"maxFeePerGas": 2 * base + priority, "maxPriorityFeePerGas": priority}
    receipt = Credits(chain.w3, chain.deployment.credits, sender).transfer(
        chain.account("bob").address, 1
    )
    tx = _mined(chain.w3, receipt.tx_hash)
    assert tx["type"] == 2 and tx["maxFeePerGas"] == 2 * base + priority


def test_priority_fee_falls_back_when_the_method_is_missing(chain: Chain, rpc: ScriptedRpc) -> None:
    rpc.set(
        "eth_maxPriorityFeePerGas",
        ("rpc_error", -32601, "the method eth_maxPriorityFeePerGas does not exist"),
    )
    w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id)
    sender = TxSender(w3, chain.account("alice"))
    credits = Credits(w3, chain.deployment.credits, sender)
    bob = chain.account("bob").address
    before = credits.balance_of(bob)
    credits.transfer(bob, 3)
    credits.transfer(bob, 4)
    assert credits.balance_of(bob) == before + 7
    # Asked once, then the sender remembered that the endpoint lacks it.
    assert rpc.seen.count("eth_maxPriorityFeePerGas") == 1
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    fees = sender.fees()
    assert fees["maxPriorityFeePerGas"] == max(0, int(w3.eth.gas_price) - base)
    assert fees["maxFeePerGas"] == 2 * base + fees["maxPriorityFeePerGas"]


def test_no_base_fee_in_blocks_means_legacy_gas_price(chain: Chain, rpc: ScriptedRpc) -> None:
    rpc.set("eth_getBlockByNumber", ("no_basefee",))
    w3 = connect(rpc.url, expected_chain_id=chain.deployment.chain_id)
    sender = TxSender(w3, chain.account("alice"))
    assert set(sender.fees()) == {"gasPrice"}
    receipt = Credits(w3, chain.deployment.credits, sender).transfer(
        chain.account("bob").address, 1
    )
    assert _mined(chain.w3, receipt.tx_hash)["type"] == 0


@pytest.fixture
def berlin_url() -> Iterator[str]:
    """A private anvil on the Berlin hardfork: blocks without base fee, no type-2 txs."""
    port = free_port()
    process = subprocess.Popen(
        [find_tool("anvil"), "--host", "127.0.0.1", "--port", str(port),
         "--hardfork", "berlin", "--mnemonic", DEVNET_MNEMONIC],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                connect(url, timeout=0.5, attempts=1)
                break
            except RpcUnavailable:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_pre_london_chain_gets_legacy_transactions(berlin_url: str) -> None:
    w3 = connect(berlin_url)
    assert "baseFeePerGas" not in w3.eth.get_block("latest")
    sender = TxSender(w3, devnet_account("alice"))
    assert set(sender.fees()) == {"gasPrice"}
    # A contract whose init code is STOP: deployable on any fork.
    receipt = sender.send(w3.eth.contract(abi=[], bytecode="0x00").constructor())
    tx = dict(w3.eth.get_transaction(HexBytes(receipt.tx_hash)))
    assert tx["type"] == 0 and int(tx["gasPrice"]) > 0
