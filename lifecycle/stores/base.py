"""The Store protocol: what every store (memory, SQLite, PostgreSQL) does.

A store keeps experiments and their history, each experiment in the account
it belongs to (``Experiment.account``): an experiment is found by its
account and its name together (an :class:`ExperimentKey`), so two accounts
may each have an experiment of one name, and another account's experiment
is, to every read and write by account and name, one that does not exist.
The rules of create count per account: a name once per account, one live
experiment per endpoint of an account, ``max_live`` live experiments per
account. Every write is versioned:
``save`` succeeds only when the stored version is the one the caller
loaded, and writes the record and its history entries together, or nothing.
Records handed out are private copies: changing one changes nothing stored.

A store also keeps the change feed (the outbox): each entry a create or a
save writes (the experiment's history entries, and the variant machine's
transitions that came with them) becomes a :class:`Change` in the same transaction, with a
position in one order over the whole store. A reader that asks for the
changes after a position it has seen never finds, later, one below it: a
position becomes readable only when no transaction that could still commit
a smaller one is open (each store says how in its docstring). Each change
carries its experiment's account; a read may ask for one account's changes
only, on the same positions.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus, VariantStatus

__all__ = [
    "TOKEN_SECRET_BYTES",
    "Change",
    "ChangePage",
    "ExperimentKey",
    "ListPage",
    "ListQuery",
    "Save",
    "SortBy",
    "Store",
    "WouldWait",
    "own_transitions",
    "sort_key",
]

#: how long a deployment's token secret is
TOKEN_SECRET_BYTES = 32

#: one save of :meth:`Store.save_many`: the record, the version it was loaded at, its history entries
Save = tuple[Experiment, int, list[HistoryEntry]]

SortBy = Literal["Name", "CreationTime", "Status"]


class WouldWait(Exception):
    """A call made under a store's ``without_waiting()`` that would have waited: a read
    for a lock held elsewhere, or any write (for its turn, its lock, its flush to disk).
    It read or wrote nothing; make it again where waiting is allowed (a worker thread).
    Not an answer to a request: a caller that asked not to wait catches it."""


class ExperimentKey(NamedTuple):
    """Which experiment: the account it belongs to and its name (unique in that account)."""

    account: str
    name: str


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The account, filters, sort and keyset position of one List page.

    A page holds experiments of ``account`` only. Time filters are strict
    (``created_after`` keeps experiments created after that instant).
    ``after`` is the sort key of the last experiment of the previous page
    (see :func:`sort_key`); the page starts past it.
    """

    account: str
    name_contains: str | None = None
    type: str | None = None
    status: ExperimentStatus | None = None
    created_after: float | None = None
    created_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    sort_by: SortBy = "CreationTime"
    descending: bool = True
    limit: int = 10
    after: tuple[str | float, str] | None = None

    def matches(self, exp: Experiment) -> bool:
        return not (
            (self.name_contains is not None and self.name_contains not in exp.name)
            or (self.type is not None and exp.type != self.type)
            or (self.status is not None and exp.status is not self.status)
            or (self.created_after is not None and not exp.creation_time > self.created_after)
            or (self.created_before is not None and not exp.creation_time < self.created_before)
            or (
                self.modified_after is not None and not exp.last_modified_time > self.modified_after
            )
            or (
                self.modified_before is not None
                and not exp.last_modified_time < self.modified_before
            )
        )


def sort_key(exp: Experiment, sort_by: SortBy) -> tuple[str | float, str]:
    """The key an experiment sorts by: the sort field, then the name (ties broken by name)."""
    if sort_by == "Name":
        return (exp.name, exp.name)
    if sort_by == "Status":
        return (exp.status.value, exp.name)
    return (exp.creation_time, exp.name)


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[Experiment]
    has_more: bool


class Change(NamedTuple):
    """One committed transition in the change feed: its position, the account of its
    experiment, and the history entry it is.

    ``machine`` is the machine the transition fired on (``experiment`` or
    ``variant``); ``variant`` names the variant of a variant machine's
    transition (None for the experiment's own), whose statuses are the variant's.
    """

    position: int
    account: str
    name: str
    arn: str
    time: float
    event: str
    from_status: ExperimentStatus | VariantStatus | None
    to_status: ExperimentStatus | VariantStatus
    reason: str | None = None
    request_id: str | None = None
    machine: str = "experiment"
    variant: str | None = None

    @classmethod
    def of(cls, position: int, account: str, arn: str, entry: HistoryEntry) -> Change:
        """The change a history entry of the experiment ``arn`` (of ``account``) is, at
        ``position``: the entry's fields but its version, in the same order."""
        # made as a tuple (a third cheaper than by the fields' names: one per change saved)
        return _new_tuple(cls, (position, account, entry[0], arn, *entry[1:7], *entry[8:]))


_new_tuple = tuple.__new__
# the layout Change.of relies on: an entry's fields, with position, account and arn added
# and the version left out
assert Change._fields == (
    "position",
    "account",
    HistoryEntry._fields[0],
    "arn",
    *HistoryEntry._fields[1:7],
    *HistoryEntry._fields[8:],
), "Change.of copies HistoryEntry's fields by position: keep the two in step"


