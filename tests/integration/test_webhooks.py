"""Webhook subscriptions against a real receiver: down then up, refusing then taking, a SIGKILL.

The receiver is an HTTP server on a free port that records every request
and answers the status it is told to (or is not listening at all). The
servers are ``lifecycle serve`` subprocesses on a SQLite file, each with a
``--webhook`` to the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import http.server
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import StoreUnavailableError
from lifecycle.http.metrics import Metrics
from lifecycle.service.feed import Retention, event, event_id
from lifecycle.service.service import ExperimentService
from lifecycle.service.webhooks import EVENT_ID_HEADER, WebhookSubscription, subscription_id
from lifecycle.stores import MemoryStore, open_store
from lifecycle.stores.base import Change

SECRET = b"webhook-secret-for-tests"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    phase: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """An HTTP server on ``port`` recording each POST; ``status`` is what it answers."""

    def __init__(self, port: int | None = None) -> None:
        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        self.port: int = port
        self.url = f"http://127.0.0.1:{port}/hooks/lifecycle"
        self.status = 200
        self.phase = ""
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                            receiver.phase,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def taken(self) -> list[Received]:
        """The requests answered 2xx, in the order they came."""
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def feed_of(url: str) -> list[dict[str, Any]]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("GET", "/events?limit=1000")
        events: list[dict[str, Any]] = json.loads(conn.getresponse().read())["Events"]
        return events
    finally:
        conn.close()


def metrics_of(url: str) -> str:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def check_delivered(feed: list[dict[str, Any]], taken: list[Received]) -> None:
    """Every event of ``feed`` was taken at least once, each signed, each experiment's in order."""
    for r in taken:
        expected = "sha256=" + hmac.new(SECRET, r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-lifecycle-signature"] == expected
        assert r.headers["x-lifecycle-event-id"] == r.event["id"]
        assert r.headers["content-type"] == "application/json"
    by_id = {r.event["id"]: r.event for r in taken}
    assert set(by_id) == {e["id"] for e in feed}
    assert all(by_id[e["id"]] == e for e in feed)  # the same event, as /events reads it
    first_taken: list[str] = []
    for r in taken:
        if r.event["id"] not in first_taken:
            first_taken.append(r.event["id"])
    names = {e["detail"]["Name"] for e in feed}
    for name in names:
        in_feed = [e["id"] for e in feed if e["detail"]["Name"] == name]
        assert [i for i in first_taken if i in in_feed] == in_feed, name


@pytest.fixture
def secret_file(tmp_path: Path) -> str:
    path = tmp_path / "webhook.secret"
    path.write_bytes(SECRET + b"\n")
    return str(path)


def serve_args(store: Path, receiver: Receiver, secret_file: str) -> list[str]:
    return [
        "--store",
        f"sqlite:///{store}",
        "--webhook",
        receiver.url,
        "--webhook-secret-file",
        secret_file,
    ]


def running(client: Any, create_request: Any, wait_for_status: Any, *names: str) -> None:
    for name in names:
        client.create_inference_experiment(**create_request(name))
    for name in names:
        wait_for_status(client, name, "Running")


# -- through lifecycle serve ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_up(
    tmp_path: Path,
    receiver: Receiver,
    secret_file: str,
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
) -> None:
    server = serve_process(*serve_args(tmp_path / "s.db", receiver, secret_file)).wait_started()
    client = client_for(server.url)
    running(client, create_request, wait_for_status, "exp-a", "exp-b", "exp-c")
    feed = feed_of(server.url)
    assert len(feed) == 15  # each: create, two variants and itself provisioned, started
    time.sleep(1.5)  # deliveries fail: nothing listens
    assert receiver.all() == []
    receiver.start()
    wait_until("every event taken", lambda: len({r.event["id"] for r in receiver.taken()}) == 15)
    check_delivered(feed, receiver.taken())
    sub = subscription_id(receiver.url)
    failed = [line for line in server.lines if "webhook delivery failed" in line]
    assert failed and all(f"subscription={sub}" in line for line in failed)
    assert all("status=no_answer" in line and "refused" in line for line in failed)
    assert receiver.url not in server.output  # its path may hold a token: never logged
    text = metrics_of(server.url)
    assert f'lifecycle_webhook_failures_total{{status="no_answer",subscription="{sub}"}}' in text
    assert f'lifecycle_webhook_deliveries_total{{subscription="{sub}"}}' in text
    wait_until(
        "caught up",
        lambda: (
            f'lifecycle_webhook_lag_seconds{{subscription="{sub}"}} 0.0' in metrics_of(server.url)
        ),
    )


