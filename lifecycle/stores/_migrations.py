"""The versions of the SQL stores' schema: an ordered list of forward migrations, and how they run.

Version 0 is a database with nothing in it; version ``n`` is what the first
``n`` entries of :data:`MIGRATIONS` make of it. Both SQL stores run the same
list (each migration writes its statements from the dialect's
:class:`~lifecycle.stores._sql_statements.Statements`), so a new database and
an old one meet at the same layout by the same steps.

Where the version is kept:

- **PostgreSQL**: the table ``lifecycle_migrations`` in the store's schema,
  one row per version (``version``, ``description``, ``applied_at`` in epoch
  seconds, NULL for version 1, which was there before versions were
  recorded); the schema's version is the largest.
- **SQLite**: ``PRAGMA user_version``, with the same table as a log.

Both also set ``lifecycle_meta``'s ``schema_version`` row to the version:
builds from before versions were recorded read that row and refuse anything
but ``1``, so they do not run on a schema they do not know.

**Version 1** is the layout those builds made (experiments, history,
counters, lifecycle_meta and the indexes). Such a database has no stamp; it
is recognised by its ``lifecycle_meta`` row ``schema_version = '1'`` and
migrated from there, its rows untouched. **Version 2** adds the log (and, in
SQLite, the ``user_version`` stamp). **Version 3** adds the change feed:
``changes``, ``feed_cursors`` and the ``counters`` row ``changes_trimmed``.
**Version 4** puts experiments in accounts: ``experiments`` and ``history``
are keyed by ``account`` first (every row gets the account of its ARN; in
SQLite the two tables are made again, as SQLite cannot change a primary
key), the live-endpoint index and the List indexes start with it,
``changes`` gains it (and an index on it), and the ``counters`` row
``live`` becomes a row per account in ``live_counts``.

Opening a store (:func:`migrate`): read the version without a lock; a
version newer than :data:`LATEST` is refused (:class:`SchemaTooNewError`);
an older one, when migrating, takes the dialect's lock and runs each missing
step in a transaction of its own: read the version again, run the step,
record the new version, commit. A second process that migrates at the same
time waits for the lock and finds the step done, so every step runs once.

A database with tables but no ``lifecycle_meta`` is something else's and is
refused, never joined: the store creates its tables only where there are
none.

**Adding a version**: write a function that returns the statements of the
change (new tables, columns, indexes; keep the dialect's words in
:class:`Dialect`), append ``Migration(LATEST + 1, "what it adds", function)``
to :data:`MIGRATIONS`, and name any new table in ``Statements``. A released
migration is never edited: databases have run it already.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from lifecycle.errors import SchemaTooNewError, StoreError
from lifecycle.stores._sql_statements import TERMINAL_SQL, Statements
from lifecycle.stores._sql_store import Connection

__all__ = ["LATEST", "MIGRATIONS", "Migration", "MigrationReport", "VersionBook", "migrate"]

#: the tables that say a database is a lifecycle store, and since version 2 its versions
META_TABLE = "lifecycle_meta"
LOG_TABLE = "lifecycle_migrations"

C = TypeVar("C", bound=Connection)


@dataclass(frozen=True, slots=True)
class Migration:
    """One forward step: the schema at ``version - 1`` becomes the schema at ``version``."""

    version: int
    description: str
    #: the statements of the step, written for one dialect and schema
    statements: Callable[[Statements], list[str]]


def _v1_tables(sql: Statements) -> list[str]:
    """The layout of the builds before versions were recorded, exactly."""
    d, exp = sql.dialect, sql.experiments
    return [
        f"CREATE TABLE IF NOT EXISTS {sql.meta} (key {d.text} PRIMARY KEY, value {d.text} NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS {exp} (
            name {d.key} PRIMARY KEY,
            arn {d.text} NOT NULL,
            endpoint_name {d.text} NOT NULL,
            role_arn {d.text} NOT NULL,
            type {d.text} NOT NULL,
            status {d.key} NOT NULL,
            description {d.text},
            kms_key {d.text},
            status_reason {d.text},
            start_time {d.real} NOT NULL,
            end_time {d.real} NOT NULL,
            creation_time {d.real} NOT NULL,
            last_modified_time {d.real} NOT NULL,
            completion_time {d.real},
            version {d.bigint} NOT NULL,
            entered_at {d.real} NOT NULL,
            due_at {d.real},
            update_origin {d.text},
            desired_state {d.text},
            attempts {d.integer} NOT NULL,
            last_error {d.text},
            variants {d.text} NOT NULL,
            shadow_mode_config {d.text} NOT NULL,
            data_storage_config {d.text},
            tags {d.text} NOT NULL,
            stop_actions {d.text},
            claim_owner {d.text},
            claim_until {d.real}
        )""",
        f"CREATE INDEX IF NOT EXISTS experiments_created ON {exp} (creation_time, name)",
        f"CREATE INDEX IF NOT EXISTS experiments_status_created ON {exp} (status, creation_time, name)",
        f"CREATE INDEX IF NOT EXISTS experiments_status_name ON {exp} (status, name)",
        f"CREATE INDEX IF NOT EXISTS experiments_due ON {exp} (due_at, name) WHERE due_at IS NOT NULL",
        f"CREATE UNIQUE INDEX IF NOT EXISTS experiments_live_endpoint ON {exp} (endpoint_name)"
        f" WHERE status NOT IN {TERMINAL_SQL}",
        f"""CREATE TABLE IF NOT EXISTS {sql.history} (
            name {d.key} NOT NULL,
            seq {d.bigint} NOT NULL,
            time {d.real} NOT NULL,
            event {d.text} NOT NULL,
            from_status {d.text},
            to_status {d.text} NOT NULL,
            reason {d.text},
            request_id {d.text},
            version {d.bigint} NOT NULL,
            PRIMARY KEY (name, seq)
        ){d.history_options}""",
        f"CREATE TABLE IF NOT EXISTS {sql.counters} (key {d.text} PRIMARY KEY, value {d.bigint} NOT NULL)",
        f"""{d.insert_new} {sql.counters} (key, value)
            SELECT 'live', count(*) FROM {exp} WHERE status NOT IN {TERMINAL_SQL}{d.if_new}""",
        f"""{d.insert_new} {sql.meta} (key, value) VALUES ('schema_version', '1'){d.if_new}""",
    ]


