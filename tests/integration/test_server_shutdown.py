"""Shutdown mid-traffic loses no committed transition.

Client threads create and stop experiments as fast as they can; the server is
told to stop while they do. Every request that was answered 200 must be in
the store afterwards. With the SQLite store the server is a real
``lifecycle serve`` process stopped by SIGTERM and the database file is read
after it has exited; without it, the server runs in this process and its
store object is read after uvicorn's graceful shutdown.
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import json
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lifecycle.http.app import LifecycleApp
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

JSON11 = "application/x-amz-json-1.1"


def sqlite_available() -> bool:
    stores = importlib.import_module("lifecycle.stores")
    return hasattr(stores, "open_store") and bool(
        importlib.util.find_spec("lifecycle.stores.sqlite")
    )


class Traffic:
    """Threads sending Create, then Stop for the experiment created a few requests before."""

    def __init__(self, port: int, create_request: Callable[..., dict[str, Any]], threads: int = 6):
        self.port = port
        self.create_request = create_request
        self.committed: list[tuple[str, str]] = []  # (operation, name) answered 200
        self.answered = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive()

    def _send(self, connection: http.client.HTTPConnection, operation: str, body: Any) -> int:
        connection.request(
            "POST",
            "/",
            body=json.dumps(body).encode(),
            headers={"Content-Type": JSON11, "X-Amz-Target": f"SageMaker.{operation}"},
        )
        response = connection.getresponse()
        response.read()
        return response.status

    def _run(self, worker: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        created: list[str] = []
        try:
            for i in range(100_000):
                name = f"w{worker}-{i}"
                request = self.create_request(name)
                if self._send(connection, "CreateInferenceExperiment", request) == 200:
                    self._record("CreateInferenceExperiment", name)
                    created.append(name)
                if len(created) > 5:
                    old = created.pop(0)
                    stop = {"Name": old, "ModelVariantActions": {"shadow": "Remove"}}
                    if self._send(connection, "StopInferenceExperiment", stop) == 200:
                        self._record("StopInferenceExperiment", old)
        except (OSError, http.client.HTTPException):
            return  # the server has gone: this thread is done
        finally:
            connection.close()

    def _record(self, operation: str, name: str) -> None:
        with self._lock:
            self.committed.append((operation, name))
            self.answered += 1

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < count:
            assert time.monotonic() < deadline, f"only {self.answered} answers"
            time.sleep(0.01)


def check_nothing_lost(committed: list[tuple[str, str]], get: Callable[[str], Any]) -> None:
    creates = {name for op, name in committed if op == "CreateInferenceExperiment"}
    stops = {name for op, name in committed if op == "StopInferenceExperiment"}
    assert creates, "some creates were answered"
    assert stops, "some stops were answered"
    for name in creates:
        assert get(name) is not None, f"created {name} was answered 200 but is gone"
    for name in stops:
        status = str(getattr(get(name).status, "value", get(name).status))
        assert status in ("Stopping", "Completed", "Cancelled"), f"stopped {name} is {status}"


@pytest.fixture
def traffic_request(create_request: Any) -> Callable[..., dict[str, Any]]:
    def make(name: str) -> dict[str, Any]:
        return create_request(name, endpoint=f"ep-{name}")  # type: ignore[no-any-return]

    return make


def test_in_process_shutdown_mid_traffic_loses_no_committed_transition(
    start_server: Any, traffic_request: Callable[..., dict[str, Any]]
) -> None:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0, max_live_experiments=1_000_000)
    app = LifecycleApp(service, Reconciler(service), tick_seconds=0.02)
    running = start_server(app)
    traffic = Traffic(running.port, traffic_request).start()
    traffic.wait_for(200)
    running.stop()  # uvicorn's graceful shutdown, as on SIGTERM
    traffic.join()
    check_nothing_lost(traffic.committed, partial(service.store.get, service.account_id))


@pytest.mark.skipif(not sqlite_available(), reason="the SQLite store is not built yet")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_mid_traffic_loses_no_committed_transition_in_sqlite(
    serve_process: Any,
    traffic_request: Callable[..., dict[str, Any]],
    tmp_path: Path,
    workers: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    server = serve_process(
        "--store", url, "--max-live-experiments", "1000000", "--workers", workers
    ).wait_started()
    traffic = Traffic(server.port, traffic_request).start()
    traffic.wait_for(200)
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    traffic.join()

    open_store = importlib.import_module("lifecycle.stores").open_store
    store = open_store(url)
    try:
        check_nothing_lost(traffic.committed, partial(store.get, ACCOUNT))
    finally:
        store.close()
