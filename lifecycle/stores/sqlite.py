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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.errors import BulkCreateError, NameInUseError, StaleVersionError, StoreError
from lifecycle.stores._sql import entry_params, history_seq, row_params
from lifecycle.stores._sql_statements import SCHEMA_VERSION, Dialect, Statements
from lifecycle.stores._sql_store import SqlStore

__all__ = ["SqliteStore"]

_DIALECT = Dialect(
    ph="?",
    contains="instr(name, ?) > 0",
    bigint_param="?",
    text="TEXT",
    key="TEXT",
    real="REAL",
    integer="INTEGER",
    bigint="INTEGER",
    history_options=" WITHOUT ROWID",
    insert_new="INSERT OR IGNORE INTO",
    if_new="",
    for_update="",  # a write transaction holds the file's write lock from its start
)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_T = TypeVar("_T")


class SqliteStore(SqlStore[sqlite3.Connection]):
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

    _sql = Statements(_DIALECT)

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "FULL", timeout: float = 30.0
    ) -> None:
        sync = synchronous.upper()
        if sync not in _SYNCHRONOUS:
            raise StoreError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}"
            )
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise StoreError(
                f"SqliteStore needs a file path, not {self.path!r} (use MemoryStore for a store in memory)"
            )
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
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            found = "is not a directory" if os.path.exists(directory) else "does not exist"
            raise StoreError(
                f"cannot open SQLite store {self.path!r}: {directory!r} {found} (the store "
                "makes its file, not the directories above it)"
            )
        try:
            conn = self._conn()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot open SQLite store {self.path!r}: it cannot use WAL mode (journal mode is {mode})"
                )
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
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
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

    def _transact(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._write() as conn:
            return work(conn)

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[Any]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"SQLite store {self.path!r}: {err}") from err

    @contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("SAVEPOINT lifecycle_save")
        try:
            yield
        except StaleVersionError:
            conn.execute("ROLLBACK TO lifecycle_save")
            conn.execute("RELEASE lifecycle_save")
            raise
        conn.execute("RELEASE lifecycle_save")

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if tables and "lifecycle_meta" not in tables:
                raise StoreError(
                    f"cannot open SQLite store {self.path!r}: it is a database of something else "
                    f"(tables {', '.join(sorted(tables))}); give a new file or a lifecycle store"
                )
            if "lifecycle_meta" in tables:
                row = conn.execute(self._sql.schema_version).fetchone()
                if row is None or row[0] != SCHEMA_VERSION:
                    found = "none" if row is None else row[0]
                    raise StoreError(
                        f"cannot open SQLite store {self.path!r}: schema version {found}, this build reads {SCHEMA_VERSION}"
                    )
            else:  # a new file: make the tables (an existing store is opened without a scan)
                for statement in self._sql.schema():
                    conn.execute(statement)
            # a real write at start, so a read-only file fails here, not mid-request
            conn.execute(
                "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('opened_by', ?)",
                (str(os.getpid()),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- writes ---------------------------------------------------------------

    def _insert(self, conn: sqlite3.Connection, exp: Experiment) -> None:
        try:
            conn.execute(self._sql.insert, row_params(exp))
        except sqlite3.IntegrityError as err:
            message = str(err)
            if "endpoint_name" in message:
                raise self._endpoint_in_use(conn, exp) from None
            if "experiments.name" in message:
                raise NameInUseError(exp.name) from None
            raise StoreError(f"SQLite store: cannot create '{exp.name}': {message}") from None

    def _insert_history(
        self, conn: sqlite3.Connection, rows: builtins.list[tuple[Any, ...]]
    ) -> None:
        conn.executemany(self._sql.insert_history, rows)

    def _delete_row(
        self, conn: sqlite3.Connection, name: str, expected_version: int
    ) -> Sequence[Any] | None:
        row: Sequence[Any] | None = conn.execute(
            self._sql.select_status, (name, expected_version)
        ).fetchone()
        if row is not None:
            conn.execute(self._sql.delete, (name, expected_version))
        return row

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        rows: builtins.list[tuple[Any, ...]] = []
        entries: builtins.list[tuple[Any, ...]] = []
        for exp, entry in items:
            exp.version = 1
            rows.append(row_params(exp))
            entries.append(entry_params(entry, history_seq(1, 0)))
        with self._write() as conn:
            try:
                conn.executemany(self._sql.insert, rows)
            except sqlite3.IntegrityError as err:
                raise BulkCreateError(str(err)) from None
            self._insert_history(conn, entries)
            conn.execute(self._sql.recount_live)
        return len(rows)

    def claim(self, now: float, limit: int, owner: str, lease_seconds: float) -> builtins.list[str]:
        if not self._fetch("SELECT 1 FROM experiments WHERE due_at <= ? LIMIT 1", (now,)):
            return []  # nothing due: no write lock taken (the server polls twice a second)
        with self._write() as conn:
            names = [r[0] for r in conn.execute(self._sql.claimable, (now, owner, now, limit))]
            until = now + lease_seconds
            conn.executemany(
                "UPDATE experiments SET claim_owner = ?, claim_until = ? WHERE name = ?",
                [(owner, until, n) for n in names],
            )
        return names

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"
