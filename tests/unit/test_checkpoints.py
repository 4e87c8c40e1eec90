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


def test_the_wal_stays_bounded_under_many_small_commits(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path, synchronous="OFF")
    try:
        service = ExperimentService(store, max_live_experiments=None)
        for i in range(3000):
            service.invoke(
                "CreateInferenceExperiment", create_payload(Name=f"e{i}", EndpointName=f"e{i}")
            )
        wal = Path(f"{path}-wal").stat().st_size
        # SQLite's own threshold is 1,000 pages; the checkpointer starts at the same count
        # of commits' pages, so the WAL stays within a few times that, not 3,000 commits' worth
        assert wal < 24 * 1000 * 4096, f"the WAL grew to {wal:,} bytes"
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
