"""PostgresStore: many replicas on one PostgreSQL database, on psycopg 3.

Needs the ``postgres`` extra: ``pip install 'inference-lifecycle[postgres]'``.

The tables live in one schema (``lifecycle`` by default; tests use one of
their own), created the first time a store opens the database (``CREATE ...
IF NOT EXISTS``). The SQL is plain: no advisory locks, no stored
procedures, nothing a PostgreSQL-compatible distributed database lacks.
The database enforces every rule:

- a save is ``UPDATE ... WHERE name = %s AND version = %s`` with its history
  rows in the same transaction;
- one live experiment per endpoint is a partial unique index on
  ``endpoint_name`` over the statuses that are not terminal;
- the limit on live experiments is a counted row (``counters.live``)
  incremented in the create's transaction only while below the limit; the
  row lock makes concurrent creates on every replica take turns on it;
- the reconciler claims due work with ``FOR UPDATE SKIP LOCKED`` and a
  lease, so two replicas never take the same step at once.

A transaction that the database aborts as a serialization failure or a
deadlock (distributed databases run SERIALIZABLE) is retried.
Connections come from a small pool shared by the store's threads.
"""

from __future__ import annotations

import builtins
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from lifecycle.errors import BulkCreateError, NameInUseError, StoreError, install_hint

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PostgresStore needs psycopg 3, which the 'postgres' extra installs: "
        + install_hint("postgres")
    ) from _err

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.stores._sql import COLUMNS, HISTORY_COLUMNS, entry_params, history_seq, row_params
from lifecycle.stores._sql_statements import SCHEMA_VERSION, Dialect, Statements
from lifecycle.stores._sql_store import SqlStore

__all__ = ["PostgresStore"]

_DIALECT = Dialect(
    ph="%s",
    contains="strpos(name, %s) > 0",
    bigint_param="%s::bigint",
    text="text",
    key='text COLLATE "C"',
    real="double precision",
    integer="integer",
    bigint="bigint",
    history_options="",
    insert_new="INSERT INTO",
    if_new=" ON CONFLICT (key) DO NOTHING",
    for_update=" FOR UPDATE",  # a concurrent save or delete of the row waits for this one
)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RETRY = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
#: what making the tables raises when another store makes them at the same time
_CREATED_CONCURRENTLY = (
    pg_errors.UniqueViolation,
    pg_errors.DuplicateObject,
    pg_errors.DuplicateTable,
    pg_errors.DuplicateSchema,
)

T = TypeVar("T")
_Conn = psycopg.Connection[Any]


class _Pool:
    """At most ``size`` autocommit connections, shared by threads, one user at a time each."""

    def __init__(self, dsn: str, size: int, connect_timeout: float) -> None:
        self._dsn = dsn
        self._size = size
        self._connect_timeout = connect_timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._open = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self.closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours
                self._idle, self._open, self._pid = [], 0, os.getpid()
            while True:
                if self.closed:
                    raise StoreError("PostgreSQL store is closed")
                if self._idle:
                    conn: psycopg.Connection[Any] | None = self._idle.pop()
                    break
                if self._open < self._size:
                    self._open += 1
                    conn = None
                    break
                self._cond.wait()
        if conn is None:
            try:
                conn = self._connect()
            except BaseException:
                self._release(None)
                raise
        try:
            yield conn
        finally:
            self._release(conn)

    def _release(self, conn: psycopg.Connection[Any] | None) -> None:
        healthy = (
            conn is not None
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
            and not self.closed
        )
        with self._cond:
            if healthy:
                assert conn is not None
                self._idle.append(conn)
            else:
                self._open -= 1
            self._cond.notify()
        if not healthy and conn is not None:
            conn.close()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()


