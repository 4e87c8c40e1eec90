"""``GET /metrics`` counts what the server did, exactly, with bounded labels.

A real uvicorn server (with ``lifecycle serve``'s connection guard) over a
memory store and a reconciler answers a scripted mix of requests from boto3
and raw HTTP; the scrape, read by ``prometheus_client``'s own parser, must
show per operation and outcome code exactly the requests that were sent,
the transitions the store's history holds (and the variants' the feed holds), the actuator calls the actuator
saw, the experiments per status that Describe shows, and no experiment name
in any label. A store outage is counted by kind, and its client got a 503
with Retry-After.
"""

from __future__ import annotations

import http.client
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from lifecycle.actuators import SimulatedActuator
from lifecycle.domain.experiment import Experiment
from lifecycle.domain.statuses import StepAction
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE
from lifecycle.errors import StoreUnavailableError
from lifecycle.http.app import LifecycleApp
from lifecycle.http.connections import guarded
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

DESCRIBE = "DescribeInferenceExperiment"
CREATE = "CreateInferenceExperiment"
LIST = "ListInferenceExperiments"
STOP = "StopInferenceExperiment"
NAMES = ("metrics-alpha", "metrics-beta", "metrics-gamma")
MISSING = "metrics-missing"
#: every (operation, code) the test sends, with how often: what /metrics must show
Sent = Counter[tuple[str, str]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def guarded_http() -> type:
    """uvicorn's httptools protocol under the guard ``lifecycle serve`` runs it with."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return guarded(HttpToolsProtocol, max_connections=64, header_timeout=10.0)


def scrape(port: int) -> tuple[Samples, str]:
    """GET /metrics, parsed by prometheus_client: every sample by (name, labels); the text."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status == 200, text
        assert response.getheader("Content-Type", "").startswith("text/plain; version=")
    finally:
        connection.close()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, text


def by_label(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples called ``name``, keyed by the values of ``labels``."""
    out: dict[tuple[str, ...], float] = {}
    for (sample_name, label_set), value in samples.items():
        if sample_name == name:
            found = dict(label_set)
            out[tuple(found[label] for label in labels)] = value
    return out


def code_of(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def settled(store: MemoryStore, names: tuple[str, ...], timeout: float = 10.0) -> list[Experiment]:
    """Wait until the reconciler has moved each of ``names`` out of its transitional status;
    their records."""
    deadline = time.monotonic() + timeout
    while True:
        records = [store.get(ACCOUNT, name) for name in names]
        done = [r for r in records if r is not None and not r.status.transitional]
        if len(done) == len(names):
            return done
        assert time.monotonic() < deadline, [(r.name, r.status) for r in records if r]
        time.sleep(0.02)


def test_metrics_count_exactly_the_requests_transitions_and_steps_of_a_scripted_mix(
    start_server: Any, client_for: Any, create_request: Callable[..., dict[str, Any]]
) -> None:
    store = MemoryStore()
    service = ExperimentService(store, settle_seconds=0.0)
    actuator = SimulatedActuator()
    actuator.fail(StepAction.START_SHADOW_TEST, times=1)  # one failed attempt, then retried
    reconciler = Reconciler(service, actuator, retry_seconds=0.05)
    server = start_server(LifecycleApp(service, reconciler), http=guarded_http())
    client = client_for(server.url)
    sent: Sent = Counter()

    for name in NAMES:
        client.create_inference_experiment(**create_request(name))
        sent[CREATE, "OK"] += 1
    for _ in range(2):
        with pytest.raises(ClientError) as missing:
            client.describe_inference_experiment(Name=MISSING)
        assert code_of(missing) == "ResourceNotFound"
        sent[DESCRIBE, "ResourceNotFound"] += 1
    for _ in range(3):
        client.list_inference_experiments(MaxResults=2)
        sent[LIST, "OK"] += 1
    settled(store, NAMES)  # all Running: a stop may now be asked for
    with pytest.raises(ClientError) as refused:  # production removed with nothing promoted
        client.stop_inference_experiment(
            Name=NAMES[0], ModelVariantActions={"prod": "Remove", "shadow": "Remove"}
        )
    assert code_of(refused) == "ConflictException"
    headers = refused.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-lifecycle-rule"] == "production-required"
    sent[STOP, "ConflictException"] += 1
    client.stop_inference_experiment(
        Name=NAMES[1], ModelVariantActions={"prod": "Retain", "shadow": "Remove"}
    )
    sent[STOP, "OK"] += 1
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST",
        "/",
        body=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"SageMaker.Describe{MISSING}",  # no such operation
        },
    )
    bad = connection.getresponse()
    assert (bad.status, bad.getheader("X-Amzn-ErrorType")) == (400, "UnknownOperationException")
    bad.read()
    connection.close()
    sent["other", "UnknownOperationException"] += 1  # no operation: an unbounded label otherwise

    records = settled(store, NAMES)  # the stop carried out too
    described: Counter[str] = Counter()
    for name in NAMES:
        described[client.describe_inference_experiment(Name=name)["Status"]] += 1
        sent[DESCRIBE, "OK"] += 1
    assert described == {"Running": 2, "Completed": 1}

    samples, text = scrape(server.port)

    # requests, and the latency histogram's count, per operation: exactly what was sent
    assert by_label(samples, "lifecycle_requests_total", "operation", "code") == dict(sent)
    per_operation: Counter[tuple[str, ...]] = Counter()
    for (operation, _code), n in sent.items():
        per_operation[(operation,)] += n
    count = by_label(samples, "lifecycle_request_duration_seconds_count", "operation")
    assert count == dict(per_operation)
    # transitions: what the store's history holds, each a row of the experiment table, and
    # the variant machine's that the change feed holds beside them, each a row of its table
    history: Counter[tuple[str, ...]] = Counter()
    for name in NAMES:
        for entry in store.history(ACCOUNT, name):
            source = "" if entry.from_status is None else str(entry.from_status)
            history["experiment", entry.event, source, str(entry.to_status)] += 1
    for change in store.changes(None, 10_000).changes:
        if change.machine == "variant":
            source = change.from_status or ""
            history["variant", change.event, source, change.to_status] += 1
    transitions = by_label(samples, "lifecycle_transitions_total", "machine", "event", "from", "to")
    assert transitions == dict(history)
    assert transitions["experiment", "create", "", "Creating"] == len(NAMES)
    assert transitions["variant", "provisioned", "Creating", "InService"] == 2 * len(NAMES)
    assert transitions["variant", "removed", "Deleting", "Deleted"] >= 1
    for machine, table in (("experiment", EXPERIMENT_TABLE), ("variant", VARIANT_TABLE)):
        rows = {
            (t.event, "" if t.source is None else str(t.source), str(t.dest))
            for t in table.transitions
        }
        assert {key[1:] for key in transitions if key[0] == machine} <= rows
    # step attempts: every call the actuator was handed, one of them failed
    calls = Counter((str(step.action),) for step in actuator.calls)
    assert by_label(samples, "lifecycle_step_attempts_total", "action") == dict(calls)
    assert calls[(StepAction.START_SHADOW_TEST.value,)] == len(NAMES) + 1
    failures = by_label(samples, "lifecycle_step_failures_total", "action")
    assert failures == {(StepAction.START_SHADOW_TEST.value,): 1.0}
    assert samples["lifecycle_reconciler_pass_seconds_count", frozenset()] >= 1
    assert ("lifecycle_oldest_due_step_age_seconds", frozenset()) in samples
    # experiments per status, as Describe shows them; the scrape's own connection is open
    experiments = by_label(samples, "lifecycle_experiments", "status")
    assert experiments == {(status,): n for status, n in described.items()}
    assert sorted(str(r.status) for r in records) == sorted(described.elements())
    assert samples["lifecycle_open_connections", frozenset()] >= 1
    assert by_label(samples, "lifecycle_store_errors_total", "kind") == {}
    # no label holds an experiment name (nor the text anywhere)
    for _, label_set in samples:
        for label, value in label_set:
            assert not any(name in value for name in (*NAMES, MISSING)), (label, value)
    assert not any(name in text for name in (*NAMES, MISSING))

    # a second scrape counts the first one, as operation Metrics
    again, _ = scrape(server.port)
    assert again["lifecycle_requests_total", frozenset({("operation", "Metrics"), ("code", "OK")})]


class DisconnectedStore(MemoryStore):
    """A store whose database connection is gone: every read is an outage."""

    def get(self, account: str, name: str) -> Experiment | None:
        raise StoreUnavailableError("the database connection was lost", kind="connection")


def test_a_store_outage_is_a_503_with_retry_after_and_counts_by_kind(
    start_server: Any, client_for: Any
) -> None:

    service = ExperimentService(DisconnectedStore(), settle_seconds=0.0)
    server = start_server(LifecycleApp(service, Reconciler(service)), http=guarded_http())
    client = client_for(server.url)  # no retries: each 503 reaches the test
    outages = 3
    for _ in range(outages):
        with pytest.raises(ClientError) as caught:
            client.describe_inference_experiment(Name="metrics-down")
        response = caught.value.response
        assert code_of(caught) == "ServiceUnavailable"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
        assert "connection was lost" in response["Error"]["Message"]

    samples, _ = scrape(server.port)
    assert by_label(samples, "lifecycle_store_errors_total", "kind") == {("connection",): outages}
    requests = by_label(samples, "lifecycle_requests_total", "operation", "code")
    assert requests == {(DESCRIBE, "ServiceUnavailable"): outages}
