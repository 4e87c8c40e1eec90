"""SqlStore: what the SQLite and PostgreSQL stores do alike, written once.

A store on SQL keeps the rules in the database: a save is an ``UPDATE ...
WHERE account = ? AND name = ? AND version = ?`` with its history rows in
the same transaction; the live limit is a counted row per account
(``live_counts``), taken in the create's transaction only while below the
limit and given back when a live experiment ends or goes. Creates, saves, deletes and reads are written
here once, on the :class:`~lifecycle.stores._sql_statements.Statements` of
the store's dialect. Each dialect's store supplies its transactions and
reads, a savepoint, and the steps its database does in its own way: an
insert that tells which rule it broke, many rows at once, the delete, the
bulk create and the claim.

The change feed is written here too: each create and save inserts one
``changes`` row per history entry, in its transaction, so a transition and
its change commit together or not at all (a stale save's savepoint takes
its change with it). How a position is numbered and when it can be read is
the dialect's (``Dialect.change_position``, ``Dialect.readable``; see each
store's docstring).
"""

from __future__ import annotations

import builtins
import itertools
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import (
    EndpointInUseError,
    LifecycleError,
    LiveLimitError,
    StaleVersionError,
    StoreError,
    TrimmedChangesError,
)
from lifecycle.stores._sql import (
    COLUMNS,
    change_params,
    entry_params,
    history_seq,
    row_change,
    row_entry,
    row_experiment,
    row_params,
)
from lifecycle.stores._sql_statements import Statements
from lifecycle.stores.base import (
    TOKEN_SECRET_BYTES,
    ChangePage,
    ExperimentKey,
    ListPage,
    ListQuery,
    Save,
    own_transitions,
)

if TYPE_CHECKING:
    from lifecycle.stores._migrations import MigrationReport

__all__ = ["Connection", "SqlStore"]

_VERSION = COLUMNS.index("version")
_STATUS = COLUMNS.index("status")
#: rows of this process's latest reads kept to save against (one per request in flight is
#: the need; past this many, they are let go and a save writes every column)
_LOADED_ROWS = 1024
_TERMINAL = frozenset(s.value for s in ExperimentStatus if s.terminal)
#: the most changes one transaction may write where a position holds its ordinal in 16 bits
MAX_CHANGES_PER_TRANSACTION = 1 << 16
#: how many changes one trim walks, at most, to find those past the age
_TRIM_WALK = 100_000
_TRIM_BATCH = 1_000

T = TypeVar("T")


class Cursor(Protocol):
    """What the shared code reads of a cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> builtins.list[Any]: ...


class Connection(Protocol):
    """What the shared code asks of a connection: ``sqlite3`` and ``psycopg`` both have it."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Cursor: ...


C = TypeVar("C", bound=Connection)


