"""SqlStore: what the SQLite and PostgreSQL stores do alike, written once.

A store on SQL keeps the rules in the database: a save is an ``UPDATE ...
WHERE name = ? AND version = ?`` with its history rows in the same
transaction; the live limit is a counted row, taken in the create's
transaction only while below the limit and given back when a live
experiment ends or goes. Creates, saves, deletes and reads are written
here once, on the :class:`~lifecycle.stores._sql_statements.Statements` of
the store's dialect. Each dialect's store supplies its transactions and
reads, a savepoint, and the steps its database does in its own way: an
insert that tells which rule it broke, many history rows at once, the
delete, the bulk create and the claim.
"""

from __future__ import annotations

import builtins
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import (
    EndpointInUseError,
    LifecycleError,
    LiveLimitError,
    StaleVersionError,
)
from lifecycle.stores._sql import (
    COLUMNS,
    entry_params,
    history_seq,
    row_entry,
    row_experiment,
    row_params,
)
from lifecycle.stores._sql_statements import Statements
from lifecycle.stores.base import TOKEN_SECRET_BYTES, ListPage, ListQuery, Save

if TYPE_CHECKING:
    from lifecycle.stores._migrations import MigrationReport

__all__ = ["Connection", "SqlStore"]

_VERSION = COLUMNS.index("version")
_TERMINAL = frozenset(s.value for s in ExperimentStatus if s.terminal)

T = TypeVar("T")