def own_transitions(entries: Sequence[HistoryEntry]) -> Sequence[HistoryEntry]:
    """The entries of the experiment machine's own transitions, the ones its history keeps
    (``entries`` itself when it has no variant transition)."""
    own = [e for e in entries if e.machine == "experiment"]
    return entries if len(own) == len(entries) else own


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Changes in position order, and the position to read the next page after.

    ``next_position`` is the last change's position, or (no change) the
    position the read started after: pass it as ``after`` to go on. A read
    of one account's changes that is not a full page has passed every
    change of other accounts up to the newest readable one, and its
    ``next_position`` says so (it is that newest position), so a reader
    reading on does not walk them again.
    """

    changes: list[Change]
    next_position: int


@runtime_checkable
class Store(Protocol):
    """Where experiments live. Every implementation passes ``tests/contract``."""

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        """Store a new experiment (version 1) in ``exp.account`` with its first history entry.

        Raises ``ResourceInUseError`` when the name exists in that account or
        another live (not terminal) experiment of that account targets the
        same endpoint, and ``ResourceLimitExceededError`` when ``max_live``
        live experiments exist in that account. Other accounts' experiments
        count for none of these.
        """
        ...

    def get(self, account: str, name: str) -> Experiment | None:
        """A private copy of the experiment ``name`` of ``account``, or None.

        The record and its variants are the caller's to change; their nested
        configurations (``infrastructure``, ``shadow_mode_config``,
        ``data_storage_config``, ``tags``, ``stop_actions``) may be shared
        with the store, so replace them rather than change them in place, as
        the engine does.
        """
        ...

    def save(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        """Write ``exp`` (the experiment ``exp.name`` of ``exp.account``) as version
        ``expected_version + 1`` with its entries: each one a change in the feed, in
        order; those of the experiment machine (:func:`own_transitions`) its
        history entries too (a variant machine's entry is a change only).

        Raises ``StaleVersionError`` (and writes nothing) when the stored
        version is not ``expected_version`` or the experiment is gone.
        Sets ``exp.version`` on success; ``exp`` stays the caller's (a store
        that keeps records as objects copies it into its own).
        """
        ...

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        """Make several saves in one transaction: one flush to disk for all of them.

        Each ``(exp, expected_version, entries)`` is written as :meth:`save`
        writes it, or, when its version is stale, not at all; the answer
        says for each whether it was written. A stale save does not stop the
        others. A store error writes none of them. Sets ``exp.version`` of
        each one written.
        """
        ...

    def delete(self, account: str, name: str, expected_version: int) -> None:
        """Remove the experiment ``name`` of ``account`` and its history;
        ``StaleVersionError`` if it changed or is not there."""
        ...

    def list(self, query: ListQuery) -> ListPage:
        """One page of the experiments of ``query.account`` matching the query, in its order."""
        ...

    def history(self, account: str, name: str) -> builtins.list[HistoryEntry]:
        """The committed transitions of the experiment machine of the experiment ``name`` of
        ``account``, oldest first (none when there is no such experiment)."""
        ...

    def due(self, now: float, limit: int = 100) -> builtins.list[ExperimentKey]:
        """The experiments, of every account, whose next step is due at ``now``, soonest first."""
        ...

    def claim(
        self, now: float, limit: int, owner: str, lease_seconds: float
    ) -> builtins.list[ExperimentKey]:
        """Claim up to ``limit`` due experiments (of every account) for ``owner``; which,
        soonest first.

        Like :meth:`due`, but an experiment claimed by another owner is left
        out until that claim's lease (``now + lease_seconds`` at claim time)
        has passed, or a save has replaced the version it was claimed at.
        Claiming is atomic: two reconcilers (threads, processes, replicas)
        claiming at once never both get the same experiment. An owner may
        claim again what it already holds. A claim does not change the
        experiment's version, so a step retried after a crash carries the
        same idempotency key.
        """
        ...

    def token_secret(self) -> bytes:
        """The secret that signs List's NextTokens: random, made once per deployment and the
        same for every replica of one database (the memory store: per store)."""
        ...

    def release(self, owner: str) -> int:
        """Give up every claim ``owner`` holds (a reconciler shutting down cleanly), so
        another reconciler takes its work at once instead of after the lease; how many."""
        ...

    def changes(self, after: int | None, limit: int, account: str | None = None) -> ChangePage:
        """Up to ``limit`` changes with positions above ``after``, in position order.

        With ``account``, only the changes of that account's experiments (the
        positions are the same ones; see :class:`ChangePage` for where such a
        read goes on). ``after=None`` starts at the oldest change kept. Raises
        ``TrimmedChangesError`` when changes above ``after`` were removed by
        :meth:`trim_changes` (the reader is behind the retention).
        """
        ...

    def trim_changes(self, *, before: float | None = None, keep: int | None = None) -> int:
        """Remove the oldest changes: those (from the oldest on) whose time is before
        ``before``, and all but the newest ``keep``; how many were removed. The newest
        change is always kept (positions go on from it)."""
        ...

    def feed_cursor(self, subscription: str) -> int | None:
        """The position a subscription (a webhook) has delivered up to; None before its first."""
        ...

    def save_feed_cursor(self, subscription: str, position: int) -> None:
        """Record that ``subscription`` has delivered up to ``position`` (never moves it back)."""
        ...

    def count_by_status(self) -> dict[str, int]:
        """How many experiments there are, in all accounts, in each status that has any
        (for metrics)."""
        ...

    def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot be reached."""
        ...

    def check_writable(self) -> None:
        """Raise ``StoreUnavailableError`` when the store cannot take a write now: a bounded
        write that changes nothing an experiment holds (the readiness probe)."""
        ...

    def close(self) -> None: ...