@pytest.mark.slow
def test_a_receiver_that_refuses_for_a_while_gets_every_event_in_order(
    tmp_path: Path,
    receiver: Receiver,
    secret_file: str,
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
) -> None:
    receiver.status = 500
    receiver.start()
    server = serve_process(*serve_args(tmp_path / "s.db", receiver, secret_file)).wait_started()
    client = client_for(server.url)
    running(client, create_request, wait_for_status, "exp-a", "exp-b")
    wait_until("a refused delivery", lambda: len(receiver.all()) >= 2)
    refused = receiver.all()
    assert {r.event["id"] for r in refused} == {feed_of(server.url)[0]["id"]}  # the first, again
    receiver.status = 200
    feed = feed_of(server.url)
    wait_until("every event taken", lambda: len({r.event["id"] for r in receiver.taken()}) == 10)
    check_delivered(feed, receiver.taken())
    sub = subscription_id(receiver.url)
    assert f'lifecycle_webhook_failures_total{{status="500",subscription="{sub}"}}' in metrics_of(
        server.url
    )
    assert any("status=500" in line and "answered 500" in line for line in server.lines)


@pytest.mark.slow
def test_an_event_committed_before_a_sigkill_is_delivered_after_the_restart(
    tmp_path: Path,
    receiver: Receiver,
    secret_file: str,
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
) -> None:
    store_path = tmp_path / "s.db"
    receiver.phase = "first"
    receiver.start()
    first = serve_process(*serve_args(store_path, receiver, secret_file)).wait_started()
    client = client_for(first.url)
    running(client, create_request, wait_for_status, "before")
    before_ids = {e["id"] for e in feed_of(first.url)}
    wait_until(
        "the first events taken", lambda: {r.event["id"] for r in receiver.taken()} == before_ids
    )
    store = open_store(f"sqlite:///{store_path}")
    sub = subscription_id(receiver.url)
    last = max(e["detail"]["Position"] for e in feed_of(first.url))
    wait_until("the cursor saved", lambda: store.feed_cursor(sub) == last)

    receiver.status = 503  # the receiver stops taking them: the next events are committed only
    running(client, create_request, wait_for_status, "after")
    feed = feed_of(first.url)
    after_ids = {e["id"] for e in feed} - before_ids
    wait_until("a refused delivery", lambda: any(r.answered == 503 for r in receiver.all()))
    first.kill()  # SIGKILL: between the commits and their delivery
    assert first.process.returncode == -signal.SIGKILL
    assert not after_ids & {r.event["id"] for r in receiver.taken()}
    assert store.feed_cursor(sub) == last

    receiver.status, receiver.phase = 200, "second"
    second = serve_process(*serve_args(store_path, receiver, secret_file)).wait_started()
    wait_until(
        "the later events taken", lambda: after_ids <= {r.event["id"] for r in receiver.taken()}
    )
    check_delivered(feed, receiver.taken())
    again = [r for r in receiver.taken() if r.phase == "second"]
    assert not {r.event["id"] for r in again} & before_ids  # it resumed where it stopped
    wait_until("the cursor saved", lambda: store.feed_cursor(sub) == feed[-1]["detail"]["Position"])
    store.close()
    second.signal(signal.SIGTERM)
    assert second.wait() == 0


