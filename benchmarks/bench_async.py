"""AsyncExperimentService: concurrent asyncio callers, its worker pool against the alternatives.

One run prints two tables.

1. The service, per store (memory, SQLite with ``synchronous=FULL``, PostgreSQL
   when a DSN is given): ``--callers`` coroutines share ``--calls`` calls of
   DescribeInferenceExperiment (a read) and then of CreateInferenceExperiment
   (a write, each its own experiment). ``loop`` calls the sync service straight
   from the coroutines (what a host that does not wrap its calls gets);
   ``pool-N`` is ``AsyncExperimentService(max_workers=N)``. For each: calls per
   second, p50/p99 latency of one call, and the event loop's worst stall (a
   ticker that sleeps 1 ms records how late it wakes).

2. PostgreSQL only: the read under the service, one experiment by name
   (``PostgresStore.get``: one SELECT and the row decoded), through the
   store's sync connections in 8 worker threads against psycopg's async pool
   (``psycopg_pool.AsyncConnectionPool`` of 8, the same SELECT and decoding,
   awaited on the loop): whether an async store would be faster. Twice each,
   taking turns.

The PostgreSQL DSN is ``--postgres`` or ``LIFECYCLE_TEST_POSTGRES_DSN``; the
run uses a schema of its own and drops it. Everything is bounded by
``--calls``.

    python benchmarks/bench_async.py [--callers 64] [--calls 1000] [--workers 1,4,8,16]
                                     [--postgres DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lifecycle.service import AsyncExperimentService, ExperimentService
from lifecycle.stores import MemoryStore, SqliteStore, Store
from lifecycle.testing import create_payload

SEEDED = 200


class Stalls:
    """A coroutine that sleeps 1 ms at a time and records how late it wakes."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._asked = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    def _late(self) -> None:
        self.worst = max(self.worst, time.perf_counter() - self._asked - 0.001)

    async def _tick(self) -> None:
        while True:
            self._asked = time.perf_counter()
            await asyncio.sleep(0.001)
            self._late()

    def __enter__(self) -> Stalls:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._late()  # a loop blocked to the end never woke the ticker at all
        self._task.cancel()


async def drive(
    callers: int, calls: int, call: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float], float]:
    """``calls`` calls of ``call(i)`` from ``callers`` coroutines: (seconds, latencies, worst stall)."""
    queue = iter(range(calls))
    latencies: list[float] = []

    async def caller() -> None:
        for i in queue:
            began = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - began)

    with Stalls() as stalls:
        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - began
    return elapsed, latencies, stalls.worst


def row(label: str, calls: int, elapsed: float, latencies: list[float], stall: float) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return (
        f"{label:<30} {calls / elapsed:>9,.0f}/s  p50 {cuts[49] * 1000:>7.2f} ms  "
        f"p99 {cuts[98] * 1000:>7.2f} ms  worst loop stall {stall * 1000:>7.1f} ms"
    )


def request(tag: str, i: int) -> dict[str, Any]:
    return create_payload(Name=f"{tag}-{i}", EndpointName=f"ep-{tag}-{i}")


async def bench_service(
    label: str, store: Store, workers: list[int], callers: int, calls: int
) -> None:
    sync = ExperimentService(store, max_live_experiments=None)
    for i in range(SEEDED):
        sync.invoke("CreateInferenceExperiment", request("seed", i))
    pick = random.Random(7)
    modes: list[tuple[str, Callable[[str, dict[str, Any]], Awaitable[object]]]] = []

    async def on_the_loop(operation: str, payload: dict[str, Any]) -> object:
        return sync.invoke(operation, payload)

    modes.append(("loop", on_the_loop))
    pools = [AsyncExperimentService(sync, max_workers=n) for n in workers]
    modes.extend((f"pool-{api.max_workers}", api.invoke) for api in pools)
    try:
        for mode, invoke in modes:

            def describe(i: int, invoke: Any = invoke) -> Awaitable[object]:
                name = f"seed-{pick.randrange(SEEDED)}"
                return invoke("DescribeInferenceExperiment", {"Name": name})  # type: ignore[no-any-return]

            def create(i: int, invoke: Any = invoke, tag: str = uuid.uuid4().hex[:8]) -> Any:
                return invoke("CreateInferenceExperiment", request(tag, i))

            for what, call in (("Describe", describe), ("Create", create)):
                print(row(f"{label} {what} {mode}", calls, *await drive(callers, calls, call)))
    finally:
        for api in pools:
            await api.aclose()


async def bench_postgres_transport(dsn: str, schema: str, callers: int, calls: int) -> None:
    from psycopg_pool import AsyncConnectionPool

    from lifecycle.stores._sql import row_experiment
    from lifecycle.stores.postgres import PostgresStore

    store = PostgresStore(dsn, schema=schema, pool_size=8)
    sync = ExperimentService(store, max_live_experiments=None)
    for i in range(SEEDED):
        sync.invoke("CreateInferenceExperiment", request("read", i))
    pick = random.Random(7)
    sql = store._sql.select_one
    threads = ThreadPoolExecutor(8)
    pool = AsyncConnectionPool(dsn, min_size=8, max_size=8, kwargs={"autocommit": True}, open=False)
    await pool.open(wait=True)
    loop = asyncio.get_running_loop()

    async def in_threads(i: int) -> object:
        name = f"read-{pick.randrange(SEEDED)}"
        return await loop.run_in_executor(threads, store.get, sync.account_id, name)

    async def natively(i: int) -> object:
        async with pool.connection() as conn:
            cursor = await conn.execute(sql, (sync.account_id, f"read-{pick.randrange(SEEDED)}"))
            rows = await cursor.fetchall()
        return row_experiment(rows[0])

    try:
        for _ in range(2):  # twice each, taking turns, so background load reaches both alike
            for label, call in (
                ("PostgreSQL get, 8 threads", in_threads),
                ("PostgreSQL get, psycopg_pool 8", natively),
            ):
                await drive(callers, min(calls, 200), call)  # warm
                print(row(label, calls, *await drive(callers, calls, call)))
    finally:
        threads.shutdown()
        await pool.close()
        store.close()


async def main_async(args: argparse.Namespace) -> None:
    workers = [int(n) for n in args.workers.split(",")]
    print(f"{args.callers} concurrent callers, {args.calls} calls per row")
    await bench_service("memory", MemoryStore(), workers, args.callers, args.calls)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        try:
            await bench_service("sqlite", store, workers, args.callers, args.calls)
        finally:
            store.close()
    if not args.postgres:
        print("PostgreSQL skipped: give --postgres DSN or set LIFECYCLE_TEST_POSTGRES_DSN")
        return
    import psycopg

    from lifecycle.stores.postgres import PostgresStore

    schema = f"bench_async_{uuid.uuid4().hex[:8]}"
    try:
        store = PostgresStore(args.postgres, schema=schema)
        try:
            await bench_service("postgres", store, workers, args.callers, args.calls)
        finally:
            store.close()
        await bench_postgres_transport(args.postgres, schema + "_t", args.callers, args.calls)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            for name in (schema, schema + "_t"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--callers", type=int, default=64, help="concurrent coroutines")
    parser.add_argument("--calls", type=int, default=1000, help="calls timed per row")
    parser.add_argument("--workers", default="1,4,8,16", help="pool sizes to time, commas")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LIFECYCLE_TEST_POSTGRES_DSN", ""),
        help="a PostgreSQL DSN (default: $LIFECYCLE_TEST_POSTGRES_DSN)",
    )
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
