"""The stores side by side: memory, SQLite and PostgreSQL, small and large.

One run prints, for each store:

- StopInferenceExperiment operations per second from one thread, through
  ``ExperimentService.invoke`` (each stop on its own Running experiment;
  SQLite with ``synchronous=FULL``, the default, and ``NORMAL``);
- what the change feed adds to a Stop: the time of one Stop on the store
  and on the same store with its change-feed insert left out (what a Stop
  cost before the feed), taken in alternating rounds, medians (target: at
  most 15% more) on SQLite (FULL and NORMAL) and PostgreSQL;
- the median DescribeInferenceExperiment time with 1,000 and with 1,000,000
  stored experiments (target: at most 1.3x);
- the median time of an unfiltered List page and of a StatusEquals List page
  (default sort, newest first, MaxResults 10, the first page and the pages
  after it by NextToken) at both sizes (same target);

and the peak resident memory of a ``lifecycle serve`` process serving the
1,000,000-experiment SQLite file while it answers Describe, List and Stop
requests (target: under 200 MB).

The large stores are seeded in bulk straight through the store
(``bulk_create``: executemany on SQLite, COPY on PostgreSQL). PostgreSQL
uses ``LIFECYCLE_TEST_POSTGRES_DSN`` (or ``--postgres DSN``) and a schema of
its own, dropped at the end.

    python benchmarks/bench_stores.py [--large 1000000] [--postgres DSN] [--keep DIR] [--feed-only]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore, SqliteStore, Store

REPO = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0
SMALL = 1_000
INFRA = {
    "InfrastructureType": "RealTimeInference",
    "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
}
SMC = {
    "SourceModelVariantName": "prod",
    "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
}
TAGS = [{"Key": "team", "Value": "ml"}]
#: the status mix of the seeded stores: most experiments of a long-lived control plane are finished
MIX = [ExperimentStatus.COMPLETED] * 6 + [
    ExperimentStatus.CANCELLED,
    ExperimentStatus.RUNNING,
    ExperimentStatus.RUNNING,
    ExperimentStatus.CREATED,
]
STATUS_FILTER = "Running"


def experiment(
    i: int, status: ExperimentStatus, prefix: str = "exp"
) -> tuple[Experiment, HistoryEntry]:
    name = f"{prefix}-{i:07d}"
    created = T0 + i
    live = not status.terminal
    exp = Experiment(
        account="123456789012",
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/{name}",
        endpoint_name=f"ep-{prefix}-{i}",
        role_arn="arn:aws:iam::123456789012:role/r",
        variants=[
            Variant("prod", "model-a", INFRA, VariantStatus.IN_SERVICE),
            Variant("shadow", "model-b", INFRA, VariantStatus.IN_SERVICE),
        ],
        shadow_mode_config=SMC,
        start_time=created,
        end_time=created + 7 * 86400,
        creation_time=created,
        last_modified_time=created,
        status=status,
        description="a shadow test of model-b against model-a",
        tags=TAGS,
        completion_time=None if live else created + 3600,
        entered_at=created,
        due_at=created + 10 * 365 * 86400 if status is ExperimentStatus.RUNNING else None,
    )
    return exp, HistoryEntry(
        name, created, "create", None, ExperimentStatus.CREATING, None, "seed", 1
    )


def seed(
    store: Any, n: int, *, running: bool = False, prefix: str = "exp", chunk: int = 50_000
) -> list[str]:
    """Put ``n`` experiments in ``store`` in bulk; every one Running when ``running``, else the MIX."""
    names: list[str] = []
    for start in range(0, n, chunk):
        batch = [
            experiment(i, ExperimentStatus.RUNNING if running else MIX[i % len(MIX)], prefix)
            for i in range(start, min(n, start + chunk))
        ]
        store.bulk_create(batch)
        names.extend(e.name for e, _ in batch)
        del batch
    return names


def service_on(store: Store) -> ExperimentService:
    return ExperimentService(store, clock=lambda: T0 + 60, max_live_experiments=None)


def stops_per_second(store: Any, n: int) -> float:
    service = service_on(store)
    names = seed(store, n, running=True, prefix="stop")
    stop = {
        "ModelVariantActions": {"shadow": "Promote"},
        "DesiredState": "Completed",
        "Reason": "shadow wins",
    }
    for name in names[:50]:  # warm up
        service.invoke("StopInferenceExperiment", {"Name": name, **stop})
    started = time.perf_counter()
    for name in names[50:]:
        service.invoke("StopInferenceExperiment", {"Name": name, **stop})
    return (n - 50) / (time.perf_counter() - started)


class _WithoutFeed:
    """Mixed in before a SQL store: its change-feed rows left out, so a save writes what it
    wrote before the feed (the record and its history rows, nothing else)."""

    def _change_rows(self, exp: Any, entries: Any, numbering: Any) -> list[tuple[Any, ...]]:
        return []


def without_feed(store_class: type) -> type:
    """``store_class`` with its change-feed insert left out."""
    return type(f"{store_class.__name__}WithoutFeed", (_WithoutFeed, store_class), {})


def feed_cost(label: str, with_feed: Any, no_feed: Any, n: int, rounds: int = 40) -> str:
    """The median time of one Stop with the feed and without, in alternating rounds."""
    stop = {"ModelVariantActions": {"shadow": "Promote"}, "DesiredState": "Completed"}
    sides = []
    for store in (with_feed, no_feed):
        names = seed(store, n, running=True, prefix="feed")
        service = service_on(store)
        for name in names[:50]:  # warm up
            service.invoke("StopInferenceExperiment", {"Name": name, **stop})
        sides.append((service, iter(names[50:]), []))
    per_round = (n - 50) // rounds
    for r in range(rounds):
        for service, names_left, samples in sides if r % 2 == 0 else reversed(sides):
            batch = [next(names_left) for _ in range(per_round)]
            started = time.perf_counter()
            for name in batch:
                service.invoke("StopInferenceExperiment", {"Name": name, **stop})
            samples.append((time.perf_counter() - started) / per_round * 1e6)
    assert with_feed.changes(None, 1000).changes, "the store with the feed wrote none"
    assert not no_feed.changes(None, 10).changes, "the store without the feed wrote some"
    with_us, without_us = (statistics.median(samples) for _, _, samples in sides)
    extra = (with_us / without_us - 1) * 100
    return (f"{label:<9} {'Stop, with the feed / without':<28} {with_us:8.1f} us / {without_us:8.1f} us"
            f"   the feed adds {extra:+5.1f}% (target <= +15%)")  # fmt: skip


def feed_costs(
    scratch: Path, make_pg: Callable[[str, type | None], Any] | None, n: int
) -> Iterator[str]:
    for sync in ("FULL", "NORMAL"):
        with_feed = SqliteStore(scratch / f"feed-{sync}.db", synchronous=sync)
        no_feed = without_feed(SqliteStore)(scratch / f"nofeed-{sync}.db", synchronous=sync)
        yield feed_cost("sqlite", with_feed, no_feed, n).replace("Stop,", f"Stop ({sync}),")
        with_feed.close()
        no_feed.close()
    if make_pg is not None:
        from lifecycle.stores.postgres import PostgresStore

        with_feed, no_feed = make_pg("feed", None), make_pg("nofeed", without_feed(PostgresStore))
        yield feed_cost("postgres", with_feed, no_feed, n)
        with_feed.close()
        no_feed.close()


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _walk(
    service: ExperimentService, body: dict[str, Any], pages: int, samples: list[float]
) -> None:
    request = dict(body)
    for _ in range(pages):
        t = time.perf_counter_ns()
        out = service.invoke("ListInferenceExperiments", request)
        samples.append((time.perf_counter_ns() - t) / 1000)
        if "NextToken" not in out:
            return
        request = {**body, "NextToken": out["NextToken"]}


class Reads:
    """Describe and List timings on one store, taken in rounds so two stores can take turns."""

    def __init__(self, store: Any, names: list[str]) -> None:
        self.service = service_on(store)
        self.names = names
        self.rng = random.Random(len(names))
        self.samples: dict[str, list[float]] = {"describe": [], "list": [], "status": []}
        self.round(50, 1)  # warm up; not kept
        for kept in self.samples.values():
            kept.clear()

    def describe(self, payload: dict[str, Any]) -> object:
        return self.service.invoke("DescribeInferenceExperiment", payload)

    def round(self, describes: int, walks: int) -> None:
        picks = [self.rng.choice(self.names) for _ in range(describes)]
        gc.collect()
        with _gc_off():
            for name in picks:
                payload = {"Name": name.encode().decode()}  # a new string, as a server decodes it
                t = time.perf_counter_ns()
                self.describe(payload)
                self.samples["describe"].append((time.perf_counter_ns() - t) / 1000)
            for _ in range(walks):
                _walk(self.service, {}, 20, self.samples["list"])
                _walk(self.service, {"StatusEquals": STATUS_FILTER}, 20, self.samples["status"])

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.samples.items()}


def line(label: str, what: str, small: float, large: float, large_n: int) -> str:
    return f"{label:<9} {what:<28} {SMALL:>9,}: {small:8.1f} us   {large_n:>9,}: {large:8.1f} us   {large / small:5.2f}x (target <= 1.3x)"


def compare(label: str, make: Callable[[str], Any], large_n: int, describes: int) -> list[str]:
    """Seed a small and a large store, then time them in alternating rounds (same background load)."""
    small_store = make("small")
    small = Reads(small_store, seed(small_store, SMALL))
    t = time.perf_counter()
    large_store = make("large")
    large = Reads(large_store, seed(large_store, large_n))
    print(
        f"# {label}: seeded {large_n:,} in {time.perf_counter() - t:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    rounds = 10
    for _ in range(rounds):
        small.round(describes // rounds, 3)
        large.round(describes // rounds, 3)
    small_store.close()
    large_store.close()
    a, b = small.medians(), large.medians()
    return [
        line(label, "Describe", a["describe"], b["describe"], large_n),
        line(label, "List page (unfiltered)", a["list"], b["list"], large_n),
        line(label, f"List page (StatusEquals={STATUS_FILTER})", a["status"], b["status"], large_n),
    ]


# -- the serving process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(port: int, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/",
            json.dumps(body),
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"SageMaker.{operation}",
            },
        )
        response = conn.getresponse()
        data: dict[str, Any] = json.loads(response.read() or b"{}")
        if response.status != 200:
            raise RuntimeError(f"{operation}: HTTP {response.status} {data}")
        return data
    finally:
        conn.close()


def peak_rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def serving_rss(path: Path, names: list[str]) -> str:
    port = free_port()
    argv = [sys.executable, "-m", "lifecycle.http.serve", "--port", str(port), "--store", f"sqlite:///{path}",
            "--max-live-experiments", "10000000", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                call(port, "ListInferenceExperiments", {"MaxResults": 1})
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"lifecycle serve did not start: {process.stderr.read() if process.stderr else ''!r}"
                    ) from None
                time.sleep(0.2)
        rng = random.Random(3)
        for name in rng.sample(names, 2000):
            call(port, "DescribeInferenceExperiment", {"Name": name})
        for status in (None, "Running", "Completed", "Cancelled"):
            body: dict[str, Any] = {
                "MaxResults": 100,
                **({"StatusEquals": status} if status else {}),
            }
            for _ in range(20):
                out = call(port, "ListInferenceExperiments", body)
                if "NextToken" not in out:
                    break
                body["NextToken"] = out["NextToken"]
        running = [n for i, n in enumerate(names) if MIX[i % len(MIX)] is ExperimentStatus.RUNNING]
        for name in rng.sample(running, 200):
            call(
                port,
                "StopInferenceExperiment",
                {"Name": name, "ModelVariantActions": {"shadow": "Promote"}},
            )
        time.sleep(1.5)  # the reconciler carries the stops out
        rss = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    return (f"{'sqlite':<9} {'serving process peak RSS':<28} {len(names):>9,} experiments "
            f"({size_mb:,.0f} MB file): {rss:.0f} MB (target < 200 MB)")  # fmt: skip


# -- main -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres(dsn: str) -> Iterator[Callable[..., Any]]:
    """Make PostgresStores (of ``kind``, a subclass, when given), each in a schema of its own;
    drop those schemas at the end."""
    import psycopg

    from lifecycle.stores.postgres import PostgresStore

    schemas: list[str] = []

    def make(tag: str, kind: type | None = None) -> PostgresStore:
        schema = f"lifecycle_bench_{tag}_{uuid.uuid4().hex[:8]}"
        schemas.append(schema)
        made: PostgresStore = (kind or PostgresStore)(dsn, schema=schema)
        return made

    try:
        yield make
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--large",
        type=int,
        default=1_000_000,
        help="experiments in the large stores (default 1,000,000)",
    )
    parser.add_argument(
        "--stops", type=int, default=2_000, help="stops timed per store (default 2,000)"
    )
    parser.add_argument(
        "--describes",
        type=int,
        default=3_000,
        help="describes timed per store size (default 3,000)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "LIFECYCLE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--keep", type=Path, help="put the SQLite files here and keep them")
    parser.add_argument(
        "--feed-only",
        action="store_true",
        help="time only what the change feed adds to a Stop",
    )
    parser.add_argument(
        "--feed-stops",
        type=int,
        default=6_050,
        help="stops timed per store in the feed comparison (default 6,050)",
    )
    args = parser.parse_args(argv)

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench-stores-"))
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with contextlib.ExitStack() as cleanup:
        if args.keep is None:
            cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
        make_pg: Callable[..., Any] | None = None
        try:
            make_pg = cleanup.enter_context(_postgres(args.postgres))
            make_pg("probe").close()
        except Exception as err:  # no server or no psycopg: say so and go on
            print(f"{'postgres':<9} skipped: {err}", flush=True)
            make_pg = None

        # what the change feed adds to a Stop
        for text in feed_costs(scratch, make_pg, args.feed_stops):
            print(text, flush=True)
        if args.feed_only:
            return 0

        # Stop throughput, one thread
        print(
            f"{'memory':<9} {'Stop, one thread':<28} {stops_per_second(MemoryStore(), args.stops):9,.0f} ops/s",
            flush=True,
        )
        for sync in ("FULL", "NORMAL"):
            store = SqliteStore(scratch / f"stops-{sync}.db", synchronous=sync)
            print(
                f"{'sqlite':<9} {f'Stop, one thread ({sync})':<28} {stops_per_second(store, args.stops):9,.0f} ops/s",
                flush=True,
            )
            store.close()
        if make_pg is not None:
            store = make_pg("stops")
            print(
                f"{'postgres':<9} {'Stop, one thread':<28} {stops_per_second(store, args.stops):9,.0f} ops/s",
                flush=True,
            )
            store.close()

        # Describe and List at both sizes
        kinds: list[tuple[str, Callable[[str], Any]]] = [
            ("memory", lambda tag: MemoryStore()),
            ("sqlite", lambda tag: SqliteStore(scratch / f"{tag}.db")),
        ]
        if make_pg is not None:
            kinds.append(("postgres", make_pg))
        for label, make in kinds:
            for text in compare(label, make, args.large, args.describes):
                print(text, flush=True)

        # the serving process over the large SQLite file
        names = [f"exp-{i:07d}" for i in range(args.large)]
        print(serving_rss(scratch / "large.db", names), flush=True)
    print(f"# whole run: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
