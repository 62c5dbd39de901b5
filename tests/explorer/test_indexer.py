"""The explorer's indexer on a real anvil with the real contracts, into real SQLite and
PostgreSQL databases: catch-up, restart, reorg, schema checks, an unreachable database,
a failing RPC."""

from __future__ import annotations

from pathlib import Path

import pytest

from framecast.client.explorer.indexer import ArgTypes, Indexer, job_events
from framecast.client.explorer.store import SCHEMA_VERSION, Store
from framecast.shared.chain.bindings import Market as Market_
from framecast.shared.chain.connection import connect
from framecast.shared.chain.history import job_history, read_job
from framecast.shared.errors import ConfigError, StoreUnavailable
from tests.conftest import free_port
from tests.explorer.conftest import Market, RpcProxy


def _indexer(market: Market, url: str) -> tuple[Store, Indexer]:
    chain = market.chain
    store = Store(url)
    store.prepare(chain_id=chain.deployment.chain_id, market=chain.deployment.market)
    indexer = Indexer(
        store, chain.w3, chain.market(), deployed_block=chain.deployment.deployed_block,
        step_blocks=7,  # several steps, so step boundaries are exercised
    )  # fmt: skip
    return store, indexer


def _catch_up_and_compare(market: Market, url: str) -> None:
    chain = market.chain
    delivered = market.submit("first")
    market.deliver(delivered, "first")
    open_job = market.submit("second")
    cancelled = market.submit("third")
    chain.market("alice").cancel_job(cancelled)
    store, indexer = _indexer(market, url)
    added = indexer.poll()
    assert added > 0
    rows = {r["job_id"]: r for r in store.job_rows()}
    assert rows[delivered]["state"] == "delivered"
    assert rows[delivered]["prompt"] == "first"
    assert rows[delivered]["provider"] == chain.account("provider-1").address
    assert rows[open_job]["state"] == "open"
    assert rows[cancelled]["state"] == "cancelled"
    # The history rebuilt from the index is the one the chain tells (shared JobHistory).
    types = ArgTypes(chain.market())
    for job_id in (delivered, open_job, cancelled):
        from_index = job_history(job_id, job_events(store, types, job_id))
        from_chain = read_job(chain.market(), job_id, from_block=chain.deployment.deployed_block)
        assert from_index == from_chain
    delivery = read_job(chain.market(), delivered, from_block=0).delivery
    assert delivery is not None
    assert rows[delivered]["result_cid"] == delivery.result_cid
    assert rows[delivered]["video_sha256"] == delivery.video_sha256
    # Restart: a new store and indexer on the same database add nothing twice.
    before = store.query("SELECT COUNT(*) FROM events")[0][0]
    store.close()
    store2, indexer2 = _indexer(market, url)
    assert indexer2.poll() == 0
    assert store2.query("SELECT COUNT(*) FROM events")[0][0] == before
    # And it follows: a new event is picked up by the next poll.
    market.deliver(open_job, "second")
    assert indexer2.poll() > 0
    assert store2.job_rows("job_id = ?", (open_job,))[0]["state"] == "delivered"
    store2.close()


def test_catch_up_restart_and_follow_sqlite(market: Market, tmp_path: Path) -> None:
    _catch_up_and_compare(market, str(tmp_path / "index.sqlite3"))


def test_catch_up_restart_and_follow_postgres(market: Market, postgres_db: str) -> None:
    _catch_up_and_compare(market, postgres_db)


def test_a_reorg_rewinds_and_recomputes_the_jobs_it_touched(market: Market, tmp_path: Path) -> None:
    chain = market.chain
    job_id = market.submit("before the fork")
    store, indexer = _indexer(market, str(tmp_path / "index.sqlite3"))
    indexer.poll()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    market.deliver(job_id, "before the fork")
    indexer.poll()
    assert store.job_rows("job_id = ?", (job_id,))[0]["state"] == "delivered"
    # The delivery is rolled back and other blocks take its place: a reorg.
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.market("alice").cancel_job(job_id)
    for _ in range(3):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    indexer.poll()
    assert indexer.status.reorgs == 1
    row = store.job_rows("job_id = ?", (job_id,))[0]
    assert row["state"] == "cancelled"
    assert row["result_cid"] is None
    names = [n for (n,) in store.query("SELECT name FROM events WHERE job_id = ?", (job_id,))]
    assert names == ["JobSubmitted", "JobCancelled"]
    store.close()


def test_a_database_of_another_schema_version_is_refused_with_the_fix(
    market: Market, tmp_path: Path
) -> None:
    url = str(tmp_path / "index.sqlite3")
    store, _ = _indexer(market, url)
    store.set_meta("schema_version", "99")
    store._conn.commit()
    store.close()
    with pytest.raises(ConfigError) as raised:
        _indexer(market, url)
    message = str(raised.value)
    assert "schema version 99" in message
    assert f"version {SCHEMA_VERSION}" in message
    assert "--reindex" in message
    # --reindex rebuilds it.
    store = Store(url)
    deployment = market.chain.deployment
    store.prepare(chain_id=deployment.chain_id, market=deployment.market, reindex=True)
    assert store.meta("schema_version") == str(SCHEMA_VERSION)
    store.close()


def test_a_database_of_another_market_is_refused(market: Market, tmp_path: Path) -> None:
    url = str(tmp_path / "index.sqlite3")
    store, _ = _indexer(market, url)
    store.close()
    store = Store(url)
    with pytest.raises(ConfigError, match="indexes market"):
        store.prepare(chain_id=market.chain.deployment.chain_id, market="0x" + "11" * 20)
    store.close()


def test_an_unreachable_postgres_url_is_one_clear_error() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/index"
    with pytest.raises(StoreUnavailable) as raised:
        Store(url)
    message = str(raised.value)
    assert "unreachable" in message
    assert "secret" not in message  # the password is never printed
    assert "someone:***@127.0.0.1" in message


def test_a_failing_rpc_marks_the_index_stale_and_keeps_what_it_had(
    market: Market, tmp_path: Path, rpc_proxy: RpcProxy
) -> None:
    market.submit("indexed while the RPC was up")
    chain = market.chain
    w3 = connect(rpc_proxy.url, expected_chain_id=chain.deployment.chain_id, attempts=1)
    store = Store(str(tmp_path / "index.sqlite3"))
    store.prepare(chain_id=chain.deployment.chain_id, market=chain.deployment.market)
    indexer = Indexer(
        store,
        w3,
        Market_(w3, chain.deployment.market),
        deployed_block=chain.deployment.deployed_block,
    )
    indexer.poll()
    before = store.job_rows()
    assert before
    rpc_proxy.down = True
    assert indexer.run_once() == 0
    assert indexer.status.stale_since is not None
    assert indexer.status.error
    assert store.job_rows() == before
    store.close()
