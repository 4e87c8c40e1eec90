"""The asyncio API: AsyncExperimentService answers as ExperimentService does, with concurrent
callers on every store, without blocking the event loop; AsyncReconciler as a task."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle import AsyncExperimentService, AsyncReconciler
from lifecycle.actuators import SimulatedActuator, Step
from lifecycle.errors import ConflictError, LifecycleError, StaleVersionError, ValidationError
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore, SqliteStore, Store
from lifecycle.testing import T0, VirtualClock, create_payload

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

pytestmark = pytest.mark.anyio

STOP = {"ModelVariantActions": {"shadow": "Promote"}, "DesiredState": "Completed"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def create(name: str, **members: Any) -> dict[str, Any]:
    return create_payload(Name=name, EndpointName=f"ep-{name}", **members)


def sync_on(store: Store, **kw: Any) -> ExperimentService:
    kw.setdefault("max_live_experiments", None)
    return ExperimentService(store, clock=VirtualClock(T0), **kw)


@pytest.fixture
async def api(any_store: Store) -> AsyncIterator[AsyncExperimentService]:
    async with AsyncExperimentService(sync_on(any_store), max_workers=4) as service:
        yield service


Shape = tuple[type[LifecycleError], str, str, object, object]


def shape(err: LifecycleError) -> Shape:
    """All a caller can tell of an error: its class, wire code, message, rule and field."""
    return type(err), err.code, err.message, err.rule, err.field


def error_of(call: Callable[..., object], *args: Any, **kwargs: Any) -> Shape:
    try:
        call(*args, **kwargs)
    except LifecycleError as err:
        return shape(err)
    raise AssertionError("no error")


async def async_error_of(call: Callable[..., Awaitable[object]], *args: Any) -> Shape:
    try:
        await call(*args)
    except LifecycleError as err:
        return shape(err)
    raise AssertionError("no error")


async def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.01)


# -- the same answers and errors as the sync service ---------------------------------------------


#: requests each refused by one rule, on a store holding a Running "exp" (endpoint "ep-exp")
REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("SageMaker.Nope", {}),
    ("CreateInferenceExperiment", {"Name": "x"}),
    ("CreateInferenceExperiment", create("exp")),
    ("CreateInferenceExperiment", {**create("other"), "EndpointName": "ep-exp"}),
    ("DescribeInferenceExperiment", {"Name": "missing"}),
    ("StartInferenceExperiment", {"Name": "exp"}),
    ("StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"nope": "Retain"}}),
    ("DeleteInferenceExperiment", {"Name": "exp"}),
    ("ListInferenceExperiments", {"MaxResults": 0}),
    ("ListInferenceExperiments", {"NextToken": "forged"}),
]


async def test_every_operation_answers_as_the_sync_service(tmp_path: Path) -> None:
    sync = sync_on(SqliteStore(tmp_path / "sync.db"))
    async with AsyncExperimentService(sync_on(SqliteStore(tmp_path / "async.db"))) as api:
        steps: list[tuple[str, dict[str, Any]]] = [
            ("CreateInferenceExperiment", create("exp", Description="first")),
            ("DescribeInferenceExperiment", {"Name": "exp"}),
            ("ListInferenceExperiments", {"MaxResults": 10}),
            ("UpdateInferenceExperiment", {"Name": "exp", "Description": "second"}),
            ("DescribeInferenceExperiment", {"Name": "exp"}),
            ("StopInferenceExperiment", {"Name": "exp", **STOP}),
            ("CreateInferenceExperiment", create("second")),
            ("DescribeInferenceExperiment", {"Name": "second"}),
            ("ListInferenceExperiments", {}),
        ]
        for i, (operation, payload) in enumerate(steps):
            if i in (3, 5):  # the reconciler makes "exp" Running (it starts at once), again
                Reconciler(sync).run_once()
                Reconciler(api.service).run_once()
            rid = f"request-{i}"
            expected = sync.invoke(operation, payload, request_id=rid)
            assert await api.invoke(operation, payload, request_id=rid) == expected, operation
        described = await api.describe_inference_experiment(Name="exp")
        assert (described["Status"], described["Description"]) == ("Stopping", "second")
        assert await api.list_inference_experiments() == sync.list_inference_experiments()
    assert api.store.history(ACCOUNT, "exp") == sync.store.history(ACCOUNT, "exp")


async def test_every_refusal_is_the_sync_services_error(any_store: Store) -> None:
    # both over one store: a refused request changes nothing, so each meets the same state
    sync = sync_on(any_store)
    api = AsyncExperimentService(sync_on(any_store))
    sync.invoke("CreateInferenceExperiment", create("exp"))
    Reconciler(sync).run_once()
    try:
        for operation, payload in REFUSED:
            got = await async_error_of(api.invoke, operation, payload)
            assert got == error_of(sync.invoke, operation, payload), operation
            explained = [(type(e), e.message) for e in await api.explain(operation, payload)]
            assert explained == [(type(e), e.message) for e in sync.explain(operation, payload)]
            assert explained, operation
        assert await api.explain("StopInferenceExperiment", {"Name": "exp", **STOP}) == []
    finally:
        await api.aclose()


# -- concurrent callers ------------------------------------------------------------------------


async def test_concurrent_stops_of_one_experiment_one_wins(
    api: AsyncExperimentService, any_store: Store
) -> None:
    await api.create_inference_experiment(**create("raced"))
    Reconciler(api.service).run_once()
    outcomes = await asyncio.gather(
        *(api.stop_inference_experiment(Name="raced", **STOP) for _ in range(8)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if not isinstance(o, dict)]
    assert len(won) == 1 and len(lost) == 7
    assert won[0] == {"InferenceExperimentArn": api.arn("raced")}
    # each loser has what the sync service answers: the stop that came first made it Stopping,
    # or (loaded before that stop was saved) the versioned save refused it
    later = error_of(api.service.stop_inference_experiment, Name="raced", **STOP)
    allowed = {later, shape(StaleVersionError("raced"))}
    for err in lost:
        assert isinstance(err, ConflictError)
        assert shape(err) in allowed
    assert [h.event for h in any_store.history(ACCOUNT, "raced")].count("stop") == 1


class Counting:
    """A store that counts the calls running in it at once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._store, attr)
        if attr in ("token_secret",) or not callable(method):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(0.002)  # long enough for the calls to overlap
                return method(*args, **kwargs)
            finally:
                with self._lock:
                    self.now -= 1

        return counted


