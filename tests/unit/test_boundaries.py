"""Every schedule rule at its boundary, both ways, and a NextToken bound to each member of its scope.

A rule written ``<=`` where it means ``<`` passes every test that stays away
from the boundary; these stand on it: the value the rule refuses, and one
millisecond (the engine's resolution) on the side it accepts (SPEC §1
Schedule and Times, §4 List).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifecycle.errors import ValidationError
from lifecycle.wire import shapes

from .conftest import T0, World, create_request

DAY = 86400.0
MS = 0.001
#: the schedule of the Created experiment the Update tests change
START = T0 + DAY


def create(world: World, **schedule: float) -> dict[str, Any]:
    return world.service.invoke("CreateInferenceExperiment", create_request(Schedule=schedule))


def update(world: World, **schedule: float) -> dict[str, Any]:
    return world.service.invoke("UpdateInferenceExperiment", {"Name": "exp", "Schedule": schedule})


def refused_rule(call: Callable[[], object]) -> str | None:
    """The rule of the ValidationError ``call`` raises."""
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.rule


@pytest.fixture
def created(world: World) -> World:
    """``exp`` Created, starting a day from now and running for two days."""
    create(world, StartTime=START, EndTime=START + 2 * DAY)
    world.reconciler.run_once()
    assert world.status() == "Created"
    return world


# -- EndTime after StartTime -------------------------------------------------------------------


def test_create_with_end_time_equal_to_start_time_is_refused(world: World) -> None:
    rule = refused_rule(lambda: create(world, StartTime=START, EndTime=START))
    assert rule == "schedule-end-after-start"
    assert len(world.store) == 0


def test_create_with_end_time_one_ms_after_start_time_is_accepted(world: World) -> None:
    create(world, StartTime=START, EndTime=START + MS)
    assert world.describe()["Schedule"] == {"StartTime": START, "EndTime": START + MS}


def test_update_in_created_of_end_time_to_the_stored_start_time_is_refused(
    created: World,
) -> None:
    before = created.snapshot()
    rule = refused_rule(lambda: update(created, EndTime=START))
    assert rule == "schedule-end-after-start"
    assert created.snapshot() == before


def test_update_in_created_of_both_times_to_one_instant_is_refused(created: World) -> None:
    rule = refused_rule(lambda: update(created, StartTime=START, EndTime=START))
    assert rule == "schedule-end-after-start"
    assert created.status() == "Created"


def test_update_in_created_of_end_time_one_ms_after_start_time_is_accepted(
    created: World,
) -> None:
    update(created, EndTime=START + MS)
    created.reconciler.run_once()
    assert created.describe()["Schedule"] == {"StartTime": START, "EndTime": START + MS}


def test_update_in_created_of_start_time_to_the_stored_end_time_is_refused(
    created: World,
) -> None:
    rule = refused_rule(lambda: update(created, StartTime=START + 2 * DAY))
    assert rule == "schedule-end-after-start"


def test_update_in_created_of_start_time_one_ms_before_the_stored_end_time_is_accepted(
    created: World,
) -> None:
    update(created, StartTime=START + 2 * DAY - MS)
    created.reconciler.run_once()
    assert created.describe()["Schedule"]["StartTime"] == START + 2 * DAY - MS


# -- EndTime after now ---------------------------------------------------------------------------


def test_create_with_end_time_now_is_refused(world: World) -> None:
    rule = refused_rule(lambda: create(world, StartTime=T0 - DAY, EndTime=T0))
    assert rule == "schedule-end-in-future"


def test_create_with_end_time_one_ms_from_now_is_accepted(world: World) -> None:
    create(world, StartTime=T0 - DAY, EndTime=T0 + MS)
    assert world.describe()["Schedule"]["EndTime"] == T0 + MS


def test_update_while_running_of_end_time_to_now_is_refused(world: World) -> None:
    world.running()
    rule = refused_rule(lambda: update(world, EndTime=world.clock.now))
    assert rule == "schedule-end-in-future"


def test_update_while_running_of_end_time_one_ms_from_now_is_accepted(world: World) -> None:
    world.running()
    update(world, EndTime=world.clock.now + MS)
    assert world.status() == "Updating"


# -- at most 30 days -----------------------------------------------------------------------------


def test_create_of_exactly_30_days_is_accepted(world: World) -> None:
    create(world, StartTime=START, EndTime=START + 30 * DAY)
    assert world.describe()["Schedule"]["EndTime"] == START + 30 * DAY


def test_create_of_30_days_and_1_ms_is_refused(world: World) -> None:
    rule = refused_rule(lambda: create(world, StartTime=START, EndTime=START + 30 * DAY + MS))
    assert rule == "schedule-max-duration"
    assert len(world.store) == 0


def test_update_in_created_to_exactly_30_days_is_accepted(created: World) -> None:
    update(created, EndTime=START + 30 * DAY)
    created.reconciler.run_once()
    assert created.describe()["Schedule"]["EndTime"] == START + 30 * DAY


def test_update_in_created_to_30_days_and_1_ms_is_refused(created: World) -> None:
    rule = refused_rule(lambda: update(created, EndTime=START + 30 * DAY + MS))
    assert rule == "schedule-max-duration"


def test_update_in_created_of_start_time_to_exactly_30_days_before_end_is_accepted(
    created: World,
) -> None:
    update(created, StartTime=T0 + MS, EndTime=T0 + MS + 30 * DAY)
    created.reconciler.run_once()
    schedule = created.describe()["Schedule"]
    assert schedule == {"StartTime": T0 + MS, "EndTime": T0 + MS + 30 * DAY}


def test_update_in_created_of_start_time_30_days_and_1_ms_before_end_is_refused(
    created: World,
) -> None:
    rule = refused_rule(lambda: update(created, StartTime=T0 + MS, EndTime=T0 + 2 * MS + 30 * DAY))
    assert rule == "schedule-max-duration"


def test_update_while_running_to_exactly_30_days_from_start_is_accepted(world: World) -> None:
    world.running()
    update(world, EndTime=T0 + 30 * DAY)
    world.reconciler.run_once()
    assert world.describe()["Schedule"] == {"StartTime": T0, "EndTime": T0 + 30 * DAY}


def test_update_while_running_to_30_days_and_1_ms_from_start_is_refused(world: World) -> None:
    world.running()
    rule = refused_rule(lambda: update(world, EndTime=T0 + 30 * DAY + MS))
    assert rule == "schedule-max-duration"
    assert world.status() == "Running"


# -- Start's 30-day clamp -------------------------------------------------------------------------


@pytest.fixture
def early(world: World) -> World:
    """``exp`` Created, to start in ten days and run 29."""
    create(world, StartTime=T0 + 10 * DAY, EndTime=T0 + 39 * DAY)
    world.reconciler.run_once()
    assert world.status() == "Created"
    return world


def start_at(world: World, now: float) -> dict[str, float]:
    world.clock.now = now
    world.service.invoke("StartInferenceExperiment", {"Name": "exp"})
    return dict(world.describe()["Schedule"])


def test_a_start_exactly_30_days_before_end_time_keeps_end_time(early: World) -> None:
    schedule = start_at(early, T0 + 9 * DAY)
    assert schedule == {"StartTime": T0 + 9 * DAY, "EndTime": T0 + 39 * DAY}


def test_a_start_30_days_and_1_ms_before_end_time_ends_30_days_after_it(early: World) -> None:
    now = T0 + 9 * DAY - MS
    schedule = start_at(early, now)
    assert schedule["StartTime"] == now
    assert round(schedule["EndTime"] - now, 3) == 30 * DAY


# -- a NextToken is bound to every member of its scope ------------------------------------------

#: a List request that sets every filter and the sort; three experiments match it
SCOPED: dict[str, Any] = {
    "NameContains": "e",
    "Type": "ShadowMode",
    "StatusEquals": "Running",
    "CreationTimeAfter": T0 - 10,
    "CreationTimeBefore": T0 + 10,
    "LastModifiedTimeAfter": T0 - 10,
    "LastModifiedTimeBefore": T0 + 10,
    "SortBy": "Name",
    "SortOrder": "Ascending",
}
#: another value for each member of the scope (Type has one value: its change is leaving it out)
CHANGED: dict[str, Any] = {
    "NameContains": "e-",
    "Type": None,
    "StatusEquals": "Created",
    "CreationTimeAfter": T0 - 10 + MS,
    "CreationTimeBefore": T0 + 10 - MS,
    "LastModifiedTimeAfter": T0 - 10 + MS,
    "LastModifiedTimeBefore": T0 + 10 - MS,
    "SortBy": "CreationTime",
    "SortOrder": "Descending",
}
#: members of a List request that are not filters or the sort
NOT_SCOPE = {"NextToken", "MaxResults"}


def list_page(world: World, **request: Any) -> dict[str, Any]:
    return world.service.invoke("ListInferenceExperiments", request)


@pytest.fixture
def three_running(world: World) -> World:
    for name in ("e1", "e2", "e3"):
        world.create(name)
    world.reconciler.run_once()
    return world


def test_the_changes_below_cover_every_filter_and_the_sort() -> None:
    members = set(shapes.ListInferenceExperimentsRequest.model_fields) - NOT_SCOPE
    assert set(SCOPED) == members
    assert set(CHANGED) == members


def test_a_next_token_reused_unchanged_gives_the_next_page(three_running: World) -> None:
    first = list_page(three_running, MaxResults=1, **SCOPED)
    second = list_page(three_running, MaxResults=2, NextToken=first["NextToken"], **SCOPED)
    names = [s["Name"] for s in first["InferenceExperiments"] + second["InferenceExperiments"]]
    assert names == ["e1", "e2", "e3"]
    assert "NextToken" not in second


@pytest.mark.parametrize("member", sorted(CHANGED))
def test_a_next_token_reused_with_one_member_of_its_scope_changed_is_refused(
    three_running: World, member: str
) -> None:
    token = list_page(three_running, MaxResults=1, **SCOPED)["NextToken"]
    changed = {**SCOPED, member: CHANGED[member]}
    with pytest.raises(ValidationError) as info:
        list_page(three_running, MaxResults=1, NextToken=token, **changed)
    assert info.value.rule == "next-token"


@pytest.mark.parametrize("member", sorted(CHANGED))
def test_a_next_token_reused_without_one_member_of_its_scope_is_refused(
    three_running: World, member: str
) -> None:
    token = list_page(three_running, MaxResults=1, **SCOPED)["NextToken"]
    dropped = {k: v for k, v in SCOPED.items() if k != member}
    with pytest.raises(ValidationError) as info:
        list_page(three_running, MaxResults=1, NextToken=token, **dropped)
    assert info.value.rule == "next-token"


@pytest.mark.parametrize("member", sorted(CHANGED))
def test_a_next_token_issued_without_a_member_is_refused_when_it_is_added(
    three_running: World, member: str
) -> None:
    issued = {k: v for k, v in SCOPED.items() if k != member}
    token = list_page(three_running, MaxResults=1, **issued)["NextToken"]
    with pytest.raises(ValidationError) as info:
        list_page(three_running, MaxResults=1, NextToken=token, **SCOPED)
    assert info.value.rule == "next-token"
