"""Group commit on SQLite: writes that arrive together commit in one transaction, each alone."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import StaleVersionError, StoreUnavailableError
from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore
from lifecycle.testing import create_payload

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


def _store_with(path: Path, names: list[str]) -> tuple[SqliteStore, ExperimentService]:
    store = SqliteStore(path)
    service = ExperimentService(store)
    for name in names:
        service.invoke("CreateInferenceExperiment", create_payload(Name=name, EndpointName=name))
    return store, service


def _queued(store: SqliteStore, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(store._queue) < n:
        assert time.monotonic() < deadline, f"{len(store._queue)} of {n} writes queued"
        time.sleep(0.001)


def _save(store: SqliteStore, name: str, version: int, results: dict[str, Any]) -> None:
    exp = store.get(ACCOUNT, name)
    assert exp is not None
    exp.description = f"saved by {threading.current_thread().name}"
    entry = HistoryEntry(name, 1.0, "update", exp.status, ExperimentStatus.CREATING)
    try:
        store.save(exp, version, [entry])
        results[threading.current_thread().name] = ("ok", exp.version)
    except Exception as exc:
        results[threading.current_thread().name] = ("error", exc)


def _run_queued(store: SqliteStore, calls: list[tuple[str, int]]) -> dict[str, Any]:
    """Start ``calls`` while the test holds the write lock, then let them commit at once."""
    results: dict[str, Any] = {}
    threads = [
        threading.Thread(target=_save, args=(store, name, version, results), name=f"t{i}")
        for i, (name, version) in enumerate(calls)
    ]
    store._write_lock.acquire()
    try:
        for t in threads:
            t.start()
        _queued(store, len(calls))
    finally:
        store._write_lock.release()
    for t in threads:
        t.join(10)
    return results


@contextlib.contextmanager
def _held_by_another_thread(store: SqliteStore) -> Iterator[None]:
    """The store's write lock held by another thread of this process meanwhile."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store._write_lock:
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    try:
        yield
    finally:
        done.set()
        holder.join(5)


def test_writes_that_wait_together_commit_in_one_transaction_and_a_stale_one_fails_alone(
    tmp_path: Path,
) -> None:
    names = [f"e{i}" for i in range(8)]
    store, _ = _store_with(tmp_path / "g.db", names)
    before = store.commits
    # eight saves of eight experiments, and one more save of e0 at the version it had
    results = _run_queued(store, [(n, 1) for n in names] + [("e0", 1)])
    assert store.commits == before + 1, "one transaction for the nine writes"
    outcomes = sorted(r[0] for r in results.values())
    assert outcomes == ["error"] + ["ok"] * 8
    (stale,) = [r[1] for r in results.values() if r[0] == "error"]
    assert isinstance(stale, StaleVersionError)
    for name in names:
        exp = store.get(ACCOUNT, name)
        assert exp is not None and exp.version == 2
        assert (
            len(store.history(ACCOUNT, name)) == 2
        )  # the create and one save: the stale one left none
    store.close()


def test_a_failed_transaction_fails_each_of_its_writes_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["a", "b", "c"]
    store, _ = _store_with(tmp_path / "f.db", names)

    @contextlib.contextmanager
    def full_disk(started: float, failed: str) -> Iterator[Any]:
        raise StoreUnavailableError("the disk holding the store is full", kind="disk_full")
        yield  # pragma: no cover

    monkeypatch.setattr(store, "_transaction", full_disk)
    results = _run_queued(store, [(n, 1) for n in names])
    assert [r[0] for r in results.values()] == ["error"] * 3
    assert all(isinstance(r[1], StoreUnavailableError) for r in results.values())
    monkeypatch.undo()
    assert {store.get(ACCOUNT, n).version for n in names} == {1}  # type: ignore[union-attr]
    store.close()


def test_a_write_that_cannot_get_the_lock_within_the_bound_is_unavailable_and_leaves_the_queue(
    tmp_path: Path,
) -> None:

    store = SqliteStore(tmp_path / "t.db", timeout=0.2)
    with _held_by_another_thread(store):
        with pytest.raises(StoreUnavailableError, match="did not come free"):
            store.check_writable()
        with pytest.raises(StoreUnavailableError):
            store.release("nobody")  # a grouped write: it must not stay queued for a later leader
        assert store._queue == []
    store.close()


class _CountingLock:
    """The store's write lock, counting who takes it."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self.taken = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = bool(self._lock.acquire(blocking, timeout))
        self.taken += got
        return got

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_write_committed_by_another_callers_transaction_never_queues_for_the_lock(
    tmp_path: Path,
) -> None:
    names = [f"e{i}" for i in range(16)]
    store, _ = _store_with(tmp_path / "c.db", names)
    lock = _CountingLock(store._write_lock)
    store._write_lock = lock  # type: ignore[assignment]
    before, saves = store.commits, 20
    failures: list[BaseException] = []

    def many(name: str) -> None:
        try:
            for version in range(1, saves + 1):
                exp = store.get(ACCOUNT, name)
                assert exp is not None
                exp.description = f"save {version}"
                store.save(exp, version, [])
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=many, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    commits = store.commits - before
    assert commits < len(names) * saves, "some writes were committed together"
    # each time the lock is taken, a group is committed: no caller waits its turn at the
    # lock only to find that its write went out in someone else's transaction
    assert lock.taken == commits
    assert {store.get(ACCOUNT, n).version for n in names} == {saves + 1}  # type: ignore[union-attr]
    store.close()


def test_writes_waiting_behind_a_held_lock_are_refused_in_time_and_the_next_write_goes_through(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "w.db", timeout=0.3)
    refused: list[float] = []

    def write() -> None:
        started = time.monotonic()
        with contextlib.suppress(StoreUnavailableError):
            store.release("nobody")
            return
        refused.append(time.monotonic() - started)

    writers = [threading.Thread(target=write) for _ in range(4)]
    with _held_by_another_thread(store):
        for t in writers:
            t.start()
        for t in writers:
            t.join(5)
        assert len(refused) == 4, "each waiting write is refused, none written"
        assert max(refused) < 1.0, f"refused after {max(refused):.2f}s, the bound is 0.3s"
        assert store._queue == []
    store.release("nobody")  # the turn was handed on or freed: a later write commits
    assert store._queue == []
    store.close()