async def test_many_concurrent_callers_share_a_bounded_pool(any_store: Store) -> None:
    counting = Counting(any_store)
    api = AsyncExperimentService(sync_on(counting), max_workers=3)
    try:
        names = [f"exp-{i:02d}" for i in range(30)]
        await asyncio.gather(*(api.create_inference_experiment(**create(n)) for n in names))
        described = await asyncio.gather(
            *(api.describe_inference_experiment(Name=n) for n in names)
        )
    finally:
        await api.aclose()
    assert [d["Name"] for d in described] == names
    assert all(d["Status"] == "Creating" for d in described)
    assert counting.most == 3  # they overlapped, and never more than the pool holds


# -- the event loop goes on while a store call waits -------------------------------------------


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[ExperimentService, sqlite3.Connection]]:
    """A service on an SQLite file, and another connection to the file holding BEGIN EXCLUSIVE."""
    store = SqliteStore(tmp_path / "locked.db", timeout=20.0)
    service = sync_on(store)
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield service, holder
    holder.close()
    store.close()


async def test_the_loop_is_not_blocked_while_a_store_call_waits_for_a_lock(
    locked_sqlite: tuple[ExperimentService, sqlite3.Connection],
) -> None:
    service, holder = locked_sqlite
    api = AsyncExperimentService(service)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    creating = asyncio.create_task(api.create_inference_experiment(**create("waits")))
    await asyncio.sleep(0.5)
    assert not creating.done()  # the create waits for the lock...
    assert ticks >= 20  # ...and the loop runs on meanwhile (blocked, it would count none)
    holder.execute("ROLLBACK")
    assert await asyncio.wait_for(creating, 10) == {"InferenceExperimentArn": api.arn("waits")}
    ticking.cancel()
    await api.aclose()