def _v2_version_log(sql: Statements) -> list[str]:
    d, log = sql.dialect, sql.prefix + LOG_TABLE
    first = MIGRATIONS[0].description.replace("'", "''")
    return [
        f"""CREATE TABLE {log} (
            version {d.integer} PRIMARY KEY,
            description {d.text} NOT NULL,
            applied_at {d.real}
        )""",
        f"INSERT INTO {log} (version, description, applied_at) VALUES (1, '{first}', NULL)",
    ]


def _v3_change_feed(sql: Statements) -> list[str]:
    """The change feed: one row per committed transition (its position, then the history
    entry and the experiment's ARN), the position each webhook subscription has delivered
    up to, and the last position the retention removed. A database that had experiments
    before starts its feed empty: their earlier transitions are in their history only."""
    d = sql.dialect
    return [
        f"""CREATE TABLE {sql.changes} (
            position {d.change_key},
            name {d.key} NOT NULL,
            arn {d.text} NOT NULL,
            time {d.real} NOT NULL,
            event {d.text} NOT NULL,
            from_status {d.text},
            to_status {d.text} NOT NULL,
            reason {d.text},
            request_id {d.text},
            machine {d.text} NOT NULL,
            variant {d.text}
        )""",
        f"""CREATE TABLE {sql.cursors} (
            subscription {d.text} PRIMARY KEY,
            position {d.bigint} NOT NULL,
            updated_at {d.real} NOT NULL
        )""",
        f"INSERT INTO {sql.counters} (key, value) VALUES ('changes_trimmed', 0)",
    ]


