"""PostgresStore: many replicas on one PostgreSQL database, on psycopg 3.

Needs the ``postgres`` extra: ``pip install 'inference-lifecycle[postgres]'``.

The tables live in one schema (``lifecycle`` by default; tests use one of
their own), made and upgraded by the migrations of ``_migrations.py`` when
a store opens it: each step in a transaction holding an advisory lock keyed
on the schema's name, so replicas starting at once take turns and every
step runs once (a store whose schema is at this build's version takes no
lock). A schema that holds tables but no ``lifecycle_meta`` is refused,
never joined. Apart from that lock the SQL is plain: no stored procedures;
the change feed needs ``pg_current_xact_id()`` and ``pg_current_snapshot()``
(PostgreSQL 13 and later). The database enforces every rule:

- a save is ``UPDATE ... WHERE account = %s AND name = %s AND version = %s``
  with its history rows in the same transaction;
- one live experiment per endpoint of an account is a partial unique index
  on ``(account, endpoint_name)`` over the statuses that are not terminal;
- the limit on live experiments is a counted row per account
  (``live_counts``) incremented in the create's transaction only while
  below the limit; the row lock makes concurrent creates of one account on
  every replica take turns on it (other accounts' creates do not wait);
- the reconciler claims due work with ``FOR UPDATE SKIP LOCKED`` and a
  lease, so two replicas never take the same step at once;
- the change feed's positions grow in the order readers can see them, below.

**Positions on PostgreSQL.** A sequence would not do: a transaction can take
position 10, another take 11 and commit first, and a reader that has read 11
moves past 10 before 10 commits. So a change's position is its
transaction's id and its ordinal in that transaction,
``pg_current_xact_id() << 16 | ordinal``, and a reader reads only positions
below ``pg_snapshot_xmin(pg_current_snapshot()) << 16``: the oldest
transaction id still running when its statement started. Every transaction
with a smaller id has ended (committed or rolled back), and every one that
starts later gets a larger id, so the changes below that bound are final:
none can commit there afterwards. A reader that has read up to a position
finds only larger positions later, and sees each change once. The price is
a delay: a change becomes readable when every writing transaction older
than its own has ended, on the whole server (transaction ids are the
server's, not the database's). Writes here are short (bounded by
``lock_timeout``); a session left idle inside a writing transaction holds
the feed back until it ends, which ``idle_in_transaction_session_timeout``
bounds. A transaction writes at most 65,536 changes (16 bits of ordinal),
and the ids fit 47 bits: 140 trillion transactions.

A schema restored on another server (``pg_dump``, ``pg_restore``) keeps the
positions of the server it was dumped from, whose transaction ids may be
ahead of this one's: new changes would then be numbered below the restored
ones, and the restored ones unreadable until this server's ids caught up.
So the ids are offset by the schema's **position base** (the ``counters``
row ``position_base``, 0 until needed): a store that opens a schema whose
newest position is at or past what this server would number next raises
the base, under the migration lock, until new positions come after every
restored one. On the server that wrote them this never happens: every
position is below the ids to come.

A transaction that the database aborts as a serialization failure or a
deadlock (distributed databases run SERIALIZABLE) is retried.
Connections come from a small pool shared by the store's threads.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from lifecycle.errors import (
    BulkCreateError,
    NameInUseError,
    StoreError,
    StoreUnavailableError,
    install_hint,
)

try:
    import psycopg
    import psycopg_pool
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PostgresStore needs psycopg 3, which the 'postgres' extra installs: "
        + install_hint("postgres")
    ) from _err

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.stores._migrations import LOG_TABLE, Migration, MigrationReport, VersionBook
from lifecycle.stores._migrations import migrate as _migrate
from lifecycle.stores._sql import COLUMNS, HISTORY_COLUMNS, entry_params, history_seq, row_params
from lifecycle.stores._sql_statements import Dialect, Statements
from lifecycle.stores._sql_store import SqlStore
from lifecycle.stores.base import ExperimentKey

__all__ = ["PostgresStore", "migration_lock_key"]

_DIALECT = Dialect(
    name="postgresql",
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
    greatest="GREATEST",
    # the transaction's id (plus the schema's position base), then the change's ordinal in
    # it; readable once no older transaction is open (see the module docstring)
    change_key="bigint PRIMARY KEY",
    change_position="((pg_current_xact_id()::text::bigint + {base}) << 16) | %s",
    readable="position < ((pg_snapshot_xmin(pg_current_snapshot())::text::bigint + {base}) << 16)",
    arn_account="split_part({arn}, ':', 5)",
)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_RETRY = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
#: errors that are outages (retry later), by kind; a lost connection is any other OperationalError
_OUTAGES: tuple[tuple[type[psycopg.Error], str], ...] = (
    (pg_errors.DiskFull, "disk_full"),
    (pg_errors.LockNotAvailable, "lock_timeout"),
    (pg_errors.QueryCanceled, "timeout"),
    (pg_errors.ReadOnlySqlTransaction, "read_only"),
    (pg_errors.TooManyConnections, "busy"),
    (pg_errors.CannotConnectNow, "connection"),
)
_MESSAGES = {
    "disk_full": "the disk of the PostgreSQL server is full",
    "lock_timeout": "a lock the change needs was held past the lock timeout",
    "timeout": "the statement took longer than the database allows",
    "read_only": "the database is read-only (a standby, or after a failover)",
    "busy": "the PostgreSQL server has no free connection slots",
    "connection": "the PostgreSQL server is starting up or shutting down",
}
#: what making the tables raises when another store makes them at the same time
_CREATED_CONCURRENTLY = (
    pg_errors.UniqueViolation,
    pg_errors.DuplicateObject,
    pg_errors.DuplicateTable,
    pg_errors.DuplicateSchema,
)

T = TypeVar("T")
_Conn = psycopg.Connection[Any]
#: a save with more entries than this sends its history rows and changes apart
_ENTRIES_AT_ONCE = 64


def _check_schema_name(schema: str) -> None:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"schema name {schema!r} must be letters, digits and _ (not starting with a digit), at most 63"
        )


def migration_lock_key(schema: str) -> int:
    """The advisory lock (a signed 64-bit key) that migrations of ``schema`` hold."""
    digest = hashlib.blake2b(f"lifecycle migrate {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _PostgresBook(VersionBook[_Conn]):
    """The version of a schema: the largest row of its ``lifecycle_migrations`` (from version 2)."""

    advice = "give lifecycle a schema of its own (?schema=NAME in the URL)"

    def __init__(self, sql: Statements, schema: str) -> None:
        super().__init__(sql, f"PostgreSQL schema {schema!r}")
        self.schema = schema

    def tables(self, conn: _Conn) -> set[str]:
        # pg_class, not information_schema: it lists tables this role may not read as well
        rows = conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            (self.schema,),
        ).fetchall()
        return {r[0] for r in rows}

    def stamped(self, conn: _Conn, tables: set[str]) -> int | None:
        if LOG_TABLE not in tables:
            return None
        row = conn.execute(f"SELECT max(version) FROM {self.sql.prefix}{LOG_TABLE}").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def prepare(self, conn: _Conn) -> None:
        # only when missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even then
        if (
            conn.execute(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            is None
        ):
            conn.execute(f'CREATE SCHEMA "{self.schema}"')


class _Pool:
    """psycopg_pool's pool of autocommit connections, checked healthy as each is taken.

    A connection the server closed while it sat idle (a failover, a proxy
    restart, ``pg_terminate_backend``) is found by the check and replaced
    before a request uses it. A forked child makes a pool of its own.
    """

    def __init__(
        self,
        dsn: str,
        size: int,
        connect_timeout: float,
        wait_timeout: float,
        options: dict[str, Any],
    ) -> None:
        self._args = (dsn, size, connect_timeout, wait_timeout, options)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.closed = False
        self._pool = self._make()

    def _make(self) -> psycopg_pool.ConnectionPool[Any]:
        dsn, size, connect_timeout, wait_timeout, options = self._args
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout)), **options},
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=wait_timeout,
            reconnect_timeout=0,  # never give up on the database: keep trying in the background
            open=False,
            name="lifecycle",
        )
        pool.open(wait=False)
        return pool

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        if self.closed:
            raise StoreError("PostgreSQL store is closed")
        if self._pid != os.getpid():  # forked: the parent's connections are not ours
            with self._lock:
                if self._pid != os.getpid():
                    self._pool, self._pid = self._make(), os.getpid()
        return self._pool.connection()

    def close(self) -> None:
        self.closed = True
        if self._pid == os.getpid():
            self._pool.close(timeout=5)


def _outage(err: psycopg.Error, committing: bool) -> StoreUnavailableError | None:
    """The outage ``err`` is, or None when it is not one (a bug, a broken statement)."""
    for cls, kind in _OUTAGES:
        if isinstance(err, cls):
            return StoreUnavailableError(f"{_MESSAGES[kind]}; nothing was written", kind=kind)
    if isinstance(err, psycopg.OperationalError):  # the connection was lost or refused
        if committing:
            return StoreUnavailableError(
                "the connection to PostgreSQL was lost during COMMIT: the change may or may "
                "not have been written; read the experiment before repeating it",
                kind="connection",
            )
        return StoreUnavailableError(
            f"the connection to PostgreSQL was lost ({str(err).strip()[:200]}); nothing was written",
            kind="connection",
        )
    return None


class PostgresStore(SqlStore[_Conn]):
    """Experiments in PostgreSQL, in the tables of one schema.

    ``dsn`` is a libpq connection string or URL; ``schema`` the schema that
    holds the tables (created if missing); ``pool_size`` how many
    connections the store's threads share. The schema is brought to this
    build's version when the store opens (:attr:`migration` says what was
    done); with ``migrate=False`` a schema at an older version (or none) is
    refused instead. Raises :class:`~lifecycle.errors.StoreError` at
    construction when the database cannot be reached, the schema cannot be
    created, holds something else, or (``migrate=False``) is not at this
    build's version; :class:`~lifecycle.errors.SchemaTooNewError` when a
    later build migrated it.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "lifecycle",
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        retries: int = 5,
        lock_timeout: float = 5.0,
        application_name: str = "lifecycle",
        migrate: bool = True,
    ) -> None:
        _check_schema_name(schema)
        self.schema = schema
        self._retries = retries
        self._loaded_rows = {}
        #: how long a change waits for a row lock, and a request for a free connection
        self.lock_timeout = lock_timeout
        given = conninfo_to_dict(dsn)
        lock_option = f"-c lock_timeout={max(1, int(lock_timeout * 1000))}"
        options: dict[str, Any] = {
            # the DSN's own application_name wins; so operators find our connections
            "application_name": given.get("application_name") or application_name,
            "options": f"{given['options']} {lock_option}" if given.get("options") else lock_option,
        }
        try:  # one plain connection first, so a wrong address or database says why at start
            psycopg.connect(dsn, connect_timeout=max(1, int(connect_timeout)), **options).close()
        except psycopg.Error as err:
            raise StoreError(
                f"cannot open PostgreSQL store (schema {schema!r}): {str(err).strip()}"
            ) from err
        self._pool = _Pool(dsn, pool_size, connect_timeout, lock_timeout, options)
        self._sql = Statements(_DIALECT, f'"{schema}".')
        self._book = _PostgresBook(self._sql, schema)
        try:
            self.migration = _migrate(
                self._book,
                lambda: self._run(self._book.read, transaction=False),
                self._migrating,
                apply=migrate,
            )
            self._sql = Statements(_DIALECT, f'"{schema}".', position_base=self._position_base())
        except StoreError as err:
            self._pool.close()
            if isinstance(err.__cause__, psycopg.Error):  # the database's words: say what failed
                raise StoreError(
                    f"cannot open PostgreSQL store (schema {schema!r}): {err.message}"
                ) from err
            raise

    @classmethod
    def plan(
        cls, dsn: str, *, schema: str = "lifecycle", connect_timeout: float = 10.0
    ) -> MigrationReport:
        """The migrations that opening the schema would run, run none; nothing is written.

        Raises :class:`~lifecycle.errors.SchemaTooNewError` for a newer
        schema and :class:`~lifecycle.errors.StoreError` for one of
        something else or a database that cannot be reached.
        """
        _check_schema_name(schema)
        book = _PostgresBook(Statements(_DIALECT, f'"{schema}".'), schema)
        try:
            with psycopg.connect(
                dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout))
            ) as conn:
                return book.plan(book.read(conn))
        except psycopg.Error as err:
            raise StoreError(
                f"cannot open PostgreSQL store (schema {schema!r}): {type(err).__name__}: {str(err).strip()}"
            ) from err

    # -- plumbing -------------------------------------------------------------------

    def _run(self, work: Callable[[_Conn], T], *, transaction: bool = True) -> T:
        """Run ``work`` on a pooled connection, in one transaction, retrying what is safe to retry.

        A serialization failure or deadlock is retried (up to ``retries``). A
        lost connection is retried once on a fresh one when nothing can have
        been written: a read, or a transaction that had not reached its
        COMMIT (the server rolls back what a dead connection began). A
        connection lost during the COMMIT itself, and every other outage,
        raise :class:`~lifecycle.errors.StoreUnavailableError`.
        """
        delay = 0.01
        reconnected = False
        attempt = 0
        while True:
            committing = False
            try:
                with self._pool.connection() as conn:
                    if not transaction:
                        return work(conn)
                    with conn.transaction():
                        result = work(conn)
                        committing = True
                    return result
            except _RETRY:
                if attempt == self._retries:
                    raise StoreUnavailableError(
                        "the PostgreSQL database kept aborting the transaction "
                        "(serialization failures or deadlocks); nothing was written",
                        kind="busy",
                    ) from None
                attempt += 1
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except psycopg_pool.PoolTimeout as err:
                raise StoreUnavailableError(
                    f"no connection to PostgreSQL came free or could be made within "
                    f"{self.lock_timeout:g}s; nothing was written",
                    kind="timeout",
                ) from err
            except psycopg.Error as err:
                outage = _outage(err, committing)
                if outage is None:
                    raise StoreError(
                        f"PostgreSQL store: {type(err).__name__}: {str(err).strip()}"
                    ) from err
                if outage.kind == "connection" and not committing and not reconnected:
                    reconnected = True  # nothing was written: once more, on a fresh connection
                    continue
                raise outage from err

    def _transact(self, work: Callable[[_Conn], T]) -> T:
        return self._run(work)

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[Any]:
        return self._run(
            lambda conn: conn.execute(sql, tuple(params)).fetchall(), transaction=False
        )

    def _savepoint(self, conn: _Conn) -> AbstractContextManager[object]:
        return conn.transaction()

    def _migrating(self, work: Callable[[_Conn], Migration | None]) -> Migration | None:
        """``work(conn)`` in a transaction that holds the schema's migration lock."""

        def locked(conn: _Conn) -> Migration | None:
            # each statement sees what committed before it: the version read after the wait is fresh
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (migration_lock_key(self.schema),))
            try:
                return work(conn)
            except _CREATED_CONCURRENTLY:  # a build from before the lock made them meanwhile
                raise pg_errors.SerializationFailure("schema created concurrently; retry") from None

        return self._run(locked)

    def _position_base(self) -> int:
        """The schema's position base, raised first if the newest change's position is at or
        past what this server numbers next (a schema restored from a server ahead of this
        one; see the module docstring)."""
        counters, changes = self._sql.counters, self._sql.changes
        select = (
            f"SELECT coalesce((SELECT value FROM {counters} WHERE key = 'position_base'), 0),"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            f" (SELECT max(position) FROM {changes})"
        )
        raise_base = (
            f"INSERT INTO {counters} (key, value) VALUES ('position_base', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )

        def fitted(conn: _Conn) -> tuple[int, int | None]:
            """The base, and the one it must be raised to (None when it fits)."""
            row = conn.execute(select).fetchone()
            assert row is not None  # a SELECT of scalars has its one row
            base, next_id, newest = row
            ahead = newest is not None and newest >= (next_id + base) << 16
            return int(base), ((newest >> 16) + 1 - next_id) if ahead else None

        base, needed = self._run(fitted, transaction=False)
        if needed is None:  # the schema was written here: no lock, nothing written
            return base

        def fit(conn: _Conn) -> int:
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (migration_lock_key(self.schema),))
            base, needed = fitted(conn)  # another replica may have raised it meanwhile
            if needed is None:
                return base
            conn.execute(raise_base, (needed,))
            return needed

        return self._run(fit)

    def check_writable(self) -> None:
        sql = (
            f"INSERT INTO {self._sql.meta} (key, value) VALUES ('write_probe', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self._run(lambda conn: conn.execute(sql, (str(time.time()),)))

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

    def _many(self, conn: _Conn, sql: str, rows: builtins.list[tuple[Any, ...]]) -> None:
        with conn.cursor() as c:
            c.executemany(sql, rows)

    def _insert_entries(
        self,
        conn: _Conn,
        history: builtins.list[tuple[Any, ...]],
        changes: builtins.list[tuple[Any, ...]],
    ) -> None:
        if not history or not changes or len(changes) > _ENTRIES_AT_ONCE:
            super()._insert_entries(conn, history, changes)
            return
        # one statement, one round trip: the history rows and their changes
        params = [value for row in history for value in row]
        params.extend(value for row in changes for value in row)
        conn.execute(self._sql.insert_entries(len(history), len(changes)), params)

    def _delete_row(
        self, conn: _Conn, account: str, name: str, expected_version: int
    ) -> Sequence[Any] | None:
        return conn.execute(
            f"{self._sql.delete} RETURNING status", (account, name, expected_version)
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
                    for exp, entry in pairs:
                        copy.write_row(entry_params(exp.account, entry, history_seq(1, 0)))
                for statement in self._sql.recount_live:
                    cur.execute(statement)
            return len(pairs)

        try:
            return self._run(work)
        except StoreError as err:
            if isinstance(err.__cause__, pg_errors.UniqueViolation):
                raise BulkCreateError(err.message) from None
            raise

    def claim(
        self, now: float, limit: int, owner: str, lease_seconds: float
    ) -> builtins.list[ExperimentKey]:
        sql = (
            f"UPDATE {self._sql.experiments} SET claim_owner = %s, claim_until = %s"
            f" WHERE (account, name) IN ({self._sql.claimable} FOR UPDATE SKIP LOCKED)"
            " RETURNING account, name, due_at"
        )

        def work(conn: _Conn) -> builtins.list[ExperimentKey]:
            rows = conn.execute(
                sql, (owner, now + lease_seconds, now, owner, now, limit)
            ).fetchall()
            ordered = sorted(rows, key=lambda r: (r[2], r[0], r[1]))
            return [ExperimentKey(account, name) for account, name, _ in ordered]

        return self._run(work, transaction=False)

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"
