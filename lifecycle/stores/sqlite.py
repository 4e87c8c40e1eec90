"""SqliteStore: the embedded default store, on the standard library's sqlite3.

One file in WAL mode, shared safely by threads (one connection per thread)
and by processes (each write a ``BEGIN IMMEDIATE`` transaction that waits up
to ``timeout`` seconds for the file's write lock). Every field is a column;
nested configurations are JSON text. The database itself enforces the rules:

- a save is ``UPDATE ... WHERE name = ? AND version = ?`` with its history
  rows in the same transaction, or nothing;
- one live experiment per endpoint is a partial unique index on
  ``endpoint_name`` over the statuses that are not terminal;
- the limit on live experiments is a counted row (``counters.live``),
  incremented in the create's transaction only while below the limit.

By default (``synchronous="FULL"``) a transition that was acknowledged
survives a power cut. ``synchronous="NORMAL"`` is the speed option: in WAL
mode it never corrupts the file, but the last transactions before a power
cut (not a process crash) may be lost.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import (
    LifecycleError,
    ResourceInUseError,
    ResourceLimitExceededError,
    StaleVersionError,
    StoreError,
)
from lifecycle.stores._sql import (
    COLUMNS,
    HISTORY_COLUMNS,
    TERMINAL_SQL,
    committed,
    entry_params,
    history_seq,
    list_sql,
    row_entry,
    row_experiment,
    row_params,
)
from lifecycle.stores.base import ListPage, ListQuery, Save

__all__ = ["SqliteStore"]

SCHEMA_VERSION = "1"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lifecycle_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    endpoint_name TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    description TEXT,
    kms_key TEXT,
    status_reason TEXT,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    creation_time REAL NOT NULL,
    last_modified_time REAL NOT NULL,
    completion_time REAL,
    version INTEGER NOT NULL,
    entered_at REAL NOT NULL,
    due_at REAL,
    update_origin TEXT,
    desired_state TEXT,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    variants TEXT NOT NULL,
    shadow_mode_config TEXT NOT NULL,
    data_storage_config TEXT,
    tags TEXT NOT NULL,
    stop_actions TEXT,
    claim_owner TEXT,
    claim_until REAL
);
CREATE INDEX IF NOT EXISTS experiments_created ON experiments (creation_time, name);
CREATE INDEX IF NOT EXISTS experiments_status_created ON experiments (status, creation_time, name);
CREATE INDEX IF NOT EXISTS experiments_status_name ON experiments (status, name);
CREATE INDEX IF NOT EXISTS experiments_due ON experiments (due_at, name) WHERE due_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS experiments_live_endpoint ON experiments (endpoint_name)
    WHERE status NOT IN {TERMINAL_SQL};
CREATE TABLE IF NOT EXISTS history (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    event TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (key, value)
    SELECT 'live', count(*) FROM experiments WHERE status NOT IN {TERMINAL_SQL};
INSERT OR IGNORE INTO lifecycle_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM experiments"
_INSERT = f"INSERT INTO experiments ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPDATE = (
    "UPDATE experiments SET "
    + ", ".join(f"{c} = ?" for c in COLUMNS[1:])
    + ", claim_owner = NULL, claim_until = NULL WHERE name = ? AND version = ?"
)
_INSERT_HISTORY = f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_VERSION = COLUMNS.index("version")
_TERMINAL = frozenset(s.value for s in ExperimentStatus if s.terminal)


def _stale(name: str, what: str = "written") -> StaleVersionError:
    return StaleVersionError(
        f"Inference experiment '{name}' was changed by another request; nothing was {what}",
        name=name,
        rule="versioned-save",
    )


class SqliteStore:
    """Experiments in one SQLite file (WAL), safe across threads and processes.

    ``path`` is a file path (created if missing). ``synchronous`` is
    ``"FULL"`` (the default: an acknowledged transition survives a power
    cut) or ``"NORMAL"`` (faster; after a power cut the last transactions
    may be lost, the file stays sound). ``timeout`` is how long a write
    waits for another process's write lock before it fails.

    Raises :class:`~lifecycle.errors.StoreError` at construction when the
    file is not a database, belongs to something else, or cannot be
    written, so the error comes at start and not mid-request.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL", timeout: float = 30.0) -> None:
        sync = synchronous.upper()
        if sync not in _SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise StoreError(f"SqliteStore needs a file path, not {self.path!r} (use MemoryStore for a store in memory)")
        self.synchronous = sync
        self._timeout = timeout
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        # this process's writers take turns here, each woken the moment the one before
        # commits; only another process's writer is waited for by SQLite's busy handler,
        # which sleeps in steps of up to 100 ms (on the server's event loop, at that)
        self._write_lock = threading.RLock()
        self._closed = False
        if os.path.isdir(self.path):
            raise StoreError(f"cannot open SQLite store {self.path!r}: it is a directory")
        try:
            conn = self._conn()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot open SQLite store {self.path!r}: it cannot use WAL mode (journal mode is {mode})")
            self._init_schema(conn)
        except sqlite3.Error as err:
            self.close()
            raise StoreError(f"cannot open SQLite store {self.path!r}: {err}") from err
        except StoreError:
            self.close()
            raise

    # -- connections ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if self._closed:
            raise StoreError(f"SQLite store {self.path!r} is closed")
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that holds the file's write lock from its start."""
        with self._write_lock:
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise StoreError(f"SQLite store {self.path!r}: {err}") from err
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
                raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"SQLite store {self.path!r}: {err}") from err

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "lifecycle_meta" not in tables:
                raise StoreError(
                    f"cannot open SQLite store {self.path!r}: it is a database of something else "
                    f"(tables {', '.join(sorted(tables))}); give a new file or a lifecycle store"
                )
            if "lifecycle_meta" in tables:
                row = conn.execute("SELECT value FROM lifecycle_meta WHERE key = 'schema_version'").fetchone()
                if row is None or row[0] != SCHEMA_VERSION:
                    found = "none" if row is None else row[0]
                    raise StoreError(f"cannot open SQLite store {self.path!r}: schema version {found}, this build reads {SCHEMA_VERSION}")
            else:  # a new file: make the tables (an existing store is opened without a scan)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            # a real write at start, so a read-only file fails here, not mid-request
            conn.execute("INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('opened_by', ?)", (str(os.getpid()),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- writes ---------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        exp.version = 1
        try:
            with self._write() as conn:
                try:
                    conn.execute(_INSERT, row_params(exp))
                except sqlite3.IntegrityError as err:
                    raise self._in_use(conn, exp, err) from None
                conn.execute(_INSERT_HISTORY, entry_params(entry, history_seq(1, 0)))
                if not exp.status.terminal:
                    cur = conn.execute(
                        "UPDATE counters SET value = value + 1 WHERE key = 'live' AND (? IS NULL OR value < ?)",
                        (max_live, max_live),
                    )
                    if cur.rowcount != 1:
                        raise ResourceLimitExceededError(
                            f"At most {max_live} inference experiments may be live (not Completed or Cancelled) at once",
                            name=exp.name,
                            rule="max-live-experiments",
                        )
        except LifecycleError:
            exp.version = 0
            raise

    @staticmethod
    def _in_use(conn: sqlite3.Connection, exp: Experiment, err: sqlite3.IntegrityError) -> LifecycleError:
        message = str(err)
        if "endpoint_name" in message:
            row = conn.execute(
                f"SELECT name FROM experiments WHERE endpoint_name = ? AND status NOT IN {TERMINAL_SQL}",
                (exp.endpoint_name,),
            ).fetchone()
            holder = f" ('{row[0]}')" if row else ""
            return ResourceInUseError(
                f"Endpoint '{exp.endpoint_name}' already has a live inference experiment{holder}; one live experiment per endpoint",
                name=exp.name,
                rule="one-live-experiment-per-endpoint",
            )
        if "experiments.name" in message:
            return ResourceInUseError(f"Inference experiment '{exp.name}' already exists", name=exp.name, rule="unique-name")
        return StoreError(f"SQLite store: cannot create '{exp.name}': {message}")

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        """Create many experiments in one transaction (seeding, imports), without the live limit.

        The name and endpoint rules hold (a violation writes nothing and
        raises ``ResourceInUseError``). Returns how many were created.
        """
        rows: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        for exp, entry in items:
            exp.version = 1
            rows.append(row_params(exp))
            entries.append(entry_params(entry, history_seq(1, 0)))
        with self._write() as conn:
            try:
                conn.executemany(_INSERT, rows)
            except sqlite3.IntegrityError as err:
                raise ResourceInUseError(f"bulk create refused: {err}", rule="unique-name-and-live-endpoint") from None
            conn.executemany(_INSERT_HISTORY, entries)
            conn.execute(f"UPDATE counters SET value = (SELECT count(*) FROM experiments WHERE status NOT IN {TERMINAL_SQL}) WHERE key = 'live'")
        return len(rows)

    def save(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        with self._write() as conn:
            version = self._save_in(conn, exp, expected_version, entries)
        exp.version = version

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        versions: builtins.list[int | None] = []
        with self._write() as conn:
            for exp, expected_version, entries in saves:
                conn.execute("SAVEPOINT lifecycle_save")
                try:
                    versions.append(self._save_in(conn, exp, expected_version, entries))
                except StaleVersionError:
                    conn.execute("ROLLBACK TO lifecycle_save")
                    versions.append(None)
                conn.execute("RELEASE lifecycle_save")
        return committed(saves, versions)

    @staticmethod
    def _save_in(conn: sqlite3.Connection, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> int:
        """One save inside the caller's transaction; the version written, or ``StaleVersionError``."""
        version = expected_version + 1
        values = list(row_params(exp))
        values[_VERSION] = version
        was_live = False
        if exp.status.terminal:
            row = conn.execute("SELECT status FROM experiments WHERE name = ? AND version = ?", (exp.name, expected_version)).fetchone()
            was_live = row is not None and row[0] not in _TERMINAL
        cur = conn.execute(_UPDATE, (*values[1:], exp.name, expected_version))
        if cur.rowcount != 1:
            raise _stale(exp.name)
        if entries:
            conn.executemany(_INSERT_HISTORY, [entry_params(e, history_seq(version, i)) for i, e in enumerate(entries)])
        if was_live:
            conn.execute("UPDATE counters SET value = value - 1 WHERE key = 'live'")
        return version

    def delete(self, name: str, expected_version: int) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT status FROM experiments WHERE name = ? AND version = ?", (name, expected_version)).fetchone()
            if row is None:
                raise _stale(name, "deleted")
            conn.execute("DELETE FROM experiments WHERE name = ? AND version = ?", (name, expected_version))
            conn.execute("DELETE FROM history WHERE name = ?", (name,))
            if row[0] not in _TERMINAL:
                conn.execute("UPDATE counters SET value = value - 1 WHERE key = 'live'")

    def claim(self, now: float, limit: int, owner: str, lease_seconds: float) -> list[str]:
        if not self._read("SELECT 1 FROM experiments WHERE due_at <= ? LIMIT 1", (now,)):
            return []  # nothing due: no write lock taken (the server polls twice a second)
        with self._write() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM experiments WHERE due_at <= ?"
                    " AND (claim_owner IS NULL OR claim_owner = ? OR claim_until <= ?)"
                    " ORDER BY due_at, name LIMIT ?",
                    (now, owner, now, limit),
                )
            ]
            until = now + lease_seconds
            conn.executemany("UPDATE experiments SET claim_owner = ?, claim_until = ? WHERE name = ?", [(owner, until, n) for n in names])
        return names

    # -- reads ----------------------------------------------------------------

    def get(self, name: str) -> Experiment | None:
        rows = self._read(f"{_SELECT} WHERE name = ?", (name,))
        return row_experiment(rows[0]) if rows else None

    def list(self, query: ListQuery) -> ListPage:
        sql, params = list_sql(query, "experiments", ph="?", contains="instr(name, ?) > 0")
        rows = self._read(sql, params)
        items = [row_experiment(r) for r in rows[: query.limit]]
        return ListPage(items, len(rows) > query.limit)

    def history(self, name: str) -> builtins.list[HistoryEntry]:
        rows = self._read(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM history WHERE name = ? ORDER BY seq", (name,))
        return [row_entry(r) for r in rows]

    def due(self, now: float, limit: int = 100) -> builtins.list[str]:
        rows = self._read("SELECT name FROM experiments WHERE due_at <= ? ORDER BY due_at, name LIMIT ?", (now, limit))
        return [r[0] for r in rows]

    def live_count(self) -> int:
        """How many experiments are live (not Completed or Cancelled), from the counted row."""
        return int(self._read("SELECT value FROM counters WHERE key = 'live'")[0][0])

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()

    def __len__(self) -> int:
        return int(self._read("SELECT count(*) FROM experiments")[0][0])

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"