#: the columns of the experiments and history tables of version 4 after ``account``, each
#: with its type (a :class:`Dialect` word) and whether it may be NULL: SQLite makes the
#: tables anew from these
_V4_EXPERIMENT_COLUMNS = (
    ("name", "key", False), ("arn", "text", False), ("endpoint_name", "text", False),
    ("role_arn", "text", False), ("type", "text", False), ("status", "key", False),
    ("description", "text", True), ("kms_key", "text", True), ("status_reason", "text", True),
    ("start_time", "real", False), ("end_time", "real", False),
    ("creation_time", "real", False), ("last_modified_time", "real", False),
    ("completion_time", "real", True), ("version", "bigint", False),
    ("entered_at", "real", False), ("due_at", "real", True), ("update_origin", "text", True),
    ("desired_state", "text", True), ("attempts", "integer", False),
    ("last_error", "text", True), ("variants", "text", False),
    ("shadow_mode_config", "text", False), ("data_storage_config", "text", True),
    ("tags", "text", False), ("stop_actions", "text", True), ("claim_owner", "text", True),
    ("claim_until", "real", True),
)  # fmt: skip
_V4_HISTORY_COLUMNS = (
    ("name", "key", False), ("seq", "bigint", False), ("time", "real", False),
    ("event", "text", False), ("from_status", "text", True), ("to_status", "text", False),
    ("reason", "text", True), ("request_id", "text", True), ("version", "bigint", False),
)  # fmt: skip


def _v4_table(
    sql: Statements, table: str, columns: tuple[tuple[str, str, bool], ...], key: str
) -> str:
    """``CREATE TABLE`` of a version-4 table: ``account``, then ``columns``, keyed by ``key``."""
    d = sql.dialect
    defined = [f"account {d.key} NOT NULL"] + [
        f"{name} {getattr(d, kind)}{'' if nullable else ' NOT NULL'}"
        for name, kind, nullable in columns
    ]
    return f"CREATE TABLE {table} ({', '.join(defined)}, PRIMARY KEY ({key}))"


def _v4_indexes(sql: Statements) -> list[str]:
    """The indexes of the experiments table at version 4: each starts with the account."""
    exp = sql.experiments
    return [
        f"CREATE INDEX experiments_created ON {exp} (account, creation_time, name)",
        f"CREATE INDEX experiments_status_created ON {exp} (account, status, creation_time, name)",
        f"CREATE INDEX experiments_status_name ON {exp} (account, status, name)",
        f"CREATE INDEX experiments_due ON {exp} (due_at, account, name) WHERE due_at IS NOT NULL",
        f"CREATE UNIQUE INDEX experiments_live_endpoint ON {exp} (account, endpoint_name)"
        f" WHERE status NOT IN {TERMINAL_SQL}",
    ]


def _v4_sqlite_tables(sql: Statements) -> list[str]:
    """SQLite: experiments and history made again, keyed by account first, their rows
    copied over (a primary key cannot change in place)."""
    d, exp, hist = sql.dialect, sql.experiments, sql.history
    of_arn = d.arn_account.format(arn="arn")
    columns = ", ".join(c for c, _, _ in _V4_EXPERIMENT_COLUMNS)
    history = [c for c, _, _ in _V4_HISTORY_COLUMNS]
    return [
        _v4_table(sql, f"{exp}_v4", _V4_EXPERIMENT_COLUMNS, "account, name"),
        f"INSERT INTO {exp}_v4 (account, {columns}) SELECT {of_arn}, {columns} FROM {exp}",
        _v4_table(sql, f"{hist}_v4", _V4_HISTORY_COLUMNS, "account, name, seq") + d.history_options,
        # names were unique before accounts: each history row is of the one experiment of its
        # name, found by the old table's key (name), not scanned for in the new (account, name)
        f"INSERT INTO {hist}_v4 (account, {', '.join(history)})"
        f" SELECT coalesce((SELECT {d.arn_account.format(arn='e.arn')} FROM {exp} e"
        f" WHERE e.name = h.name), ''),"
        f" {', '.join('h.' + c for c in history)} FROM {hist} h",
        f"DROP TABLE {exp}",
        f"DROP TABLE {hist}",
        f"ALTER TABLE {exp}_v4 RENAME TO experiments",
        f"ALTER TABLE {hist}_v4 RENAME TO history",
        *_v4_indexes(sql),
        f"ALTER TABLE {sql.changes} ADD COLUMN account {d.key} NOT NULL DEFAULT ''",
        f"UPDATE {sql.changes} SET account = {of_arn}",
    ]