class SqlStore(ABC, Generic[C]):
    """The Store methods both SQL stores share, on connections of type ``C``."""

    _sql: Statements
    #: what opening did to the schema: the version found, the version now, the steps run
    migration: MigrationReport
    #: ``(account, name)``: the version and the row ``get`` last read of it, so that its
    #: save sets only the columns it changed, and knows the status it leaves
    _loaded_rows: dict[tuple[str, str], tuple[int, Sequence[Any]]]

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
    def _many(self, conn: C, sql: str, rows: builtins.list[tuple[Any, ...]]) -> None:
        """Run one statement once for each of many rows (history, changes)."""

    def _insert_entries(
        self,
        conn: C,
        history: builtins.list[tuple[Any, ...]],
        changes: builtins.list[tuple[Any, ...]],
    ) -> None:
        """Insert a save's history rows and its changes (a dialect may send them together)."""
        for sql, rows in ((self._sql.insert_history, history), (self._sql.insert_change, changes)):
            if len(rows) == 1:
                conn.execute(sql, rows[0])
            elif rows:
                self._many(conn, sql, rows)

    @abstractmethod
    def _delete_row(
        self, conn: C, account: str, name: str, expected_version: int
    ) -> Sequence[Any] | None:
        """Delete the experiment at that version; its ``(status,)``, or None when there was none."""

    @abstractmethod
    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        """Create many experiments in one transaction (seeding, imports), without the live limit.

        The name and endpoint rules hold (a violation writes nothing and
        raises ``BulkCreateError``). A bulk load is an import of state, not a
        run of transitions: it writes no changes to the feed. Returns how many
        were created.
        """

    # -- writes -----------------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        self._loaded_rows.pop((exp.account, exp.name), None)  # a row read before is not this one

        def work(conn: C) -> None:
            self._insert(conn, exp)
            self._insert_entries(
                conn,
                [entry_params(exp.account, entry, history_seq(1, 0))],
                self._change_rows(exp, [entry], itertools.count()),
            )
            if not exp.status.terminal:
                cur = conn.execute(
                    self._sql.take_live, (exp.account, max_live, max_live, max_live, max_live)
                )
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
        row = conn.execute(self._sql.live_holder, (exp.account, exp.endpoint_name)).fetchone()
        return EndpointInUseError(exp.name, exp.endpoint_name, row[0] if row else None)

    def save(
        self, exp: Experiment, expected_version: int, entries: builtins.list[HistoryEntry]
    ) -> None:
        exp.version = self._transact(
            lambda conn: self._save_in(conn, exp, expected_version, entries, itertools.count())
        )

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        def work(conn: C) -> builtins.list[int | None]:
            versions: builtins.list[int | None] = []
            numbering = itertools.count()
            for exp, expected_version, entries in saves:
                try:
                    with self._savepoint(conn):  # a stale save leaves the others
                        versions.append(
                            self._save_in(conn, exp, expected_version, entries, numbering)
                        )
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
        self,
        conn: C,
        exp: Experiment,
        expected_version: int,
        entries: builtins.list[HistoryEntry],
        numbering: Iterator[int],
    ) -> int:
        """One save inside the caller's transaction; the version written, or ``StaleVersionError``.

        ``numbering`` gives the ordinal of each change in the transaction.
        """
        version = expected_version + 1
        values = list(row_params(exp))
        values[_VERSION] = version
        was_live = False
        account, name = exp.account, exp.name
        loaded = self._loaded_rows.pop((account, name), None)
        if loaded is not None and loaded[0] == expected_version:
            # the row as it is at that version (the update below finds it so, or nothing)
            old = loaded[1]
            changed = tuple(i for i in range(2, len(values)) if values[i] != old[i])
            was_live = exp.status.terminal and old[_STATUS] not in _TERMINAL
            sql = self._sql.update_of(changed)
            params: tuple[Any, ...] = (*[values[i] for i in changed], account, name)
        else:
            if exp.status.terminal:
                row = conn.execute(
                    self._sql.select_status, (account, name, expected_version)
                ).fetchone()
                was_live = row is not None and row[0] not in _TERMINAL
            sql, params = self._sql.update, (*values[2:], account, name)
        cur = conn.execute(sql, (*params, expected_version))
        if cur.rowcount != 1:
            raise StaleVersionError(exp.name)
        if entries:
            self._insert_entries(
                conn,
                [
                    entry_params(account, e, history_seq(version, i))
                    for i, e in enumerate(own_transitions(entries))
                ],
                self._change_rows(exp, entries, numbering),
            )
        if was_live:
            conn.execute(self._sql.release_live, (account,))
        return version

    def _change_rows(
        self, exp: Experiment, entries: Sequence[HistoryEntry], numbering: Iterator[int]
    ) -> builtins.list[tuple[Any, ...]]:
        """The change-feed row of each entry of ``exp`` (with its ordinal where the dialect
        wants it)."""
        account, arn = exp.account, exp.arn
        if self._sql.dialect.change_position is None:
            return [change_params(account, arn, e) for e in entries]
        rows = []
        for e in entries:
            ordinal = next(numbering)
            if ordinal >= MAX_CHANGES_PER_TRANSACTION:
                raise StoreError(
                    f"one transaction may write at most {MAX_CHANGES_PER_TRANSACTION} "
                    "changes; save fewer experiments at once"
                )
            rows.append((ordinal, *change_params(account, arn, e)))
        return rows

    def delete(self, account: str, name: str, expected_version: int) -> None:
        self._loaded_rows.pop((account, name), None)

        def work(conn: C) -> None:
            row = self._delete_row(conn, account, name, expected_version)
            if row is None:
                raise StaleVersionError(name, deleting=True)
            conn.execute(self._sql.delete_history, (account, name))
            if row[0] not in _TERMINAL:
                conn.execute(self._sql.release_live, (account,))

        self._transact(work)

    # -- reads ------------------------------------------------------------------------

    def get(self, account: str, name: str) -> Experiment | None:
        rows = self._fetch(self._sql.select_one, (account, name))
        loaded = self._loaded_rows
        if not rows:
            loaded.pop((account, name), None)
            return None
        row = rows[0]
        if len(loaded) >= _LOADED_ROWS:
            loaded.clear()
        loaded[(account, name)] = (row[_VERSION], row)
        return row_experiment(row)

    def list(self, query: ListQuery) -> ListPage:
        sql, params = self._sql.select_page(query)
        rows = self._fetch(sql, params)
        return ListPage([row_experiment(r) for r in rows[: query.limit]], len(rows) > query.limit)

    def history(self, account: str, name: str) -> builtins.list[HistoryEntry]:
        return [row_entry(r) for r in self._fetch(self._sql.select_history, (account, name))]

    def due(self, now: float, limit: int = 100) -> builtins.list[ExperimentKey]:
        return [ExperimentKey(*r) for r in self._fetch(self._sql.select_due, (now, limit))]

    # -- the change feed ------------------------------------------------------------

    def _trimmed_through(self) -> int:
        return int(self._fetch(self._sql.select_trimmed)[0][0])

    def changes(self, after: int | None, limit: int, account: str | None = None) -> ChangePage:
        start = self._trimmed_through() if after is None else after
        newest: int | None = None
        if account is None:
            rows = self._fetch(self._sql.select_changes, (start, limit))
        else:
            # the newest readable change first: every change at or below it is final, so
            # the page holds each of this account's up to it, and the reader may go on
            # from there when the page is not full
            found = self._fetch(self._sql.select_newest_readable, (start,))[0][0]
            newest = None if found is None else int(found)
            rows = (
                []
                if newest is None
                else self._fetch(self._sql.select_account_changes, (account, start, newest, limit))
            )
        if after is not None:
            # the page first, then the trim mark: a trim between the two reads is seen
            trimmed = self._trimmed_through()
            if after < trimmed:
                oldest = self._fetch(self._sql.select_oldest_change, (trimmed,))[0][0]
                raise TrimmedChangesError(after, trimmed, None if oldest is None else int(oldest))
        page = [row_change(r) for r in rows]
        if page and (newest is None or len(page) == limit):
            return ChangePage(page, page[-1].position)
        return ChangePage(page, start if newest is None else newest)

    def trim_changes(self, *, before: float | None = None, keep: int | None = None) -> int:
        def work(conn: C) -> int:
            cut = 0
            if before is not None:
                cut = self._last_older(conn, before)
            if keep is not None:
                row = conn.execute(self._sql.select_past_newest, (keep,)).fetchone()
                if row is not None:
                    cut = max(cut, int(row[0]))
            if cut:
                cut = self._below_newest(conn, cut)
            if not cut:
                return 0
            removed = conn.execute(self._sql.delete_changes, (cut,)).rowcount
            conn.execute(self._sql.mark_trimmed, (cut,))
            return removed

        return self._transact(work)

    def _below_newest(self, conn: C, cut: int) -> int:
        """``cut``, or the position before the newest change when ``cut`` would remove it:
        the newest change is always kept, so a position is never given twice (SQLite
        numbers a row one past the largest there is)."""
        newest = conn.execute(self._sql.select_newest_change).fetchone()[0]
        if newest is None or cut < newest:
            return cut
        row = conn.execute(self._sql.select_before_change, (newest,)).fetchone()[0]
        return 0 if row is None else int(row)

    def _last_older(self, conn: C, before: float) -> int:
        """The last position of the oldest run of readable changes timed before ``before``
        (at most ``_TRIM_WALK`` of them); 0 when the oldest is not."""
        cut = 0
        for _ in range(_TRIM_WALK // _TRIM_BATCH):
            rows = conn.execute(self._sql.select_change_times, (cut, _TRIM_BATCH)).fetchall()
            for position, at in rows:
                if at >= before:
                    return cut
                cut = int(position)
            if len(rows) < _TRIM_BATCH:
                break
        return cut

    def feed_cursor(self, subscription: str) -> int | None:
        rows = self._fetch(self._sql.select_cursor, (subscription,))
        return int(rows[0][0]) if rows else None

    def save_feed_cursor(self, subscription: str, position: int) -> None:
        self._transact(
            lambda conn: (
                conn.execute(self._sql.save_cursor, (subscription, position, time.time())).rowcount
            )
        )

    def live_count(self, account: str | None = None) -> int:
        """How many experiments of ``account`` (None: of every account) are live (not
        Completed or Cancelled), from the counted rows."""
        if account is None:
            return int(self._fetch(self._sql.select_all_live)[0][0])
        rows = self._fetch(self._sql.select_live, (account,))
        return int(rows[0][0]) if rows else 0

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
