"""The Actuator contract: the simulated and the webhook actuator behave the same way.

The webhook actuator talks to a real HTTP receiver (``http.server`` on a free
loopback port, in a thread) that records every request, carries out each
idempotency key once, and can be told to answer the next requests with an
error, no answer at all, or an answer after which it closes the connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lifecycle.actuators import Actuator, ActuatorError, SimulatedActuator, Step, WebhookActuator
from lifecycle.domain.statuses import StepAction
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

A = StepAction
INFRA = {
    "InfrastructureType": "RealTimeInference",
    "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"


def step(n: int = 1, action: StepAction = A.PROVISION_VARIANT, attempt: int = 1) -> Step:
    return Step(
        key=f"{ARN}|v{n}|{action}|shadow",
        account="123456789012",
        experiment="exp",
        endpoint="ep",
        action=action,
        variant="shadow",
        model_name="model-b",
        infrastructure=INFRA,
        arn=ARN,
        attempt=attempt,
    )


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- the receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    port: int  # the client's port: one per connection

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """What the receiver does to the next ``times`` requests (of ``action``, when given):
    answer ``status`` with ``body``, not answer (``"hang"``), close the connection without
    answering (``"close"``), or answer and then close the connection without saying so
    (``"drop"``)."""

    kind: int | str
    times: int
    body: bytes = b'{"message": "told to fail"}'
    action: str | None = None


class _Server(ThreadingHTTPServer):
    receiver: Receiver
    block_on_close = False  # the receiver joins its handler threads itself, with a bound

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # closes the connection
        finally:
            self.receiver.closed.append(client_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that went away mid-answer (a cut body, a timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections alive
    disable_nagle_algorithm = True
    timeout = 30  # an idle kept-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.receiver.connected(self.connection)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        received = Received(
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(int(self.headers.get("Content-Length", 0))),
            self.client_address[1],
        )
        status, answer, drop = receiver.answer(received)
        if status <= 0:  # no answer (0: after a wait, bounded, for the client to give up)
            if status == 0:
                receiver.release.wait(10)
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.close_connection = drop

    def log_message(self, format: str, *args: Any) -> None:
        return None


class Receiver:
    """A real HTTP receiver on a free loopback port; ``with`` starts and stops it."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.effects: dict[str, Received] = {}  # the first request of each key that took effect
        self.closed: list[int] = []  # client ports whose connection has been closed
        self.faults: list[Fault] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/steps"
        self._serving = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self._serving.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)
        for thread in [self._serving, *threads]:
            thread.join(5)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        self.server.server_close()

    def fail_next(self, kind: int | str, times: int = 1, **kw: Any) -> None:
        with self._lock:
            self.faults.append(Fault(kind, times, **kw))

    def connected(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            self._threads.append(threading.current_thread())

    def answer(self, received: Received) -> tuple[int, bytes, bool]:
        """The status (0: none, after a wait; -1: none), body and whether to close after."""
        with self._lock:
            self.requests.append(received)
            action = received.json().get("action")
            fault = next((f for f in self.faults if f.action in (None, action)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                if fault.kind in ("hang", "close"):
                    return (0 if fault.kind == "hang" else -1), b"", True
                if fault.kind != "drop":
                    assert isinstance(fault.kind, int)
                    return fault.kind, fault.body, False
            key = received.headers["idempotency-key"]
            if key in self.effects:
                return 409, b'{"message": "already carried out"}', fault is not None
            self.effects[key] = received
            return 200, b'{"status": "done"}', fault is not None

    def ports(self) -> set[int]:
        return {r.port for r in self.requests}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


# -- the contract: every actuator ---------------------------------------------------------


@dataclass
class Harness:
    """One actuator, what it has carried out, and how to make its next applies fail
    (``fail_next(times, retryable)``, with the message "told to fail")."""

    name: str
    actuator: Actuator
    effects: Callable[[], list[Step]]
    fail_next: Callable[[int, bool], None]
    closers: list[Callable[[], None]] = field(default_factory=list)


def _simulated() -> Harness:
    actuator = SimulatedActuator()
    return Harness(
        "simulated",
        actuator,
        lambda: list(actuator.applied.values()),
        lambda times, retryable: actuator.fail(
            A.PROVISION_VARIANT, times, "told to fail", retryable=retryable
        ),
    )


def _webhook(receiver: Receiver) -> Harness:
    actuator = WebhookActuator(receiver.url, timeout=5)
    return Harness(
        "webhook",
        actuator,
        lambda: [Step(**r.json()) for r in receiver.effects.values()],
        lambda times, retryable: receiver.fail_next(503 if retryable else 400, times),
        [actuator.close],
    )


@pytest.fixture(params=["simulated", "webhook"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made = (
        _simulated()
        if request.param == "simulated"
        else _webhook(request.getfixturevalue("receiver"))
    )
    yield made
    for close in made.closers:
        close()


def test_a_step_applied_once_has_one_effect(harness: Harness) -> None:
    harness.actuator.apply(step())
    assert harness.effects() == [step()]


def test_the_same_key_applied_twice_has_one_effect(harness: Harness) -> None:
    harness.actuator.apply(step())
    harness.actuator.apply(step(attempt=2))  # a retry: the same key
    assert harness.effects() == [step()]


def test_steps_with_distinct_keys_each_have_their_effect(harness: Harness) -> None:
    steps = [step(n, action) for n, action in enumerate(A, start=1)]
    for s in steps:
        harness.actuator.apply(s)
    assert harness.effects() == steps


def test_a_reported_failure_is_a_retryable_actuator_error_with_no_effect(
    harness: Harness,
) -> None:
    harness.fail_next(1, True)
    with pytest.raises(ActuatorError) as caught:
        harness.actuator.apply(step())
    assert caught.value.retryable
    assert "told to fail" in caught.value.message
    assert harness.effects() == []
    harness.actuator.apply(step(attempt=2))
    assert harness.effects() == [step(attempt=2)]


def test_a_failure_reported_as_permanent_is_an_actuator_error_that_is_not_retryable(
    harness: Harness,
) -> None:
    harness.fail_next(1, False)
    with pytest.raises(ActuatorError) as caught:
        harness.actuator.apply(step())
    assert "told to fail" in caught.value.message
    assert harness.effects() == []
    assert not caught.value.retryable


def test_steps_applied_from_several_threads_each_have_one_effect(harness: Harness) -> None:
    steps = [step(n) for n in range(1, 6)]
    with ThreadPoolExecutor(4) as pool:
        done = [pool.submit(harness.actuator.apply, s) for _ in range(4) for s in steps]
        for future in done:
            future.result(timeout=10)
    assert sorted(s.key for s in harness.effects()) == sorted(s.key for s in steps)


# -- the webhook: what it sends, and what each answer means --------------------------------


@pytest.fixture
def webhook(receiver: Receiver) -> Iterator[WebhookActuator]:
    with WebhookActuator(receiver.url, timeout=5) as actuator:
        yield actuator


def test_the_body_is_exactly_the_steps_members_and_the_key_is_the_header(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    webhook.apply(step(7, A.PROMOTE_VARIANT, attempt=2))
    [sent] = receiver.requests
    assert sent.json() == {
        "key": f"{ARN}|v7|promote-variant|shadow",
        "account": "123456789012",
        "experiment": "exp",
        "arn": ARN,
        "endpoint": "ep",
        "action": "promote-variant",
        "variant": "shadow",
        "model_name": "model-b",
        "infrastructure": INFRA,
        "attempt": 2,
    }
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["idempotency-key"] == f"{ARN}|v7|promote-variant|shadow"
    assert "x-lifecycle-signature" not in sent.headers


def test_a_step_of_the_experiment_sends_null_for_the_variant_members(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    webhook.apply(Step("k", "exp", "ep", A.START_SHADOW_TEST, arn=ARN))
    body = receiver.requests[0].json()
    assert (body["variant"], body["model_name"], body["infrastructure"]) == (None, None, None)
    assert body["attempt"] == 1


def test_the_signature_is_the_hmac_sha256_of_the_exact_body(receiver: Receiver) -> None:
    secret = b"a webhook secret"
    with WebhookActuator(receiver.url, secret=secret, timeout=5) as actuator:
        actuator.apply(step())
    [sent] = receiver.requests
    expected = "sha256=" + hmac.new(secret, sent.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sent.headers["x-lifecycle-signature"], expected)
    wrong = "sha256=" + hmac.new(b"another secret", sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["x-lifecycle-signature"] != wrong


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (403, False),
        (404, False),
        (422, False),
        (301, False),
    ],
)
def test_an_error_status_is_an_actuator_error_saying_the_status_and_the_answer(
    receiver: Receiver, webhook: WebhookActuator, status: int, retryable: bool
) -> None:
    receiver.fail_next(status, body=b'{"message": "no capacity\\nfor ml.p4d"}')
    with pytest.raises(ActuatorError) as caught:
        webhook.apply(step())
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.message
    assert '{"message": "no capacity\\nfor ml.p4d"}' in caught.value.message
    assert receiver.effects == {}


def test_a_long_answer_is_cut_to_a_few_hundred_characters(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    receiver.fail_next(400, body=b"x" * 100_000)
    with pytest.raises(ActuatorError) as caught:
        webhook.apply(step())
    assert not caught.value.retryable
    assert 300 <= len(caught.value.message) < 400
    webhook.apply(step())  # the rest of the body was not read: a fresh connection
    assert len(receiver.effects) == 1


def test_409_means_the_receiver_had_the_key_and_is_success(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    receiver.fail_next(409, body=b'{"message": "seen it"}')
    webhook.apply(step())
    webhook.apply(step())  # the receiver's own dedup answers 409 too
    assert [r.headers["idempotency-key"] for r in receiver.requests] == [step().key] * 2


def test_one_connection_carries_every_request_of_a_thread(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    for n in range(1, 6):
        webhook.apply(step(n))
    assert len(receiver.requests) == 5
    assert len(receiver.ports()) == 1


def test_a_kept_alive_connection_the_receiver_closed_is_replaced_once(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    receiver.fail_next("drop")  # answers, then closes the connection without saying so
    webhook.apply(step(1))
    assert until(lambda: len(receiver.closed) == 1)
    webhook.apply(step(2))
    assert [Step(**r.json()) for r in receiver.effects.values()] == [step(1), step(2)]
    assert len(receiver.ports()) == 2


def test_a_receiver_that_does_not_answer_in_time_is_a_retryable_error_after_the_timeout(
    receiver: Receiver,
) -> None:
    receiver.fail_next("hang")
    with WebhookActuator(receiver.url, timeout=0.5) as actuator:
        started = time.monotonic()
        with pytest.raises(ActuatorError) as caught:
            actuator.apply(step())
        elapsed = time.monotonic() - started
        assert caught.value.retryable
        assert "within 0.5s" in caught.value.message
        assert 0.4 <= elapsed < 2.0
        actuator.apply(step())  # a new connection: the late answer is never read as this one's
    assert len(receiver.effects) == 1
    assert len(receiver.ports()) == 2


def test_a_receiver_that_closes_without_answering_is_a_retryable_error(
    receiver: Receiver, webhook: WebhookActuator
) -> None:
    receiver.fail_next("close")
    with pytest.raises(ActuatorError) as caught:
        webhook.apply(step())  # a fresh connection: not sent again
    assert caught.value.retryable
    assert "closed the connection without answering" in caught.value.message
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_a_retryable_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        actuator = WebhookActuator(f"http://127.0.0.1:{port}/steps", timeout=5)
        with actuator, pytest.raises(ActuatorError) as caught:
            actuator.apply(step())
    assert caught.value.retryable
    assert "refused" in caught.value.message


def _socket_fds() -> set[tuple[str, str]]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor among them)
        if target.startswith("socket:"):
            fds.add((fd, target))
    return fds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
def test_close_closes_every_connection_of_every_thread(receiver: Receiver) -> None:
    before = _socket_fds()
    actuator = WebhookActuator(receiver.url, timeout=5)
    threads = [threading.Thread(target=actuator.apply, args=(step(n),)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    actuator.apply(step(3))
    for thread in threads:
        thread.join(10)
    assert len(receiver.ports()) == 3
    assert _socket_fds() - before  # three connections, kept open
    actuator.close()
    assert until(lambda: sorted(receiver.closed) == sorted(receiver.ports()))
    assert until(lambda: not (_socket_fds() - before)), _socket_fds() - before


def test_a_url_that_is_not_http_is_refused_at_once() -> None:
    for url in ("ftp://example.com/x", "127.0.0.1:8080", "http:///path", "http://u:p@host/"):
        with pytest.raises(ValueError, match=r"URL|password"):
            WebhookActuator(url)
    with pytest.raises(ValueError, match="positive"):
        WebhookActuator("http://127.0.0.1/", timeout=0)
    with pytest.raises(ValueError, match="out of range"):
        WebhookActuator("http://127.0.0.1:99999/")
    with pytest.raises(ValueError, match="secret is empty"):
        WebhookActuator("http://127.0.0.1/", secret=b"")


# -- https ----------------------------------------------------------------------------------

OPENSSL = shutil.which("openssl")


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client one trusting it."""
    if OPENSSL is None:
        pytest.skip("the openssl program is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    options = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [OPENSSL, *options.split(), "-keyout", str(key), "-out", str(cert), *subject],
        check=True,
        capture_output=True,
        timeout=30,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_https_sends_over_tls_to_a_trusted_receiver(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = tls
    with (
        Receiver(server) as receiver,
        WebhookActuator(receiver.url, context=client, timeout=5) as actuator,
    ):
        actuator.apply(step(1))
        actuator.apply(step(2))
        assert len(receiver.effects) == 2
        assert len(receiver.ports()) == 1


def test_https_to_an_untrusted_certificate_is_a_retryable_error(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, _ = tls
    with Receiver(server) as receiver, WebhookActuator(receiver.url, timeout=5) as actuator:
        with pytest.raises(ActuatorError) as caught:
            actuator.apply(step())
        assert caught.value.retryable
        assert "TLS certificate" in caught.value.message
        assert receiver.effects == {}


# -- through the reconciler ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _variant(name: str, model: str) -> dict[str, Any]:
    return {"ModelName": model, "VariantName": name, "InfrastructureConfig": INFRA}


def _reconciling(
    receiver: Receiver, clock: Clock
) -> tuple[ExperimentService, Reconciler, WebhookActuator]:
    """A memory-store service with one new experiment, and a reconciler sending to ``receiver``."""
    service = ExperimentService(MemoryStore(), clock=clock, settle_seconds=0)
    actuator = WebhookActuator(receiver.url, timeout=5)
    service.create_inference_experiment(
        Name="exp",
        Type="ShadowMode",
        EndpointName="ep",
        RoleArn="arn:aws:iam::123456789012:role/sagemaker",
        ModelVariants=[_variant("prod", "model-a"), _variant("shadow", "model-b")],
        ShadowModeConfig={
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 20}],
        },
    )
    return service, Reconciler(service, actuator, clock=clock, retry_seconds=5), actuator


def test_a_receiver_that_refuses_a_step_cancels_the_experiment_with_its_message(
    receiver: Receiver,
) -> None:
    receiver.fail_next(
        400, body=b'{"message": "no capacity for ml.p4d"}', action="start-shadow-test"
    )
    service, reconciler, actuator = _reconciling(receiver, Clock())
    with actuator:
        reconciler.run_once()
    described = service.describe_inference_experiment(Name="exp")
    assert described["Status"] == "Cancelled"
    assert "no capacity for ml.p4d" in described["StatusReason"]
    actions = [r.json()["action"] for r in receiver.requests]
    assert actions.count("start-shadow-test") == 1  # not retryable: not tried again


def test_a_step_the_receiver_could_not_take_now_is_sent_again_with_its_key(
    receiver: Receiver,
) -> None:
    receiver.fail_next(503, action="start-shadow-test")
    clock = Clock()
    service, reconciler, actuator = _reconciling(receiver, clock)
    with actuator:
        reconciler.run_once()
        assert service.describe_inference_experiment(Name="exp")["Status"] == "Starting"
        clock.now += 5
        reconciler.run_once()
    assert service.describe_inference_experiment(Name="exp")["Status"] == "Running"
    starts = [r.json() for r in receiver.requests if r.json()["action"] == "start-shadow-test"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[0]["key"] == starts[1]["key"]
    arn = service.describe_inference_experiment(Name="exp")["Arn"]
    assert {r.json()["arn"] for r in receiver.requests} == {arn}
