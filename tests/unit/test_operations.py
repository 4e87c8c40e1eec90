"""The other six operations (SPEC §1, §4): create rules, schedule, update, start, delete, describe, list."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lifecycle.errors import (
    ConflictError,
    NotFoundError,
    ResourceInUseError,
    ResourceLimitExceededError,
    StaleVersionError,
    ValidationError,
)
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

from .conftest import T0, World, create_request, variant

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

DAY = 86400.0


def invoke(world: World, op: str, **kw: Any) -> dict[str, Any]:
    return world.service.invoke(op, kw)


# --- create -----------------------------------------------------------------------------------


def test_create_returns_the_arn_and_starts_creating(world: World) -> None:
    out = world.create()
    assert out == {
        "InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"
    }
    d = world.describe()
    assert d["Status"] == "Creating"
    assert {v["Status"] for v in d["ModelVariants"]} == {"Creating"}


def test_region_and_account_make_the_arn() -> None:
    service = ExperimentService(MemoryStore(), region="eu-west-1", account_id="999999999999")
    out = service.invoke("CreateInferenceExperiment", create_request())
    assert (
        out["InferenceExperimentArn"]
        == "arn:aws:sagemaker:eu-west-1:999999999999:inference-experiment/exp"
    )


def test_create_with_an_existing_name_is_resource_in_use(world: World) -> None:
    world.create()
    with pytest.raises(ResourceInUseError, match="already exists"):
        world.create(endpoint="other")


def test_a_second_live_experiment_on_one_endpoint_is_resource_in_use(world: World) -> None:
    world.create("one", endpoint="ep")
    with pytest.raises(ResourceInUseError) as info:
        world.create("two", endpoint="ep")
    assert info.value.rule == "one-live-experiment-per-endpoint"


def test_an_endpoint_is_free_again_once_its_experiment_is_terminal(world: World) -> None:
    world.running("one", endpoint="ep")
    invoke(world, "StopInferenceExperiment", Name="one", ModelVariantActions={"shadow": "Remove"})
    world.reconciler.run_once()
    world.create("two", endpoint="ep")
    assert world.status("two") == "Creating"


def test_past_the_live_limit_create_is_resource_limit_exceeded() -> None:
    service = ExperimentService(MemoryStore(), max_live_experiments=2)
    service.invoke("CreateInferenceExperiment", create_request("a"))
    service.invoke("CreateInferenceExperiment", create_request("b"))
    with pytest.raises(ResourceLimitExceededError):
        service.invoke("CreateInferenceExperiment", create_request("c"))


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (
            {
                "ShadowModeConfig": {
                    "SourceModelVariantName": "prod",
                    "ShadowModelVariants": [
                        {"ShadowModelVariantName": "prod", "SamplingPercentage": 5}
                    ],
                }
            },
            "distinct-source-and-shadow",
        ),
        ({"ModelVariants": [variant("prod"), variant("other")]}, "variants-in-model-variants"),
        ({"ModelVariants": [variant("prod"), variant("prod")]}, "unique-variant-names"),
        ({"Schedule": {"StartTime": T0, "EndTime": T0 - 1}}, "schedule-end-after-start"),
        ({"Schedule": {"StartTime": T0, "EndTime": T0 + 31 * DAY}}, "schedule-max-duration"),
        ({"Schedule": {"EndTime": T0 - 10}}, "schedule-end-after-start"),
    ],
    ids=[
        "same-source-and-shadow",
        "shadow-not-in-variants",
        "duplicate-variant",
        "end-before-start",
        "over-30-days",
        "end-in-past",
    ],
)
def test_create_rules_of_the_request_are_validation_errors(
    world: World, change: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        world.service.invoke("CreateInferenceExperiment", {**create_request(), **change})
    assert info.value.rule == rule
    assert len(world.store) == 0


def test_type_must_be_shadow_mode(world: World) -> None:
    with pytest.raises(ValidationError, match="type"):
        world.service.invoke("CreateInferenceExperiment", {**create_request(), "Type": "ABTest"})


@pytest.mark.parametrize("pct", [-1, 101])
def test_sampling_percentage_is_0_to_100(world: World, pct: int) -> None:
    req = create_request()
    req["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"] = pct
    with pytest.raises(ValidationError, match="samplingPercentage"):
        world.service.invoke("CreateInferenceExperiment", req)


# --- schedule ---------------------------------------------------------------------------------


def test_no_schedule_starts_now_and_ends_seven_days_later(world: World) -> None:
    world.create()
    assert world.describe()["Schedule"] == {"StartTime": T0, "EndTime": T0 + 7 * DAY}


def test_only_a_start_time_ends_seven_days_after_it(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    assert world.describe()["Schedule"] == {"StartTime": T0 + DAY, "EndTime": T0 + 8 * DAY}


def test_only_an_end_time_starts_now(world: World) -> None:
    world.create(Schedule={"EndTime": T0 + 2 * DAY})
    assert world.describe()["Schedule"] == {"StartTime": T0, "EndTime": T0 + 2 * DAY}


def test_a_future_start_waits_in_created_then_starts_at_start_time(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + 3600})
    world.reconciler.run_once()
    assert world.status() == "Created"
    world.clock.advance(3600)
    world.reconciler.run_once()
    assert world.status() == "Running"


def test_the_reconciler_stops_at_end_time_retaining_production_and_removing_shadow(
    world: World,
) -> None:
    world.running(Schedule={"EndTime": T0 + DAY})
    world.clock.advance(DAY)
    world.reconciler.run_once()
    assert world.status() == "Completed"
    assert {n: v["Status"] for n, v in world.variants().items()} == {
        "prod": "InService",
        "shadow": "Deleted",
    }


def test_start_on_created_starts_early_and_keeps_at_most_30_days(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + 10 * DAY, "EndTime": T0 + 40 * DAY})
    world.reconciler.run_once()
    world.clock.advance(DAY)
    invoke(world, "StartInferenceExperiment", Name="exp")
    now = world.clock.now
    assert world.describe()["Schedule"] == {"StartTime": now, "EndTime": now + 30 * DAY}
    assert world.status() == "Starting"


def test_start_outside_created_is_a_conflict(world: World) -> None:
    world.running()
    with pytest.raises(ConflictError, match="Created"):
        invoke(world, "StartInferenceExperiment", Name="exp")


def test_a_created_experiment_whose_end_passed_is_started_and_stopped_at_once(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + 3600, "EndTime": T0 + 7200})
    world.reconciler.run_once()
    world.clock.advance(3 * 3600)  # the reconciler was down past EndTime
    world.reconciler.run_once()
    d = world.describe()
    assert d["Status"] == "Completed"
    assert "EndTime passed" in d["StatusReason"]
    events = [h.event for h in world.store.history(ACCOUNT, "exp")]
    assert events[-4:] == ["start", "started", "stop", "stopped"]


# --- update -----------------------------------------------------------------------------------


def test_update_with_nothing_but_name_is_a_validation_error(world: World) -> None:
    world.running()
    with pytest.raises(ValidationError) as info:
        invoke(world, "UpdateInferenceExperiment", Name="exp")
    assert info.value.rule == "update-changes-something"


def test_update_setting_end_time_in_the_past_is_a_validation_error(world: World) -> None:
    world.running()
    with pytest.raises(ValidationError, match="EndTime"):
        invoke(world, "UpdateInferenceExperiment", Name="exp", Schedule={"EndTime": T0})


def test_update_while_running_changes_description_end_time_and_sampling(world: World) -> None:
    world.running()
    smc = {
        "SourceModelVariantName": "prod",
        "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 7}],
    }
    invoke(
        world,
        "UpdateInferenceExperiment",
        Name="exp",
        Description="more",
        Schedule={"EndTime": T0 + 2 * DAY},
        ShadowModeConfig=smc,
    )
    assert world.status() == "Updating"
    world.reconciler.run_once()
    d = world.describe()
    assert (d["Status"], d["Description"], d["Schedule"]["EndTime"]) == (
        "Running",
        "more",
        T0 + 2 * DAY,
    )
    assert d["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"] == 7


@pytest.mark.parametrize(
    ("members", "field"),
    [
        (
            {"ModelVariants": [variant("prod", "model-new"), variant("shadow", "model-b")]},
            "ModelVariants",
        ),
        ({"Schedule": {"StartTime": T0 + 5}}, "Schedule.StartTime"),
        ({"DataStorageConfig": {"Destination": "s3://bucket/path"}}, "DataStorageConfig"),
        (
            {
                "ShadowModeConfig": {
                    "SourceModelVariantName": "shadow",
                    "ShadowModelVariants": [
                        {"ShadowModelVariantName": "prod", "SamplingPercentage": 50}
                    ],
                }
            },
            "ShadowModeConfig.SourceModelVariantName",
        ),
    ],
    ids=["variants", "start-time", "data-storage", "swap-roles"],
)
def test_update_while_running_of_another_member_is_a_conflict_naming_it(
    world: World, members: dict[str, Any], field: str
) -> None:
    world.running()
    before = world.snapshot()
    with pytest.raises(ConflictError) as info:
        invoke(world, "UpdateInferenceExperiment", Name="exp", **members)
    assert field in info.value.message and "Running" in info.value.message
    assert world.snapshot() == before


def test_update_whose_members_equal_the_stored_ones_succeeds_through_updating(world: World) -> None:
    world.running()
    same = world.describe()
    invoke(
        world,
        "UpdateInferenceExperiment",
        Name="exp",
        ModelVariants=[
            {k: v[k] for k in ("ModelName", "VariantName", "InfrastructureConfig")}
            for v in same["ModelVariants"]
        ],
        Schedule=same["Schedule"],
    )
    assert world.status() == "Updating"
    world.reconciler.run_once()
    assert world.status() == "Running"


def test_update_in_created_reconfigures_variants_through_updating(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    world.reconciler.run_once()
    invoke(
        world, "UpdateInferenceExperiment", Name="exp", ModelVariants=[variant("shadow", "model-x")]
    )
    assert {n: v["Status"] for n, v in world.variants().items()} == {
        "prod": "InService",
        "shadow": "Updating",
    }
    world.reconciler.run_once()
    assert world.status() == "Created"
    assert world.variants()["shadow"] == {**variant("shadow", "model-x"), "Status": "InService"}


def test_update_in_created_naming_an_unknown_variant_is_a_conflict(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    world.reconciler.run_once()
    with pytest.raises(ConflictError) as info:
        invoke(world, "UpdateInferenceExperiment", Name="exp", ModelVariants=[variant("ghost")])
    assert info.value.rule == "known-variant"


def test_update_in_created_with_an_inconsistent_shadow_config_is_a_conflict(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    world.reconciler.run_once()
    smc = {
        "SourceModelVariantName": "prod",
        "ShadowModelVariants": [{"ShadowModelVariantName": "ghost", "SamplingPercentage": 1}],
    }
    with pytest.raises(ConflictError) as info:
        invoke(world, "UpdateInferenceExperiment", Name="exp", ShadowModeConfig=smc)
    assert info.value.rule == "shadow-config-consistent"


def test_a_start_due_while_updating_fires_after_updated(make_world: Any) -> None:
    world = make_world(settle=60)
    world.create(Schedule={"StartTime": T0 + 100})
    world.clock.advance(60)
    world.reconciler.run_once()
    assert world.status() == "Created"
    world.clock.advance(30)
    invoke(world, "UpdateInferenceExperiment", Name="exp", Description="d")
    world.clock.advance(60)  # StartTime passes while Updating
    world.reconciler.run_once()
    assert world.status() == "Starting"


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Created", "Completed", "Cancelled"])
def test_delete_removes_the_record_in_created_completed_cancelled(
    make_world: Any, status: str
) -> None:

    world = make_world()
    if status == "Created":
        world.create(Schedule={"StartTime": T0 + DAY})
        world.reconciler.run_once()
    else:
        world.running()
        invoke(
            world,
            "StopInferenceExperiment",
            Name="exp",
            ModelVariantActions={"shadow": "Remove"},
            DesiredState=status,
        )
        world.reconciler.run_once()
    assert world.status() == status
    invoke(world, "DeleteInferenceExperiment", Name="exp")
    with pytest.raises(NotFoundError):
        world.describe()


@pytest.mark.parametrize("status", ["Creating", "Running", "Stopping"])
def test_delete_elsewhere_is_a_conflict(make_world: Any, status: str) -> None:
    world = make_world()
    world.create()
    if status != "Creating":
        world.reconciler.run_once()
    if status == "Stopping":
        invoke(
            world, "StopInferenceExperiment", Name="exp", ModelVariantActions={"shadow": "Remove"}
        )
    with pytest.raises(ConflictError, match="delete"):
        invoke(world, "DeleteInferenceExperiment", Name="exp")
    assert world.status() == status


# --- describe ---------------------------------------------------------------------------------


def test_describe_has_every_required_member(world: World) -> None:
    world.running(Description="d", KmsKey="key", DataStorageConfig={"Destination": "s3://b/p"})
    d = world.describe()
    for member in (
        "Arn",
        "Name",
        "Type",
        "Status",
        "EndpointMetadata",
        "ModelVariants",
        "CreationTime",
        "LastModifiedTime",
        "Schedule",
    ):
        assert member in d
    assert d["EndpointMetadata"]["EndpointName"] == "exp-endpoint"
    assert d["DataStorageConfig"] == {"Destination": "s3://b/p"}
    assert d["KmsKey"] == "key"


def test_a_response_is_the_callers_to_change(world: World) -> None:
    world.running(
        DataStorageConfig={
            "Destination": "s3://b/p",
            "ContentType": {"CsvContentTypes": ["text/csv"]},
        }
    )
    first = world.describe()
    before = copy.deepcopy(first)
    first["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"] = 1
    first["ModelVariants"][0]["InfrastructureConfig"]["RealTimeInferenceConfig"][
        "InstanceCount"
    ] = 99
    first["DataStorageConfig"]["ContentType"]["CsvContentTypes"].append("text/other")
    assert world.describe() == before


def test_describe_unknown_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError):
        world.describe("nope")


# --- versioned saves and listeners --------------------------------------------------------------


def test_a_stale_version_writes_nothing(world: World) -> None:
    world.running()
    a = world.store.get(ACCOUNT, "exp")
    b = world.store.get(ACCOUNT, "exp")
    assert a is not None and b is not None
    a.description = "first"
    world.store.save(a, a.version, [])
    b.description = "second"
    with pytest.raises(StaleVersionError):
        world.store.save(b, b.version, [])
    assert world.describe()["Description"] == "first"


def test_listeners_hear_each_committed_transition(world: World) -> None:
    heard: list[tuple[str, str]] = []
    world.service.add_listener(lambda e: heard.append((e.event, e.to_status.value)))
    world.running()
    assert heard == [("create", "Creating"), ("provisioned", "Starting"), ("started", "Running")]


def _heard(e: Any) -> tuple[str, str | None, str, str | None, str]:
    source = None if e.from_status is None else e.from_status.value
    return (e.machine, e.variant, e.event, source, e.to_status.value)


def test_a_listener_that_asks_hears_each_committed_variant_transition_as_the_feed_has_it(
    world: World,
) -> None:
    heard: list[tuple[str, str | None, str, str | None, str]] = []
    world.service.add_listener(lambda e: heard.append(_heard(e)), variants=True)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment",
        {
            "Name": "exp",
            "ModelVariantActions": {"prod": "Remove", "shadow": "Promote"},
            "DesiredState": "Completed",
            "Reason": "shadow won",
        },
    )
    world.settle()
    assert [h[2:] for h in heard if h[0] == "experiment"] == [
        ("create", None, "Creating"),
        ("provisioned", "Creating", "Starting"),
        ("started", "Starting", "Running"),
        ("stop", "Running", "Stopping"),
        ("stopped", "Stopping", "Completed"),
    ]
    variants = [h[1:] for h in heard if h[0] == "variant"]
    assert ("shadow", "promote", "InService", "Updating") in variants
    assert ("shadow", "promoted", "Updating", "InService") in variants
    assert ("prod", "remove", "InService", "Deleting") in variants
    assert ("prod", "removed", "Deleting", "Deleted") in variants
    # what the listener heard is the change feed, entry for entry and in its order
    feed = world.service.changes(limit=100).changes
    assert heard == [(c.machine, c.variant, c.event, c.from_status, c.to_status) for c in feed]
    # the history holds the experiment's own transitions only
    assert [e.event for e in world.history()] == [h[2] for h in heard if h[0] == "experiment"]


def test_a_variant_transition_carries_its_experiment_time_and_request_id(world: World) -> None:
    heard: list[Any] = []
    world.running()
    world.service.add_listener(heard.append, variants=True)
    world.service.invoke(
        "StopInferenceExperiment",
        {"Name": "exp", "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"}},
        request_id="req-1",
    )
    [stop, *variants] = heard
    assert (stop.machine, stop.variant, stop.event) == ("experiment", None, "stop")
    assert sorted((v.variant, v.event) for v in variants) == [
        ("prod", "retain"),
        ("shadow", "remove"),
    ]
    for v in variants:
        assert (v.machine, v.name, v.time, v.request_id) == ("variant", "exp", stop.time, "req-1")


def test_a_listener_that_does_not_ask_hears_only_the_experiments_transitions(
    world: World,
) -> None:
    heard: list[Any] = []
    world.service.add_listener(heard.append)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment",
        {"Name": "exp", "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"}},
    )
    world.settle()
    assert {e.machine for e in heard} == {"experiment"}
    assert [e.event for e in heard] == ["create", "provisioned", "started", "stop", "stopped"]


def test_history_holds_time_event_statuses_and_request_id(world: World) -> None:
    world.create()
    world.service.invoke("DescribeInferenceExperiment", {"Name": "exp"})
    [entry] = world.store.history(ACCOUNT, "exp")
    assert (entry.time, entry.event, entry.from_status, entry.to_status) == (
        T0,
        "create",
        None,
        "Creating",
    )
    assert entry.request_id