# -- the flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-secret-file", "x"], "--webhook-secret-file FILE must follow the --webhook URL"),
        (
            ["--webhook", "http://127.0.0.1:1/a", "--webhook-secret-file", "{s}", "--webhook-secret-file", "{s}"],
            "has --webhook-secret-file twice",
        ),
        (["--webhook", "http://127.0.0.1:1/a", "--webhook-secret-file", "{d}/missing"], "--webhook-secret-file: cannot read"),
        (["--webhook", "ftp://127.0.0.1/a"], "--webhook: 'ftp://127.0.0.1/a' is not an http:// or https:// URL"),
        (["--webhook", "http://127.0.0.1:1/a", "--webhook", "http://127.0.0.1:1/a"], "is given twice"),
        (["--events-max-count", "0"], "--events-max-count"),
        (["--events-max-age", "-1"], "--events-max-age"),
    ],
)  # fmt: skip
def test_a_bad_webhook_or_retention_flag_is_a_usage_error_naming_it(
    tmp_path: Path, secret_file: str, serve_process: Any, args: list[str], message: str
) -> None:
    filled = [a.format(s=secret_file, d=tmp_path) for a in args]
    process = serve_process("--store", f"sqlite:///{tmp_path / 's.db'}", *filled)
    assert process.wait() == 2, process.output
    assert message in process.output
    assert "Traceback" not in process.output


def test_each_secret_signs_the_webhook_before_it(tmp_path: Path, secret_file: str) -> None:
    import argparse

    from lifecycle.http.options import add_serve_arguments, webhook_specs

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    other = tmp_path / "other.secret"
    other.write_bytes(b"  other  ")
    args = parser.parse_args(
        ["--webhook", "http://a.test/1", "--webhook-secret-file", secret_file,
         "--webhook", "http://b.test/2",
         "--webhook", "https://c.test/3", "--webhook-secret-file", str(other)]
    )  # fmt: skip
    assert webhook_specs(args) == [
        ("http://a.test/1", SECRET),
        ("http://b.test/2", None),
        ("https://c.test/3", b"other"),
    ]
    assert webhook_specs(parser.parse_args([])) == []


