"""Event intake and reorgs: a reorg is declared only on a block hash that really changed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
from web3 import HTTPProvider, Web3

from framecast.node.intake import EventIntake
from framecast.node.state import StateStore
from framecast.shared.chain.bindings import Market
from tests.chain.rpc_proxy import RangeLimitedProxy
from tests.conftest import Chain


def _intake(w3: Web3, chain: Chain, state: StateStore, chunk: int = 2000) -> EventIntake:
    return EventIntake(
        w3,
        Market(w3, chain.deployment.market),
        state,
        start_block=chain.deployment.deployed_block,
        confirmations=0,
        chunk=chunk,
    )


def _mine(chain: Chain, blocks: int = 1) -> None:
    chain.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def test_rpc_down_then_up_is_no_reorg(
    chain: Chain, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    proxy = RangeLimitedProxy(upstream, limit=10_000).start()
    port = proxy.port
    # No retries in the provider: one failed call is one failed call.
    w3 = Web3(
        HTTPProvider(proxy.url, request_kwargs={"timeout": 2}, exception_retry_configuration=None)
    )
    state = StateStore(tmp_path / "state.db")
    intake = _intake(w3, chain, state)
    intake.poll()
    before = state.cursor()
    assert before is not None
    proxy.stop()  # the partition: every RPC call fails
    with caplog.at_level(logging.WARNING, logger="framecast.node.intake"):
        with pytest.raises(requests.ConnectionError):
            intake.poll()
        assert state.cursor() == before  # nothing rewound while the RPC was away
        proxy.port = port
        proxy.start()  # back on the same address
        _mine(chain, 2)
        # Its first block read after the outage fails once: that says nothing about hashes.
        proxy.fail_next["eth_getBlockByNumber"] = 1
        with pytest.raises(requests.HTTPError):
            intake.poll()
        assert state.cursor() == before
        result = intake.poll()
    proxy.stop()
    assert result.reorged == []
    assert not [r for r in caplog.records if "reorg" in r.getMessage()]
    after = state.cursor()
    assert after is not None and after[0] > before[0]


def test_real_reorg_is_detected_and_rewound(
    chain: Chain, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = StateStore(tmp_path / "state.db")
    intake = _intake(chain.w3, chain, state)
    intake.poll()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    _mine(chain, 3)
    intake.poll()
    number, old_hash = state.cursor() or (0, "")
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.warp(7)  # other timestamps: the new blocks at the same heights get other hashes
    _mine(chain, 5)
    assert chain.w3.eth.get_block(number)["hash"].to_0x_hex() != old_hash
    with caplog.at_level(logging.WARNING, logger="framecast.node.intake"):
        intake.poll()
    [warning] = [r.getMessage() for r in caplog.records if "reorg" in r.getMessage()]
    assert f"block {number} changed" in warning
    cursor = state.cursor()
    assert cursor is not None
    assert cursor[1] == chain.w3.eth.get_block(cursor[0])["hash"].to_0x_hex()


def test_intake_backfills_through_an_rpc_that_caps_ranges(chain: Chain, tmp_path: Path) -> None:
    _mine(chain, 40)
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with RangeLimitedProxy(upstream, limit=16, style="alchemy") as proxy:
        w3 = Web3(HTTPProvider(proxy.url))
        state = StateStore(tmp_path / "state.db")
        intake = _intake(w3, chain, state, chunk=2000)
        result = intake.poll()
        assert proxy.refused and max(proxy.served) <= 16
        assert state.cursor() == (result.safe, w3.eth.get_block(result.safe)["hash"].to_0x_hex())
