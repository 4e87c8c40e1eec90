"""SQLite's WAL is copied back into the database file by a thread of the store's own,
not by whichever write happens to cross SQLite's threshold (which would make that
write, and every write grouped with it, wait for the copy and its flush)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore
from lifecycle.testing import create_payload


def _names_in_the_database_file(path: Path, copy: Path) -> set[str]:
    """The experiments the database file itself holds, its WAL left aside."""
    shutil.copyfile(path, copy)  # the file alone: what was checkpointed into it
    conn = sqlite3.connect(copy)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM experiments")}
    except sqlite3.OperationalError:  # not even the schema is in the file yet
        return set()
    finally:
        conn.close()


def test_the_writers_connections_never_checkpoint_on_their_own(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    try:
        service = ExperimentService(store)
        service.invoke("CreateInferenceExperiment", create_payload(Name="one", EndpointName="one"))
        assert store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        store.close()


def test_commits_reach_the_database_file_within_a_bound(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path)
    try:
        service = ExperimentService(store)
        names = [f"exp-{i}" for i in range(30)]
        for name in names:
            service.invoke(
                "CreateInferenceExperiment", create_payload(Name=name, EndpointName=name)
            )
        deadline = time.monotonic() + store.checkpoint_seconds + 5
        found: set[str] = set()
        while time.monotonic() < deadline:
            found = _names_in_the_database_file(path, tmp_path / "copy.db")
            if found >= set(names):
                break
            time.sleep(0.05)
        assert found >= set(names), f"{len(set(names) - found)} commits only in the WAL"
    finally:
        store.close()


def _create_many(store: SqliteStore, prefix: str, count: int) -> None:
    service = ExperimentService(store, max_live_experiments=None)
    for i in range(count):
        name = f"{prefix}{i}"
        service.invoke("CreateInferenceExperiment", create_payload(Name=name, EndpointName=name))


def _wal_pages(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size // 4096


def test_the_wal_stays_bounded_under_many_small_commits(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path, synchronous="OFF")
    try:
        _create_many(store, "e", 3000)
        # a checkpoint that copies the whole WAL frees it only if no write began meanwhile;
        # past a bound the checkpoint thread waits for a gap, so the file stops growing
        # near that bound (its size is its high-water mark: SQLite reuses it from the start)
        assert _wal_pages(path) < store.checkpoint_restart_pages + 3000
    finally:
        store.close()


def test_the_wal_stays_bounded_while_writers_leave_no_gap(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path, synchronous="OFF")
    try:
        writers = [
            threading.Thread(target=_create_many, args=(store, f"w{n}-", 1500)) for n in range(3)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert sum(store.count_by_status().values()) == 4500
        assert _wal_pages(path) < store.checkpoint_restart_pages + 3000
    finally:
        store.close()


def test_closing_the_store_ends_its_checkpoint_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = SqliteStore(tmp_path / "x.db")
    ExperimentService(store).invoke(
        "CreateInferenceExperiment", create_payload(Name="one", EndpointName="one")
    )
    store.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        if not left:
            break
        time.sleep(0.01)
    assert not left, f"threads left running: {[t.name for t in left]}"
