"""SqliteStore: the embedded default store, on the standard library's sqlite3.

One file in WAL mode, shared safely by threads (one connection per thread)
and by processes (each write a ``BEGIN IMMEDIATE`` transaction that waits up
to ``timeout`` seconds for the file's write lock). Every field is a column;
nested configurations are JSON text. The database itself enforces the rules:

- a save is ``UPDATE ... WHERE account = ? AND name = ? AND version = ?``
  with its history rows in the same transaction, or nothing;
- one live experiment per endpoint of an account is a partial unique index
  on ``(account, endpoint_name)`` over the statuses that are not terminal;
- the limit on live experiments is a counted row per account
  (``live_counts``), incremented in the create's transaction only while
  below the limit;
- the change feed is a table keyed by its rowid, the position, written in
  the transition's transaction. SQLite has one writer at a time (every
  write holds the file's lock from its start to its commit) and numbers a
  row one past the largest rowid there is, so positions are given in the
  order transactions commit: a reader that has seen a position never sees a
  smaller one appear after it, and every committed change is readable at
  once. Trimming always keeps the newest change, so no position is given
  twice (``AUTOINCREMENT`` would too, at a second page written per commit).

The WAL is copied back into the database file (a checkpoint) by a thread of
the store's own, on a connection of its own: after every
``checkpoint_commits`` commits and at least every ``checkpoint_seconds``
while there are commits to copy. The writers' connections never checkpoint
(``wal_autocheckpoint = 0``), so no write waits for the copy and its flush to
disk, nor do the writes grouped with it. A checkpoint never blocks a writer
(``PASSIVE``) until the WAL holds ``checkpoint_restart_pages``; then one
checkpoint holds new writers off for at most 0.1 s so that the WAL starts
over (back-to-back writes would otherwise grow it without end). The last
connection to close checkpoints what is left.

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
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast
from urllib.parse import quote

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.errors import (
    BulkCreateError,
    NameInUseError,
    StaleVersionError,
    StoreError,
    StoreUnavailableError,
)
from lifecycle.stores._migrations import Migration, MigrationReport, VersionBook
from lifecycle.stores._migrations import migrate as _migrate
from lifecycle.stores._sql import entry_params, history_seq, row_params
from lifecycle.stores._sql_statements import Dialect, Statements
from lifecycle.stores._sql_store import SqlStore
from lifecycle.stores.base import ExperimentKey, WouldWait

__all__ = ["SqliteStore"]


def _arn_account(arn: str) -> str:
    """The account field of an ARN in SQLite's words (it has no split): past the fourth
    ``:``, up to the fifth."""
    rest = arn
    for _ in range(4):
        rest = f"substr({rest}, instr({rest}, ':') + 1)"
    return f"substr({rest}, 1, instr({rest}, ':') - 1)"


_DIALECT = Dialect(
    name="sqlite",
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
    greatest="max",
    # one writer at a time: the rowid's numbering is the commit order (see the docstring)
    change_key="INTEGER PRIMARY KEY",
    change_position=None,
    readable=None,
    arn_account=_arn_account("{arn}"),
)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: SQLite's primary result codes that are outages (retry later), not bugs: the kind of each
_OUTAGES = {
    5: "lock_timeout",  # SQLITE_BUSY: another connection holds the lock past the busy timeout
    6: "lock_timeout",  # SQLITE_LOCKED
    7: "busy",  # SQLITE_NOMEM
    8: "read_only",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR (a full disk shows as this too, told apart below)
    13: "disk_full",  # SQLITE_FULL
    14: "io",  # SQLITE_CANTOPEN
}
#: the result codes of a read that would have waited for a lock (SQLITE_BUSY, SQLITE_LOCKED,
#: and SQLITE_PROTOCOL: SQLite's own retries for the WAL's locks ran out)
_WAITS = frozenset({5, 6, 15})
#: SQLITE_INTERRUPT: a read stopped by its progress handler, past its budget
_INTERRUPTED = 9
#: how often (in SQLite's virtual machine steps) a read without waiting checks its budget
_BUDGET_OPCODES = 2000
#: below this much free space on the store's disk, the store says it cannot take a write
MIN_FREE_BYTES = 1 << 20


class _SqliteBook(VersionBook[sqlite3.Connection]):
    """The version of a SQLite file: ``PRAGMA user_version`` (0 before version 2)."""

    advice = "give a new file or a lifecycle store"

    def tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"
        )
        return {r[0] for r in rows}

    def stamped(self, conn: sqlite3.Connection, tables: set[str]) -> int | None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        return version or None

    def stamp(self, conn: sqlite3.Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")  # in the step's transaction


_T = TypeVar("_T")


class _Pending:
    """One write waiting for a group commit: its work, and how it went."""

    __slots__ = ("error", "leads", "result", "woken", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        #: this write's caller commits the next group (it holds the turn)
        self.leads = False
        #: set when the transaction holding this write has ended, or its caller is given
        #: the turn (only a write still queued is: never one in a group under way)
        self.woken = threading.Event()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class _NoWaiting:
    """:meth:`SqliteStore.without_waiting`: how deep the thread is in such blocks (its
    ``nowait``), one more while in this one; nested, or entered again, it counts each."""

    __slots__ = ("_local",)

    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        local = self._local
        local.nowait = getattr(local, "nowait", 0) + 1

    def __exit__(self, *exc: object) -> None:
        self._local.nowait -= 1


#: the longest the checkpoint thread holds writers off to start the WAL over
_RESTART_WAIT = 0.1


class _Checkpointer:
    """The thread that checkpoints a store's WAL, woken by its commits or by time."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._wake = threading.Event()
        self._stopped = False
        #: the process that started the thread (a forked child starts its own)
        self.pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, name="lifecycle-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=self._store._timeout + 1)

    def _restart(self, conn: sqlite3.Connection) -> None:
        """Copy the whole WAL and hold new writers off until its readers have left it,
        so the next write starts the file over (``RESTART``).

        A ``PASSIVE`` checkpoint copies every frame, but the WAL starts over only when a
        write begins after that copy ends and before any other write: back-to-back writes
        never leave that gap, and the file grows without end. So once it holds
        ``checkpoint_restart_pages`` this makes the gap, waiting for it at most
        ``_RESTART_WAIT`` seconds (a reader slow to leave keeps writers waiting that long
        at most; the next round tries again).
        """
        store = self._store
        # this process's writers wait on the store's own lock, so the checkpoint has the file
        # at once; SQLite's busy handler waits only for other processes' writers and readers
        if not store._write_lock.acquire(timeout=_RESTART_WAIT):
            return
        conn.execute(f"PRAGMA busy_timeout = {int(_RESTART_WAIT * 1000)}")
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            store._write_lock.release()
            conn.execute(f"PRAGMA busy_timeout = {int(store._timeout * 1000)}")

    def _run(self) -> None:
        store = self._store
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopped:
                self._wake.wait(store.checkpoint_seconds)
                self._wake.clear()
                if self._stopped:
                    break
                if not store._uncheckpointed:
                    continue
                store._uncheckpointed = 0
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            store.path, timeout=store._timeout, isolation_level=None
                        )
                        conn.execute(f"PRAGMA synchronous = {store.synchronous}")
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= store.checkpoint_restart_pages:
                        self._restart(conn)
                except sqlite3.Error:
                    # a full disk, a file gone: the writers meet it and answer for it; the
                    # next commit wakes this thread to try again
                    if conn is not None:
                        with suppress(sqlite3.Error):
                            conn.close()
                    conn = None
        finally:
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()


