"""The change feed under load: two processes of 8 writer threads each, while a reader follows it.

The writers run this file as a script (``python test_feed_races.py write URL
SEED``): each opens the store, says ``ready``, waits for ``go``, then its
threads create, start and stop experiments that both processes share (so
saves go stale and requests are refused), run reconciler passes (whose
batches have stale saves in them), and save some transitions slowly:
holding their transaction open a while after writing, so a transaction that
wrote first commits after ones that wrote later. Each prints one JSON line:
every transition it committed (the service's listener hears each after its
commit) and how many of its writes were stale or refused.

Meanwhile the test follows the feed page by page. It must see every
committed transition exactly once, never a position at or below one it has
already read, each experiment's changes in its history's order, and nothing
else: a stale save or a refused request leaves no change.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import pytest

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.errors import ConflictError, LifecycleError, ResourceInUseError
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import Store, open_store
from lifecycle.stores.base import Change

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

pytestmark = pytest.mark.slow

NAMES = [f"fed-{i:02d}" for i in range(16)]
THREADS = 8
OPERATIONS_PER_THREAD = 40
STOP = {"ModelVariantActions": {"shadow": "Promote"}, "DesiredState": "Completed"}


def create_request(name: str) -> dict[str, Any]:
    infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    return {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
        "EndpointName": f"ep-{name}",
        "ModelVariants": [
            {"ModelName": "model-a", "VariantName": "prod", "InfrastructureConfig": infra},
            {"ModelName": "model-b", "VariantName": "shadow", "InfrastructureConfig": infra},
        ],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }


def key(name: str, time_: float, event: str, source: str | None, to: str, reason: str | None,
        request_id: str | None, machine: str, variant: str | None) -> tuple[Any, ...]:  # fmt: skip
    """What identifies a committed transition, in the feed and in a worker's report alike."""
    return (name, round(time_, 3), event, source, to, reason, request_id, machine, variant)


def entry_key(e: HistoryEntry) -> tuple[Any, ...]:
    source = None if e.from_status is None else e.from_status.value
    return key(e.name, e.time, e.event, source, e.to_status.value, e.reason, e.request_id,
               e.machine, e.variant)  # fmt: skip


def change_key(c: Change) -> tuple[Any, ...]:
    source = None if c.from_status is None else c.from_status.value
    return key(c.name, c.time, c.event, source, c.to_status.value, c.reason, c.request_id,
               c.machine, c.variant)  # fmt: skip


# -- the writers (run as a script) ----------------------------------------------------------------


class SlowSaves:
    """The store, with one save in three (and every save until one such has committed)
    held open a while after it wrote (its transaction commits after others that began and
    wrote after it), and one load in three slow to come back (a concurrent save makes what
    was loaded stale)."""

    def __init__(self, store: Any, seed: int) -> None:
        self._store = store
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.slow = 0
        #: every entry of every write that committed, the variant machine's included
        self.committed: list[tuple[Any, ...]] = []

    def _committed(self, entries: list[HistoryEntry]) -> None:
        with self._lock:
            self.committed.extend(entry_key(e) for e in entries)

    def create(self, exp: Any, entry: HistoryEntry, **kw: Any) -> None:
        self._store.create(exp, entry, **kw)
        self._committed([entry])

    def save_many(self, saves: list[Any]) -> list[bool]:
        written: list[bool] = self._store.save_many(saves)
        for (_, _, entries), ok in zip(saves, written, strict=True):
            if ok:
                self._committed(entries)
        return written

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._store, attr)

    def get(self, account: str, name: str) -> Any:
        exp = self._store.get(account, name)
        with self._lock:
            pause = self._random.uniform(0.005, 0.03) if self._random.random() < 1 / 3 else 0
        time.sleep(pause)
        return exp

    def save(self, exp: Any, expected_version: int, entries: list[HistoryEntry]) -> None:
        with self._lock:
            # until one held save has committed, every save is held: a run whose held saves
            # all came out stale would race nothing of what this is for
            hold = self.slow == 0 or self._random.random() < 1 / 3
            pause = self._random.uniform(0.01, 0.08)
        if not hold:
            self._store.save(exp, expected_version, entries)
            self._committed(entries)
            return

        def work(conn: Any) -> int:
            version = int(
                self._store._save_in(conn, exp, expected_version, entries, itertools.count())
            )
            time.sleep(pause)  # written, not committed: later transactions commit first
            return version

        exp.version = self._store._transact(work)
        self._committed(entries)
        with self._lock:
            self.slow += 1


