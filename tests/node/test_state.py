"""The node's SQLite state: transitions and upgrading a database from an older release."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from framecast.node.state import JobRecord, StateStore
from framecast.shared.errors import NodeError

# The jobs table as the first release created it (before replicated jobs existed).
_OLD_SCHEMA = """
CREATE TABLE jobs (
    job_id INTEGER PRIMARY KEY, state TEXT NOT NULL, block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL, client TEXT NOT NULL, model TEXT, spec BLOB NOT NULL,
    max_price TEXT NOT NULL, claim_deadline INTEGER NOT NULL, delivery_window INTEGER NOT NULL,
    request_digest TEXT, price TEXT, reason TEXT, progress REAL NOT NULL DEFAULT 0,
    result_cid TEXT, video_sha256 TEXT, frames_digest TEXT, seen_at REAL NOT NULL,
    run_started_at REAL, run_seconds REAL, earned TEXT, updated_at REAL NOT NULL
);
"""


def _record(job_id: int, **fields: object) -> JobRecord:
    now = time.time()
    base: dict[str, object] = {
        "job_id": job_id,
        "state": "seen",
        "block_number": 1,
        "block_hash": "0x" + "ab" * 32,
        "client": "0x" + "11" * 20,
        "model": "tiny-cogvideox",
        "spec": b"{}",
        "max_price": 2**200,
        "claim_deadline": 100,
        "delivery_window": 60,
        "seen_at": now,
        "updated_at": now,
    }
    return JobRecord.model_validate({**base, **fields})


def test_database_of_an_older_release_gains_the_replica_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    db.execute(
        "INSERT INTO jobs (job_id, state, block_number, block_hash, client, spec, max_price, "
        "claim_deadline, delivery_window, seen_at, updated_at) "
        "VALUES (7, 'delivered', 1, '0x', '0xc', x'7b7d', '5', 1, 60, 0, 0)"
    )
    db.commit()
    db.close()
    store = StateStore(path)
    old = store.require(7)
    assert (old.state, old.replicas, old.perceptual, old.salt) == ("delivered", 1, False, None)
    # And the upgraded table takes replicated jobs.
    store.add_seen(_record(8, replicas=3, perceptual=True))
    assert store.require(8).replicas == 3
    assert store.require(8).perceptual is True
    store.close()
    # Opening it again is a no-op (the columns exist).
    StateStore(path).close()


def test_replicated_job_commits_before_it_delivers(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.add_seen(_record(1, replicas=2))
    for state in ("claimed", "running", "pinned"):
        store.transition(1, state)  # type: ignore[arg-type]
    store.transition(1, "committed", salt="0x" + "5a" * 32)
    assert store.require(1).salt == "0x" + "5a" * 32
    assert store.require(1).max_price == 2**200
    store.transition(1, "delivered")
    with pytest.raises(NodeError, match="no transition delivered → committed"):
        store.transition(1, "committed")
    store.close()


def test_waiting_replica_holds_no_slot_and_ends_lost_or_claimed(tmp_path: Path) -> None:
    from framecast.node.state import BUSY

    store = StateStore(tmp_path / "state.db")
    store.add_seen(_record(1, replicas=2))
    store.add_seen(_record(2, replicas=2))
    store.transition(1, "waiting", price=5)
    store.transition(2, "waiting", price=5)
    assert store.in_states(*BUSY) == []
    store.transition(1, "claimed")  # the set filled
    assert [j.job_id for j in store.in_states(*BUSY)] == [1]
    store.transition(2, "lost", reason="expired")  # it never did
    with pytest.raises(NodeError, match="no transition waiting → pinned"):
        store.add_seen(_record(3, replicas=2))
        store.transition(3, "waiting")
        store.transition(3, "pinned")
    store.close()
