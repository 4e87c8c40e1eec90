"""The change feed as the service gives it: checked reads, retention, and each change as an event."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from lifecycle.domain.statuses import ExperimentStatus as S
from lifecycle.errors import ValidationError
from lifecycle.http.outbox import FeedWorkers
from lifecycle.service.feed import (
    DETAIL_TYPE,
    MAX_PAGE,
    MAX_POSITION,
    Retention,
    event,
    event_bytes,
    event_id,
)
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore
from lifecycle.stores.base import Change
from lifecycle.testing import create_payload

T0 = 1_800_000_000.0
ARN = "arn:aws:sagemaker:eu-west-1:210987654321:inference-experiment/exp-1"


def change(position: int = 7, **kw: Any) -> Change:
    fields: dict[str, Any] = {
        "account": "210987654321",
        "name": "exp-1",
        "arn": ARN,
        "time": T0 + 0.75,
        "event": "stop",
        "from_status": S.RUNNING,
        "to_status": S.STOPPING,
        "reason": "shadow wins",
        "request_id": "req-1",
    }
    fields.update(kw)
    return Change(position, **fields)


def test_an_event_has_eventbridges_members_from_the_change() -> None:
    assert event(change()) == {
        "version": "0",
        "id": event_id(change()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.sagemaker",
        "account": "210987654321",
        "time": "2027-01-15T08:00:00Z",
        "region": "eu-west-1",
        "resources": [ARN],
        "detail": {
            "Name": "exp-1",
            "Status": "Stopping",
            "PreviousStatus": "Running",
            "Event": "stop",
            "Machine": "experiment",
            "Variant": None,
            "Reason": "shadow wins",
            "RequestId": "req-1",
            "Position": 7,
        },
    }


def test_an_events_id_is_fixed_by_its_arn_and_position_alone() -> None:
    assert event_id(change()) == event_id(change(reason="other", time=T0 + 99))
    assert len({event_id(change(1)), event_id(change(2)), event_id(change(1, arn="arn:x"))}) == 3


def test_an_events_bytes_are_its_json_in_utf8_without_spaces() -> None:
    c = change(name="ü", reason="line\nbreak")
    body = event_bytes(c)
    assert json.loads(body) == event(c)
    assert b"\xc3\xbc" in body and b": " not in body


def test_an_events_account_is_the_changes_and_its_region_the_arns() -> None:
    e = event(change(account="111122223333", arn="not-an-arn", from_status=None))
    assert (e["account"], e["region"], e["detail"]["PreviousStatus"]) == (
        "111122223333",
        "",
        None,
    )


@pytest.fixture
def service() -> ExperimentService:
    svc = ExperimentService(MemoryStore(), clock=lambda: T0, settle_seconds=3600.0)
    for name in ("a", "b", "c"):
        svc.invoke(
            "CreateInferenceExperiment", create_payload(Name=name, EndpointName=f"ep-{name}")
        )
    return svc


@pytest.mark.parametrize(
    ("after", "limit", "field"),
    [
        (-1, 10, "after"),
        (MAX_POSITION + 1, 10, "after"),
        ("3", 10, "after"),
        (True, 10, "after"),
        (1.0, 10, "after"),
        (None, 0, "limit"),
        (None, MAX_PAGE + 1, "limit"),
        (None, "10", "limit"),
    ],
)
def test_a_bad_read_is_a_validation_error_naming_the_argument(
    service: ExperimentService, after: Any, limit: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.changes(after, limit)
    assert caught.value.field == field and caught.value.message.startswith(field)


def test_the_service_reads_the_stores_feed(service: ExperimentService) -> None:
    page = service.changes()
    assert [(c.name, c.event) for c in page.changes] == [
        ("a", "create"),
        ("b", "create"),
        ("c", "create"),
    ]
    assert service.changes(page.changes[0].position, 1).changes == page.changes[1:2]
    assert service.changes(MAX_POSITION).changes == []


def test_retention_trims_by_age_from_the_services_clock_and_by_count(
    service: ExperimentService,
) -> None:
    assert service.trim_changes(Retention(max_age=1.0)) == 0  # all are T0, the clock is T0
    service.clock = lambda: T0 + 10
    assert service.trim_changes(Retention(max_age=None, max_count=2)) == 1
    assert service.trim_changes(Retention(max_age=None, max_count=None)) == 0
    assert service.trim_changes(Retention(max_age=5.0)) == 1  # the newest is always kept
    assert [c.name for c in service.changes().changes] == ["c"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_age": 0.0}, "max_age"),
        ({"max_age": float("inf")}, "max_age"),
        ({"max_count": 0}, "max_count"),
    ],
)
def test_a_retention_out_of_range_is_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Retention(**kw)


def test_unbounded_retention_is_not_run_by_the_server(service: ExperimentService) -> None:
    assert not Retention(max_age=None, max_count=None).bounded
    workers = FeedWorkers(service, retention=Retention(max_age=None, max_count=None))
    workers.start()
    workers.stop(1.0)
    assert workers.trimmed == 0 and len(service.changes().changes) == 3


def test_the_servers_trimmer_trims_at_start_and_stops_within_its_bound(
    service: ExperimentService,
) -> None:
    workers = FeedWorkers(service, retention=Retention(max_age=None, max_count=1), trim_seconds=60)
    workers.start()
    deadline = time.monotonic() + 5
    while workers.trimmed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    workers.stop(2.0)
    assert workers.trimmed == 2
    assert [c.name for c in service.changes().changes] == ["c"]