class SqliteStore(SqlStore[sqlite3.Connection]):
    """Experiments in one SQLite file (WAL), safe across threads and processes.

    ``path`` is a file path (created if missing). ``synchronous`` is
    ``"FULL"`` (the default: an acknowledged transition survives a power
    cut) or ``"NORMAL"`` (faster; after a power cut the last transactions
    may be lost, the file stays sound). ``timeout`` bounds how long a write
    waits for the file's write lock (this process's other writers and any
    other process's), after which it raises
    :class:`~lifecycle.errors.StoreUnavailableError` and writes nothing.

    Outages met mid-request (the lock held past ``timeout``, a full disk, an
    I/O error, a file gone read-only) raise ``StoreUnavailableError`` (503,
    retry); anything else is a ``StoreError``.

    The file's schema is brought to this build's version when it opens
    (``_migrations.py``; a new file is made at it), each step under the
    file's write lock, so processes opening one file at once take turns and
    every step runs once; :attr:`migration` says what was done. With
    ``migrate=False`` a file at an older version (or a new file) is refused
    instead.

    Raises :class:`~lifecycle.errors.StoreError` at construction when the
    file is not a database, belongs to something else, cannot be written,
    or (``migrate=False``) is not at this build's version;
    :class:`~lifecycle.errors.SchemaTooNewError` when a later build
    migrated it. The error comes at start and not mid-request.
    """

    _sql = Statements(_DIALECT)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        timeout: float = 5.0,
        migrate: bool = True,
        checkpoint_commits: int = 100,
        checkpoint_seconds: float = 1.0,
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
        # writes waiting for the lock; whoever takes it commits them all (group commit)
        self._queue: builtins.list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._turn_taken = False  # a caller is committing a group, or about to
        #: write transactions committed through group commit (each one fsync)
        self.commits = 0
        #: commits that wake the checkpoint thread at once (about SQLite's own 1,000 pages)
        self.checkpoint_commits = checkpoint_commits
        #: the longest a commit waits to be checkpointed
        self.checkpoint_seconds = checkpoint_seconds
        #: the most saves one caller that saves many (the reconciler's round) puts in one
        #: transaction: the file has one writer at a time, and requests' writes queue
        #: behind a long one. With 16 Stops in flight over HTTP, the p99 of a Stop is 19 to
        #: 20 ms at 40, 25 to 27 ms with a round of 100 in one; at 16 it is 16 to 20 ms, but
        #: under a flood of Creates the reconciler falls behind (a new experiment Running
        #: half a second after its Create, not 30 to 70 ms)
        self.save_chunk = 40
        #: the longest a read without waiting runs (on the server's event loop) before it
        #: is stopped and made again where it may take its time: a Describe takes some
        #: microseconds; a List whose filter scans many rows can take far longer
        self.read_budget = 0.002
        #: the WAL's size in pages past which a checkpoint makes writers wait to start it
        #: over (four times SQLite's own checkpoint threshold)
        self.checkpoint_restart_pages = 4000
        self._uncheckpointed = 0  # commits since the last checkpoint began
        self._checkpointer: _Checkpointer | None = None
        self._closed = False
        self._loaded_rows = {}
        self._book = _SqliteBook(self._sql, f"SQLite file {self.path!r}")
        if os.path.isdir(self.path):
            raise StoreError(f"cannot open SQLite store {self.path!r}: it is a directory")
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            found = "is not a directory" if os.path.exists(directory) else "does not exist"
            raise StoreError(
                f"cannot open SQLite store {self.path!r}: {directory!r} {found} (the store "
                "makes its file, not the directories above it)"
            )
        if not migrate and not os.path.exists(self.path):
            raise StoreError(
                f"cannot open SQLite store {self.path!r}: there is no such file, and with "
                "migrate=false none is made (`lifecycle migrate --store URL` makes it)"
            )
        try:
            conn = self._conn()
            mode = self._use_wal(conn)
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot open SQLite store {self.path!r}: it cannot use WAL mode (journal mode is {mode})"
                )
            self.migration = self._open_schema(conn, migrate)
        except sqlite3.Error as err:
            self.close()
            raise StoreError(f"cannot open SQLite store {self.path!r}: {err}") from err
        except StoreError:
            self.close()
            raise

    def _use_wal(self, conn: sqlite3.Connection) -> str:
        """Switch the file to WAL (it stays so), within the lock bound.

        Openers of one new file race to switch it; SQLite answers the loser "database is
        locked" at once, without its busy handler (waiting could deadlock there), so the
        switch is tried again until the bound has passed.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.001
        while True:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            if mode.lower() == "wal":
                return mode
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as err:
                code = getattr(err, "sqlite_errorcode", 0) & 0xFF
                if code != sqlite3.SQLITE_BUSY or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    # -- connections ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        conn = self._connect(
            self._timeout,
            f"PRAGMA busy_timeout = {int(self._timeout * 1000)}",
            f"PRAGMA synchronous = {self.synchronous}",
            "PRAGMA wal_autocheckpoint = 0",  # the checkpoint thread's work
        )
        local.conn, local.pid = conn, os.getpid()
        return conn

    def _connect(self, timeout: float, *pragmas: str) -> sqlite3.Connection:
        """A new connection to the file, set up by ``pragmas``, closed with the store."""
        if self._closed:
            raise StoreError(f"SQLite store {self.path!r} is closed")
        conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        for pragma in pragmas:
            conn.execute(pragma)
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def without_waiting(self) -> _NoWaiting:
        """A block in which this thread's calls on the store never wait: reads go to a
        connection of the thread's own whose busy timeout is 0 (a read that would wait
        for a lock raises :class:`WouldWait` at once), and a write raises
        :class:`WouldWait` before it starts. Other threads' calls are not affected.

        In WAL mode a read waits for no writer, this process's or another's, so the
        server reads Describe and List so on its event loop; the rare read that would
        wait (SQLite recovering the WAL of a process that died, a file opened elsewhere
        in ``locking_mode=EXCLUSIVE``) is made again in a worker thread, and so is one
        that runs past :attr:`read_budget` (SQLite stops it, having changed nothing). The
        budget is checked between SQLite's steps: it does not bound a wait on the disk
        itself (a page not in the OS's cache), which a read in a thread would wait too."""
        return _NoWaiting(self._local)

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection for reads without waiting: busy timeout 0, reads only."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "reader", None)
        if conn is not None and local.reader_pid == os.getpid():
            return conn
        conn = self._connect(0, "PRAGMA busy_timeout = 0", "PRAGMA query_only = 1")
        local.read_deadline = 0.0

        def over_budget() -> bool:  # every _BUDGET_OPCODES of SQLite's work on the read
            deadline: float = local.read_deadline
            return time.monotonic() > deadline

        conn.set_progress_handler(over_budget, _BUDGET_OPCODES)
        local.reader, local.reader_pid = conn, os.getpid()
        return conn

    def _would_wait(self, err: sqlite3.Error | None = None) -> WouldWait:
        if err is None:
            return WouldWait(
                f"a write to the SQLite store {self.path!r} waits for its turn and its flush "
                "to disk: not made without waiting"
            )
        return WouldWait(f"a read of the SQLite store {self.path!r} would wait: {err}")

    def _error(self, err: sqlite3.Error, failed: str = "SQLite store") -> StoreError:
        """What ``err`` is to a caller: an outage (503, retry) or a store error.

        ``failed`` starts a store error's message (``cannot open SQLite store`` while
        the store opens)."""
        code = getattr(err, "sqlite_errorcode", None)
        kind = None if code is None else _OUTAGES.get(code & 0xFF)
        if kind is None:
            return StoreError(f"{failed} {self.path!r}: {err}")
        if kind == "lock_timeout":
            message = (
                f"the SQLite store's write lock was held by another connection for more than "
                f"{self._timeout:g}s; nothing was written"
            )
        elif kind == "disk_full" or (kind == "io" and self._disk_full()):
            kind = "disk_full"
            message = (
                f"the disk holding the SQLite store {self.path!r} is full; nothing was written"
            )
        else:
            message = f"SQLite store {self.path!r}: {err}"
        if failed != "SQLite store":
            message = f"{failed} {self.path!r}: {message}"
        return StoreUnavailableError(message, kind=kind)

    def _free_bytes(self) -> int | None:
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def _disk_full(self) -> bool:
        free = self._free_bytes()
        return free is not None and free < MIN_FREE_BYTES

    def _lock_timeout(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the SQLite store's write lock did not come free within {self._timeout:g}s "
            "(this process's other writes were ahead); nothing was written",
            kind="lock_timeout",
        )

    def _acquire(self) -> float:
        """Take this process's write lock within the bound; when the wait began."""
        started = time.monotonic()
        if not self._write_lock.acquire(timeout=self._timeout):
            raise self._lock_timeout()
        return started

    @contextmanager
    def _transaction(self, started: float, failed: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``), the write lock held; the
        wait for another process's lock is what is left of the bound since ``started``."""
        try:
            conn = self._conn()
            waited = time.monotonic() - started
            if waited > 0.001:
                remaining = max(1, int((self._timeout - waited) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {remaining}")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                finally:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            else:
                conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise self._error(err, failed) from err
        try:
            yield conn
            conn.execute("COMMIT")
            self._committed()
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, failed) from exc
            raise

    def _committed(self) -> None:
        """Count a commit (the write lock held) for the checkpoint thread, waking it
        after ``checkpoint_commits``; started by this process's first commit."""
        self._uncheckpointed += 1
        checkpointer = self._checkpointer
        if checkpointer is None or checkpointer.pid != os.getpid():
            if self._closed:
                return
            checkpointer = self._checkpointer = _Checkpointer(self)
        if self._uncheckpointed >= self.checkpoint_commits:
            checkpointer.wake()

    @contextmanager
    def _write(self, *, opening: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction that holds the file's write lock from its start.

        The wait for the lock is bounded by ``timeout`` in all: this process's
        other writers first, then SQLite's busy handler for another process's.
        """
        if getattr(self._local, "nowait", False):
            raise self._would_wait()
        started = self._acquire()
        try:
            with self._transaction(
                started, "cannot open SQLite store" if opening else "SQLite store"
            ) as conn:
                yield conn
        finally:
            self._write_lock.release()

    def _transact(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work(conn)`` in a write transaction, committed with whatever other writes of
        this process are waiting at the same moment: group commit, one fsync for all.

        Each write runs in a savepoint of its own, so its refusal (a stale
        version, a name in use) rolls back only itself and is raised to its
        caller alone; each caller returns only once the transaction holding
        its write has committed. A failure of the transaction itself (the lock
        held elsewhere past the bound, a full disk) is raised to every caller
        in it, as it would have been alone.

        One caller at a time holds the turn: it takes the write lock and
        commits every write waiting then. The others wait on their own event,
        set by the caller that commits their write or, when the turn is handed
        on to them, by the caller before: no write's thread queues for the lock
        only to find its write already committed. A write still waiting once
        ``timeout`` has passed is taken out and refused, writing nothing.
        """
        local = self._local
        if getattr(local, "writing", False):  # a write inside a write: same transaction
            return work(self._conn())
        if getattr(local, "nowait", False):
            raise self._would_wait()
        started = time.monotonic()
        mine = _Pending(work)
        with self._queue_lock:
            self._queue.append(mine)
            if not self._turn_taken:
                self._turn_taken = mine.leads = True
        if not mine.leads:
            mine.woken.wait(self._timeout)
            with self._queue_lock:
                waiting = not mine.leads and mine in self._queue
                if waiting:
                    self._queue.remove(mine)
            if waiting:
                raise self._lock_timeout()
            if not mine.leads:
                # in a group whose transaction is under way: answered when it ends (as long
                # as that group's own wait, no longer)
                mine.woken.wait()
                return cast(_T, mine.outcome())
        try:
            self._lead(mine, started)
        finally:
            self._pass_turn()
        return cast(_T, mine.outcome())

    def _lead(self, mine: _Pending, started: float) -> None:
        """Take the write lock within what is left of the bound, then commit the group."""
        remaining = self._timeout - (time.monotonic() - started)
        if not self._write_lock.acquire(timeout=max(0.0, remaining)):
            with self._queue_lock:
                if mine in self._queue:
                    self._queue.remove(mine)
            raise self._lock_timeout()
        try:
            with self._queue_lock:
                batch, self._queue = self._queue, []
            self._commit_group(batch, started)
        finally:
            self._write_lock.release()

    def _pass_turn(self) -> None:
        """Give the turn to the longest-waiting write, or free it."""
        with self._queue_lock:
            if self._queue:
                following = self._queue[0]
                following.leads = True
                following.woken.set()
            else:
                self._turn_taken = False

    def _run_in_savepoint(self, conn: sqlite3.Connection, pending: _Pending) -> None:
        """One write of a group: its failure rolls back only itself, and is its alone."""
        conn.execute("SAVEPOINT lifecycle_group")
        try:
            pending.result = pending.work(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO lifecycle_group")
            pending.error = self._error(exc) if isinstance(exc, sqlite3.Error) else exc
        conn.execute("RELEASE lifecycle_group")

    def _commit_group(self, batch: builtins.list[_Pending], started: float) -> None:
        """Run every waiting write in one transaction, then tell each how it went."""
        self._local.writing = True
        try:
            with self._transaction(started, "SQLite store") as conn:
                if len(batch) == 1:  # alone: its failure rolls the transaction back
                    batch[0].result = batch[0].work(conn)
                else:
                    for pending in batch:
                        self._run_in_savepoint(conn, pending)
            self.commits += 1
        except Exception as exc:  # the transaction failed: each write fails as it would alone
            for pending in batch:
                if pending.error is None:
                    pending.error = exc
                    pending.result = None
        finally:
            self._local.writing = False
            for pending in batch:
                pending.woken.set()

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> builtins.list[Any]:
        if getattr(self._local, "nowait", False):
            return self._fetch_without_waiting(sql, params)
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as err:
            raise self._error(err) from err

    def _fetch_without_waiting(self, sql: str, params: Iterable[Any]) -> builtins.list[Any]:
        try:
            reader = self._reader()
        except sqlite3.Error as err:  # out of descriptors, say: where it may wait, it may say
            raise WouldWait(
                f"cannot open a reader of the SQLite store {self.path!r}: {err}"
            ) from err
        self._local.read_deadline = time.monotonic() + self.read_budget
        try:
            return reader.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as err:
            code = getattr(err, "sqlite_errorcode", 0) & 0xFF
            if code in _WAITS:
                raise self._would_wait(err) from err
            if code == _INTERRUPTED:
                raise WouldWait(
                    f"a read of the SQLite store {self.path!r} ran past its "
                    f"{self.read_budget * 1000:g} ms without waiting (a List that scans)"
                ) from err
            raise self._error(err) from err
        except sqlite3.Error as err:
            raise self._error(err) from err

    def check_writable(self) -> None:
        free = self._free_bytes()
        if free is not None and free < MIN_FREE_BYTES:
            raise StoreUnavailableError(
                f"the disk holding the SQLite store {self.path!r} is full ({free} bytes free)",
                kind="disk_full",
            )
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('write_probe', ?)",
                (str(time.time()),),
            )

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

    def _open_schema(self, conn: sqlite3.Connection, migrate: bool) -> MigrationReport:
        """Bring the file to this build's schema version (or refuse it), then write once."""

        def locked(work: Callable[[sqlite3.Connection], Migration | None]) -> Migration | None:
            with self._write(opening=True) as conn:  # BEGIN IMMEDIATE: one migrating process
                return work(conn)

        report = _migrate(self._book, lambda: self._book.read(conn), locked, apply=migrate)
        # a real write at start, so a read-only file fails here, not mid-request
        with self._write(opening=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lifecycle_meta (key, value) VALUES ('opened_by', ?)",
                (str(os.getpid()),),
            )
        return report

    @classmethod
    def plan(cls, path: str | os.PathLike[str]) -> MigrationReport:
        """The migrations that opening ``path`` would run, run none; the file is only read.

        Raises :class:`~lifecycle.errors.SchemaTooNewError` for a newer
        schema and :class:`~lifecycle.errors.StoreError` for a file that is
        not a lifecycle store.
        """
        path = os.fspath(path)
        book = _SqliteBook(cls._sql, f"SQLite file {path!r}")
        if not os.path.exists(path):
            return book.plan(0)
        try:
            conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open SQLite store {path!r}: {err}") from err
        try:
            return book.plan(book.read(conn))
        except sqlite3.Error as err:
            raise StoreError(f"cannot open SQLite store {path!r}: {err}") from err
        finally:
            conn.close()

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

    def _many(
        self, conn: sqlite3.Connection, sql: str, rows: builtins.list[tuple[Any, ...]]
    ) -> None:
        conn.executemany(sql, rows)

    def _delete_row(
        self, conn: sqlite3.Connection, account: str, name: str, expected_version: int
    ) -> Sequence[Any] | None:
        key = (account, name, expected_version)
        row: Sequence[Any] | None = conn.execute(self._sql.select_status, key).fetchone()
        if row is not None:
            conn.execute(self._sql.delete, key)
        return row

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        rows: builtins.list[tuple[Any, ...]] = []
        entries: builtins.list[tuple[Any, ...]] = []
        for exp, entry in items:
            exp.version = 1
            rows.append(row_params(exp))
            entries.append(entry_params(exp.account, entry, history_seq(1, 0)))
        with self._write() as conn:
            try:
                conn.executemany(self._sql.insert, rows)
            except sqlite3.IntegrityError as err:
                raise BulkCreateError(str(err)) from None
            self._many(conn, self._sql.insert_history, entries)
            for statement in self._sql.recount_live:
                conn.execute(statement)
        return len(rows)

    def claim(
        self, now: float, limit: int, owner: str, lease_seconds: float
    ) -> builtins.list[ExperimentKey]:
        if not self._fetch("SELECT 1 FROM experiments WHERE due_at <= ? LIMIT 1", (now,)):
            return []  # nothing due: no write lock taken (the server polls twice a second)

        def work(conn: sqlite3.Connection) -> builtins.list[ExperimentKey]:
            keys = [
                ExperimentKey(*r)
                for r in conn.execute(self._sql.claimable, (now, owner, now, limit))
            ]
            until = now + lease_seconds
            conn.executemany(
                "UPDATE experiments SET claim_owner = ?, claim_until = ?"
                " WHERE account = ? AND name = ?",
                [(owner, until, *key) for key in keys],
            )
            return keys

        return self._transact(work)  # grouped with the requests' writes: no fsync of its own

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        self._closed = True
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and checkpointer.pid == os.getpid():
            checkpointer.stop()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, synchronous={self.synchronous!r})"
