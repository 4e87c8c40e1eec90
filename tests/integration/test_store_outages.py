"""Store outages against a real ``lifecycle serve``: each is a 503 a client can retry, never a 500.

- another process holds SQLite's write lock: reads go on, a write is 503 within the bound;
- the server's PostgreSQL connections are killed under load: no 500, nothing acknowledged lost;
- the disk under the SQLite file fills up: writes are 503 saying so, reads go on, and the
  store works again once there is room, its file sound.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import create_request, wait_for_status

pytestmark = pytest.mark.slow


def _get(port: int, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def _client(url: str, *, retries: int = 1) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"total_max_attempts": retries, "mode": "standard"},
            read_timeout=20,
            connect_timeout=5,
        ),
    )


def _code(err: ClientError) -> tuple[str, int]:
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


# -- SQLite: another process holds the write lock ----------------------------------------------


@pytest.fixture
def lock_holder() -> Iterator[Any]:
    """Start a process that holds ``BEGIN EXCLUSIVE`` on a SQLite file until released."""
    held: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        code = (
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "c.execute('ROLLBACK')\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        held.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        return process

    yield hold
    for process in held:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(10) == 0


def test_a_write_lock_held_elsewhere_leaves_reads_answering_and_writes_503_within_the_bound(
    serve_process: Any, lock_holder: Any, tmp_path: Path
) -> None:
    db = tmp_path / "held.db"
    server = serve_process("--store", f"sqlite:///{db}", "--lock-timeout", "1").wait_started()
    client = _client(server.url)
    client.create_inference_experiment(**create_request("before"))
    wait_for_status(client, "before", "Running")

    holder = lock_holder(db)
    write: dict[str, Any] = {}

    def create() -> None:
        started = time.monotonic()
        try:
            client.create_inference_experiment(**create_request("during"))
            write["outcome"] = "OK"
        except ClientError as err:
            write["outcome"] = _code(err)
            write["headers"] = err.response["ResponseMetadata"]["HTTPHeaders"]
            write["message"] = err.response["Error"]["Message"]
        write["seconds"] = time.monotonic() - started

    writer = threading.Thread(target=create)
    writer.start()
    # while the write waits for the lock, every read answers at once
    slowest = 0.0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert client.describe_inference_experiment(Name="before")["Status"] == "Running"
        status, _, _ = _get(server.port, "/health")
        assert status == 200
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 1.0, f"a read waited {slowest:.2f}s behind the held lock"
    status, headers, body = _get(server.port, "/ready")
    assert status == 503, body
    assert headers["retry-after"] == "1"
    assert "lock" in json.loads(body)["message"]

    writer.join(10)
    assert write["outcome"] == ("ServiceUnavailable", 503)
    assert write["seconds"] < 1.0 + 1.5  # the bound, and the time to answer
    assert write["headers"]["retry-after"] == "1"
    assert "write lock" in write["message"] and "nothing was written" in write["message"]
    with pytest.raises(ClientError) as missing:
        client.describe_inference_experiment(Name="during")
    assert _code(missing.value) == ("ResourceNotFound", 400)

    _release(holder)
    client.create_inference_experiment(**create_request("after"))
    assert _get(server.port, "/ready")[0] == 200
    assert "InternalFailure" not in server.output


def test_a_write_waiting_for_the_lock_gets_it_when_it_comes_free_within_the_bound(
    serve_process: Any, lock_holder: Any, tmp_path: Path
) -> None:
    db = tmp_path / "freed.db"
    server = serve_process("--store", f"sqlite:///{db}", "--lock-timeout", "5").wait_started()
    client = _client(server.url)
    holder = lock_holder(db)
    threading.Timer(0.5, _release, (holder,)).start()
    started = time.monotonic()
    client.create_inference_experiment(**create_request("waited"))
    assert 0.4 < time.monotonic() - started < 5.0
    assert client.describe_inference_experiment(Name="waited")["Name"] == "waited"


# -- PostgreSQL: the server's connections are terminated under load ---------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("workers", ["1", "2"])
def test_terminated_postgres_connections_give_no_500_and_lose_nothing_acknowledged(
    serve_process: Any, postgres_url: str, postgres_dsn: str, workers: str
) -> None:
    import psycopg

    app_name = f"lifecycle-kill-{uuid.uuid4().hex[:8]}"  # ours alone: other tests run beside
    server = serve_process(
        "--store",
        f"{postgres_url}&application_name={app_name}",
        "--max-live-experiments",
        "1000",
        "--workers",
        workers,
    ).wait_started()
    stop = threading.Event()
    acknowledged: list[str] = []
    failures: list[str] = []
    ack_lock = threading.Lock()

    def work(worker: int) -> None:
        client = _client(server.url, retries=8)
        i = 0
        while not stop.is_set():
            name = f"kill-{worker}-{i}"
            i += 1
            try:
                client.create_inference_experiment(**create_request(name))
            except ClientError as err:
                code = _code(err)
                if code == ("ResourceInUse", 400):  # a retry of a create that had committed
                    with ack_lock:
                        acknowledged.append(name)
                elif code != ("ServiceUnavailable", 503):
                    failures.append(f"create {name}: {code} {err}")
                continue
            with ack_lock:
                acknowledged.append(name)
            try:
                client.describe_inference_experiment(Name=name)
                client.list_inference_experiments(MaxResults=5)
            except ClientError as err:
                if _code(err) != ("ServiceUnavailable", 503):
                    failures.append(f"read {name}: {_code(err)} {err}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    killed = 0
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            for _ in range(5):
                time.sleep(0.6)
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    (app_name,),
                ).fetchall()
                killed += len(rows)
    finally:
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(60)
    assert killed >= 5, "the test terminated too few of the server's connections"
    assert not failures, failures[:5]
    assert len(acknowledged) > 20
    client = _client(server.url, retries=8)
    for name in acknowledged:
        assert client.describe_inference_experiment(Name=name)["Name"] == name
    assert "InternalFailure" not in server.output
    assert " status=500 " not in server.output


# -- a full disk --------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_503_for_writes_while_reads_go_on_and_writes_return_with_room(
    serve_process: Any, small_disk: Path
) -> None:
    db = small_disk / "full.db"
    server = serve_process("--store", f"sqlite:///{db}").wait_started()
    client = _client(server.url)
    client.create_inference_experiment(**create_request("kept"))
    wait_for_status(client, "kept", "Running")

    filler = _fill(small_disk)
    refused: ClientError | None = None
    for i in range(300):  # the WAL's free pages take some writes first
        try:
            client.create_inference_experiment(**create_request(f"fill-{i}"))
        except ClientError as err:
            refused = err
            break
    assert refused is not None, "no write was refused on a full disk"
    assert _code(refused) == ("ServiceUnavailable", 503)
    assert "disk" in refused.response["Error"]["Message"]
    assert "full" in refused.response["Error"]["Message"]
    assert refused.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    assert client.describe_inference_experiment(Name="kept")["Status"] == "Running"
    assert client.list_inference_experiments()["InferenceExperiments"]
    status, _, body = _get(server.port, "/ready")
    assert status == 503 and "full" in json.loads(body)["message"]

    filler.unlink()
    client.create_inference_experiment(**create_request("after-room"))
    assert _get(server.port, "/ready")[0] == 200
    assert "InternalFailure" not in server.output

    server.signal(15)
    assert server.wait() == 0
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = {r[0] for r in check.execute("SELECT name FROM experiments")}
    assert {"kept", "after-room"} <= names
