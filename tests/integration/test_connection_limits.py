"""Idle and slow clients cannot hold ``lifecycle serve``: a connection cap and a header deadline.

A real ``lifecycle serve`` process (the memory store) gets 300 idle TCP
connections and a slowloris client that sends its request head a byte at a
time, slower than ``--header-timeout``. A normal client must still be
answered (200, or 503 with Retry-After) within 5 s, the server must close
the slowloris and every idle connection within the header timeout (plus a
margin), and its log must stay small. Once with the machine's descriptor
limit, once under ``ulimit -n 256``, where the default cap is 192 and the
connections past it are answered 503 and closed instead of running the
process out of descriptors.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lifecycle.http.connections import default_max_connections

pytestmark = pytest.mark.slow

JSON11 = "application/x-amz-json-1.1"
HEADER_TIMEOUT = 2.0
#: how much later than the header timeout a connection may be closed (accept retries, a busy
#: machine)
MARGIN = 3.0
IDLE = 300
#: the slowloris's request head, sent one byte every SLOW_BYTE seconds: whole, it would take
#: far longer than the header timeout
SLOW_HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"X-Amz-Target: SageMaker.ListInferenceExperiments\r\nContent-Length: 2\r\n\r\n"
)
SLOW_BYTE = 0.25
#: the most the server may log in one of these tests
LOG_BYTES = 1_000_000


def lowered_open_files(limit: int) -> Callable[[], None]:
    """A preexec_fn: the child runs as under ``ulimit -n LIMIT``."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return lower


def answered(port: int, within: float) -> tuple[int, dict[str, str], bytes]:
    """A List as a client with retries sends it: a connection the server refused past its
    cap may be closed before the request is read (a reset, a broken pipe), and a client
    such as boto3 tries again; the answer must come within ``within`` seconds in all."""
    deadline = time.monotonic() + within
    while True:
        try:
            return list_experiments(port, timeout=max(0.1, deadline - time.monotonic()))
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def list_experiments(port: int, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One ListInferenceExperiments on a fresh connection: status, headers (lower-case), body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "Content-Type": JSON11,
                "X-Amz-Target": "SageMaker.ListInferenceExperiments",
            },
        )
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


@dataclass
class Idle:
    """One idle client connection: when it opened, what it read, when the server closed it."""

    sock: socket.socket
    opened: float
    data: bytes = b""
    closed: float | None = None

    @property
    def lived(self) -> float:
        assert self.closed is not None
        return self.closed - self.opened


def open_idle(port: int, n: int) -> list[Idle]:
    """``n`` connections that send nothing."""
    idle: list[Idle] = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        idle.append(Idle(sock, time.monotonic()))
    return idle


def watch_until_closed(idle: list[Idle], timeout: float) -> None:
    """Read every connection until the server closes it, or ``timeout`` passes."""
    with selectors.DefaultSelector() as selector:
        for conn in idle:
            selector.register(conn.sock, selectors.EVENT_READ, conn)
        deadline = time.monotonic() + timeout
        open_count = len(idle)
        while open_count and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                conn = key.data
                try:
                    chunk = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:  # a reset is a close too
                    chunk = b""
                if chunk:
                    conn.data += chunk
                    continue
                conn.closed = time.monotonic()
                selector.unregister(conn.sock)
                open_count -= 1


def close_all(idle: list[Idle]) -> None:
    for conn in idle:
        conn.sock.close()


@dataclass
class Slowloris:
    """A client that sends its request head a byte every SLOW_BYTE seconds, in a thread."""

    port: int
    sent: int = 0
    data: bytes = b""
    opened: float = 0.0
    closed: float | None = None
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def start(self) -> Slowloris:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the slowloris was never cut off"

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            self.opened = time.monotonic()
            deadline = self.opened + HEADER_TIMEOUT + 4 * MARGIN
            while time.monotonic() < deadline and self.sent < len(SLOW_HEAD):
                try:
                    sock.sendall(SLOW_HEAD[self.sent : self.sent + 1])
                except OSError:
                    break  # the server is gone from the other end
                self.sent += 1
                with selectors.DefaultSelector() as selector:
                    selector.register(sock, selectors.EVENT_READ)
                    if not selector.select(SLOW_BYTE):
                        continue
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.data += chunk
            self.closed = time.monotonic()


def too_many_open_files(output: str) -> int:
    return output.count("Too many open files")