class Cursor(Protocol):
    """What the shared code reads of a cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What the shared code asks of a connection: ``sqlite3`` and ``psycopg`` both have it."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Cursor: ...


C = TypeVar("C", bound=Connection)


class SqlStore(ABC, Generic[C]):
    """The Store methods both SQL stores share, on connections of type ``C``."""

    _sql: Statements
    #: what opening did to the schema: the version found, the version now, the steps run
    migration: MigrationReport

    # -- what each dialect supplies -------------------------------------------------

    @abstractmethod
    def _transact(self, work: Callable[[C], T]) -> T:
        """``work(conn)`` in one write transaction: committed when it returns, else rolled back."""

    @abstractmethod
    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[Any]:
        """The rows of one read, outside a transaction."""

    @abstractmethod
    def _savepoint(self, conn: C) -> AbstractContextManager[object]:
        """A savepoint in ``conn``'s transaction that a ``StaleVersionError`` rolls back.

        A store error inside it is left to roll back the whole transaction.
        """

    @abstractmethod
    def _insert(self, conn: C, exp: Experiment) -> None:
        """Insert the row of a new experiment.

        A broken unique index raises its refusal (:func:`name_in_use`,
        :meth:`_endpoint_in_use`), which may read ``conn`` first.
        """

    @abstractmethod
    def _insert_history(self, conn: C, rows: builtins.list[tuple[Any, ...]]) -> None:
        """Insert many rows of history with the ``insert_history`` statement."""

    @abstractmethod
    def _delete_row(self, conn: C, name: str, expected_version: int) -> Sequence[Any] | None:
        """Delete the experiment at that version; its ``(status,)``, or None when there was none."""

    @abstractmethod
    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        """Create many experiments in one transaction (seeding, imports), without the live limit.

        The name and endpoint rules hold (a violation writes nothing and
        raises ``BulkCreateError``). Returns how many were created.
        """

    # -- writes -----------------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        def work(conn: C) -> None:
            self._insert(conn, exp)
            conn.execute(self._sql.insert_history, entry_params(entry, history_seq(1, 0)))
            if not exp.status.terminal:
                cur = conn.execute(self._sql.take_live, (max_live, max_live))
                if cur.rowcount != 1:
                    assert max_live is not None  # take_live refuses only under a limit
                    raise LiveLimitError(exp.name, max_live)

        exp.version = 1
        try:
            self._transact(work)
        except LifecycleError:
            exp.version = 0
            raise

    def _endpoint_in_use(self, conn: C, exp: Experiment) -> EndpointInUseError:
        """The refusal of a create whose endpoint has a live experiment, naming that one."""
        row = conn.execute(self._sql.live_holder, (exp.endpoint_name,)).fetchone()
        return EndpointInUseError(exp.name, exp.endpoint_name, row[0] if row else None)

    def save(
        self, exp: Experiment, expected_version: int, entries: builtins.list[HistoryEntry]
    ) -> None:
        exp.version = self._transact(
            lambda conn: self._save_in(conn, exp, expected_version, entries)
        )

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        def work(conn: C) -> builtins.list[int | None]:
            versions: builtins.list[int | None] = []
            for exp, expected_version, entries in saves:
                try:
                    with self._savepoint(conn):  # a stale save leaves the others
                        versions.append(self._save_in(conn, exp, expected_version, entries))
                except StaleVersionError:
                    versions.append(None)
            return versions

        versions = self._transact(work)  # a retried transaction runs every save again
        # committed: set the version of each save written (None: it was stale)
        for (exp, _, _), version in zip(saves, versions, strict=True):
            if version is not None:
                exp.version = version
        return [v is not None for v in versions]

    def _save_in(
        self, conn: C, exp: Experiment, expected_version: int, entries: builtins.list[HistoryEntry]
    ) -> int:
        """One save inside the caller's transaction; the version written, or ``StaleVersionError``."""
        version = expected_version + 1
        values = list(row_params(exp))
        values[_VERSION] = version
        was_live = False
        if exp.status.terminal:
            row = conn.execute(self._sql.select_status, (exp.name, expected_version)).fetchone()
            was_live = row is not None and row[0] not in _TERMINAL
        cur = conn.execute(self._sql.update, (*values[1:], exp.name, expected_version))
        if cur.rowcount != 1:
            raise StaleVersionError(exp.name)
        if entries:
            self._insert_history(
                conn, [entry_params(e, history_seq(version, i)) for i, e in enumerate(entries)]
            )
        if was_live:
            conn.execute(self._sql.release_live)
        return version

    def delete(self, name: str, expected_version: int) -> None:
        def work(conn: C) -> None:
            row = self._delete_row(conn, name, expected_version)
            if row is None:
                raise StaleVersionError(name, deleting=True)
            conn.execute(self._sql.delete_history, (name,))
            if row[0] not in _TERMINAL:
                conn.execute(self._sql.release_live)

        self._transact(work)

    # -- reads ------------------------------------------------------------------------

    def get(self, name: str) -> Experiment | None:
        rows = self._fetch(self._sql.select_one, (name,))
        return row_experiment(rows[0]) if rows else None

    def list(self, query: ListQuery) -> ListPage:
        sql, params = self._sql.select_page(query)
        rows = self._fetch(sql, params)
        return ListPage([row_experiment(r) for r in rows[: query.limit]], len(rows) > query.limit)

    def history(self, name: str) -> builtins.list[HistoryEntry]:
        return [row_entry(r) for r in self._fetch(self._sql.select_history, (name,))]

    def due(self, now: float, limit: int = 100) -> builtins.list[str]:
        return [r[0] for r in self._fetch(self._sql.select_due, (now, limit))]

    def live_count(self) -> int:
        """How many experiments are live (not Completed or Cancelled), from the counted row."""
        return int(self._fetch(self._sql.select_live)[0][0])

    def ping(self) -> None:
        self._fetch("SELECT 1")

    #: its calls wait on a disk or a network: a server runs them in worker threads
    blocking = True

    def release(self, owner: str) -> int:
        sql = (
            f"UPDATE {self._sql.experiments} SET claim_owner = NULL, claim_until = NULL"
            f" WHERE claim_owner = {self._sql.dialect.ph}"
        )
        return self._transact(lambda conn: conn.execute(sql, (owner,)).rowcount)

    def count_by_status(self) -> dict[str, int]:
        rows = self._fetch(f"SELECT status, COUNT(*) FROM {self._sql.experiments} GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def token_secret(self) -> bytes:
        """The deployment's secret: the first store of a database makes it, in the database."""
        rows = self._fetch(self._sql.select_token_secret)
        if not rows:

            def work(conn: C) -> Any:
                conn.execute(
                    self._sql.insert_token_secret, (secrets.token_hex(TOKEN_SECRET_BYTES),)
                )
                return conn.execute(self._sql.select_token_secret).fetchone()

            rows = [self._transact(work)]
        return bytes.fromhex(str(rows[0][0]))

    def __len__(self) -> int:
        return int(self._fetch(self._sql.select_count)[0][0])
