"""Durable per-job state machine in SQLite (docs/architecture.md §5).

::

    seen ──▶ claimed ──▶ running ──▶ pinned ──▶ delivered ──▶ settled
      │ ╲       │           │           │ (replicas)  ▲     │
      │  ╲      ▼           ▼           ▼             │     ▼
      │ waiting lost      failed     committed ───────┘  disputed ──▶ settled | rejected
      │  (replicas: set not         │          (revealResult)
      │   filled yet) ──▶ claimed   ▼
      ▼                         released (releaseJob on chain; past the deadline ──▶ slashed)
   skipped

A replicated job (the request asks for k ≥ 2 providers) is ``waiting`` after this node's
claim until all k replicas have claimed (the chain moves it to Claimed; it runs then) or
the claim deadline passes (Expired: ``lost``, collateral unlocked). A waiting replica holds
no GPU slot (it is not in `BUSY`). After the run it commits to its result first
(`commitResult`; the salt is stored here, still ``pinned``, before the transaction is
sent, so a crash cannot lose it) and reveals once every replica has committed;
``delivered`` then means revealed. Its end follows its own replica's close-out: paid
(``settled``), refunded with its collateral slashed (``slashed`` for a missed commit or
reveal, ``rejected`` when the arbiter found it at fault), or refunded unslashed (``lost``).

Every row is written in one transaction per step, so a `kill -9` leaves the last
completed step. The agent re-checks the chain before acting on any row, which makes each
step idempotent: a restarted node resumes without double-claiming or double-delivering.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from framecast.shared.errors import NodeError

LocalState = Literal[
    "seen",
    "skipped",
    "waiting",
    "claimed",
    "running",
    "pinned",
    "committed",
    "delivered",
    "disputed",
    "settled",
    "failed",
    "released",
    "lost",
    "slashed",
    "rejected",
]
STATES: tuple[str, ...] = get_args(LocalState)
TERMINAL: frozenset[str] = frozenset(
    {"skipped", "settled", "released", "lost", "slashed", "rejected"}
)
#: States holding a GPU slot.
BUSY: frozenset[str] = frozenset({"claimed", "running"})

_ALLOWED: dict[str, frozenset[str]] = {
    "seen": frozenset({"skipped", "claimed", "waiting", "lost"}),
    "waiting": frozenset({"claimed", "lost", "slashed"}),
    "claimed": frozenset({"running", "pinned", "delivered", "lost", "failed", "slashed"}),
    "running": frozenset({"claimed", "pinned", "failed", "lost", "slashed", "delivered"}),
    "pinned": frozenset({"committed", "delivered", "slashed", "lost"}),
    "committed": frozenset({"delivered", "slashed", "lost"}),
    # A replica can also end `lost` (refunded unslashed: a silent arbiter outvoted it) or
    # `slashed`/`rejected` straight from the state the node last saw.
    "delivered": frozenset({"disputed", "settled", "lost", "rejected"}),
    "disputed": frozenset({"settled", "rejected", "lost"}),
    "failed": frozenset({"released", "slashed", "claimed", "lost"}),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id        INTEGER PRIMARY KEY,
    state         TEXT    NOT NULL,
    block_number  INTEGER NOT NULL,
    block_hash    TEXT    NOT NULL,
    client        TEXT    NOT NULL,
    model         TEXT,
    spec          BLOB    NOT NULL,
    max_price     TEXT    NOT NULL,
    claim_deadline INTEGER NOT NULL,
    delivery_window INTEGER NOT NULL,
    request_digest TEXT,
    price         TEXT,
    reason        TEXT,
    progress      REAL    NOT NULL DEFAULT 0,
    result_cid    TEXT,
    video_sha256  TEXT,
    frames_digest TEXT,
    replicas      INTEGER NOT NULL DEFAULT 1,
    perceptual    INTEGER NOT NULL DEFAULT 0,
    salt          TEXT,
    seen_at       REAL    NOT NULL,
    run_started_at REAL,
    run_seconds   REAL,
    earned        TEXT,
    updated_at    REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS cursor (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    block  INTEGER NOT NULL,
    hash   TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL
);
"""


