"""Describe and List on SQLite are read on the event loop, never waiting there.

A read on a SQLite file in WAL mode waits for no writer, so the server answers
Describe and List on its event loop, under ``store.without_waiting()``: on a
connection of their own that never waits, where a read that would have waited
for a lock, or any write, raises ``WouldWait`` having read or written nothing,
and the app runs that request again in its read pool, where waiting (within the
lock bound) is allowed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import StoreError
from lifecycle.http.app import LifecycleApp
from lifecycle.http.throttle import RateLimit
from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore, WouldWait
from lifecycle.stores.base import ListQuery
from lifecycle.testing import create_payload

#: a write: a Create of an experiment of its own
CREATE = create_payload(Name="exp-new", EndpointName="endpoint-new")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "reads.db")
    yield store
    store.close()


def _service(store: SqliteStore, count: int = 3) -> ExperimentService:
    service = ExperimentService(store, settle_seconds=0.0, max_live_experiments=None)
    for i in range(1, count + 1):
        service.invoke(
            "CreateInferenceExperiment",
            create_payload(Name=f"exp-{i}", EndpointName=f"endpoint-{i}"),
        )
    return service


def test_reads_without_waiting_answer_what_reads_answer(store: SqliteStore) -> None:
    _service(store)
    query = ListQuery(account="123456789012", limit=10)
    waited = (store.get(query.account, "exp-2"), store.list(query).items)
    with store.without_waiting():
        unwaited = (store.get(query.account, "exp-2"), store.list(query).items)
    assert unwaited == waited
    assert sorted(e.name for e in unwaited[1]) == ["exp-1", "exp-2", "exp-3"]


def test_a_write_without_waiting_is_refused_before_it_writes(store: SqliteStore) -> None:
    service = _service(store)
    commits = store.commits
    with store.without_waiting(), pytest.raises(WouldWait, match="write"):
        service.invoke("CreateInferenceExperiment", CREATE)
    assert store.commits == commits
    assert store.get("123456789012", "exp-new") is None
    assert len(store) == 3
    # and the flag is this block's alone: the same write, after it, is made
    service.invoke("CreateInferenceExperiment", CREATE)
    assert store.commits == commits + 1
    assert store.get("123456789012", "exp-new") is not None


def test_without_waiting_is_the_calling_thread_s_alone(store: SqliteStore) -> None:
    service = _service(store, count=1)
    written: list[BaseException | None] = []

    def other_thread() -> None:
        try:
            service.invoke("CreateInferenceExperiment", CREATE)
            written.append(None)
        except BaseException as exc:  # what the test reports
            written.append(exc)

    with store.without_waiting():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(10)
    assert written == [None]
    assert store.get("123456789012", "exp-new") is not None


class _BusyReader(SqliteStore):
    """A store whose reads without waiting meet SQLite's "database is locked", as a read
    on a file another process holds in locking_mode=EXCLUSIVE does."""

    busy = True
    read_threads: list[str]

    def _fetch(self, sql: str, params: Any = ()) -> Any:
        if getattr(self._local, "nowait", False):
            self.read_threads.append(threading.current_thread().name)
            if self.busy:
                err = sqlite3.OperationalError("database is locked")
                err.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise self._would_wait(err) from err
        elif sql == self._sql.select_one:
            self.read_threads.append(threading.current_thread().name)
        return super()._fetch(sql, params)


def test_a_read_that_would_wait_raises_would_wait(tmp_path: Path) -> None:
    store = _BusyReader(tmp_path / "busy.db")
    store.read_threads = []
    try:
        _service(store, count=1)
        with store.without_waiting(), pytest.raises(WouldWait, match="locked"):
            store.get("123456789012", "exp-1")
    finally:
        store.close()


def _describe(app: LifecycleApp, name: str, *, within: float) -> tuple[int, dict[str, Any]]:
    """One Describe through the ASGI app; TimeoutError past ``within`` seconds."""
    return _ask(app, "SageMaker.DescribeInferenceExperiment", {"Name": name}, within=within)


def _ask(
    app: LifecycleApp,
    target: str,
    request: dict[str, Any],
    *,
    within: float,
    before: Callable[[], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request through the ASGI app; TimeoutError past ``within`` seconds. ``before``
    runs on the loop just before the request."""
    headers = [(b"x-amz-target", target.encode()), (b"content-type", b"application/x-amz-json-1.1")]
    body = json.dumps(request).encode()
    status, answer = _http(app, "POST", "/", headers, body, within=within, before=before)
    return status, json.loads(answer)