def log_bytes(lines: list[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


@pytest.mark.parametrize("open_files", [None, 256], ids=["default-limit", "ulimit-256"])
def test_idle_and_slow_clients_are_cut_off_and_a_normal_client_is_answered(
    serve_process: Any, open_files: int | None
) -> None:
    preexec = None if open_files is None else lowered_open_files(open_files)
    server = serve_process(
        "--store", "memory://", "--header-timeout", str(HEADER_TIMEOUT), preexec_fn=preexec
    ).wait_started()

    slowloris = Slowloris(server.port).start()
    idle = open_idle(server.port, IDLE)
    try:
        started = time.monotonic()
        status, headers, body = answered(server.port, within=5.0)
        answered_in = time.monotonic() - started
        assert answered_in < 5.0
        assert status in (200, 503), body
        if status == 503:
            assert headers["retry-after"].isdigit()
            assert json.loads(body)["__type"] == "ServiceUnavailable"

        watch_until_closed(idle, HEADER_TIMEOUT + 2 * MARGIN)
        slowloris.join(HEADER_TIMEOUT + 4 * MARGIN)
    finally:
        close_all(idle)

    still_open = sum(c.closed is None for c in idle)
    assert still_open == 0, f"{still_open} of {IDLE} idle connections were never closed"
    slowest = max(c.lived for c in idle)
    assert slowest < HEADER_TIMEOUT + MARGIN, f"an idle connection lived {slowest:.1f}s"
    assert slowloris.closed is not None
    assert slowloris.sent < len(SLOW_HEAD), "the slowloris finished its head: it was never cut"
    assert slowloris.closed - slowloris.opened < HEADER_TIMEOUT + MARGIN
    assert not slowloris.data.startswith(b"HTTP/1.1 200"), "a slow head must not be served"

    refused = [c for c in idle if c.data]
    if open_files is None:
        # the cap (1,024, or 64 below a lower descriptor limit) is above 302: nobody is refused
        assert default_max_connections() > IDLE + 1
        assert status == 200
        assert not refused, refused[0].data[:200]
    else:
        # 256 descriptors: the cap is 192 (the slowloris may hold one place), and those past
        # it read a 503 and are closed
        cap = open_files - 64
        assert cap - 1 <= IDLE - len(refused) <= cap
        for conn in refused:
            head, _, payload = conn.data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 "), conn.data[:200]
            assert b"\r\nRetry-After: 1" in head
            assert json.loads(payload)["__type"] == "ServiceUnavailable"

    # the server serves again once they are gone, and said little about all this
    assert list_experiments(server.port)[0] == 200
    assert too_many_open_files(server.output) <= 3, server.output[-3000:]
    assert log_bytes(server.lines) < LOG_BYTES
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output[-3000:]
    assert "Traceback" not in server.output, server.output[-3000:]


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything ``sock`` reads until the server closes it (TimeoutError past ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_max_connections_caps_at_n_and_the_next_is_refused_503_then_closed(
    serve_process: Any,
) -> None:
    cap = 5
    server = serve_process(
        "--store", "memory://", "--max-connections", str(cap), "--header-timeout", "30"
    ).wait_started()
    held = open_idle(server.port, cap)
    try:
        time.sleep(0.3)  # the server has accepted all of them
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            started = time.monotonic()
            data = read_until_closed(extra, timeout=5.0)
            assert time.monotonic() - started < 3.0
        head, _, payload = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), data[:200]
        assert b"\r\nRetry-After: 1" in head
        assert b"\r\nConnection: close" in head
        assert json.loads(payload)["__type"] == "ServiceUnavailable"
        # the N held connections are open and untouched: none of them was answered or closed
        watch_until_closed(held, 0.5)
        assert all(c.closed is None and not c.data for c in held)
        # a normal request over the cap is refused too, with a 503 a client can retry
        status, headers, _ = list_experiments(server.port)
        assert (status, headers["retry-after"]) == (503, "1")
    finally:
        close_all(held)
    # once they close, their places are free again
    deadline = time.monotonic() + 5
    while (status := list_experiments(server.port)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output[-3000:]


def health_on(sock: socket.socket) -> None:
    """GET /health on a kept-alive ``sock``, read to the end of its answer."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b'"ok"' not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the answer: {data[:200]!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_a_fractional_idle_timeout_closes_a_kept_alive_connection_that_soon(
    serve_process: Any,
) -> None:
    idle_timeout = 0.3
    server = serve_process(
        "--store", "memory://", "--idle-timeout", str(idle_timeout), "--header-timeout", "30"
    ).wait_started()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        health_on(sock)
        answered_at = time.monotonic()
        assert read_until_closed(sock, timeout=5.0) == b""  # kept alive, then closed, unasked
        lived = time.monotonic() - answered_at
    # 0.3 s, not a whole second: the flag's fraction reaches uvicorn
    assert idle_timeout * 0.8 < lived < 0.8, f"closed {lived:.2f}s after the answer"
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output[-3000:]


def test_the_header_deadline_runs_from_the_last_answer_not_the_first(
    serve_process: Any,
) -> None:
    header_timeout = 1.0
    server = serve_process(
        "--store", "memory://", "--header-timeout", str(header_timeout), "--idle-timeout", "30"
    ).wait_started()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        opened = time.monotonic()
        # a request every 0.6 s for 2.4 s: each answer gives the next head another second
        for _ in range(5):
            health_on(sock)
            answered_at = time.monotonic()
            time.sleep(0.6 * header_timeout)
        assert time.monotonic() - opened > 2 * header_timeout
        assert read_until_closed(sock, timeout=5.0) == b""  # then idle: closed, unasked
        lived = time.monotonic() - answered_at
    assert header_timeout * 0.9 < lived < header_timeout + MARGIN, f"closed {lived:.2f}s after"
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output[-3000:]


def test_out_of_descriptors_on_the_asyncio_loop_is_one_retry_and_few_lines_not_one_per_attempt(
    serve_process: Any, tmp_path: Path
) -> None:
    # the stock asyncio loop (where uvloop is not installed: uvicorn without its extra, say):
    # out of descriptors, each accept of a burst fails, and asyncio logged and scheduled a
    # retry of its own for every one of them (thousands a second, and as many tracebacks
    # when the socket closed under them at shutdown)
    blocked = tmp_path / "no-uvloop"
    blocked.mkdir()
    (blocked / "uvloop.py").write_text('raise ImportError("uvloop is blocked for this test")\n')
    repo = str(Path(__file__).resolve().parents[2])
    server = serve_process(
        "--store",
        "memory://",
        "--max-connections",
        "1000",  # no cap below the limit: the accepts themselves run out
        "--header-timeout",
        "30",
        env={"PYTHONPATH": os.pathsep.join([str(blocked), repo])},
        preexec_fn=lowered_open_files(128),
    ).wait_started()

    def burst() -> list[socket.socket]:
        held: list[socket.socket] = []
        for _ in range(300):
            with contextlib.suppress(OSError):
                held.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
        return held

    for _ in range(3):
        held = burst()
        time.sleep(1.0)
        # out of descriptors, a request may go unanswered: its connection is not accepted
        with contextlib.suppress(OSError):
            list_experiments(server.port, timeout=3.0)
        for sock in held:
            sock.close()
        time.sleep(1.0)
        assert answered(server.port, within=5.0)[0] == 200
    server.signal(signal.SIGTERM)  # the retries asyncio scheduled are still waiting
    assert server.wait() == 0, server.output[-3000:]
    assert too_many_open_files(server.output) <= 3, server.output[-3000:]
    # the one line per interval has its traceback; nothing else does (no retry left behind
    # on the socket shutdown closed)
    assert server.output.count("Traceback") <= 3, server.output[-3000:]
    assert "Invalid file descriptor" not in server.output, server.output[-3000:]
    assert log_bytes(server.lines) < 100_000, server.output[-3000:]


def test_out_of_descriptors_on_uvloop_is_said_once_per_interval(serve_process: Any) -> None:
    # uvloop (the default loop) drops the connections it cannot accept without a word: the
    # server says it ran out, once per interval, with how many descriptors are open
    server = serve_process(
        "--store",
        "memory://",
        "--max-connections",
        "1000",  # no cap below the limit: the accepts themselves run out
        "--header-timeout",
        "30",
        preexec_fn=lowered_open_files(128),
    ).wait_started()
    held: list[socket.socket] = []
    try:
        for _ in range(2):
            for _ in range(200):
                with contextlib.suppress(OSError):
                    held.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
            time.sleep(1.5)
    finally:
        for sock in held:
            sock.close()
    time.sleep(1.0)
    assert answered(server.port, within=5.0)[0] == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output[-3000:]
    said = [line for line in server.lines if "out of file descriptors" in line]
    assert 1 <= len(said) <= 2, server.output[-3000:]
    assert "limit=128" in said[0]
    assert too_many_open_files(server.output) <= 3, server.output[-3000:]