def _v4_postgres_tables(sql: Statements) -> list[str]:
    """PostgreSQL: the account column added, filled from the ARN, and put first in the keys."""
    d, exp, hist, changes = sql.dialect, sql.experiments, sql.history, sql.changes
    of_arn = d.arn_account.format(arn="arn")
    out = [
        f"ALTER TABLE {exp} ADD COLUMN account {d.key}",
        f"UPDATE {exp} SET account = {of_arn}",
        f"ALTER TABLE {exp} ALTER COLUMN account SET NOT NULL",
        f"ALTER TABLE {exp} DROP CONSTRAINT experiments_pkey",
        f"ALTER TABLE {exp} ADD CONSTRAINT experiments_pkey PRIMARY KEY (account, name)",
    ]
    out += [
        f"DROP INDEX {sql.prefix}{index}"
        for index in (
            "experiments_created",
            "experiments_status_created",
            "experiments_status_name",
            "experiments_due",
            "experiments_live_endpoint",
        )
    ]
    out += _v4_indexes(sql)
    out += [
        f"ALTER TABLE {hist} ADD COLUMN account {d.key}",
        # names were unique before accounts: each history row is of the one experiment of its
        # name; a join (no index starts with the name any more: a lookup per row would scan)
        f"UPDATE {hist} h SET account = e.account FROM {exp} e WHERE e.name = h.name",
        f"UPDATE {hist} SET account = '' WHERE account IS NULL",
        f"ALTER TABLE {hist} ALTER COLUMN account SET NOT NULL",
        f"ALTER TABLE {hist} DROP CONSTRAINT history_pkey",
        f"ALTER TABLE {hist} ADD CONSTRAINT history_pkey PRIMARY KEY (account, name, seq)",
        f"ALTER TABLE {changes} ADD COLUMN account {d.key}",
        f"UPDATE {changes} SET account = {of_arn}",
        f"ALTER TABLE {changes} ALTER COLUMN account SET NOT NULL",
    ]
    return out


def _v4_accounts(sql: Statements) -> list[str]:
    """Experiments in accounts: the account (from each row's ARN) first in every key and
    index, in the change feed, and a live count per account."""
    d = sql.dialect
    tables = _v4_sqlite_tables(sql) if d.name == "sqlite" else _v4_postgres_tables(sql)
    live = f"{sql.prefix}live_counts"
    return [
        *tables,
        f"CREATE INDEX changes_account ON {sql.changes} (account, position)",
        f"CREATE TABLE {live} (account {d.key} PRIMARY KEY, live {d.bigint} NOT NULL)",
        f"INSERT INTO {live} (account, live) SELECT account, count(*) FROM {sql.experiments}"
        f" WHERE status NOT IN {TERMINAL_SQL} GROUP BY account",
        f"DELETE FROM {sql.counters} WHERE key = 'live'",
    ]