def _http(
    app: LifecycleApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    within: float,
    before: Callable[[], None] | None = None,
) -> tuple[int, bytes]:
    """One HTTP request through the ASGI app: its status and body."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def ask() -> None:
        if before is not None:
            before()
        await asyncio.wait_for(app(scope, receive, send), within)

    asyncio.run(ask())
    return sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("gated", [False, True], ids=["plain", "rate-limited"])
def test_describe_on_sqlite_is_answered_while_every_read_worker_is_busy(
    store: SqliteStore, gated: bool
) -> None:
    # a rate limit sends a request through the gated path (admitted on the loop first)
    limit = RateLimit(100, 100) if gated else None
    app = LifecycleApp(_service(store), workers=1, metrics=None, rate_limit=limit)
    held = threading.Event()
    app._pool("read").submit(held.wait, 30)  # the read pool's one thread, taken
    try:
        status, body = _describe(app, "exp-2", within=5.0)
    finally:
        held.set()
        app.close_pools()
    assert status == 200, body
    assert body["Name"] == "exp-2"


def test_a_describe_that_would_wait_is_answered_from_the_read_pool(tmp_path: Path) -> None:
    store = _BusyReader(tmp_path / "busy.db")
    store.read_threads = []
    try:
        app = LifecycleApp(_service(store, count=1), workers=1, metrics=None)
        status, body = _describe(app, "exp-1", within=5.0)
        assert status == 200, body
        assert body["Name"] == "exp-1"
        loop_thread = threading.current_thread().name
        # tried on the loop, where it would have waited; then read in the pool
        assert store.read_threads[0] == loop_thread
        assert store.read_threads[-1].startswith("lifecycle-read")
        app.close_pools()
    finally:
        store.close()


def _list(app: LifecycleApp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return _ask(app, "SageMaker.ListInferenceExperiments", body, within=10.0)


def test_a_read_past_its_budget_is_stopped_and_made_again_in_the_pool(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "many.db", synchronous="OFF")
    try:
        _service(store, count=600)
        store.read_budget = 0.0  # every read that checks its budget is past it
        scan = ListQuery(account="123456789012", name_contains="nothing-matches", limit=10)
        with store.without_waiting():
            # a point read ends long before SQLite first checks the budget
            assert store.get("123456789012", "exp-7") is not None
            with pytest.raises(WouldWait, match="ran past"):
                store.list(scan)  # 600 rows scanned for a name
        assert store.list(scan).items == []  # waiting allowed: read whole
        app = LifecycleApp(ExperimentService(store, settle_seconds=0.0), metrics=None)
        status, body = _list(app, {"NameContains": "exp-59", "MaxResults": 100})
        app.close_pools()
        assert status == 200, body
        names = sorted(e["Name"] for e in body["InferenceExperiments"])
        assert names == ["exp-59", *[f"exp-59{i}" for i in range(10)]]
    finally:
        store.close()


def test_loop_reads_false_sends_every_read_to_the_read_pool(store: SqliteStore) -> None:
    app = LifecycleApp(_service(store, count=1), workers=1, metrics=None, loop_reads=False)
    held = threading.Event()
    app._pool("read").submit(held.wait, 30)
    try:
        with pytest.raises(TimeoutError):  # queued behind the pool's one busy thread
            _describe(app, "exp-1", within=0.5)
    finally:
        held.set()
    status, _ = _describe(app, "exp-1", within=5.0)
    app.close_pools()
    assert status == 200


class _Refusing:
    """A reader connection whose every statement fails with SQLite's result ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code

    def execute(self, *args: Any) -> Any:
        err = sqlite3.OperationalError(f"result code {self.code}")
        err.sqlite_errorcode = self.code
        raise err


