"""The SQL text of the SQLite and PostgreSQL stores: each statement and the List query.

Both stores run the same statements; a :class:`Dialect` holds the few words
the two databases spell differently (placeholders, column types, how an
insert skips a row that exists, a row lock), and :class:`Statements` writes
every statement once from it, on the tables of one schema. The tables
themselves are made by the migrations (``_migrations.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.stores._sql import CHANGE_COLUMNS, COLUMNS, HISTORY_COLUMNS
from lifecycle.stores.base import ListQuery

__all__ = ["TERMINAL_SQL", "Dialect", "Statements"]

#: ``status IN TERMINAL_SQL``: the statuses no event leaves
TERMINAL_SQL = "(" + ", ".join(f"'{s.value}'" for s in ExperimentStatus if s.terminal) + ")"

_SORT_COLUMN = {"Name": None, "CreationTime": "creation_time", "Status": "status"}


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one database spells in its own way."""

    #: which database: ``sqlite`` or ``postgresql`` (for migrations that differ in kind)
    name: str
    #: the parameter placeholder
    ph: str
    #: the condition that ``name`` contains the parameter, with one placeholder
    contains: str
    #: a parameter compared with a ``bigint`` column, that may be NULL
    bigint_param: str
    #: the column types: text, text that is a key (sorted bytewise), float, integer, bigint
    text: str
    key: str
    real: str
    integer: str
    bigint: str
    #: after the history table's columns
    history_options: str
    #: an ``INSERT`` that skips a row whose key exists: the start and the end of the statement
    insert_new: str
    if_new: str
    #: after the read of a saved row's status, inside the save's transaction
    for_update: str
    #: the larger of two values (a function of two arguments)
    greatest: str
    #: the change feed's ``position`` column: its type and key
    change_key: str
    #: the value of a new change's position, with one placeholder for its ordinal in the
    #: transaction and ``{base}`` for the store's position base; None where the database
    #: numbers the rows itself
    change_position: str | None
    #: the condition a change's position meets once it can be read (no transaction still
    #: open could commit a smaller one), with ``{base}`` as above; None where every
    #: committed change can
    readable: str | None
    #: the account field of an ARN (``arn:PARTITION:sagemaker:REGION:ACCOUNT:...``): an
    #: expression of the column ``{arn}``
    arn_account: str


