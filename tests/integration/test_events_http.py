"""``GET /events`` on a real server: pages of EventBridge-shaped events, refusals, long polls, SigV4."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lifecycle.http.app import LifecycleApp
from lifecycle.http.events import MAX_WAIT_SECONDS
from lifecycle.http.sigv4 import SigV4Verifier
from lifecycle.service.feed import DETAIL_TYPE, event_id
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore, Store, open_store
from tests._feed import settled

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET = "AKIDEVENTSTEST", "events-secret-key"


def get(
    url: str,
    query: str = "",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One request to ``/events``: its status, headers (lower-case names) and JSON body."""
    host = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request(method, "/events" + (f"?{query}" if query else ""), headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            json.loads(body) if body else {},
        )
    finally:
        conn.close()


@pytest.fixture
def service() -> ExperimentService:
    return ExperimentService(MemoryStore(), settle_seconds=0.0)


@pytest.fixture
def url(service: ExperimentService, start_server: Any) -> str:
    return cast(str, start_server(LifecycleApp(service, Reconciler(service))).url)


def created(client: Any, create_request: Any, wait_for_status: Any, name: str) -> None:
    client.create_inference_experiment(**create_request(name))
    wait_for_status(client, name, "Running")


# -- pages ----------------------------------------------------------------------------------------