@pytest.mark.parametrize(
    ("code", "waits"),
    [
        (sqlite3.SQLITE_BUSY, True),
        (sqlite3.SQLITE_LOCKED, True),
        (sqlite3.SQLITE_PROTOCOL, True),  # SQLite's own retries for the WAL's locks ran out
        (sqlite3.SQLITE_BUSY | (1 << 8), True),  # an extended code: SQLITE_BUSY_RECOVERY
        (sqlite3.SQLITE_CORRUPT, False),
    ],
)
def test_which_read_failures_are_a_read_that_would_wait(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, code: int, waits: bool
) -> None:
    _service(store, count=1)
    monkeypatch.setattr(store, "_reader", lambda: _Refusing(code))
    with store.without_waiting(), pytest.raises(WouldWait if waits else StoreError) as caught:
        store.get("123456789012", "exp-1")
    assert isinstance(caught.value, WouldWait) is waits


def test_a_reader_that_cannot_be_opened_is_a_read_that_would_wait(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _service(store, count=1)

    def cannot_open(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", cannot_open)
    with store.without_waiting(), pytest.raises(WouldWait, match="unable to open"):
        store.get("123456789012", "exp-1")
    monkeypatch.undo()
    assert store.get("123456789012", "exp-1") is not None  # the thread's own connection


def test_without_waiting_nests_and_one_block_may_be_entered_again(store: SqliteStore) -> None:
    _service(store, count=1)
    block = store.without_waiting()
    with block:
        with block, pytest.raises(WouldWait):
            ExperimentService(store, settle_seconds=0.0).invoke("CreateInferenceExperiment", CREATE)
        with pytest.raises(WouldWait):  # still inside the outer block
            ExperimentService(store, settle_seconds=0.0).invoke("CreateInferenceExperiment", CREATE)
    ExperimentService(store, settle_seconds=0.0).invoke("CreateInferenceExperiment", CREATE)
    assert store.get("123456789012", "exp-new") is not None


def test_metrics_count_every_status_whatever_a_read_on_the_loop_may_take(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "metrics.db", synchronous="OFF")
    try:
        _service(store, count=600)
        store.read_budget = 0.0  # any read on the loop that checks its budget is past it
        app = LifecycleApp(ExperimentService(store, settle_seconds=0.0))
        status, body = _http(app, "GET", "/metrics", [], b"", within=10)
        app.close_pools()
        text = body.decode()
        assert status == 200
        assert 'lifecycle_experiments{status="Creating"} 600.0' in text, text[:2000]
    finally:
        store.close()


def test_a_describe_with_no_descriptor_left_for_a_connection_is_503_not_500(
    tmp_path: Path,
) -> None:
    """A real fault: the process is out of file descriptors when the loop's reader is to
    be opened (and so is the pool's thread): an outage a client retries, not a bug."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, os, resource, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_loop_reads import _ask, _service
        from lifecycle.http.app import LifecycleApp
        from lifecycle.stores import SqliteStore

        store = SqliteStore({str(tmp_path / "fds.db")!r})
        app = LifecycleApp(_service(store, count=1), workers=1, metrics=None)
        app._pool("read").submit(lambda: None).result()  # its thread, before the limit

        def no_descriptor_left():  # on the loop, once it has its own
            used = len(os.listdir("/proc/self/fd"))
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (used - 1, hard))  # listdir had one

        status, body = _ask(
            app, "SageMaker.DescribeInferenceExperiment", {{"Name": "exp-1"}}, within=10.0,
            before=no_descriptor_left,
        )
        print(json.dumps([status, body.get("__type")]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status, kind = json.loads(done.stdout.strip().splitlines()[-1])
    assert (status, kind) == (503, "ServiceUnavailable"), done.stderr[-3000:]
    assert "bug:" not in done.stderr, done.stderr[-3000:]
