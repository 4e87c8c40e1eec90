"""Store outages are told apart from bugs: each kind of outage is a 503 that names it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors

from lifecycle.errors import StoreError, StoreUnavailableError
from lifecycle.http.protocol import handle
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore, SqliteStore
from lifecycle.stores.postgres import _outage
from lifecycle.testing import create_payload


def _sqlite_error(code: int, message: str = "boom") -> sqlite3.Error:
    err = sqlite3.OperationalError(message)
    err.sqlite_errorcode = code
    return err


def test_the_error_says_which_outage_kinds_exist_and_refuses_others() -> None:
    err = StoreUnavailableError("down", kind="connection")
    assert (err.code, err.http_status, err.retry_after) == ("ServiceUnavailable", 503, 1)
    assert isinstance(err, StoreError)
    with pytest.raises(ValueError, match="kind must be one of"):
        StoreUnavailableError("down", kind="weather")


@pytest.mark.parametrize(
    ("code", "kind"),
    [(5, "lock_timeout"), (6, "lock_timeout"), (13, "disk_full"), (8, "read_only"), (14, "io")],
)
def test_sqlite_outages_are_unavailable_with_their_kind(
    tmp_path: Path, code: int, kind: str
) -> None:
    store = SqliteStore(tmp_path / "x.db")
    err = store._error(_sqlite_error(code))
    assert isinstance(err, StoreUnavailableError)
    assert err.kind == kind
    store.close()


def test_an_io_error_on_a_full_disk_is_told_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "x.db")
    monkeypatch.setattr(store, "_free_bytes", lambda: 0)
    err = store._error(_sqlite_error(10, "disk I/O error"))
    assert isinstance(err, StoreUnavailableError) and err.kind == "disk_full"
    assert "full" in err.message
    with pytest.raises(StoreUnavailableError, match="0 bytes free"):
        store.check_writable()
    store.close()


def test_a_sqlite_error_that_is_not_an_outage_stays_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    err = store._error(_sqlite_error(11, "database disk image is malformed"))  # SQLITE_CORRUPT
    assert type(err) is StoreError
    store.close()


def test_the_sqlite_write_bound_counts_this_processs_writers_too(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db", timeout=0.3)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store._write():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"within 0\.3s") as caught:
        store.check_writable()
    assert caught.value.kind == "lock_timeout"
    assert time.monotonic() - started < 1.0
    release.set()
    holder.join(5)
    store.check_writable()
    store.close()


def test_a_lock_held_by_another_connection_past_the_bound_is_503(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(path, timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError, match="held by another connection") as caught:
            store.check_writable()
        assert caught.value.kind == "lock_timeout"
        assert store.count_by_status() == {}  # reads go on (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.check_writable()
    store.close()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (pg_errors.DiskFull(), "disk_full"),
        (pg_errors.LockNotAvailable(), "lock_timeout"),
        (pg_errors.QueryCanceled(), "timeout"),
        (pg_errors.ReadOnlySqlTransaction(), "read_only"),
        (pg_errors.TooManyConnections(), "busy"),
        (pg_errors.AdminShutdown(), "connection"),
        (psycopg.OperationalError("server closed the connection unexpectedly"), "connection"),
    ],
)
def test_postgres_outages_are_unavailable_with_their_kind(error: psycopg.Error, kind: str) -> None:
    outage = _outage(error, committing=False)
    assert outage is not None and outage.kind == kind
    assert "nothing was written" in outage.message


def test_a_postgres_connection_lost_during_commit_says_the_change_may_have_been_written() -> None:
    outage = _outage(pg_errors.AdminShutdown(), committing=True)
    assert outage is not None and outage.kind == "connection"
    assert "may or may not have been written" in outage.message


def test_a_postgres_error_that_is_not_an_outage_is_none() -> None:
    assert _outage(pg_errors.SyntaxError(), committing=False) is None
    assert _outage(pg_errors.UniqueViolation(), committing=False) is None


def test_the_wire_answers_an_outage_503_with_retry_after_and_its_message() -> None:
    class Down(MemoryStore):
        def create(self, *args: object, **kwargs: object) -> None:
            raise StoreUnavailableError("the disk holding x is full", kind="disk_full")

    body = json.dumps(create_payload(Name="exp", EndpointName="ep")).encode()
    answer = handle(
        ExperimentService(Down()),
        method="POST",
        path="/",
        headers={
            "x-amz-target": "SageMaker.CreateInferenceExperiment",
            "content-type": "application/x-amz-json-1.1",
        },
        body=body,
    )
    assert answer.status == 503
    headers = dict(answer.headers)
    assert headers["Retry-After"] == "1"
    assert headers["X-Amzn-ErrorType"] == "ServiceUnavailable"
    assert b"the disk holding x is full" in answer.body
    assert answer.store_error == "disk_full"
