"""Times: whole milliseconds everywhere, and never outside what a client can parse (SPEC §1 "Times")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lifecycle.errors import ValidationError

from .conftest import T0, World

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

#: 9999-12-31T23:59:59Z, the last second a datetime (and so boto3) can hold
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
DAY = 86400.0


def as_boto3_sends(t: float) -> float:
    """A time read by boto3 (a datetime, to the microsecond) and sent back."""
    return datetime.fromtimestamp(t, UTC).timestamp()


def whole_ms(t: float) -> bool:
    return round(t * 1000) / 1000 == t


def times_of(described: dict[str, Any]) -> list[float]:
    out = [
        described["CreationTime"],
        described["LastModifiedTime"],
        *described["Schedule"].values(),
    ]
    return out + ([described["CompletionTime"]] if "CompletionTime" in described else [])


def test_every_time_describe_returns_is_whole_milliseconds(world: World) -> None:
    world.clock.now = T0 + 0.1234567
    world.create(Schedule={"StartTime": T0 + 3600.98765432})
    world.clock.now = T0 + 1.0009999
    world.reconciler.run_once()
    described = world.describe()
    assert all(whole_ms(t) for t in times_of(described)), times_of(described)
    assert described["CreationTime"] == T0 + 0.123
    assert described["Schedule"]["StartTime"] == T0 + 3600.988


def test_a_schedule_read_with_describe_and_sent_back_is_no_change_while_running(
    world: World,
) -> None:

    world.clock.now = T0 + 0.2960184
    world.running()
    schedule = {k: as_boto3_sends(v) for k, v in world.describe()["Schedule"].items()}
    world.service.invoke(
        "UpdateInferenceExperiment", {"Name": "exp", "Schedule": schedule, "Description": "new"}
    )
    assert world.status() == "Updating"


def test_creation_time_after_an_experiments_own_creation_time_leaves_it_out(world: World) -> None:
    world.clock.now = T0 + 0.2960184
    world.create()
    created = as_boto3_sends(world.describe()["CreationTime"])
    out = world.service.invoke("ListInferenceExperiments", {"CreationTimeAfter": created})
    assert out["InferenceExperiments"] == []


def test_the_times_of_the_history_are_whole_milliseconds(world: World) -> None:
    world.clock.now = T0 + 0.98765
    world.running()
    assert all(whole_ms(e.time) for e in world.store.history(ACCOUNT, "exp"))


def test_a_start_time_whose_default_end_passes_year_9999_is_refused_on_create(world: World) -> None:
    with pytest.raises(ValidationError) as refused:
        world.create(Schedule={"StartTime": LAST_SECOND})
    assert refused.value.rule == "schedule-in-range"
    assert "9999-12-31" in refused.value.message
    assert world.service.invoke("ListInferenceExperiments", {})["InferenceExperiments"] == []


def test_a_schedule_that_ends_in_year_9999_is_accepted(world: World) -> None:
    world.create(Schedule={"StartTime": LAST_SECOND - 7 * DAY})
    assert world.describe()["Schedule"]["EndTime"] == LAST_SECOND


def test_an_update_whose_schedule_passes_year_9999_is_refused(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    world.reconciler.run_once()
    assert world.status() == "Created"
    with pytest.raises(ValidationError) as refused:
        world.service.invoke(
            "UpdateInferenceExperiment",
            {
                "Name": "exp",
                "Schedule": {"StartTime": LAST_SECOND - DAY, "EndTime": LAST_SECOND + 1},
            },
        )
    assert refused.value.rule == "max-value"  # the shapes: EndTime is past what a datetime holds


def test_explain_names_the_range_rule_as_invoke_does(world: World) -> None:
    payload = {**world_create_payload(), "Schedule": {"StartTime": LAST_SECOND}}
    assert [e.rule for e in world.service.explain("CreateInferenceExperiment", payload)] == [
        "schedule-in-range"
    ]


def world_create_payload() -> dict[str, Any]:
    from .conftest import create_request

    return create_request()