def test_from_the_environment_the_nth_secret_file_signs_the_nth_webhook(
    tmp_path: Path, secret_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifecycle.cli import _parser
    from lifecycle.http.options import webhook_specs

    monkeypatch.setenv("LIFECYCLE_WEBHOOK", "http://a.test/1,http://b.test/2")
    monkeypatch.setenv("LIFECYCLE_WEBHOOK_SECRET_FILE", secret_file)
    assert webhook_specs(_parser().parse_args(["serve"])) == [
        ("http://a.test/1", SECRET),
        ("http://b.test/2", None),
    ]
    # a --webhook on the command line wins: neither variable is read
    given = _parser().parse_args(["serve", "--webhook", "http://c.test/3"])
    assert webhook_specs(given) == [("http://c.test/3", None)]
    monkeypatch.setenv(
        "LIFECYCLE_WEBHOOK_SECRET_FILE", f"{secret_file},{secret_file},{secret_file}"
    )
    with pytest.raises(ValueError, match="3 secret files for 2 webhooks"):
        webhook_specs(_parser().parse_args(["serve"]))


@pytest.mark.slow
def test_with_several_workers_each_event_is_delivered_once(
    tmp_path: Path,
    receiver: Receiver,
    secret_file: str,
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
) -> None:
    receiver.start()
    args = [*serve_args(tmp_path / "s.db", receiver, secret_file), "--workers", "2"]
    server = serve_process(*args).wait_started()
    client = client_for(server.url)
    running(client, create_request, wait_for_status, "exp-a", "exp-b")
    feed = feed_of(server.url)
    wait_until("every event taken", lambda: len(receiver.taken()) >= len(feed))
    time.sleep(1.5)  # a second deliverer would have sent its copies by now
    check_delivered(feed, receiver.taken())
    assert len(receiver.taken()) == len(feed) == 10  # once each: the parent delivers alone
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


# -- one subscription, step by step ---------------------------------------------------------------


class Heard:
    """A delivery observer that keeps what it hears."""

    def __init__(self) -> None:
        self.taken = 0
        self.failed: list[str] = []

    def delivered(self, subscription: str) -> None:
        self.taken += 1

    def delivery_failed(self, subscription: str, status: str) -> None:
        self.failed.append(status)


@pytest.fixture
def fed() -> ExperimentService:
    from tests.integration.conftest import create_request

    service = ExperimentService(MemoryStore(), settle_seconds=3600.0)
    for name in ("one", "two"):
        service.invoke("CreateInferenceExperiment", create_request(name))
    return service


def test_only_a_2xx_moves_the_cursor_and_a_4xx_is_retried_like_any_failure(
    fed: ExperimentService, receiver: Receiver
) -> None:
    metrics = Metrics()
    sub = WebhookSubscription(
        fed, receiver.url, secret=SECRET, retry_seconds=0.01, observer=metrics
    )
    receiver.status = 404
    receiver.start()
    wait, wakeable = sub.run_once()
    assert 0 < wait < 0.02 and not wakeable
    assert fed.store.feed_cursor(sub.id) is None and sub.lag_seconds() > 0
    receiver.status = 204
    assert sub.run_once() == (0.0, False)
    changes = fed.changes().changes
    assert fed.store.feed_cursor(sub.id) == changes[-1].position
    assert sub.run_once() == (sub.poll_seconds, True)  # caught up: a commit may wake it
    assert sub.lag_seconds() == 0.0
    assert [r.answered for r in receiver.all()] == [404, 204, 204]
    assert [r.event for r in receiver.taken()] == [event(c) for c in changes]
    text = metrics.render().decode()
    assert f'lifecycle_webhook_failures_total{{status="404",subscription="{sub.id}"}} 1.0' in text
    assert f'lifecycle_webhook_deliveries_total{{subscription="{sub.id}"}} 2.0' in text
    sub.close()


def test_a_webhook_body_carries_the_account_of_each_experiment(
    fed: ExperimentService, receiver: Receiver
) -> None:
    from tests.integration.conftest import create_request

    theirs = fed.for_account("210987654321")
    theirs.invoke("CreateInferenceExperiment", create_request("one"))  # a name taken elsewhere
    sub = WebhookSubscription(fed, receiver.url)
    receiver.start()
    assert sub.run_once() == (0.0, False)
    got = [
        (r.event["account"], r.event["detail"]["Name"], r.event["resources"])
        for r in receiver.taken()
    ]
    arn = "arn:aws:sagemaker:us-east-1:{}:inference-experiment/{}"
    assert got == [
        ("123456789012", "one", [arn.format("123456789012", "one")]),
        ("123456789012", "two", [arn.format("123456789012", "two")]),
        ("210987654321", "one", [arn.format("210987654321", "one")]),
    ]
    sub.close()


def test_the_backoff_doubles_to_its_cap_and_a_success_starts_it_again(
    fed: ExperimentService, receiver: Receiver
) -> None:
    sub = WebhookSubscription(
        fed, receiver.url, retry_seconds=0.01, max_retry_seconds=0.04, jitter=0.0
    )
    receiver.status = 503
    receiver.start()
    waits = [sub.run_once()[0] for _ in range(5)]
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.04, 0.04])
    receiver.status = 200
    assert sub.run_once() == (0.0, False)
    receiver.status = 503
    from tests.integration.conftest import create_request

    fed.invoke("CreateInferenceExperiment", create_request("three"))
    assert sub.run_once()[0] == pytest.approx(0.01)
    sub.close()