class Statements:
    """Every statement of a dialect on the tables named ``{prefix}experiments`` and so on."""

    def __init__(self, d: Dialect, prefix: str = "", position_base: int = 0) -> None:
        self.dialect = d
        ph = d.ph
        #: the dialect's ``change_position`` and ``readable`` at ``position_base``
        self.change_position = (
            d.change_position.format(base=int(position_base)) if d.change_position else None
        )
        self.readable = d.readable.format(base=int(position_base)) if d.readable else None
        #: what goes before each table's name (``"schema".`` on PostgreSQL)
        self.prefix = prefix
        self.meta = meta = f"{prefix}lifecycle_meta"
        self.experiments = exp = f"{prefix}experiments"
        self.history = hist = f"{prefix}history"
        self.counters = count = f"{prefix}counters"
        self.changes = changes = f"{prefix}changes"
        self.cursors = cursors = f"{prefix}feed_cursors"
        columns, history_columns = ", ".join(COLUMNS), ", ".join(HISTORY_COLUMNS)
        self.schema_version = f"SELECT value FROM {meta} WHERE key = 'schema_version'"
        #: the deployment's token secret: made by the first store to ask, read by every other
        self.insert_token_secret = (
            f"{d.insert_new} {meta} (key, value) VALUES ('token_secret', {ph}){d.if_new}"
        )
        self.select_token_secret = f"SELECT value FROM {meta} WHERE key = 'token_secret'"
        one = f"account = {ph} AND name = {ph}"
        self.select_one = f"SELECT {columns} FROM {exp} WHERE {one}"
        self.insert = f"INSERT INTO {exp} ({columns}) VALUES ({', '.join([ph] * len(COLUMNS))})"
        #: ``(*row_params[2:], account, name, version)``
        self.update = (
            f"UPDATE {exp} SET "
            + ", ".join(f"{c} = {ph}" for c in COLUMNS[2:])
            + f", claim_owner = NULL, claim_until = NULL WHERE {one} AND version = {ph}"
        )
        self._one_version = f"{one} AND version = {ph}"
        self._updates: dict[tuple[int, ...], str] = {}
        #: the status of a row at a version (locked, where the dialect locks rows)
        self.select_status = (
            f"SELECT status FROM {exp} WHERE {one} AND version = {ph}{d.for_update}"
        )
        self.delete = f"DELETE FROM {exp} WHERE {one} AND version = {ph}"
        self.live_holder = (
            f"SELECT name FROM {exp} WHERE account = {ph} AND endpoint_name = {ph}"
            f" AND status NOT IN {TERMINAL_SQL}"
        )
        self.insert_history = (
            f"INSERT INTO {hist} ({history_columns})"
            f" VALUES ({', '.join([ph] * len(HISTORY_COLUMNS))})"
        )
        self.select_history = f"SELECT {history_columns} FROM {hist} WHERE {one} ORDER BY seq"
        self.delete_history = f"DELETE FROM {hist} WHERE {one}"
        self.select_due = (
            f"SELECT account, name FROM {exp} WHERE due_at <= {ph}"
            f" ORDER BY due_at, account, name LIMIT {ph}"
        )
        #: the due experiments no other owner's lease holds: ``(now, owner, now, limit)``
        self.claimable = (
            f"SELECT account, name FROM {exp} WHERE due_at <= {ph}"
            f" AND (claim_owner IS NULL OR claim_owner = {ph} OR claim_until <= {ph})"
            f" ORDER BY due_at, account, name LIMIT {ph}"
        )
        self.select_count = f"SELECT count(*) FROM {exp}"
        self.live_counts = live = f"{prefix}live_counts"
        #: ``(account,)``: how many of the account's experiments are live
        self.select_live = f"SELECT live FROM {live} WHERE account = {ph}"
        self.select_all_live = f"SELECT coalesce(sum(live), 0) FROM {live}"
        #: one more live experiment of an account, while below the limit:
        #: ``(account, max_live, max_live, max_live, max_live)``, None for no limit
        self.take_live = (
            f"INSERT INTO {live} AS c (account, live) SELECT {ph}, 1"
            f" WHERE {d.bigint_param} IS NULL OR {d.bigint_param} > 0"
            " ON CONFLICT (account) DO UPDATE SET live = c.live + 1"
            f" WHERE {d.bigint_param} IS NULL OR c.live < {d.bigint_param}"
        )
        #: ``(account,)``
        self.release_live = f"UPDATE {live} SET live = live - 1 WHERE account = {ph}"
        #: the live counts made again from the rows (after a bulk load), in this order
        self.recount_live = (
            f"DELETE FROM {live}",
            f"INSERT INTO {live} (account, live) SELECT account, count(*) FROM {exp}"
            f" WHERE status NOT IN {TERMINAL_SQL} GROUP BY account",
        )
        self._feed_statements(d, count, changes, cursors)

    def _feed_statements(self, d: Dialect, count: str, changes: str, cursors: str) -> None:
        ph = d.ph
        readable = f" AND {self.readable}" if self.readable else ""
        change_columns = ", ".join(CHANGE_COLUMNS)
        values = ", ".join([ph] * len(CHANGE_COLUMNS))
        #: a change's row: ``(ordinal, *change_params)`` where the dialect numbers changes
        #: itself (``change_position``), else ``change_params``
        self.insert_change = (
            f"INSERT INTO {changes} (position, {change_columns}) VALUES ({self.change_position}, {values})"
            if self.change_position
            else f"INSERT INTO {changes} ({change_columns}) VALUES ({values})"
        )
        #: ``(after, limit)``: a page of readable changes
        self.select_changes = (
            f"SELECT position, {change_columns} FROM {changes}"
            f" WHERE position > {ph}{readable} ORDER BY position LIMIT {ph}"
        )
        #: ``(after,)``: the newest readable change past ``after`` (every change at or below
        #: it is final: none can commit there later)
        self.select_newest_readable = (
            f"SELECT max(position) FROM {changes} WHERE position > {ph}{readable}"
        )
        #: ``(account, after, newest, limit)``: a page of one account's changes up to a
        #: readable position
        self.select_account_changes = (
            f"SELECT position, {change_columns} FROM {changes}"
            f" WHERE account = {ph} AND position > {ph} AND position <= {ph}"
            f" ORDER BY position LIMIT {ph}"
        )
        self.select_oldest_change = f"SELECT min(position) FROM {changes} WHERE position > {ph}"
        #: ``(after, limit)``: the times of readable changes, oldest first (what trimming walks)
        self.select_change_times = (
            f"SELECT position, time FROM {changes}"
            f" WHERE position > {ph}{readable} ORDER BY position LIMIT {ph}"
        )
        #: ``(keep,)``: the newest readable change past the newest ``keep``
        self.select_past_newest = (
            f"SELECT position FROM {changes} WHERE position > 0{readable}"
            f" ORDER BY position DESC LIMIT 1 OFFSET {ph}"
        )
        self._entries_inserts: dict[tuple[int, int], str] = {}
        self.select_newest_change = f"SELECT max(position) FROM {changes}"
        self.select_before_change = f"SELECT max(position) FROM {changes} WHERE position < {ph}"
        self.delete_changes = f"DELETE FROM {changes} WHERE position <= {ph}"
        self.select_trimmed = f"SELECT value FROM {count} WHERE key = 'changes_trimmed'"
        self.mark_trimmed = (
            f"UPDATE {count} SET value = {d.greatest}(value, {d.bigint_param})"
            " WHERE key = 'changes_trimmed'"
        )
        self.select_cursor = f"SELECT position FROM {cursors} WHERE subscription = {ph}"
        #: ``(subscription, position, updated_at)``: a cursor moves forward only
        self.save_cursor = (
            f"INSERT INTO {cursors} AS c (subscription, position, updated_at) VALUES ({ph}, {ph}, {ph})"
            " ON CONFLICT (subscription) DO UPDATE SET"
            f" position = {d.greatest}(c.position, excluded.position), updated_at = excluded.updated_at"
        )

    def insert_entries(self, count: int, changes: int) -> str:
        """One statement that inserts ``count`` history rows and ``changes`` changes (a
        dialect that numbers changes itself, and has ``INSERT`` in ``WITH``: PostgreSQL):
        the history rows' parameters, then the changes'. One round trip instead of two."""
        sql = self._entries_inserts.get((count, changes))
        if sql is None:
            ph = self.dialect.ph
            history = "(" + ", ".join([ph] * len(HISTORY_COLUMNS)) + ")"
            change = f"({self.change_position}, " + ", ".join([ph] * len(CHANGE_COLUMNS)) + ")"
            sql = self._entries_inserts[(count, changes)] = (
                f"WITH h AS (INSERT INTO {self.history} ({', '.join(HISTORY_COLUMNS)})"
                f" VALUES {', '.join([history] * count)})"
                f" INSERT INTO {self.changes} (position, {', '.join(CHANGE_COLUMNS)})"
                f" VALUES {', '.join([change] * changes)}"
            )
        return sql

    def update_of(self, columns: tuple[int, ...]) -> str:
        """The save that sets only the columns at these indexes of ``COLUMNS`` (and gives
        back the claim): ``(*their values, account, name, version)``. Made once per set."""
        sql = self._updates.get(columns)
        if sql is None:
            ph = self.dialect.ph
            sets = "".join(f"{COLUMNS[i]} = {ph}, " for i in columns)
            sql = (
                f"UPDATE {self.experiments} SET {sets}claim_owner = NULL, claim_until = NULL"
                f" WHERE {self._one_version}"
            )
            self._updates[columns] = sql
        return sql

    def select_page(self, query: ListQuery) -> tuple[str, list[Any]]:
        """The SELECT of one List page (``limit + 1`` rows) and its parameters.

        The account, the filters and the keyset position are ``WHERE`` terms
        and the order is that of an index that starts with the account, so the
        database walks one account's part of the index from the position.
        """
        ph = self.dialect.ph
        where: list[str] = [f"account = {ph}"]
        params: list[Any] = [query.account]
        if query.name_contains is not None:
            where.append(self.dialect.contains)
            params.append(query.name_contains)
        if query.type is not None:
            where.append(f"type = {ph}")
            params.append(query.type)
        if query.status is not None:
            where.append(f"status = {ph}")
            params.append(query.status.value)
        for column, op, value in (
            ("creation_time", ">", query.created_after),
            ("creation_time", "<", query.created_before),
            ("last_modified_time", ">", query.modified_after),
            ("last_modified_time", "<", query.modified_before),
        ):
            if value is not None:
                where.append(f"{column} {op} {ph}")
                params.append(value)
        sort_column = _SORT_COLUMN[query.sort_by]
        direction = "DESC" if query.descending else "ASC"
        op = "<" if query.descending else ">"
        if query.after is not None:
            first, last_name = query.after
            if sort_column is None:
                where.append(f"name {op} {ph}")
                params.append(last_name)
            else:
                where.append(f"({sort_column}, name) {op} ({ph}, {ph})")
                params.extend(
                    (float(first) if sort_column == "creation_time" else str(first), last_name)
                )
        order = (
            f"name {direction}"
            if sort_column is None
            else f"{sort_column} {direction}, name {direction}"
        )
        sql = f"SELECT {', '.join(COLUMNS)} FROM {self.experiments}"
        sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order} LIMIT {ph}"
        params.append(query.limit + 1)
        return sql, params
