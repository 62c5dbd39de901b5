"""The explorer's index database: SQLite (embedded default) or PostgreSQL (a URL).

One small adapter over two drivers, the stdlib's ``sqlite3`` and psycopg 3 (the
``explorer-postgres`` extra): the SQL is the common subset both speak, with ``?``
placeholders rewritten to ``%s`` for psycopg. Every driver error is mapped here into
`StoreUnavailable` (unreachable, unwritable) and `ConfigError` (another schema version or
market: the --db is wrong for this framecast) of shared/errors.py, naming the database.

The index is a cache of the chain: every row can be rebuilt from the market's events, so
a schema change "migrates" by rebuilding (``framecast explorer --reindex``) rather than by
hand-written migrations. The ``meta`` table records the schema version, the chain id and
the market address the index was built for; a database built for another version or
another market is refused with that fix instead of serving wrong pages.

Tables (docs/architecture.md §2, client/explorer):

* ``meta(key, value)``: schema_version, chain_id, market, cursor_block, cursor_hash;
* ``blocks(number, hash, time)``: every block that carried a market event, and each
  cursor block, with its timestamp (timelines, delivery times) and hash (reorg checks);
* ``events(block, log_index, tx_hash, name, job_id, address, args)``: every market event,
  its arguments as JSON (bytes as ``0x`` hex);
* ``jobs(job_id, ...)``: one summary row per job for the feed, gallery and providers,
  recomputed from that job's events on a reorg.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from framecast.shared.errors import ConfigError, StoreUnavailable

SCHEMA_VERSION = 1

#: Columns of ``jobs`` in the order `Store.job_rows` returns them.
JOB_COLUMNS = (
    "job_id",
    "client",
    "model",
    "prompt",
    "state",
    "max_price",
    "price",
    "provider",
    "replicas",
    "result_cid",
    "video_sha256",
    "submitted_block",
    "claimed_block",
    "delivered_block",
    "updated_block",
)

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocks (number BIGINT PRIMARY KEY, hash TEXT NOT NULL,"
    " time BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (block BIGINT NOT NULL, log_index INTEGER NOT NULL,"
    " tx_hash TEXT NOT NULL, name TEXT NOT NULL, job_id BIGINT, address TEXT,"
    " args TEXT NOT NULL, PRIMARY KEY (block, log_index))",
    "CREATE INDEX IF NOT EXISTS events_job ON events (job_id, block, log_index)",
    "CREATE INDEX IF NOT EXISTS events_address ON events (address, name)",
    # Provider offers are read by name on every job page (their gateways).
    "CREATE INDEX IF NOT EXISTS events_name ON events (name, block, log_index)",
    "CREATE TABLE IF NOT EXISTS jobs (job_id BIGINT PRIMARY KEY, client TEXT NOT NULL,"
    " model TEXT, prompt TEXT, state TEXT NOT NULL, max_price TEXT NOT NULL, price TEXT,"
    " provider TEXT, replicas INTEGER NOT NULL, result_cid TEXT, video_sha256 TEXT,"
    " submitted_block BIGINT NOT NULL, claimed_block BIGINT, delivered_block BIGINT,"
    " updated_block BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated_block, job_id)",
    "CREATE INDEX IF NOT EXISTS jobs_provider ON jobs (provider)",
    "CREATE INDEX IF NOT EXISTS jobs_client ON jobs (client)",
    "CREATE INDEX IF NOT EXISTS jobs_delivered ON jobs (delivered_block)",
)
_DROP = ("DROP TABLE IF EXISTS jobs", "DROP TABLE IF EXISTS events",
         "DROP TABLE IF EXISTS blocks", "DROP TABLE IF EXISTS meta")  # fmt: skip


def redact(url: str) -> str:
    """A database URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class Store:
    """One connection to the index, shared by the indexer thread and the page threads.

    A lock serialises use of the one connection (neither driver's connection may be used
    by two threads at once); pages read small, indexed rows, so they wait microseconds.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = is_postgres_url(url)
        self._lock = threading.RLock()
        self._conn: Any = self._connect()

    # -- connection
    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise StoreUnavailable(
                    f"{redact(self.url)} is a PostgreSQL URL but psycopg is not installed",
                    fix="pip install 'framecast[explorer-postgres]', or pass a SQLite path",
                ) from None
            try:
                return psycopg.connect(self.url, connect_timeout=5, autocommit=False)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise StoreUnavailable(
                    f"the explorer database {redact(self.url)} is unreachable ({reason})",
                    fix="start PostgreSQL and check the URL (user, password, host, port, "
                    "database), or leave --db out for the embedded SQLite file",
                    url=redact(self.url),
                ) from None
        path = Path(self.url.removeprefix("sqlite:///").removeprefix("sqlite://"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(
                f"cannot open the explorer database {path}: {exc}",
                fix="pass a writable --db path (or a postgresql:// URL)",
                url=str(path),
            ) from None
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.postgres:
            import psycopg

            return (psycopg.Error,)
        return (sqlite3.Error,)

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Everything inside commits together or not at all."""
        with self._lock:
            try:
                yield self
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock:
            try:
                self._conn.execute(self._sql(sql), tuple(params))
            except self._errors() as exc:
                raise StoreUnavailable(
                    f"the explorer database {redact(self.url)} refused a write: {exc}",
                    fix="check the database is writable and not full",
                ) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._lock:
            try:
                if self.postgres:
                    with self._conn.cursor() as cur:
                        cur.executemany(self._sql(sql), [tuple(r) for r in rows])
                else:
                    self._conn.executemany(sql, [tuple(r) for r in rows])
            except self._errors() as exc:
                raise StoreUnavailable(
                    f"the explorer database {redact(self.url)} refused a write: {exc}",
                    fix="check the database is writable and not full",
                ) from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                cur = self._conn.execute(self._sql(sql), tuple(params))
                rows = [tuple(r) for r in cur.fetchall()]
                if self.postgres:
                    # A read opens a transaction in psycopg: end it so the next read sees
                    # what the indexer committed since.
                    self._conn.commit()
                return rows
            except self._errors() as exc:
                if self.postgres:
                    self._conn.rollback()
                raise StoreUnavailable(
                    f"the explorer database {redact(self.url)} failed a read: {exc}",
                    fix="check the database server is up",
                ) from None

    # -- schema
    def prepare(self, *, chain_id: int, market: str, reindex: bool = False) -> None:
        """Create the tables, or check that the existing ones are ours, for this market."""
        with self.transaction():
            if reindex:
                for sql in _DROP:
                    self.execute(sql)
            for sql in _TABLES[:1]:
                self.execute(sql)
            found = self.meta("schema_version")
            if found is not None and found != str(SCHEMA_VERSION):
                raise ConfigError(
                    f"the explorer database {redact(self.url)} has schema version {found}; "
                    f"this framecast writes version {SCHEMA_VERSION}",
                    fix="rebuild it from the chain with `framecast explorer --reindex` "
                    "(or pass another --db)",
                    found=found,
                    expected=SCHEMA_VERSION,
                )
            for sql in _TABLES[1:]:
                self.execute(sql)
            if found is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                self.set_meta("chain_id", str(chain_id))
                self.set_meta("market", market.lower())
                return
            built_for = (self.meta("chain_id"), self.meta("market"))
            if built_for != (str(chain_id), market.lower()):
                raise ConfigError(
                    f"the explorer database {redact(self.url)} indexes market {built_for[1]} "
                    f"on chain {built_for[0]}, not {market} on chain {chain_id}",
                    fix="pass another --db for this network, or rebuild it with "
                    "`framecast explorer --reindex`",
                )

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def cursor(self) -> tuple[int, str] | None:
        block, block_hash = self.meta("cursor_block"), self.meta("cursor_hash")
        if block is None or block_hash is None:
            return None
        return int(block), block_hash

    # -- jobs
    def job_rows(
        self, where: str = "", params: Sequence[Any] = (), *, order: str = "", limit: int = 0
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(zip(JOB_COLUMNS, row, strict=True)) for row in self.query(sql, params)]

    def put_job(self, row: dict[str, Any]) -> None:
        cols = ", ".join(JOB_COLUMNS)
        marks = ", ".join("?" for _ in JOB_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS[1:])
        self.execute(
            f"INSERT INTO jobs ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (job_id) DO UPDATE SET {updates}",
            [row.get(c) for c in JOB_COLUMNS],
        )
