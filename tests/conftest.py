"""Shared fixtures: a real anvil chain with our contracts, reset between tests."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from framecast.client.devnet import deploy_devnet, devnet_account, start_anvil
from framecast.shared.chain.bindings import Credits, Market
from framecast.shared.chain.connection import connect
from framecast.shared.chain.sender import TxSender
from framecast.shared.deployment import Deployment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One anvil for the session (tests isolate themselves with snapshots)."""
    port = free_port()
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    process = start_anvil(port, log, detach=False)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def deployment(anvil_url: str) -> Deployment:
    return deploy_devnet(anvil_url)


@dataclass
class Chain:
    """A clean chain state for one test, with bindings per named devnet account."""

    w3: Web3
    deployment: Deployment
    _senders: dict[str, TxSender] = field(default_factory=dict)

    def account(self, name: str) -> LocalAccount:
        return devnet_account(name)

    def sender(self, name: str) -> TxSender:
        if name not in self._senders:
            self._senders[name] = TxSender(self.w3, self.account(name))
        return self._senders[name]

    def market(self, name: str | None = None) -> Market:
        return Market(self.w3, self.deployment.market, self.sender(name) if name else None)

    def credits(self, name: str | None = None) -> Credits:
        return Credits(self.w3, self.deployment.credits, self.sender(name) if name else None)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def warp(self, seconds: int) -> None:
        """Advance chain time and mine a block (anvil only)."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture
def chain(anvil_url: str, deployment: Deployment) -> Iterator[Chain]:
    w3 = connect(anvil_url, expected_chain_id=deployment.chain_id)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield Chain(w3, deployment)
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