async def test_a_call_cancelled_before_it_runs_never_runs(
    locked_sqlite: tuple[ExperimentService, sqlite3.Connection],
) -> None:
    service, holder = locked_sqlite
    store = service.store
    api = AsyncExperimentService(service, max_workers=1)
    first = asyncio.create_task(api.create_inference_experiment(**create("first")))
    queued = asyncio.create_task(api.create_inference_experiment(**create("queued")))
    await asyncio.sleep(0.2)  # the one worker waits on the lock for the first
    queued.cancel()
    holder.execute("ROLLBACK")
    await asyncio.wait_for(first, 10)
    with pytest.raises(asyncio.CancelledError):
        await queued
    await api.aclose()
    assert store.get(ACCOUNT, "first") is not None
    assert store.get(ACCOUNT, "queued") is None


async def test_closing_waits_for_the_calls_running_and_refuses_new_ones(
    locked_sqlite: tuple[ExperimentService, sqlite3.Connection],
) -> None:
    service, holder = locked_sqlite
    store = service.store
    api = AsyncExperimentService(service)
    running = asyncio.create_task(api.create_inference_experiment(**create("late")))
    await asyncio.sleep(0.1)
    closing = asyncio.create_task(api.aclose())
    await asyncio.sleep(0.1)
    assert not closing.done()
    with pytest.raises(RuntimeError, match="AsyncExperimentService is closed"):
        await api.describe_inference_experiment(Name="late")
    holder.execute("ROLLBACK")
    await asyncio.wait_for(closing, 10)
    assert running.done() and store.get(ACCOUNT, "late") is not None


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="max_workers must be at least 1, not 0"):
        AsyncExperimentService(MemoryStore(), max_workers=0)


async def test_a_store_gets_a_service_of_its_own() -> None:
    store = MemoryStore()
    async with AsyncExperimentService(store) as api:
        assert api.store is store and api.service.store is store
        seen: list[tuple[str, str]] = []
        api.add_listener(lambda entry: seen.append((entry.name, entry.event)))
        await api.create_inference_experiment(**create("exp"))
    assert seen == [("exp", "create")]
    assert store.get(ACCOUNT, "exp") is not None


# -- the reconciler as an asyncio task -------------------------------------------------------------


async def test_the_reconciler_task_moves_experiments_on(tmp_path: Path) -> None:
    service = ExperimentService(SqliteStore(tmp_path / "l.db"))
    async with (
        AsyncExperimentService(service) as api,
        AsyncReconciler(Reconciler(service), tick_seconds=0.01) as reconciler,
    ):
        await api.create_inference_experiment(**create("exp"))

        async def status_is(status: str) -> bool:
            described = await api.describe_inference_experiment(Name="exp")
            return bool(described["Status"] == status)

        await wait_until(lambda: status_is("Running"))
        await api.stop_inference_experiment(Name="exp", **STOP)
        await wait_until(lambda: status_is("Completed"))
    assert reconciler.passes > 0


async def test_one_reconciler_task_runs_at_a_time_and_a_stop_is_for_good() -> None:
    reconciler = AsyncReconciler(Reconciler(sync_on(MemoryStore())), tick_seconds=0.01)
    task = asyncio.create_task(reconciler.run())
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="this AsyncReconciler is already running"):
        await reconciler.run()
    with pytest.raises(RuntimeError, match="this AsyncReconciler is already running"):
        async with reconciler:
            pass
    reconciler.stop()
    await asyncio.wait_for(task, 5)  # a stop ends the loop without cancelling it
    assert reconciler.passes > 0