class JobRecord(BaseModel):
    """One job as the node knows it."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    state: LocalState
    block_number: int
    block_hash: str
    client: str
    model: str | None
    spec: bytes
    max_price: int
    claim_deadline: int
    delivery_window: int
    request_digest: str | None = None
    price: int | None = None
    reason: str | None = None
    progress: float = 0.0
    result_cid: str | None = None
    video_sha256: str | None = None
    frames_digest: str | None = None
    replicas: int = 1
    perceptual: bool = False
    salt: str | None = Field(None, description="Commit-reveal salt of a replicated job (hex).")
    seen_at: float
    run_started_at: float | None = None
    run_seconds: float | None = None
    earned: int | None = None
    updated_at: float


#: Columns added after the first release, with their DDL (see `StateStore._migrate`).
_ADDED_COLUMNS = {
    "replicas": "INTEGER NOT NULL DEFAULT 1",
    "perceptual": "INTEGER NOT NULL DEFAULT 0",
    "salt": "TEXT",
}

_INT_AS_TEXT = ("max_price", "price", "earned")  # uint256 values overflow SQLite integers


class StateStore:
    """The node's SQLite database: jobs, the event cursor, recent block hashes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            # WAL + synchronous=FULL: a committed step survives kill -9 and power loss.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            raise NodeError(
                f"cannot open node state {path}: {exc}",
                fix="check the state_dir permissions and free disk space",
            ) from None

    def _migrate(self) -> None:
        """Add the columns newer releases introduced to a database made by an older one."""
        have = {str(r["name"]) for r in self._db.execute("PRAGMA table_info(jobs)").fetchall()}
        for column, ddl in _ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {ddl}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise NodeError(f"node state write failed: {exc}", fix="check disk space") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- cursor and reorg bookkeeping
    def cursor(self) -> tuple[int, str] | None:
        with self._lock:
            row = self._db.execute("SELECT block, hash FROM cursor WHERE id = 1").fetchone()
        return (int(row["block"]), str(row["hash"])) if row else None

    def advance(self, block: int, block_hash: str, keep: int = 256) -> None:
        """Record that everything up to ``block`` is processed."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO cursor(id, block, hash) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET block = excluded.block, hash = excluded.hash",
                (block, block_hash),
            )
            db.execute(
                "INSERT OR REPLACE INTO blocks(number, hash) VALUES (?, ?)", (block, block_hash)
            )
            db.execute("DELETE FROM blocks WHERE number < ?", (block - keep,))

    def known_blocks(self) -> list[tuple[int, str]]:
        """Recorded (number, hash) pairs, newest first, for finding a fork point."""
        with self._lock:
            rows = self._db.execute(
                "SELECT number, hash FROM blocks ORDER BY number DESC"
            ).fetchall()
        return [(int(r["number"]), str(r["hash"])) for r in rows]

    def rewind(self, fork_block: int, fork_hash: str) -> list[int]:
        """Undo what came after ``fork_block``: drop unclaimed jobs seen there.

        Returns the ids of later jobs the node already acted on; the caller re-checks them
        against the chain.
        """
        with self._tx() as db:
            db.execute("DELETE FROM blocks WHERE number > ?", (fork_block,))
            db.execute(
                "UPDATE cursor SET block = ?, hash = ? WHERE id = 1", (fork_block, fork_hash)
            )
            db.execute(
                "DELETE FROM jobs WHERE block_number > ? AND state IN ('seen', 'skipped')",
                (fork_block,),
            )
            rows = db.execute(
                "SELECT job_id FROM jobs WHERE block_number > ?", (fork_block,)
            ).fetchall()
        return [int(r["job_id"]) for r in rows]

    # -- jobs
    def add_seen(self, record: JobRecord) -> bool:
        """Insert a newly seen job; False if it was already known (replayed logs)."""
        values = self._encode(record)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._tx() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO jobs ({columns}) VALUES ({marks})",
                tuple(values.values()),
            )
        return cursor.rowcount == 1

    def get(self, job_id: int) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._decode(row) if row else None

    def require(self, job_id: int) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise NodeError(f"job {job_id} is not in the node's state")
        return record

    def in_states(self, *states: str) -> list[JobRecord]:
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY job_id",
                states,
            ).fetchall()
        return [self._decode(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"
            ).fetchall()
        found = {str(r["state"]): int(r["n"]) for r in rows}
        return {state: found.get(state, 0) for state in STATES}

    def total_earned(self) -> int:
        with self._lock:
            rows = self._db.execute("SELECT earned FROM jobs WHERE earned IS NOT NULL").fetchall()
        return sum(int(r["earned"]) for r in rows)

    def transition(self, job_id: int, to: LocalState, **fields: object) -> JobRecord:
        """Move a job to ``to`` (checked against the state machine) and set ``fields``."""
        with self._tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise NodeError(f"job {job_id} is not in the node's state")
            current = str(row["state"])
            if to != current and to not in _ALLOWED.get(current, frozenset()):
                raise NodeError(f"job {job_id}: no transition {current} → {to}")
            self._update(db, job_id, {"state": to, **fields})
        return self.require(job_id)

    def update(self, job_id: int, **fields: object) -> None:
        """Set fields without changing state (progress, reasons)."""
        with self._tx() as db:
            self._update(db, job_id, fields)

    def delete(self, job_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def _update(self, db: sqlite3.Connection, job_id: int, fields: dict[str, object]) -> None:
        fields = {**fields, "updated_at": time.time()}
        for key in _INT_AS_TEXT:
            if fields.get(key) is not None:
                fields[key] = str(fields[key])
        unknown = set(fields) - set(JobRecord.model_fields)
        if unknown:
            raise NodeError(f"unknown job fields {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        db.execute(
            f"UPDATE jobs SET {assignments} WHERE job_id = ?",
            (*fields.values(), job_id),
        )

    @staticmethod
    def _encode(record: JobRecord) -> dict[str, object]:
        values: dict[str, object] = record.model_dump()
        for key in _INT_AS_TEXT:
            if values[key] is not None:
                values[key] = str(values[key])
        return values

    @staticmethod
    def _decode(row: sqlite3.Row) -> JobRecord:
        data = dict(row)
        for key in _INT_AS_TEXT:
            if data[key] is not None:
                data[key] = int(data[key])
        return JobRecord.model_validate(data)
