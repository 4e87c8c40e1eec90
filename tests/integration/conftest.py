"""Fixtures for the HTTP server tests: a real uvicorn server on a free loopback port."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
import uvicorn
from botocore.config import Config

from lifecycle.http.app import LifecycleApp
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import Store, open_store
from lifecycle.stores.memory import MemoryStore


class RunningServer:
    """uvicorn serving a LifecycleApp in a thread, on a socket bound before it starts.

    ``config`` goes to ``uvicorn.Config`` (``http=`` a protocol class, say); ``host`` is
    served instead of ``app`` when given: an ASGI app that has ``app`` mounted in it."""

    def __init__(self, app: LifecycleApp, host: Any = None, **config: Any) -> None:
        self.app = app
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto
        # says TCP, and without it every response waits out a 40 ms delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app if host is None else host,
                log_config=None,
                access_log=False,
                lifespan="on",
                **config,
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
        )
        self._sock = sock

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self._sock.close()
        assert not self.thread.is_alive(), "the server did not stop"


def make_service(**kwargs: Any) -> ExperimentService:
    kwargs.setdefault("settle_seconds", 0.0)
    return ExperimentService(MemoryStore(), **kwargs)


@pytest.fixture
def service() -> ExperimentService:
    return make_service()


@pytest.fixture
def server(service: ExperimentService) -> Iterator[RunningServer]:
    running = RunningServer(LifecycleApp(service, Reconciler(service))).start()
    yield running
    running.stop()


def client_for(url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("aws_access_key_id", "testing")
    kwargs.setdefault("aws_secret_access_key", "testing")
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5),
        **kwargs,
    )


@pytest.fixture
def client(server: RunningServer) -> Any:
    return client_for(server.url)


def create_request(name: str, endpoint: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid CreateInferenceExperiment request (shadow mode, two variants)."""
    request: dict[str, Any] = {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "EndpointName": endpoint or f"ep-{name}",
        "ModelVariants": [
            {
                "ModelName": "model-prod",
                "VariantName": "prod",
                "InfrastructureConfig": {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": "ml.m5.xlarge",
                        "InstanceCount": 1,
                    },
                },
            },
            {
                "ModelName": "model-shadow",
                "VariantName": "shadow",
                "InfrastructureConfig": {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": "ml.m5.xlarge",
                        "InstanceCount": 1,
                    },
                },
            },
        ],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [
                {"ShadowModelVariantName": "shadow", "SamplingPercentage": 50},
            ],
        },
    }
    request.update(overrides)
    return request


def wait_for_status(client: Any, name: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = client.describe_inference_experiment(Name=name)
        if described["Status"] == status:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {described['Status']}, not {status}, after {timeout}s")
        time.sleep(0.05)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store in turn: memory, an SQLite file, a PostgreSQL schema of the test's own."""
    if request.param == "memory":
        store = open_store("memory://")
    elif request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'lifecycle.db'}")
    else:
        store = open_store(request.getfixturevalue("postgres_url"))
    yield store
    store.close()


# Helpers as fixtures, so test modules never import this conftest by name.


@pytest.fixture(name="create_request")
def _create_request() -> Any:
    return create_request


@pytest.fixture(name="wait_for_status")
def _wait_for_status() -> Any:
    return wait_for_status


@pytest.fixture(name="client_for")
def _client_for() -> Any:
    return client_for


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Start a server over any LifecycleApp (or a host app it is mounted in); every one
    started is stopped at teardown."""
    started: list[RunningServer] = []

    def start(app: LifecycleApp, host: Any = None, **config: Any) -> RunningServer:
        running = RunningServer(app, host, **config).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


class ServeProcess:
    """``python -m lifecycle.http.serve ARGS --port 0`` in a subprocess; its stderr collected.

    ``preexec_fn`` runs in the child before it starts (to lower a resource limit, say)."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        repo = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
        full_env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        argv = [sys.executable, "-m", "lifecycle.http.serve", "--port", "0", *args]
        self.process = subprocess.Popen(
            argv,
            cwd=repo,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
            start_new_session=True,  # its workers (--workers N) are killed with it
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0
        self.url = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self, timeout: float = 15.0) -> ServeProcess:
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if found:
                    self.port = int(found.group(1))
                    self.url = f"http://127.0.0.1:{self.port}"
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"lifecycle serve did not start:\n{self.output}")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        import os
        import subprocess

        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a killed parent
            os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"lifecycle serve outlived SIGKILL by 30s:\n{self.output}"
            ) from None
        self._reader.join(5)


@pytest.fixture
def serve_process() -> Iterator[Any]:
    """Start ``lifecycle serve`` subprocesses; any still running at teardown are killed."""
    started: list[ServeProcess] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> ServeProcess:
        process = ServeProcess(*args, env=env, preexec_fn=preexec_fn)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL that several processes open at once: a SQLite file, a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lifecycle.db'}"
    return cast(str, request.getfixturevalue("postgres_url"))
