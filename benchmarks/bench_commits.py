"""Durable writes from many threads at once: what group commit buys, on each SQL store.

Each of ``--threads`` threads stops its own share of Running experiments
through ``ExperimentService.invoke`` (one durable transaction per Stop when
alone), for SQLite (``synchronous=FULL``) with its group commit and with
each write committed alone, and for PostgreSQL. Each line prints the Stops
a second, the p99 of one Stop, and how many Stops one flush to disk carried:

- SQLite: Stops per transaction committed (``SqliteStore.commits``); with
  ``synchronous=FULL`` each commit is one flush of the WAL;
- PostgreSQL: Stops per WAL flush the server made (``pg_stat_wal.wal_sync``,
  every flush of the whole server while the run lasts): PostgreSQL flushes
  the WAL of every transaction waiting to commit at once, so several
  connections' commits share one flush with no grouping of ours.

    python benchmarks/bench_commits.py [--threads 16] [--stops 4000] [--postgres DSN]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stores import _postgres, seed, service_on

from lifecycle.stores import SqliteStore

STOP = {
    "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"},
    "DesiredState": "Completed",
    "Reason": "benchmark",
}


class AloneSqliteStore(SqliteStore):
    """SQLite with each write committed in a transaction of its own (no group commit)."""

    def _transact(self, work: Callable[[Any], Any]) -> Any:
        if getattr(self._local, "writing", False):
            return work(self._conn())
        self._local.writing = True
        try:
            with self._write() as conn:
                result = work(conn)
            self.commits += 1
            return result
        finally:
            self._local.writing = False


def run(store: Any, threads: int, stops: int) -> tuple[float, float, int]:
    """Stops a second, their p99 in ms, and how many were made (each thread its share)."""
    service = service_on(store)
    names = seed(store, stops + 20 * threads, running=True, prefix="commit")
    for name in names[: 20 * threads]:  # warm up each connection's statement cache
        service.invoke("StopInferenceExperiment", {"Name": name, **STOP})
    todo = names[20 * threads :]
    shares = [todo[i::threads] for i in range(threads)]
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(share: list[str]) -> None:
        mine = []
        start.wait()
        for name in share:
            began = time.perf_counter()
            service.invoke("StopInferenceExperiment", {"Name": name, **STOP})
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return len(latencies) / elapsed, p99, len(latencies)


def line(label: str, rate: float, p99: float, per_flush: float, what: str) -> str:
    return (
        f"{label:<34} {rate:9,.0f} Stops/s   p99 {p99:7.2f} ms   {per_flush:5.1f} Stops per {what}"
    )


def sqlite_lines(scratch: Path, threads: int, stops: int) -> Iterator[str]:
    for label, kind in (
        ("sqlite FULL, group commit", SqliteStore),
        ("sqlite FULL, each write alone", AloneSqliteStore),
    ):
        store = kind(scratch / f"{kind.__name__}.db", synchronous="FULL")
        try:
            before = store.commits
            rate, p99, made = run(store, threads, stops)
            commits = store.commits - before
            # the seed's and warm-up's commits are few next to the run's
            yield line(label, rate, p99, made / max(1, commits), "commit (one WAL flush each)")
        finally:
            store.close()


@contextlib.contextmanager
def _wal_syncs(dsn: str) -> Iterator[Callable[[], int]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:

        def syncs() -> int:
            row = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
            return int(row[0]) if row else 0

        yield syncs


def postgres_lines(dsn: str, threads: int, stops: int) -> Iterator[str]:
    with _postgres(dsn) as make, _wal_syncs(dsn) as syncs:
        store = make("commits")
        try:
            store_pool = getattr(store, "_pool", None)
            if store_pool is not None and getattr(store_pool, "max_size", threads) < threads:
                yield f"# postgres: the store's pool has {store_pool.max_size} connections"
            service_on(store)  # the schema is made
            before = syncs()
            rate, p99, made = run(store, threads, stops)
            flushes = syncs() - before
            yield line(
                "postgres", rate, p99, made / max(1, flushes), "WAL flush (the whole server's)"
            )
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=16, help="writer threads (default 16)")
    parser.add_argument("--stops", type=int, default=4000, help="Stops timed per store")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "LIFECYCLE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    print(f"# {args.threads} threads, {args.stops:,} Stops per store", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-commits-"))
    try:
        for text in sqlite_lines(scratch, args.threads, args.stops):
            print(text, flush=True)
        if not args.no_postgres:
            try:
                for text in postgres_lines(args.postgres, args.threads, args.stops):
                    print(text, flush=True)
            except Exception as err:  # no server or no psycopg: say so
                print(f"postgres skipped: {err}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