def test_a_page_holds_each_transition_as_an_eventbridge_event_in_order(
    url: str, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    client = client_for(url)
    created(client, create_request, wait_for_status, "exp-1")
    status, headers, page = get(url)
    assert status == 200 and headers["content-type"] == "application/json"
    events = page["Events"]
    assert [
        (e["detail"]["Machine"], e["detail"]["Variant"], e["detail"]["Event"]) for e in events
    ] == [
        ("experiment", None, "create"),
        ("variant", "prod", "provisioned"),
        ("variant", "shadow", "provisioned"),
        ("experiment", None, "provisioned"),
        ("experiment", None, "started"),
    ]
    first = events[0]
    arn = "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp-1"
    assert {k: first[k] for k in ("version", "detail-type", "source", "account", "region")} == {
        "version": "0",
        "detail-type": DETAIL_TYPE,
        "source": "aws.sagemaker",
        "account": "123456789012",
        "region": "us-east-1",
    }
    assert first["resources"] == [arn]
    assert time.strptime(first["time"], "%Y-%m-%dT%H:%M:%SZ")
    uuid.UUID(first["id"])
    assert first["detail"] == {
        "Name": "exp-1",
        "Status": "Creating",
        "PreviousStatus": None,
        "Event": "create",
        "Machine": "experiment",
        "Variant": None,
        "Reason": None,
        "RequestId": first["detail"]["RequestId"],
        "Position": first["detail"]["Position"],
    }
    assert first["detail"]["RequestId"]  # the Create's x-amzn-RequestId
    assert [(e["detail"]["PreviousStatus"], e["detail"]["Status"]) for e in events[1:]] == [
        ("Creating", "InService"),
        ("Creating", "InService"),
        ("Creating", "Starting"),
        ("Starting", "Running"),
    ]
    assert {e["resources"][0] for e in events} == {arn}
    assert events[1]["detail"]["RequestId"] is None  # the reconciler's, as its experiment's
    positions = [e["detail"]["Position"] for e in events]
    assert positions == sorted(positions) and page["NextPosition"] == positions[-1]


def test_each_event_carries_the_account_of_its_experiment(
    service: ExperimentService, url: str
) -> None:
    from tests.integration.conftest import create_request

    service.invoke("CreateInferenceExperiment", create_request("exp"))
    service.for_account("210987654321").invoke("CreateInferenceExperiment", create_request("exp"))
    _, _, page = get(url, "limit=1000")
    creates = [e for e in page["Events"] if e["detail"]["Event"] == "create"]
    assert [(e["account"], e["resources"][0].split(":")[4]) for e in creates] == [
        ("123456789012", "123456789012"),
        ("210987654321", "210987654321"),
    ]
    assert len({e["id"] for e in creates}) == 2


def test_pages_go_on_from_next_position_and_the_ids_stay_the_same(
    url: str, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    client = client_for(url)
    for name in ("a", "b"):
        created(client, create_request, wait_for_status, name)
    _, _, whole = get(url, "limit=1000")
    walked: list[dict[str, Any]] = []
    after = 0
    while True:
        _, _, page = get(url, f"after={after}&limit=2")
        walked.extend(page["Events"])
        if not page["Events"]:
            assert page["NextPosition"] == after
            break
        assert len(page["Events"]) <= 2
        after = page["NextPosition"]
    assert walked == whole["Events"] and len(walked) == 10


def test_an_empty_wait_answers_after_the_wait_with_the_position_it_was_given(url: str) -> None:
    started = time.monotonic()
    status, _, page = get(url, "after=41&wait=0.3")
    took = time.monotonic() - started
    assert status == 200 and page == {"Events": [], "NextPosition": 41}
    assert 0.28 <= took < 2.0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("after=1.5", "after"),
        ("after=9223372036854775808", "after"),
        ("after=", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("wait=-1", "wait"),
        (f"wait={MAX_WAIT_SECONDS + 0.5}", "wait"),
        ("wait=nan", "wait"),
        ("wait=inf", "wait"),
        ("wait=1e3", "wait"),
        ("from=3", "'from'"),
        ("after=1&after=2", "after"),
    ],
)
def test_a_bad_parameter_is_a_validation_error_that_names_it(
    url: str, query: str, field: str
) -> None:
    status, headers, body = get(url, query)
    assert status == 400, body
    assert body["__type"] == "ValidationException" == headers["x-amzn-errortype"]
    assert body["Message"].startswith(field.strip("'")) or field in body["Message"], body


def test_a_method_other_than_get_is_refused(url: str) -> None:
    status, _, body = get(url, method="POST")
    assert status == 405 and "use GET /events" in body["Message"]


def test_a_reader_behind_the_retention_is_told_where_to_go_on(
    service: ExperimentService,
    url: str,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
) -> None:
    created(client_for(url), create_request, wait_for_status, "exp-1")
    _, _, page = get(url)
    positions = [e["detail"]["Position"] for e in page["Events"]]
    assert service.store.trim_changes(keep=1) == len(positions) - 1
    status, headers, body = get(url, "after=0")
    assert status == 410
    assert body["__type"] == "TrimmedDataAccessException" == headers["x-amzn-errortype"]
    assert body["TrimmedThrough"] == positions[-2] and body["OldestPosition"] == positions[-1]
    assert f"the oldest kept is {positions[-1]}" in body["Message"]
    _, _, rest = get(url, f"after={body['TrimmedThrough']}")
    assert [e["detail"]["Position"] for e in rest["Events"]] == positions[-1:]


# -- long polls -----------------------------------------------------------------------------------


class Waiting:
    """A GET /events with a wait, in a thread; when its answer came."""

    def __init__(self, url: str, query: str) -> None:
        self.answer: tuple[int, dict[str, str], dict[str, Any]] | None = None
        self.at = 0.0
        self._thread = threading.Thread(target=self._run, args=(url, query), daemon=True)
        self._thread.start()

    def _run(self, url: str, query: str) -> None:
        self.answer = get(url, query)
        self.at = time.time()

    def result(self, timeout: float = 30.0) -> tuple[int, dict[str, str], dict[str, Any]]:
        self._thread.join(timeout)
        assert self.answer is not None, "the long poll did not answer"
        return self.answer


def test_a_waiting_reader_gets_a_commit_of_this_process_within_half_a_second(
    url: str, client_for: Any, create_request: Any
) -> None:
    client = client_for(url)
    _, _, page = get(url)
    waiting = Waiting(url, f"after={page['NextPosition']}&wait=10")
    time.sleep(0.3)  # it is waiting
    assert waiting.answer is None
    client.create_inference_experiment(**create_request("late"))
    committed = time.time()
    status, _, answer = waiting.result()
    assert status == 200
    assert answer["Events"][0]["detail"]["Name"] == "late"
    assert waiting.at - committed < 0.5, f"answered {waiting.at - committed:.3f}s after the commit"


COMMIT_ELSEWHERE = """
import json, sys, time
from lifecycle.service.service import ExperimentService
from lifecycle.stores import open_store
sys.path.insert(0, {repo!r})
from tests.integration.conftest import create_request
store = open_store({url!r})
service = ExperimentService(store, settle_seconds=3600.0)  # nothing for a reconciler to do
service.invoke("CreateInferenceExperiment", create_request("elsewhere"))
print(json.dumps(time.time()), flush=True)
store.close()
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    url = (
        f"sqlite:///{tmp_path / 'lifecycle.db'}"
        if request.param == "sqlite"
        else cast(str, request.getfixturevalue("postgres_url"))
    )
    store = open_store(url)
    yield url, store
    store.close()


def test_a_waiting_reader_gets_another_processs_commit_within_half_a_second(
    shared: tuple[str, Store], start_server: Any
) -> None:
    store_url, store = shared
    service = ExperimentService(store, settle_seconds=3600.0)
    url = start_server(LifecycleApp(service, Reconciler(service))).url
    waiting = Waiting(url, "after=0&wait=15")
    time.sleep(0.3)
    assert waiting.answer is None
    done = subprocess.run(
        [sys.executable, "-c", COMMIT_ELSEWHERE.format(repo=str(REPO), url=store_url)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    committed = json.loads(done.stdout.strip().splitlines()[-1])
    status, _, answer = waiting.result()
    assert status == 200 and [e["detail"]["Name"] for e in answer["Events"]] == ["elsewhere"]
    assert waiting.at - committed < 0.5, f"answered {waiting.at - committed:.3f}s after the commit"


def test_a_shutting_down_server_answers_its_waiting_readers_at_once(
    service: ExperimentService, start_server: Any
) -> None:
    app = LifecycleApp(service, Reconciler(service))
    url = start_server(app).url
    waiting = Waiting(url, "after=0&wait=15")
    time.sleep(0.3)
    asked = time.time()
    app.request_stop()
    status, _, answer = waiting.result()
    assert status == 200 and answer == {"Events": [], "NextPosition": 0}
    assert waiting.at - asked < 0.5


def test_the_requests_are_counted_as_events(url: str) -> None:
    get(url)
    get(url, "limit=0")
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    assert 'lifecycle_requests_total{code="OK",operation="Events"} 1.0' in text
    assert 'lifecycle_requests_total{code="ValidationException",operation="Events"} 1.0' in text


# -- SigV4 ----------------------------------------------------------------------------------------


def signed(url: str, query: str, *, secret: str = SECRET) -> dict[str, str]:
    """The headers of ``GET /events?query`` signed by botocore's own SigV4Auth."""
    request = AWSRequest(method="GET", url=f"{url}/events" + (f"?{query}" if query else ""))
    SigV4Auth(Credentials(KEY, secret), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers.items())


@pytest.fixture
def signed_url(service: ExperimentService, start_server: Any) -> str:
    auth = SigV4Verifier({KEY: SECRET})
    return cast(str, start_server(LifecycleApp(service, Reconciler(service), auth=auth)).url)


def test_with_sigv4_a_signed_read_is_served(
    service: ExperimentService, signed_url: str, create_request: Any
) -> None:
    service.invoke("CreateInferenceExperiment", create_request("exp-1"))
    status, _, page = get(
        signed_url, "after=0&limit=5", headers=signed(signed_url, "after=0&limit=5")
    )
    assert status == 200 and page["Events"][0]["detail"]["Name"] == "exp-1"


def test_with_sigv4_an_unsigned_or_altered_read_is_refused(signed_url: str) -> None:
    status, _, body = get(signed_url, "after=0")
    assert (status, body["__type"]) == (403, "UnrecognizedClientException")
    headers = signed(signed_url, "after=0")
    status, _, body = get(signed_url, "after=7", headers=headers)  # another query than signed
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    status, _, body = get(signed_url, "after=0", headers=signed(signed_url, "after=0", secret="x"))
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_with_sigv4_the_signature_is_checked_before_the_parameters(signed_url: str) -> None:
    status, _, body = get(signed_url, "limit=0")
    assert (status, body["__type"]) == (403, "UnrecognizedClientException")


# -- the event ids ------------------------------------------------------------------------------


def test_an_events_id_is_the_same_on_every_read(
    service: ExperimentService, url: str, create_request: Any
) -> None:
    service.invoke("CreateInferenceExperiment", create_request("exp-1"))
    settled(service.store)
    (change,) = service.changes().changes
    reads = [get(url)[2]["Events"][0]["id"] for _ in range(3)]
    assert reads == [event_id(change)] * 3
