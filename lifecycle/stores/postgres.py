"""PostgresStore: many replicas on one PostgreSQL database, on psycopg 3.

Needs the ``postgres`` extra: ``pip install 'lifecycle[postgres]'``.

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
from contextlib import contextmanager
from typing import Any, TypeVar

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PostgresStore needs psycopg 3, which the 'postgres' extra installs: "
        "pip install 'lifecycle[postgres]'"
    ) from _err

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

__all__ = ["PostgresStore"]

SCHEMA_VERSION = "1"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_VERSION = COLUMNS.index("version")
_TERMINAL = frozenset(s.value for s in ExperimentStatus if s.terminal)
_RETRY = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

T = TypeVar("T")


def _schema_sql(s: str) -> list[str]:
    return [
        f'CREATE SCHEMA IF NOT EXISTS "{s}"',
        f'CREATE TABLE IF NOT EXISTS "{s}".lifecycle_meta (key text PRIMARY KEY, value text NOT NULL)',
        f"""CREATE TABLE IF NOT EXISTS "{s}".experiments (
            name text COLLATE "C" PRIMARY KEY,
            arn text NOT NULL,
            endpoint_name text NOT NULL,
            role_arn text NOT NULL,
            type text NOT NULL,
            status text COLLATE "C" NOT NULL,
            description text,
            kms_key text,
            status_reason text,
            start_time double precision NOT NULL,
            end_time double precision NOT NULL,
            creation_time double precision NOT NULL,
            last_modified_time double precision NOT NULL,
            completion_time double precision,
            version bigint NOT NULL,
            entered_at double precision NOT NULL,
            due_at double precision,
            update_origin text,
            desired_state text,
            attempts integer NOT NULL,
            last_error text,
            variants text NOT NULL,
            shadow_mode_config text NOT NULL,
            data_storage_config text,
            tags text NOT NULL,
            stop_actions text,
            claim_owner text,
            claim_until double precision
        )""",
        f'CREATE INDEX IF NOT EXISTS experiments_created ON "{s}".experiments (creation_time, name)',
        f'CREATE INDEX IF NOT EXISTS experiments_status_created ON "{s}".experiments (status, creation_time, name)',
        f'CREATE INDEX IF NOT EXISTS experiments_status_name ON "{s}".experiments (status, name)',
        f'CREATE INDEX IF NOT EXISTS experiments_due ON "{s}".experiments (due_at, name) WHERE due_at IS NOT NULL',
        f'CREATE UNIQUE INDEX IF NOT EXISTS experiments_live_endpoint ON "{s}".experiments (endpoint_name) WHERE status NOT IN {TERMINAL_SQL}',
        f"""CREATE TABLE IF NOT EXISTS "{s}".history (
            name text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            time double precision NOT NULL,
            event text NOT NULL,
            from_status text,
            to_status text NOT NULL,
            reason text,
            request_id text,
            version bigint NOT NULL,
            PRIMARY KEY (name, seq)
        )""",
        f'CREATE TABLE IF NOT EXISTS "{s}".counters (key text PRIMARY KEY, value bigint NOT NULL)',
        f"""INSERT INTO "{s}".counters (key, value)
            SELECT 'live', count(*) FROM "{s}".experiments WHERE status NOT IN {TERMINAL_SQL}
            ON CONFLICT (key) DO NOTHING""",
        f"""INSERT INTO "{s}".lifecycle_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
            ON CONFLICT (key) DO NOTHING""",
    ]


def _stale(name: str, what: str = "written") -> StaleVersionError:
    return StaleVersionError(
        f"Inference experiment '{name}' was changed by another request; nothing was {what}",
        name=name,
        rule="versioned-save",
    )


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
        return psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)))

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


class PostgresStore:
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
            raise StoreError(f"schema name {schema!r} must be letters, digits and _ (not starting with a digit), at most 63")
        self.schema = schema
        self._retries = retries
        self._pool = _Pool(dsn, pool_size, connect_timeout)
        t = f'"{schema}"'
        self._t_exp = f"{t}.experiments"
        self._t_hist = f"{t}.history"
        self._t_count = f"{t}.counters"
        self._select = f"SELECT {', '.join(COLUMNS)} FROM {self._t_exp}"
        self._insert = f"INSERT INTO {self._t_exp} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        self._update = (
            f"UPDATE {self._t_exp} SET "
            + ", ".join(f"{c} = %s" for c in COLUMNS[1:])
            + ", claim_owner = NULL, claim_until = NULL WHERE name = %s AND version = %s"
        )
        self._insert_history = f"INSERT INTO {self._t_hist} ({', '.join(HISTORY_COLUMNS)}) VALUES ({', '.join(['%s'] * len(HISTORY_COLUMNS))})"
        try:
            self._run(self._init_schema)
        except StoreError as err:
            self._pool.close()
            raise StoreError(f"cannot open PostgreSQL store (schema {schema!r}): {err.message}") from err

    # -- plumbing -------------------------------------------------------------------

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], *, transaction: bool = True) -> T:
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
                    raise StoreError("PostgreSQL store: the database kept aborting the transaction (serialization failures)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except psycopg.Error as err:
                raise StoreError(f"PostgreSQL store: {type(err).__name__}: {str(err).strip()}") from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _init_schema(self, conn: psycopg.Connection[Any]) -> None:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'lifecycle_meta'",
            (self.schema,),
        ).fetchone()
        if exists is None:
            try:
                with conn.transaction():  # a savepoint: a concurrent creator may win the race
                    for statement in _schema_sql(self.schema):
                        conn.execute(statement)
            except (pg_errors.UniqueViolation, pg_errors.DuplicateObject, pg_errors.DuplicateTable, pg_errors.DuplicateSchema):
                raise pg_errors.SerializationFailure("schema created concurrently; retry") from None
        row = conn.execute(f'SELECT value FROM "{self.schema}".lifecycle_meta WHERE key = %s', ("schema_version",)).fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(f"schema version {'none' if row is None else row[0]}, this build reads {SCHEMA_VERSION}")

    # -- writes ---------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            try:
                with conn.transaction():
                    conn.execute(self._insert, row_params(exp))
            except pg_errors.UniqueViolation as err:
                raise self._in_use(conn, exp, err) from None
            conn.execute(self._insert_history, entry_params(entry, history_seq(1, 0)))
            if not exp.status.terminal:
                cur = conn.execute(
                    f"UPDATE {self._t_count} SET value = value + 1 WHERE key = 'live' AND (%s::bigint IS NULL OR value < %s::bigint)",
                    (max_live, max_live),
                )
                if cur.rowcount != 1:
                    raise ResourceLimitExceededError(
                        f"At most {max_live} inference experiments may be live (not Completed or Cancelled) at once",
                        name=exp.name,
                        rule="max-live-experiments",
                    )

        exp.version = 1
        try:
            self._run(work)
        except LifecycleError:
            exp.version = 0
            raise

    def _in_use(self, conn: psycopg.Connection[Any], exp: Experiment, err: pg_errors.UniqueViolation) -> LifecycleError:
        constraint = err.diag.constraint_name or ""
        if constraint == "experiments_live_endpoint":
            row = conn.execute(
                f"SELECT name FROM {self._t_exp} WHERE endpoint_name = %s AND status NOT IN {TERMINAL_SQL}",
                (exp.endpoint_name,),
            ).fetchone()
            holder = f" ('{row[0]}')" if row else ""
            return ResourceInUseError(
                f"Endpoint '{exp.endpoint_name}' already has a live inference experiment{holder}; one live experiment per endpoint",
                name=exp.name,
                rule="one-live-experiment-per-endpoint",
            )
        if constraint == "experiments_pkey":
            return ResourceInUseError(f"Inference experiment '{exp.name}' already exists", name=exp.name, rule="unique-name")
        return StoreError(f"PostgreSQL store: cannot create '{exp.name}': {str(err).strip()}")

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        """Create many experiments in one transaction with COPY (seeding, imports), without the live limit.

        The name and endpoint rules hold (a violation writes nothing and
        raises ``ResourceInUseError``). Returns how many were created.
        """
        pairs = list(items)

        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.cursor() as cur:
                with cur.copy(f"COPY {self._t_exp} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for exp, _ in pairs:
                        exp.version = 1
                        copy.write_row(row_params(exp))
                with cur.copy(f"COPY {self._t_hist} ({', '.join(HISTORY_COLUMNS)}) FROM STDIN") as copy:
                    for _, entry in pairs:
                        copy.write_row(entry_params(entry, history_seq(1, 0)))
                cur.execute(
                    f"UPDATE {self._t_count} SET value = (SELECT count(*) FROM {self._t_exp} WHERE status NOT IN {TERMINAL_SQL}) WHERE key = 'live'"
                )
            return len(pairs)

        try:
            return self._run(work)
        except StoreError as err:
            if isinstance(err.__cause__, pg_errors.UniqueViolation):
                raise ResourceInUseError(f"bulk create refused: {err.message}", rule="unique-name-and-live-endpoint") from None
            raise

    def save(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        exp.version = self._run(lambda conn: self._save_in(conn, exp, expected_version, entries))

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        def work(conn: psycopg.Connection[Any]) -> builtins.list[int | None]:
            versions: builtins.list[int | None] = []
            for exp, expected_version, entries in saves:
                try:
                    with conn.transaction():  # a savepoint: a stale save leaves the others
                        versions.append(self._save_in(conn, exp, expected_version, entries))
                except StaleVersionError:
                    versions.append(None)
            return versions

        return committed(saves, self._run(work))  # a retried transaction runs every save again

    def _save_in(self, conn: psycopg.Connection[Any], exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> int:
        """One save inside the caller's transaction; the version written, or ``StaleVersionError``."""
        version = expected_version + 1
        values = list(row_params(exp))
        values[_VERSION] = version
        was_live = False
        if exp.status.terminal:
            row = conn.execute(
                f"SELECT status FROM {self._t_exp} WHERE name = %s AND version = %s FOR UPDATE",
                (exp.name, expected_version),
            ).fetchone()
            was_live = row is not None and row[0] not in _TERMINAL
        cur = conn.execute(self._update, (*values[1:], exp.name, expected_version))
        if cur.rowcount != 1:
            raise _stale(exp.name)
        if entries:
            with conn.cursor() as c:
                c.executemany(self._insert_history, [entry_params(e, history_seq(version, i)) for i, e in enumerate(entries)])
        if was_live:
            conn.execute(f"UPDATE {self._t_count} SET value = value - 1 WHERE key = 'live'")
        return version

    def delete(self, name: str, expected_version: int) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            row = conn.execute(
                f"DELETE FROM {self._t_exp} WHERE name = %s AND version = %s RETURNING status",
                (name, expected_version),
            ).fetchone()
            if row is None:
                raise _stale(name, "deleted")
            conn.execute(f"DELETE FROM {self._t_hist} WHERE name = %s", (name,))
            if row[0] not in _TERMINAL:
                conn.execute(f"UPDATE {self._t_count} SET value = value - 1 WHERE key = 'live'")

        self._run(work)

    def claim(self, now: float, limit: int, owner: str, lease_seconds: float) -> list[str]:
        sql = (
            f"UPDATE {self._t_exp} SET claim_owner = %s, claim_until = %s WHERE name IN ("
            f" SELECT name FROM {self._t_exp} WHERE due_at <= %s"
            "  AND (claim_owner IS NULL OR claim_owner = %s OR claim_until <= %s)"
            "  ORDER BY due_at, name LIMIT %s FOR UPDATE SKIP LOCKED"
            ") RETURNING name, due_at"
        )

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            rows = conn.execute(sql, (owner, now + lease_seconds, now, owner, now, limit)).fetchall()
            return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]

        return self._run(work, transaction=False)

    # -- reads ----------------------------------------------------------------

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, tuple(params)).fetchall(), transaction=False)

    def get(self, name: str) -> Experiment | None:
        rows = self._fetch(f"{self._select} WHERE name = %s", (name,))
        return row_experiment(rows[0]) if rows else None

    def list(self, query: ListQuery) -> ListPage:
        sql, params = list_sql(query, self._t_exp, ph="%s", contains="strpos(name, %s) > 0")
        rows = self._fetch(sql, params)
        return ListPage([row_experiment(r) for r in rows[: query.limit]], len(rows) > query.limit)

    def history(self, name: str) -> builtins.list[HistoryEntry]:
        rows = self._fetch(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {self._t_hist} WHERE name = %s ORDER BY seq", (name,))
        return [row_entry(r) for r in rows]

    def due(self, now: float, limit: int = 100) -> builtins.list[str]:
        rows = self._fetch(f"SELECT name FROM {self._t_exp} WHERE due_at <= %s ORDER BY due_at, name LIMIT %s", (now, limit))
        return [r[0] for r in rows]

    def live_count(self) -> int:
        """How many experiments are live (not Completed or Cancelled), from the counted row."""
        return int(self._fetch(f"SELECT value FROM {self._t_count} WHERE key = 'live'")[0][0])

    def ping(self) -> None:
        self._fetch("SELECT 1")

    def close(self) -> None:
        self._pool.close()

    def __len__(self) -> int:
        return int(self._fetch(f"SELECT count(*) FROM {self._t_exp}")[0][0])

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"
