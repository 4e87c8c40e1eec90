"""MemoryStore: the in-memory store. Real (thread-safe, versioned) and the test double."""

from __future__ import annotations

import heapq
import threading
from itertools import islice

from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.errors import ResourceInUseError, ResourceLimitExceededError, StaleVersionError
from lifecycle.stores.base import ListPage, ListQuery, sort_key

__all__ = ["MemoryStore"]


class MemoryStore:
    """Experiments in a dict, with a due-time heap and a live-endpoint index."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, Experiment] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
        self._live_endpoints: dict[str, str] = {}  # endpoint -> name of its live experiment
        self._due: list[tuple[float, int, str]] = []  # (due_at, version, name); stale rows skipped

    # -- writes ---------------------------------------------------------------

    def create(self, exp: Experiment, entry: HistoryEntry, *, max_live: int | None = None) -> None:
        with self._lock:
            if exp.name in self._rows:
                raise ResourceInUseError(f"Inference experiment '{exp.name}' already exists", name=exp.name, rule="unique-name")
            holder = self._live_endpoints.get(exp.endpoint_name)
            if holder is not None:
                raise ResourceInUseError(
                    f"Endpoint '{exp.endpoint_name}' already has a live inference experiment ('{holder}'); one live experiment per endpoint",
                    name=exp.name,
                    rule="one-live-experiment-per-endpoint",
                )
            if max_live is not None and len(self._live_endpoints) >= max_live:
                raise ResourceLimitExceededError(
                    f"At most {max_live} inference experiments may be live (not Completed or Cancelled) at once",
                    name=exp.name,
                    rule="max-live-experiments",
                )
            exp.version = 1
            self._put(exp)
            self._history[exp.name] = [entry]

    def save(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        with self._lock:
            current = self._rows.get(exp.name)
            if current is None or current.version != expected_version:
                raise StaleVersionError(
                    f"Inference experiment '{exp.name}' was changed by another request; nothing was written",
                    name=exp.name,
                    rule="versioned-save",
                )
            if current.status.terminal is False and exp.status.terminal:
                self._live_endpoints.pop(current.endpoint_name, None)
            exp.version = expected_version + 1
            self._put(exp)
            self._history[exp.name].extend(entries)

    def delete(self, name: str, expected_version: int) -> None:
        with self._lock:
            current = self._rows.get(name)
            if current is None or current.version != expected_version:
                raise StaleVersionError(f"Inference experiment '{name}' was changed by another request; nothing was deleted", name=name, rule="versioned-save")
            del self._rows[name]
            del self._history[name]
            if self._live_endpoints.get(current.endpoint_name) == name:
                del self._live_endpoints[current.endpoint_name]

    def _put(self, exp: Experiment) -> None:
        stored = exp.copy()
        self._rows[exp.name] = stored
        if not stored.status.terminal:
            self._live_endpoints[stored.endpoint_name] = stored.name
        if stored.due_at is not None:
            heapq.heappush(self._due, (stored.due_at, stored.version, stored.name))

    # -- reads ----------------------------------------------------------------

    def get(self, name: str) -> Experiment | None:
        row = self._rows.get(name)
        return None if row is None else row.copy()

    def list(self, query: ListQuery) -> ListPage:
        with self._lock:
            rows = [r for r in self._rows.values() if query.matches(r)]
        by = query.sort_by
        rows.sort(key=lambda r: sort_key(r, by), reverse=query.descending)
        if query.after is not None:
            after = query.after
            if query.descending:
                rows = [r for r in rows if sort_key(r, by) < after]
            else:
                rows = [r for r in rows if sort_key(r, by) > after]
        page = list(islice(rows, query.limit + 1))
        return ListPage([r.copy() for r in page[: query.limit]], len(page) > query.limit)

    def history(self, name: str) -> list[HistoryEntry]:
        with self._lock:
            return list(self._history.get(name, ()))

    def due(self, now: float, limit: int = 100) -> list[str]:
        out: list[str] = []
        with self._lock:
            heap = self._due
            while heap and heap[0][0] <= now and len(out) < limit:
                due_at, version, name = heap[0]
                row = self._rows.get(name)
                if row is None or row.version != version or row.due_at != due_at:
                    heapq.heappop(heap)  # superseded by a later save
                    continue
                out.append(name)
                heapq.heappop(heap)
            # names handed out stay due until saved with a new due time: push them back
            for name in out:
                row = self._rows[name]
                assert row.due_at is not None
                heapq.heappush(heap, (row.due_at, row.version, name))
        return out

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._rows)
