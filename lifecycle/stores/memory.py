"""MemoryStore: the in-memory store. Real (thread-safe, versioned) and the test double.

Each account's experiments are a partition of their own: the rows, their
history, and what a database keeps as indexes (sorted keys by creation time
and by name, the same per status, a live-endpoint map), so a read by
account and name is two dict lookups and a List page walks one index of one
account from its keyset position: it costs the same at 1,000 and 1,000,000
experiments, in one account or spread over many. One due-time heap serves
every account (the reconciler works over all of them).

A save touches the sorted indexes only when the status changes, and then
only records the move (O(1)); moves are filed into the per-status indexes
(a remove and an add in two sorted sets, O(log n) each) in one batch by the
next List that reads them, or once 4,096 are waiting. Each save pushes one
heap entry when a step is due.

A save copies the new state into the stored record and its Variant objects
rather than swapping in new ones: at 100,000 records, freeing the old
objects and allocating into the memory they left touches cache lines no
other part of a request needs, which made a Stop about a fifth slower than
at 1,000 (``benchmarks/bench_engine.py``). Reads copy under the lock, so
they never see a record half-updated.

The change feed is a list in position order, numbered 1, 2, ... under the
same lock as the save that writes it, so a position is readable the moment
it is given; each account's partition holds its own changes too, so a read
of one account's changes never walks another's.
"""

from __future__ import annotations

import bisect
import builtins
import heapq
import secrets
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import (
    EndpointInUseError,
    LiveLimitError,
    NameInUseError,
    StaleVersionError,
    TrimmedChangesError,
)
from lifecycle.stores._sorted import SortedKeys
from lifecycle.stores.base import (
    TOKEN_SECRET_BYTES,
    Change,
    ChangePage,
    ExperimentKey,
    ListPage,
    ListQuery,
    Save,
    own_transitions,
)

__all__ = ["MemoryStore"]

#: statuses in the order the Status sort puts them (alphabetical by wire value)
_STATUS_ORDER = sorted(ExperimentStatus, key=lambda s: s.value)

#: how many status moves may wait before a save files them
_FILE_MOVES_AT = 4096

_DOUBLE = struct.Struct(">d")
_U64 = struct.Struct(">Q")


def _created_key(creation_time: float, name: str) -> bytes:
    """``(creation_time, name)`` as bytes that sort the same way (bytes compare faster than tuples).

    The float's IEEE bits with the sign flipped (all bits flipped when
    negative) sort as the numbers do; UTF-8 sorts as code points do.
    """
    (bits,) = _U64.unpack(_DOUBLE.pack(creation_time))
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return _U64.pack(bits) + name.encode()


class _Account:
    """One account's experiments: the rows, their history, their indexes, their changes."""

    __slots__ = (
        "by_created",
        "by_name",
        "changes",
        "created",
        "history",
        "live_endpoints",
        "moved",
        "positions",
        "rows",
        "status_created",
        "status_name",
    )

    def __init__(self) -> None:
        self.rows: dict[str, Experiment] = {}
        self.history: dict[str, list[HistoryEntry]] = {}
        self.live_endpoints: dict[str, str] = {}  # endpoint -> name of its live experiment
        self.created: dict[str, bytes] = {}  # name -> its creation-order key
        self.by_created: SortedKeys[bytes] = SortedKeys()
        self.by_name: SortedKeys[str] = SortedKeys()
        self.status_created: dict[ExperimentStatus, SortedKeys[bytes]] = {
            s: SortedKeys() for s in ExperimentStatus
        }
        self.status_name: dict[ExperimentStatus, SortedKeys[str]] = {
            s: SortedKeys() for s in ExperimentStatus
        }
        #: status moves not yet applied to the per-status indexes: name -> the status it is filed under
        self.moved: dict[str, ExperimentStatus] = {}
        #: this account's changes, oldest first, and their positions (for bisect)
        self.changes: list[Change] = []
        self.positions: list[int] = []

    def index(self, row: Experiment) -> None:
        created = self.created[row.name] = _created_key(row.creation_time, row.name)
        self.by_created.add(created)
        self.by_name.add(row.name)
        self.status_created[row.status].add(created)
        self.status_name[row.status].add(row.name)

    def unindex(self, row: Experiment) -> None:
        created = self.created.pop(row.name)
        filed = self.moved.pop(row.name, row.status)
        self.by_created.discard(created)
        self.by_name.discard(row.name)
        self.status_created[filed].discard(created)
        self.status_name[filed].discard(row.name)

    def file_moves(self) -> None:
        """Bring the per-status indexes up to date with the status moves saves recorded."""
        for name, filed in self.moved.items():
            status = self.rows[name].status
            if status is not filed:
                created = self.created[name]
                self.status_created[filed].discard(created)
                self.status_name[filed].discard(name)
                self.status_created[status].add(created)
                self.status_name[status].add(name)
        self.moved.clear()

    def walk(self, query: ListQuery) -> Iterator[str]:
        """Names in the query's order, starting past its keyset position."""
        desc, after, status = query.descending, query.after, query.status
        if self.moved and (status is not None or query.sort_by == "Status"):
            self.file_moves()
        if query.sort_by == "CreationTime":
            created = self.status_created[status] if status is not None else self.by_created
            position = None if after is None else _created_key(float(after[0]), after[1])
            for key in created.walk(position, descending=desc):
                yield key[8:].decode()
        elif query.sort_by == "Name":
            names = self.status_name[status] if status is not None else self.by_name
            yield from names.walk(None if after is None else after[1], descending=desc)
        else:  # Status, then Name
            order = [status] if status is not None else _STATUS_ORDER
            for s in reversed(order) if desc else order:
                start: str | None = None
                if after is not None:
                    at = str(after[0])
                    if (s.value < at) if not desc else (s.value > at):
                        continue  # wholly before the position
                    if s.value == at:
                        start = after[1]
                yield from self.status_name[s].walk(start, descending=desc)


