"""Races and crashes: exactly one of two racing transitions wins, across threads, processes and stores.

The cross-process tests run this file as a script (``python test_races.py
WORKER ARGS``): each worker opens the store from its URL, says ``ready``,
waits for ``go`` on stdin so that every worker starts at once, and prints
one JSON line with what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from lifecycle.actuators import SimulatedActuator, Step
from lifecycle.errors import (
    ConflictError,
    ResourceInUseError,
    ResourceLimitExceededError,
    StoreError,
)
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore, Store, open_store

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

#: where a stop ends; a worker waits for these, and its test says which one it expects
TERMINAL_STATUSES = ("Completed", "Cancelled")
STOP = {
    "ModelVariantActions": {"shadow": "Promote"},
    "DesiredState": "Completed",
    "Reason": "shadow wins",
}


def create_request(name: str, endpoint: str | None = None) -> dict[str, Any]:
    infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    return {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
        "EndpointName": endpoint or f"ep-{name}",
        "ModelVariants": [
            {"ModelName": "model-a", "VariantName": "prod", "InfrastructureConfig": infra},
            {"ModelName": "model-b", "VariantName": "shadow", "InfrastructureConfig": infra},
        ],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }


def service_on(store: Store, **kw: Any) -> ExperimentService:
    kw.setdefault("settle_seconds", 0.0)
    kw.setdefault("max_live_experiments", None)
    return ExperimentService(store, **kw)


def running(
    service: ExperimentService, name: str, actuator: SimulatedActuator | None = None
) -> None:
    service.invoke("CreateInferenceExperiment", create_request(name))
    Reconciler(service, actuator or SimulatedActuator()).run_once()
    assert service.invoke("DescribeInferenceExperiment", {"Name": name})["Status"] == "Running"


# -- the stores under test ------------------------------------------------------------------------


@pytest.fixture
def shared_store(shared_url: str) -> Iterator[Store]:
    store = open_store(shared_url)
    yield store
    store.close()


# -- threads in one process ------------------------------------------------------------------------


class LoadTogether:
    """A store whose ``get`` waits until every racer has loaded: they all hold the same version."""

    def __init__(self, store: Store, parties: int) -> None:
        self._store = store
        self._barrier = threading.Barrier(parties)

    def get(self, account: str, name: str) -> Any:
        exp = self._store.get(account, name)
        self._barrier.wait(timeout=30)
        return exp

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._store, attr)


#: the outcomes are counted by these classes (their leaf classes say which rule)
_KINDS = (ConflictError, ResourceInUseError, ResourceLimitExceededError)


def race(n: int, call: Callable[[], object]) -> Counter[str]:
    """Run ``call`` in ``n`` threads released together; count outcomes by error class."""
    start = threading.Barrier(n)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def one() -> None:
        start.wait(timeout=30)
        try:
            call()
            outcome = "ok"
        except Exception as err:
            outcome = next((k.__name__ for k in _KINDS if isinstance(err, k)), type(err).__name__)
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    assert not stuck, f"{stuck} of {n} racers still running after 60s; done so far: {outcomes}"
    return outcomes


@pytest.mark.parametrize("load_together", [False, True], ids=["free", "all-load-first"])
def test_16_threads_stopping_one_experiment_one_wins(any_store: Store, load_together: bool) -> None:
    running(service_on(any_store), "raced")
    store = cast(Store, LoadTogether(any_store, 16)) if load_together else any_store
    service = service_on(store)
    outcomes = race(
        16, lambda: service.invoke("StopInferenceExperiment", {"Name": "raced", **STOP})
    )
    assert outcomes == Counter({"ok": 1, "ConflictError": 15})
    assert [h.event for h in any_store.history(ACCOUNT, "raced")].count("stop") == 1
    assert any_store.get(ACCOUNT, "raced").status.value == "Stopping"  # type: ignore[union-attr]


def test_concurrent_creates_on_one_endpoint_in_threads_one_wins(any_store: Store) -> None:
    service = service_on(any_store)
    names = iter(range(16))
    lock = threading.Lock()

    def create() -> None:
        with lock:
            i = next(names)
        service.invoke("CreateInferenceExperiment", create_request(f"c{i}", endpoint="shared"))

    assert race(16, create) == Counter({"ok": 1, "ResourceInUseError": 15})


# -- processes -------------------------------------------------------------------------------------


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect_line(proc: subprocess.Popen[str], want: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = result[0].strip() if result else ""
    if not line.startswith(want):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"worker said {line!r}, expected {want!r}; stderr:\n{err}")
    return line


def run_together(workers: list[list[str]]) -> list[dict[str, Any]]:
    """Start every worker, release them at once when all are ready, and collect their reports."""
    procs = [start_worker(*w) for w in workers]
    try:
        for p in procs:
            expect_line(p, "ready")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=30)


def total(reports: list[dict[str, Any]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in reports:
        out.update(r["outcomes"])
    return out


def test_16_stops_from_two_processes_on_one_store_one_wins(
    shared_url: str, shared_store: Store
) -> None:
    running(service_on(shared_store), "raced")
    reports = run_together([["stop", shared_url, "raced", "8"], ["stop", shared_url, "raced", "8"]])
    assert total(reports) == Counter({"ok": 1, "ConflictError": 15})
    assert [h.event for h in shared_store.history(ACCOUNT, "raced")].count("stop") == 1


def test_16_creates_on_one_endpoint_from_two_processes_one_wins(
    shared_url: str, shared_store: Store
) -> None:
    reports = run_together(
        [
            ["create", shared_url, "a", "8", "shared", "0"],
            ["create", shared_url, "b", "8", "shared", "0"],
        ]
    )
    assert total(reports) == Counter({"ok": 1, "ResourceInUseError": 15})
    live = [
        e
        for e in (shared_store.get(ACCOUNT, f"{p}{i}") for p in "ab" for i in range(8))
        if e is not None
    ]
    assert [e.endpoint_name for e in live] == ["shared"]


def test_the_live_limit_holds_for_creates_from_two_processes(
    shared_url: str, shared_store: Store
) -> None:
    reports = run_together(
        [["create", shared_url, "a", "8", "", "5"], ["create", shared_url, "b", "8", "", "5"]]
    )
    assert total(reports) == Counter({"ok": 5, "ResourceLimitExceededError": 11})
    assert cast(Any, shared_store).live_count() == 5


def test_two_reconcilers_in_two_processes_never_take_the_same_step(
    shared_url: str, shared_store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "steps.jsonl"
    service = service_on(shared_store)
    actuator = SimulatedActuator(log)
    names = [f"r{i:02d}" for i in range(24)]
    for name in names:
        service.invoke("CreateInferenceExperiment", create_request(name))
    Reconciler(service, actuator).run_once()
    for name in names:
        service.invoke("StopInferenceExperiment", {"Name": name, **STOP})
    reports = run_together([["reconcile", shared_url, str(log), "0", "30", "24"]] * 2)
    first, second = ({s["key"] for s in r["calls"]} for r in reports)
    assert first and second, "both replicas should have taken a share"
    assert not first & second, "a step reached the actuator from both replicas"
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
    assert len(keys) == len(set(keys))
    for name in names:
        assert shared_store.get(ACCOUNT, name).status.value == "Completed"  # type: ignore[union-attr]
        assert [h.event for h in shared_store.history(ACCOUNT, name)].count("stopped") == 1


@pytest.mark.parametrize(
    "crash_after", [1, 2, 3], ids=["after-1-step", "after-2-steps", "after-3-steps-before-save"]
)
def test_a_reconciler_killed_mid_stop_is_finished_by_a_new_process_each_step_once(
    shared_url: str, shared_store: Store, tmp_path: Path, crash_after: int
) -> None:
    log = tmp_path / "steps.jsonl"
    service = service_on(shared_store)
    running(service, "crashy", SimulatedActuator(log))
    service.invoke("StopInferenceExperiment", {"Name": "crashy", **STOP})

    doomed = start_worker("reconcile", shared_url, str(log), str(crash_after), "0.5", "1")
    try:
        expect_line(doomed, f"applied {crash_after}")
        doomed.send_signal(signal.SIGKILL)
        assert doomed.wait(30) == -signal.SIGKILL
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.communicate(timeout=30)  # reap it and close its pipes
    assert shared_store.get(ACCOUNT, "crashy").status.value == "Stopping"  # type: ignore[union-attr]
    assert (
        len(log.read_text().splitlines()) == 3 + crash_after
    )  # the create's 3 steps, then the stop's

    (report,) = run_together([["reconcile", shared_url, str(log), "0", "0.5", "1"]])
    assert report["carried_out"] == 3 - crash_after
    exp = shared_store.get(ACCOUNT, "crashy")
    assert exp is not None
    assert exp.status.value == "Completed"
    assert {v.name: v.status.value for v in exp.variants} == {
        "prod": "Deleted",
        "shadow": "InService",
    }
    events = [h.event for h in shared_store.history(ACCOUNT, "crashy")]
    assert events == ["create", "provisioned", "started", "stop", "stopped"]
    steps = [Step(**json.loads(line)) for line in log.read_text().splitlines()]
    assert len({s.key for s in steps}) == len(steps)
    actions = Counter((s.action, s.variant) for s in steps)
    assert actions == Counter({
        ("provision-variant", "prod"): 1, ("provision-variant", "shadow"): 1, ("start-shadow-test", None): 1,
        ("remove-variant", "prod"): 1, ("promote-variant", "shadow"): 1, ("end-shadow-test", None): 1,
    })  # fmt: skip


# -- a store that cannot be used fails at start -------------------------------------------------------


def test_a_corrupt_sqlite_file_is_a_store_error_at_start(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not an SQLite database, just bytes " * 100)
    with pytest.raises(StoreError, match=r"corrupt\.db.*not a database"):
        SqliteStore(path)


def test_a_damaged_sqlite_header_is_a_store_error_at_start(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    SqliteStore(path).close()
    data = bytearray(path.read_bytes())
    data[16:24] = b"\xff" * 8  # page size and format bytes
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        SqliteStore(path)


def test_an_sqlite_database_of_something_else_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="something else"):
        SqliteStore(path)


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("under-a-file", "'{tmp}/file' is not a directory"),
        ("missing-directory", "'{tmp}/no/such/dir' does not exist"),
        ("a-directory", "it is a directory"),
    ],
)
def test_an_unwritable_sqlite_path_is_a_store_error_at_start(
    tmp_path: Path, where: str, says: str
) -> None:
    (tmp_path / "file").write_text("x")
    path = {
        "under-a-file": tmp_path / "file" / "lifecycle.db",
        "missing-directory": tmp_path / "no" / "such" / "dir" / "lifecycle.db",
        "a-directory": tmp_path,
    }[where]
    with pytest.raises(StoreError, match="cannot open SQLite store") as refused:
        SqliteStore(path)
    assert says.format(tmp=tmp_path) in refused.value.message


def test_a_sqlite_url_in_a_missing_relative_directory_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=r"'nonexistent-dir' does not exist"):
        open_store("sqlite:///nonexistent-dir/x.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes read-only files anyway"
)
def test_a_read_only_sqlite_file_is_a_store_error_at_start(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    SqliteStore(path).close()
    for p in tmp_path.iterdir():
        p.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="cannot open SQLite store"):
            SqliteStore(path)
    finally:
        tmp_path.chmod(0o755)


def test_serve_with_a_corrupt_store_exits_at_start_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"garbage" * 1000)
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.http.serve", "--port", "0", "--store", f"sqlite:///{path}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot open store" in done.stderr and "not a database" in done.stderr
    assert "Traceback" not in done.stderr


# -- the worker side ---------------------------------------------------------------------------------


def _ready() -> None:
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"


def _worker_stop(url: str, name: str, threads: str) -> dict[str, Any]:
    store = open_store(url)
    service = service_on(store)
    store.get(ACCOUNT, name)  # connect before the race
    _ready()
    outcomes = race(
        int(threads), lambda: service.invoke("StopInferenceExperiment", {"Name": name, **STOP})
    )
    return {"outcomes": dict(outcomes)}


def _worker_create(
    url: str, prefix: str, threads: str, endpoint: str, max_live: str
) -> dict[str, Any]:
    store = open_store(url)
    service = service_on(store, max_live_experiments=int(max_live) or None)
    store.get(ACCOUNT, "warm-up")
    _ready()
    counter = iter(range(int(threads)))
    lock = threading.Lock()

    def create() -> None:
        with lock:
            i = next(counter)
        service.invoke(
            "CreateInferenceExperiment", create_request(f"{prefix}{i}", endpoint=endpoint or None)
        )

    outcomes = race(int(threads), create)
    assert set(outcomes) <= {"ok", "ResourceInUseError", "ResourceLimitExceededError"}, outcomes
    return {"outcomes": dict(outcomes)}


class _CrashingActuator(SimulatedActuator):
    """Says ``applied N`` after the N-th step it carries out, then hangs until killed."""

    def __init__(self, log: str, crash_after: int) -> None:
        super().__init__(log)
        self.crash_after = crash_after
        self.carried_out = 0

    def apply(self, step: Step) -> None:
        before = len(self.applied)
        super().apply(step)
        if len(self.applied) > before:
            self.carried_out += 1
            if self.carried_out == self.crash_after:
                print(f"applied {self.carried_out}", flush=True)
                time.sleep(3600)


def _worker_reconcile(
    url: str, log: str, crash_after: str, lease: str, expect: str
) -> dict[str, Any]:

    store = open_store(url)
    service = service_on(store)
    actuator = _CrashingActuator(log, int(crash_after))
    reconciler = Reconciler(service, actuator, lease_seconds=float(lease), batch=4)
    if int(crash_after):
        reconciler.run_once()
        raise AssertionError("the reconciler should have hung in the actuator")
    _ready()
    deadline = time.monotonic() + 60
    finished: set[str] = set()
    while len(finished) < int(expect):
        if time.monotonic() > deadline:
            raise AssertionError(f"only {sorted(finished)} of {expect} ended after 60s")
        reconciler.run_once()
        page = service.invoke("ListInferenceExperiments", {"MaxResults": 100})
        finished = {
            s["Name"] for s in page["InferenceExperiments"] if s["Status"] in TERMINAL_STATUSES
        }
        time.sleep(0.02)
    from dataclasses import asdict

    return {"carried_out": actuator.carried_out, "calls": [asdict(s) for s in actuator.calls]}


_WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "stop": _worker_stop,
    "create": _worker_create,
    "reconcile": _worker_reconcile,
}

if __name__ == "__main__":
    _report = _WORKERS[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(_report), flush=True)
    sys.exit(0)