class PostgresStore(SqlStore[_Conn]):
    """Experiments in PostgreSQL, in the tables of one schema.

    ``dsn`` is a libpq connection string or URL; ``schema`` the schema that
    holds the tables (created if missing); ``pool_size`` how many
    connections the store's threads share. Raises
    :class:`~lifecycle.errors.StoreError` at construction when the database
    cannot be reached or the schema cannot be created.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "lifecycle",
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        retries: int = 5,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(
                f"schema name {schema!r} must be letters, digits and _ (not starting with a digit), at most 63"
            )
        self.schema = schema
        self._retries = retries
        self._pool = _Pool(dsn, pool_size, connect_timeout)
        self._sql = Statements(_DIALECT, f'"{schema}".')
        try:
            self._run(self._init_schema)
        except StoreError as err:
            self._pool.close()
            raise StoreError(
                f"cannot open PostgreSQL store (schema {schema!r}): {err.message}"
            ) from err

    # -- plumbing -------------------------------------------------------------------

    def _run(self, work: Callable[[_Conn], T], *, transaction: bool = True) -> T:
        """Run ``work`` on a pooled connection, in one transaction, retrying what the database asks to retry."""
        delay = 0.01
        for attempt in range(self._retries + 1):
            try:
                with self._pool.connection() as conn:
                    if not transaction:
                        return work(conn)
                    with conn.transaction():
                        return work(conn)
            except _RETRY:
                if attempt == self._retries:
                    raise StoreError(
                        "PostgreSQL store: the database kept aborting the transaction (serialization failures)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except psycopg.Error as err:
                raise StoreError(
                    f"PostgreSQL store: {type(err).__name__}: {str(err).strip()}"
                ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _transact(self, work: Callable[[_Conn], T]) -> T:
        return self._run(work)

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[Any]:
        return self._run(
            lambda conn: conn.execute(sql, tuple(params)).fetchall(), transaction=False
        )

    def _savepoint(self, conn: _Conn) -> AbstractContextManager[object]:
        return conn.transaction()

    def _init_schema(self, conn: _Conn) -> None:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'lifecycle_meta'",
            (self.schema,),
        ).fetchone()
        if exists is None:
            try:
                with conn.transaction():  # a savepoint: a concurrent creator may win the race
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    for statement in self._sql.schema():
                        conn.execute(statement)
            except _CREATED_CONCURRENTLY:
                raise pg_errors.SerializationFailure("schema created concurrently; retry") from None
        row = conn.execute(self._sql.schema_version).fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"schema version {'none' if row is None else row[0]}, this build reads {SCHEMA_VERSION}"
            )

    # -- writes ---------------------------------------------------------------

    def _insert(self, conn: _Conn, exp: Experiment) -> None:
        try:
            with conn.transaction():  # a savepoint, so that the refusal may read
                conn.execute(self._sql.insert, row_params(exp))
        except pg_errors.UniqueViolation as err:
            constraint = err.diag.constraint_name or ""
            if constraint == "experiments_live_endpoint":
                raise self._endpoint_in_use(conn, exp) from None
            if constraint == "experiments_pkey":
                raise NameInUseError(exp.name) from None
            raise StoreError(
                f"PostgreSQL store: cannot create '{exp.name}': {str(err).strip()}"
            ) from None

    def _insert_history(self, conn: _Conn, rows: builtins.list[tuple[Any, ...]]) -> None:
        with conn.cursor() as c:
            c.executemany(self._sql.insert_history, rows)

    def _delete_row(self, conn: _Conn, name: str, expected_version: int) -> Sequence[Any] | None:
        return conn.execute(
            f"{self._sql.delete} RETURNING status", (name, expected_version)
        ).fetchone()

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        pairs = list(items)  # the rows go in with COPY

        def work(conn: _Conn) -> int:
            with conn.cursor() as cur:
                with cur.copy(
                    f"COPY {self._sql.experiments} ({', '.join(COLUMNS)}) FROM STDIN"
                ) as copy:
                    for exp, _ in pairs:
                        exp.version = 1
                        copy.write_row(row_params(exp))
                with cur.copy(
                    f"COPY {self._sql.history} ({', '.join(HISTORY_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for _, entry in pairs:
                        copy.write_row(entry_params(entry, history_seq(1, 0)))
                cur.execute(self._sql.recount_live)
            return len(pairs)

        try:
            return self._run(work)
        except StoreError as err:
            if isinstance(err.__cause__, pg_errors.UniqueViolation):
                raise BulkCreateError(err.message) from None
            raise

    def claim(self, now: float, limit: int, owner: str, lease_seconds: float) -> builtins.list[str]:
        sql = (
            f"UPDATE {self._sql.experiments} SET claim_owner = %s, claim_until = %s"
            f" WHERE name IN ({self._sql.claimable} FOR UPDATE SKIP LOCKED) RETURNING name, due_at"
        )

        def work(conn: _Conn) -> builtins.list[str]:
            rows = conn.execute(
                sql, (owner, now + lease_seconds, now, owner, now, limit)
            ).fetchall()
            return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]

        return self._run(work, transaction=False)

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"