class Holding(SimulatedActuator):
    """Each step waits until ``release`` is set (bounded); ``entered`` counts the steps begun."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.begun = 0

    def apply(self, step: Step) -> None:
        self.begun += 1
        self.entered.release()
        assert self.release.wait(10), "the test never released the step"
        super().apply(step)


def _creating(names: list[str]) -> tuple[ExperimentService, Holding]:
    service = sync_on(MemoryStore())
    for name in names:
        service.invoke("CreateInferenceExperiment", create(name))
    return service, Holding()


async def test_cancelled_mid_pass_it_stops_after_the_step_in_progress() -> None:
    names = [f"exp-{i}" for i in range(5)]
    service, actuator = _creating(names)
    reconciler = AsyncReconciler(Reconciler(service, actuator), tick_seconds=0.01)
    task = asyncio.create_task(reconciler.run())
    assert await asyncio.to_thread(actuator.entered.acquire, True, 10)  # a step has begun
    task.cancel()
    await asyncio.sleep(0.1)
    assert not task.done()  # it waits for the step in progress...
    actuator.release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    # ...and takes no other: one experiment's two variants, then it stopped and saved that one
    assert actuator.begun == 2
    events = sorted([h.event for h in service.store.history(ACCOUNT, n)] for n in names)
    assert events == [["create"]] * 4 + [["create", "provisioned"]]


async def test_a_step_that_outlasts_stop_timeout_is_left_to_its_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, actuator = _creating(["slow"])
    started = time.monotonic()
    try:
        async with AsyncReconciler(Reconciler(service, actuator), stop_timeout=0.2):
            assert await asyncio.to_thread(actuator.entered.acquire, True, 10)
        waited = time.monotonic() - started
        assert waited < 2.0  # bounded by stop_timeout, not by the step
        assert "reconciler step still running after 0.2s" in caplog.text
    finally:
        actuator.release.set()


async def test_a_failing_pass_is_logged_once_and_the_passes_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Reconciler):
        calls = 0

        def run_once(self, max_rounds: int = 16, *, stop: threading.Event | None = None) -> int:
            if self.calls < 5:
                self.calls += 1
                raise OSError("disk on fire")
            return super().run_once(max_rounds, stop=stop)

    caplog.set_level(logging.INFO, logger="lifecycle.reconciler")
    service = sync_on(MemoryStore())
    broken = Broken(service)
    async with AsyncReconciler(broken, tick_seconds=0.01) as reconciler:
        await wait_until(lambda: _passes_past(reconciler, 7))
    failures = [r for r in caplog.records if r.getMessage() == "reconciler pass failed"]
    assert len(failures) == 1
    assert "reconciler passes succeed again" in caplog.text


async def _passes_past(reconciler: AsyncReconciler, n: int) -> bool:
    return reconciler.passes > n


async def test_a_pass_that_fails_after_a_cancel_is_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    began = threading.Event()

    class FailsLate(Reconciler):
        def run_once(self, max_rounds: int = 16, *, stop: threading.Event | None = None) -> int:
            began.set()
            assert release.wait(10), "the test never released the pass"
            raise OSError("the store went away mid-pass")

    task = asyncio.create_task(AsyncReconciler(FailsLate(sync_on(MemoryStore()))).run())
    assert await asyncio.to_thread(began.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    [record] = [r for r in caplog.records if r.getMessage() == "reconciler pass failed"]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the store went away mid-pass"


# -- the change feed ------------------------------------------------------------------------------


async def test_changes_reads_the_feed_as_the_sync_service_does(
    api: AsyncExperimentService,
) -> None:
    from tests._feed import settled

    await api.invoke("CreateInferenceExperiment", create("exp"))
    await api.invoke("CreateInferenceExperiment", create("other"))
    settled(api.store)
    page = await api.changes()
    assert [(c.name, c.event) for c in page.changes] == [("exp", "create"), ("other", "create")]
    assert page == api.service.changes()
    assert (await api.changes(page.changes[0].position, 1)).changes == page.changes[1:]


async def test_a_waiting_read_of_the_feed_wakes_at_a_commit_of_its_service(
    api: AsyncExperimentService,
) -> None:
    first = await api.changes()
    started = time.monotonic()
    waiting = asyncio.create_task(api.changes(first.next_position, wait=10))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await api.invoke("CreateInferenceExperiment", create("late"))
    committed = time.monotonic()
    page = await asyncio.wait_for(waiting, 10)
    assert [c.name for c in page.changes] == ["late"]
    assert time.monotonic() - committed < 0.5 and committed - started >= 0.3


async def test_a_waiting_read_with_nothing_new_ends_empty_after_its_wait(
    api: AsyncExperimentService,
) -> None:
    started = time.monotonic()
    page = await api.changes(12345, wait=0.3)
    assert page.changes == [] and page.next_position == 12345
    assert 0.28 <= time.monotonic() - started < 2


@pytest.mark.parametrize("wait", [-1, float("nan"), float("inf"), "1", True])
async def test_a_bad_wait_is_a_validation_error_naming_it(
    api: AsyncExperimentService, wait: Any
) -> None:

    from lifecycle.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        await api.changes(wait=wait)
    assert caught.value.field == "wait"
    with pytest.raises(ValidationError) as caught:
        await api.changes(limit=0)
    assert caught.value.field == "limit"


# -- accounts -------------------------------------------------------------------------------------

THEIRS = "210987654321"


async def test_for_account_runs_in_that_account_on_the_same_pool(
    api: AsyncExperimentService,
) -> None:
    theirs = api.for_account(THEIRS)
    assert api.for_account(THEIRS) is theirs and theirs.for_account(ACCOUNT) is api
    assert theirs.service is api.service.for_account(THEIRS)
    mine = await api.create_inference_experiment(**create("exp"))
    their = await theirs.create_inference_experiment(**create("exp", Description="theirs"))
    assert their["InferenceExperimentArn"] == mine["InferenceExperimentArn"].replace(
        f":{ACCOUNT}:", f":{THEIRS}:"
    )
    listed = await theirs.list_inference_experiments()
    assert [s["Name"] for s in listed["InferenceExperiments"]] == ["exp"]
    assert (await theirs.describe_inference_experiment(Name="exp"))["Description"] == "theirs"
    assert "Description" not in await api.describe_inference_experiment(Name="exp")
    with pytest.raises(LifecycleError) as caught:
        await theirs.describe_inference_experiment(Name="other")
    assert caught.value.code == "ResourceNotFound"


async def test_a_waiting_read_of_one_accounts_changes_skips_the_others_and_wakes_at_its_own(
    api: AsyncExperimentService,
) -> None:
    theirs = api.for_account(THEIRS)
    start = (await api.changes()).next_position
    waiting = asyncio.create_task(api.changes(start, account=THEIRS, wait=10))
    await asyncio.sleep(0.2)
    await api.invoke("CreateInferenceExperiment", create("mine"))  # wakes it: nothing of theirs
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await theirs.invoke("CreateInferenceExperiment", create("theirs"))
    page = await asyncio.wait_for(waiting, 10)
    assert [(c.account, c.name) for c in page.changes] == [(THEIRS, "theirs")]
    with pytest.raises(ValidationError) as caught:
        await api.changes(account="nobody")
    assert caught.value.field == "account"


async def test_closing_one_accounts_service_closes_them_all(any_store: Store) -> None:
    api = AsyncExperimentService(sync_on(any_store), max_workers=2)
    theirs = api.for_account(THEIRS)
    await theirs.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await api.describe_inference_experiment(Name="exp")