#: every version, in order: ``MIGRATIONS[n - 1]`` makes version ``n``
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "experiments, history, counters and lifecycle_meta, with their indexes", _v1_tables
    ),
    Migration(
        2, "lifecycle_migrations: the schema version and when each was applied", _v2_version_log
    ),
    Migration(
        3,
        "the change feed: changes, feed_cursors and the counters row changes_trimmed",
        _v3_change_feed,
    ),
    Migration(
        4,
        "accounts: experiments, history and changes keyed by account (from each ARN),"
        " live counts per account in live_counts",
        _v4_accounts,
    ),
)
#: the newest version this build knows, and makes
LATEST = len(MIGRATIONS)
assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1)), (
    "versions are 1, 2, ... in order"
)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What an open (or ``lifecycle migrate``) found and did: the versions before and after, each step.

    ``steps`` are the steps this call ran, or with ``dry_run`` the steps it
    would run; none when the schema was at ``to_version`` already.
    """

    where: str
    from_version: int
    to_version: int
    steps: tuple[Migration, ...] = ()
    dry_run: bool = False

    def lines(self) -> list[str]:
        """The report in words, one line per step."""
        if not self.steps:
            return [f"{self.where}: at schema version {self.to_version}, nothing to migrate"]
        done = "would migrate" if self.dry_run else "migrated"
        return [
            f"{self.where}: {done} from schema version {self.from_version} to {self.to_version}",
            *(f"  {m.version}: {m.description}" for m in self.steps),
        ]


class VersionBook(ABC, Generic[C]):
    """Where one dialect keeps the version: read it, and write it with each step.

    ``where`` names the database in messages (``SQLite file 'x.db'``,
    ``PostgreSQL schema 'lifecycle'``); ``advice`` says what to give instead
    of a database that holds something else.
    """

    advice: str

    def __init__(self, sql: Statements, where: str) -> None:
        self.sql = sql
        self.where = where

    @abstractmethod
    def tables(self, conn: C) -> set[str]:
        """The names of the tables (and views) in the database or schema, without a prefix."""

    @abstractmethod
    def stamped(self, conn: C, tables: set[str]) -> int | None:
        """The version the dialect's stamp holds; None when there is none (version 0 or 1)."""

    def stamp(self, conn: C, version: int) -> None:
        """Write the dialect's own stamp of ``version``, besides the log (in the step's transaction)."""

    def prepare(self, conn: C) -> None:
        """Make room for the first step on an empty database (the PostgreSQL schema)."""

    def read(self, conn: C) -> int:
        """The schema's version: 0 for nothing there; refuses a database of something else."""
        tables = self.tables(conn)
        if not tables:
            return 0
        if META_TABLE not in tables:
            names = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
            raise StoreError(f"{self.where} holds something else (tables {names}): {self.advice}")
        stamped = self.stamped(conn, tables)
        if stamped is not None:
            return stamped
        row = conn.execute(self.sql.schema_version).fetchone()
        found = None if row is None else str(row[0])
        if found == "1":  # the layout of the builds before versions were recorded
            return 1
        if found is not None and found.isdigit() and int(found) > LATEST:
            return int(found)
        raise StoreError(
            f"{self.where} has a lifecycle_meta table but no schema version this build "
            f"recognises ({'none' if found is None else repr(found)}): {self.advice}"
        )

    def apply(self, conn: C, migration: Migration) -> None:
        """Run one step and record its version, in the caller's transaction."""
        if migration.version == 1:
            self.prepare(conn)
        for statement in migration.statements(self.sql):
            conn.execute(statement)
        ph = self.sql.dialect.ph
        conn.execute(
            f"UPDATE {self.sql.meta} SET value = {ph} WHERE key = 'schema_version'",
            (str(migration.version),),
        )
        if migration.version >= 2:  # the log arrives with version 2
            conn.execute(
                f"INSERT INTO {self.sql.prefix}{LOG_TABLE} (version, description, applied_at)"
                f" VALUES ({ph}, {ph}, {ph})",
                (migration.version, migration.description, time.time()),
            )
        self.stamp(conn, migration.version)

    def plan(self, found: int) -> MigrationReport:
        """The steps from ``found`` to :data:`LATEST`, not run; refuses a newer schema."""
        if found > LATEST:
            raise SchemaTooNewError(self.where, found, LATEST)
        return MigrationReport(self.where, found, LATEST, MIGRATIONS[found:], dry_run=True)


def migrate(
    book: VersionBook[C],
    read: Callable[[], int],
    locked: Callable[[Callable[[C], Migration | None]], Migration | None],
    *,
    apply: bool = True,
) -> MigrationReport:
    """Bring the schema to :data:`LATEST`, or with ``apply=False`` refuse one that is not there.

    ``read()`` reads the version without a lock; ``locked(work)`` runs
    ``work(conn)`` in a write transaction that holds the dialect's migration
    lock. Raises :class:`SchemaTooNewError` for a newer schema and
    :class:`StoreError` for a database of something else.
    """
    found = read()
    book.plan(found)  # refuses a newer schema
    if found == LATEST:
        return MigrationReport(book.where, found, found)
    if not apply:
        raise StoreError(
            f"{book.where} is at schema version {found} and this build needs version {LATEST}: "
            "apply its migrations with `lifecycle migrate --store URL`, "
            "or let the store migrate when it opens (leave out migrate=false)"
        )

    def step(conn: C) -> Migration | None:
        version = book.read(conn)  # again, under the lock: another process may have run it
        book.plan(version)
        if version >= LATEST:
            return None
        migration = MIGRATIONS[version]
        book.apply(conn, migration)
        return migration

    applied: list[Migration] = []
    while (done := locked(step)) is not None:
        applied.append(done)
    start = applied[0].version - 1 if applied else LATEST
    return MigrationReport(book.where, start, LATEST, tuple(applied))