class MemoryStore:
    """Experiments in a dict per account, with sorted indexes, a live-endpoint index per
    account and one due-time heap."""

    #: its calls never wait on a disk, a lock held elsewhere or a network, so a server
    #: may call it on its event loop
    blocking = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._token_secret = secrets.token_bytes(TOKEN_SECRET_BYTES)
        self._accounts: dict[str, _Account] = {}
        #: (due_at, version, account, name); stale rows are skipped
        self._due: list[tuple[float, int, str, str]] = []
        self._claims: dict[ExperimentKey, tuple[str, float, int]] = {}  # -> (owner, until, version)
        self._count = 0
        #: the change feed, oldest first, its positions (for bisect), the last position given
        #: and the last one trimmed; the subscriptions' cursors
        self._changes: list[Change] = []
        self._positions: list[int] = []
        self._last_position = 0
        self._trimmed_through = 0
        self._cursors: dict[str, int] = {}

    def _account(self, account: str) -> _Account:
        part = self._accounts.get(account)
        if part is None:
            part = self._accounts[account] = _Account()
        return part

    # -- writes ---------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        self._create(exp, entry, max_live, feed=True)

    def _create(
        self, exp: Experiment, entry: HistoryEntry, max_live: int | None, *, feed: bool
    ) -> None:
        with self._lock:
            part = self._account(exp.account)
            if exp.name in part.rows:
                raise NameInUseError(exp.name)
            holder = part.live_endpoints.get(exp.endpoint_name) if not exp.status.terminal else None
            if holder is not None:
                raise EndpointInUseError(exp.name, exp.endpoint_name, holder)
            if (
                max_live is not None
                and not exp.status.terminal
                and len(part.live_endpoints) >= max_live
            ):
                raise LiveLimitError(exp.name, max_live)
            exp.version = 1
            stored = exp.copy()
            self._file(part, None, stored)
            part.rows[stored.name] = stored
            part.history[exp.name] = [entry]
            self._count += 1
            if feed:
                self._record(part, exp, (entry,))

    def bulk_create(self, items: Iterable[tuple[Experiment, HistoryEntry]]) -> int:
        """Create many experiments at once (seeding, imports), without the live limit.

        The name and endpoint rules hold as in :meth:`create`; a batch that
        breaks one writes nothing. A bulk load is an import of state, not a run
        of transitions: it writes no changes to the feed. Returns how many were
        created.
        """
        done: list[Experiment] = []
        with self._lock:
            try:
                for exp, entry in items:
                    self._create(exp, entry, None, feed=False)
                    done.append(exp)
            except BaseException:
                for exp in done:
                    self.delete(exp.account, exp.name, 1)
                raise
        return len(done)

    def save(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        with self._lock:
            part = self._accounts.get(exp.account)
            current = None if part is None else part.rows.get(exp.name)
            if current is None or current.version != expected_version:
                raise StaleVersionError(exp.name)
            assert part is not None
            if (
                not current.status.terminal
                and exp.status.terminal
                and part.live_endpoints.get(current.endpoint_name) == exp.name
            ):
                del part.live_endpoints[current.endpoint_name]
            exp.version = expected_version + 1
            self._file(part, current, exp)
            current.assign(exp)  # in place: the stored objects stay, nothing old is freed
            if len(part.moved) >= _FILE_MOVES_AT:
                part.file_moves()
            part.history[exp.name].extend(own_transitions(entries))
            self._record(part, exp, entries)

    def _record(self, part: _Account, exp: Experiment, entries: Sequence[HistoryEntry]) -> None:
        """Put ``entries`` in the change feed, each at the next position (under the lock)."""
        first = self._last_position + 1
        account, arn = exp.account, exp.arn
        changes = [Change.of(p, account, arn, e) for p, e in enumerate(entries, first)]
        self._last_position = last = first + len(changes) - 1
        positions = range(first, last + 1)
        self._changes.extend(changes)
        self._positions.extend(positions)
        part.changes.extend(changes)
        part.positions.extend(positions)

    def save_many(self, saves: Sequence[Save]) -> builtins.list[bool]:
        out: builtins.list[bool] = []
        with self._lock:
            for exp, expected_version, entries in saves:
                try:
                    self.save(exp, expected_version, entries)
                except StaleVersionError:
                    out.append(False)
                else:
                    out.append(True)
        return out

    def delete(self, account: str, name: str, expected_version: int) -> None:
        with self._lock:
            part = self._accounts.get(account)
            current = None if part is None else part.rows.get(name)
            if current is None or current.version != expected_version:
                raise StaleVersionError(name, deleting=True)
            assert part is not None
            del part.rows[name]
            del part.history[name]
            self._count -= 1
            self._claims.pop(ExperimentKey(account, name), None)
            part.unindex(current)
            if part.live_endpoints.get(current.endpoint_name) == name:
                del part.live_endpoints[current.endpoint_name]

    def _file(self, part: _Account, current: Experiment | None, stored: Experiment) -> None:
        """File the indexes of ``stored``, the new state of ``current`` (None: a new record),
        while ``current`` still holds the old one."""
        if self._claims:  # a save ends any claim on the version it replaced
            self._claims.pop(ExperimentKey(stored.account, stored.name), None)
        if current is None:
            part.index(stored)
        elif current.creation_time != stored.creation_time:
            part.unindex(current)
            part.index(stored)
        elif current.status is not stored.status:
            # only the per-status indexes move; they are filed in batches (see file_moves)
            part.moved.setdefault(stored.name, current.status)
        if not stored.status.terminal and (
            current is None
            or current.status.terminal
            or current.endpoint_name != stored.endpoint_name
        ):
            part.live_endpoints[stored.endpoint_name] = (
                stored.name
            )  # else it is filed there already
        if stored.due_at is not None:
            heapq.heappush(self._due, (stored.due_at, stored.version, stored.account, stored.name))

    # -- reads ----------------------------------------------------------------

    def get(self, account: str, name: str) -> Experiment | None:
        with self._lock:  # a save updates the stored record in place
            part = self._accounts.get(account)
            row = None if part is None else part.rows.get(name)
            return None if row is None else row.copy()

    def list(self, query: ListQuery) -> ListPage:
        want = query.limit + 1
        page: builtins.list[Experiment] = []
        with self._lock:
            part = self._accounts.get(query.account)
            if part is not None:
                rows = part.rows
                for name in part.walk(query):
                    row = rows[name]
                    if query.matches(row):
                        page.append(row.copy())
                        if len(page) == want:
                            break
        return ListPage(page[: query.limit], len(page) > query.limit)

    def history(self, account: str, name: str) -> builtins.list[HistoryEntry]:
        with self._lock:
            part = self._accounts.get(account)
            return [] if part is None else list(part.history.get(name, ()))

    def _due_keys(self, now: float, limit: int, owner: str | None) -> builtins.list[ExperimentKey]:
        out: builtins.list[ExperimentKey] = []
        held: builtins.list[tuple[float, int, str, str]] = []
        heap = self._due
        while heap and heap[0][0] <= now and len(out) < limit:
            item = heapq.heappop(heap)
            due_at, version, account, name = item
            part = self._accounts.get(account)
            row = None if part is None else part.rows.get(name)
            if row is None or row.version != version or row.due_at != due_at:
                continue  # superseded by a later save
            held.append(item)
            key = ExperimentKey(account, name)
            claim = self._claims.get(key)
            if (
                owner is not None
                and claim is not None
                and claim[0] != owner
                and claim[1] > now
                and claim[2] == version
            ):
                continue  # another reconciler holds it
            out.append(key)
        # experiments handed out stay due until saved with a new due time: push them back
        for item in held:
            heapq.heappush(heap, item)
        return out

    def due(self, now: float, limit: int = 100) -> builtins.list[ExperimentKey]:
        with self._lock:
            return self._due_keys(now, limit, None)

    def claim(
        self, now: float, limit: int, owner: str, lease_seconds: float
    ) -> builtins.list[ExperimentKey]:
        with self._lock:
            keys = self._due_keys(now, limit, owner)
            for key in keys:
                version = self._accounts[key.account].rows[key.name].version
                self._claims[key] = (owner, now + lease_seconds, version)
            return keys

    def next_due(self) -> float | None:
        """When the reconciler next has something to do, in any account (None: nothing)."""
        with self._lock:
            heap = self._due
            while heap:
                due_at, version, account, name = heap[0]
                part = self._accounts.get(account)
                row = None if part is None else part.rows.get(name)
                if row is not None and row.version == version and row.due_at == due_at:
                    return due_at
                heapq.heappop(heap)  # superseded by a later save
            return None

    def accounts(self) -> builtins.list[str]:
        """The accounts that have experiments, sorted."""
        with self._lock:
            return sorted(a for a, part in self._accounts.items() if part.rows)

    def token_secret(self) -> bytes:
        return self._token_secret

    def release(self, owner: str) -> int:
        with self._lock:
            held = [key for key, claim in self._claims.items() if claim[0] == owner]
            for key in held:
                del self._claims[key]
            return len(held)

    # -- the change feed ----------------------------------------------------------

    def changes(self, after: int | None, limit: int, account: str | None = None) -> ChangePage:
        with self._lock:
            start = self._trimmed_through if after is None else after
            if start < self._trimmed_through:
                oldest = self._positions[0] if self._positions else None
                raise TrimmedChangesError(start, self._trimmed_through, oldest)
            if account is None:
                at = bisect.bisect_right(self._positions, start)
                page = self._changes[at : at + limit]
                return ChangePage(page, page[-1].position if page else start)
            part = self._accounts.get(account)
            if part is None:
                page = []
            else:
                at = bisect.bisect_right(part.positions, start)
                page = part.changes[at : at + limit]
            if len(page) == limit:
                return ChangePage(page, page[-1].position)
            # every change of this account up to the newest of any is in the page
            return ChangePage(page, max(start, self._last_position))

    def trim_changes(self, *, before: float | None = None, keep: int | None = None) -> int:
        with self._lock:
            cut = 0
            if before is not None:
                while cut < len(self._changes) and self._changes[cut].time < before:
                    cut += 1
            if keep is not None:
                cut = max(cut, len(self._changes) - keep)
            # the newest is always kept, as SQL stores do (and an empty feed loses nothing)
            cut = max(0, min(cut, len(self._changes) - 1))
            if cut > 0:
                self._trimmed_through = self._positions[cut - 1]
                del self._changes[:cut], self._positions[:cut]
                for part in self._accounts.values():
                    gone = bisect.bisect_right(part.positions, self._trimmed_through)
                    if gone:
                        del part.changes[:gone], part.positions[:gone]
            return cut

    def feed_cursor(self, subscription: str) -> int | None:
        with self._lock:
            return self._cursors.get(subscription)

    def save_feed_cursor(self, subscription: str, position: int) -> None:
        with self._lock:
            self._cursors[subscription] = max(position, self._cursors.get(subscription, position))

    def count_by_status(self) -> dict[str, int]:
        with self._lock:
            return dict(
                Counter(
                    str(exp.status)
                    for part in self._accounts.values()
                    for exp in part.rows.values()
                )
            )

    def ping(self) -> None:
        return None

    def check_writable(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __len__(self) -> int:
        return self._count