def test_a_failed_delivery_is_one_log_line_naming_the_event_and_what_went_wrong(
    fed: ExperimentService, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sub = WebhookSubscription(fed, receiver.url, retry_seconds=0.01)  # nothing listens yet
    first = fed.changes().changes[0]
    with caplog.at_level(logging.WARNING, logger="lifecycle.webhooks"):
        sub.run_once()
        sub.run_once()
    lines = [r for r in caplog.records if r.getMessage().startswith("webhook delivery failed")]
    assert len(lines) == 2
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert (
        fields["subscription"] == sub.id
        and fields["receiver"] == f"http://127.0.0.1:{receiver.port}"
    )
    assert (fields["event_id"], fields["position"], fields["experiment"]) == (
        event_id(first),
        first.position,
        "one",
    )
    assert fields["status"] == "no_answer" and "refused" in fields["error"]
    assert [line.fields["attempt"] for line in lines] == [1, 2]  # type: ignore[attr-defined]
    sub.close()


def test_a_subscription_behind_the_retention_says_so_and_goes_on_from_the_oldest_kept(
    fed: ExperimentService, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.start()
    sub = WebhookSubscription(fed, receiver.url)
    changes = fed.changes().changes
    fed.store.save_feed_cursor(sub.id, changes[0].position - 1)
    assert fed.trim_changes(Retention(max_age=None, max_count=1)) == 1
    heard = Heard()
    sub.observer = heard
    with caplog.at_level(logging.ERROR, logger="lifecycle.webhooks"):
        sub.run_once()
        sub.run_once()
    assert heard.failed == ["trimmed"]
    assert any("fell behind the feed's retention" in r.getMessage() for r in caplog.records)
    assert [r.event["id"] for r in receiver.taken()] == [event_id(changes[1])]
    sub.close()


def test_a_store_outage_is_waited_out_and_said_once(
    fed: ExperimentService, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    class Down:
        def __init__(self, store: Any) -> None:
            self.store = store
            self.down = True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

        def changes(self, after: int | None, limit: int, account: str | None = None) -> Any:
            if self.down:
                raise StoreUnavailableError("the store is down", kind="connection")
            return self.store.changes(after, limit, account)

    receiver.start()
    flaky = Down(fed.store)
    fed.store = flaky
    sub = WebhookSubscription(fed, receiver.url, retry_seconds=0.01, jitter=0.0)
    with caplog.at_level(logging.INFO, logger="lifecycle.webhooks"):
        assert [sub.run_once()[0] for _ in range(3)] == pytest.approx([0.01, 0.02, 0.04])
        flaky.down = False
        assert sub.run_once() == (0.0, False)
    said = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("webhook subscription cannot read the feed;") for m in said) == 1
    assert any(m.startswith("webhook subscription reads the feed again") for m in said)
    assert len(receiver.taken()) == 2
    sub.close()


def test_a_subscription_thread_stops_and_saves_where_it_got_to(
    fed: ExperimentService, receiver: Receiver
) -> None:
    receiver.start()
    sub = WebhookSubscription(fed, receiver.url, poll_seconds=30.0)
    sub.start()
    wait_until("delivered", lambda: len(receiver.taken()) == 2, timeout=10)
    from tests.integration.conftest import create_request

    fed.invoke("CreateInferenceExperiment", create_request("three"))
    sub.wake()  # what the server does after each commit: no wait for the 30s poll
    wait_until("woken", lambda: len(receiver.taken()) == 3, timeout=5)
    sub.stop()
    assert sub.join(5)
    last: Change = fed.changes().changes[-1]
    assert fed.store.feed_cursor(sub.id) == last.position
    assert receiver.taken()[-1].headers[EVENT_ID_HEADER.lower()] == event_id(last)
    sub.close()


def test_the_server_trims_the_feed_to_its_retention_as_it_starts(
    tmp_path: Path, serve_process: Any
) -> None:
    from tests.integration.conftest import create_request

    store_path = tmp_path / "s.db"
    store = open_store(f"sqlite:///{store_path}")
    service = ExperimentService(store, settle_seconds=3600.0)
    for name in ("a", "b", "c"):
        service.invoke("CreateInferenceExperiment", create_request(name))
    changes = service.changes().changes
    store.close()
    server = serve_process(
        "--store", f"sqlite:///{store_path}", "--settle-seconds", "3600", "--events-max-count", "1"
    ).wait_started()

    def trimmed() -> bool:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
        conn.request("GET", "/events?after=0")
        status = conn.getresponse().status
        conn.close()
        return status == 410

    wait_until("trimmed", trimmed, timeout=10)
    assert [e["id"] for e in feed_of(server.url)] == [event_id(changes[-1])]
    assert any(
        "change feed trimmed to its retention" in line and "removed=2" in line
        for line in server.lines
    )