def _worker_write(url: str, seed: str) -> dict[str, Any]:
    store = open_store(url)
    slow = SlowSaves(store, int(seed))
    service = ExperimentService(cast(Store, slow), settle_seconds=0.0, max_live_experiments=None)
    reconciler = Reconciler(service, batch=8)
    heard: list[tuple[Any, ...]] = []
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    service.add_listener(lambda e: heard.append(entry_key(e)))
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"

    def writer(n: int) -> None:
        rng = random.Random(int(seed) * 100 + n)
        for _ in range(OPERATIONS_PER_THREAD):
            name = rng.choice(NAMES)
            pick = rng.random()
            try:
                if pick < 0.25:
                    service.invoke("CreateInferenceExperiment", create_request(name))
                elif pick < 0.45:
                    service.invoke("StartInferenceExperiment", {"Name": name})
                elif pick < 0.7:
                    service.invoke("StopInferenceExperiment", {"Name": name, **STOP})
                else:
                    reconciler.run_once(max_rounds=2)
                outcome = "ok"
            except ResourceInUseError:
                outcome = "refused"
            except ConflictError as err:
                outcome = "stale" if err.rule == "versioned-save" else "refused"
            except LifecycleError as err:
                outcome = type(err).__name__
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a writer thread did not finish in 120s"
    store.close()
    return {
        "committed": slow.committed,
        "heard": heard,
        "outcomes": dict(counts),
        "slow": slow.slow,
    }


# -- the test ------------------------------------------------------------------------------------


@pytest.fixture
def reader_store(shared_url: str) -> Iterator[Store]:
    store = open_store(shared_url)  # made first: the writers open a store that exists
    yield store
    store.close()


def start_writer(url: str, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "write", url, str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def follow(store: Store, until: threading.Event, seen: list[Change]) -> None:
    """Read the feed page by page until ``until`` is set and a last read finds nothing new."""
    after: int | None = None
    last = 0
    while True:
        done = until.is_set()
        page = store.changes(after, 50)
        for change in page.changes:
            assert change.position > last, f"position {change.position} came after {last}"
            last = change.position
        seen.extend(page.changes)
        after = page.next_position
        if done and not page.changes:
            return
        if not page.changes:
            time.sleep(0.005)


def test_a_reader_sees_every_committed_transition_once_in_order_and_nothing_else(
    shared_url: str, reader_store: Store
) -> None:

    from tests._feed import settled

    procs = [start_writer(shared_url, seed) for seed in (1, 2)]
    seen: list[Change] = []
    finished = threading.Event()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            follow(reader_store, finished, seen)
        except BaseException as exc:
            failure.append(exc)

    reader = threading.Thread(target=read, name="feed-reader")
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            assert line == "ready", f"writer said {line!r}: {p.stderr.read() if p.stderr else ''}"
        reader.start()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = []
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
    settled(reader_store)  # what the writers committed is readable now
    finished.set()
    reader.join(60)
    assert not reader.is_alive(), "the reader did not catch up within 60s"
    assert not failure, failure

    committed = Counter(tuple(k) for r in reports for k in r["committed"])
    outcomes = sum((Counter(r["outcomes"]) for r in reports), Counter())
    assert outcomes["stale"] > 0 and outcomes["refused"] > 0, outcomes  # the test raced
    assert sum(r["slow"] for r in reports) > 0, (outcomes, [r["slow"] for r in reports])

    # every committed transition exactly once, and nothing else (no stale or refused write)
    assert len({c.position for c in seen}) == len(seen)
    assert Counter(change_key(c) for c in seen) == committed
    assert any(c.machine == "variant" for c in seen)  # the variants' transitions too
    # the listeners heard each committed transition of the experiment machine
    heard = Counter(tuple(k) for r in reports for k in r["heard"])
    assert heard == Counter({k: n for k, n in committed.items() if k[7] == "experiment"})

    # each experiment's changes in its history's order, each variant's in its own order
    for name in NAMES:
        history = [entry_key(e) for e in reader_store.history(ACCOUNT, name)]
        mine = [c for c in seen if c.name == name]
        assert [change_key(c) for c in mine if c.machine == "experiment"] == history, name
        for variant in {c.variant for c in mine if c.variant is not None}:
            statuses = [(c.from_status, c.to_status) for c in mine if c.variant == variant]
            assert all(a[1] == b[0] for a, b in itertools.pairwise(statuses)), (name, variant)


if __name__ == "__main__":
    _report = {"write": _worker_write}[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(_report), flush=True)
    sys.exit(0)
