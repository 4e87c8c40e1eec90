"""The variant machine's transitions in the change feed: each one a change, in the transaction
of the experiment transition it came with, naming its variant."""

from __future__ import annotations

from typing import Any

from lifecycle.actuators import SimulatedActuator
from lifecycle.errors import ConflictError
from lifecycle.service.feed import event
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import Store
from lifecycle.testing import T0, VirtualClock, create_payload
from tests._feed import read_all

ACCOUNT = "123456789012"


def feed(store: Store) -> list[tuple[Any, ...]]:
    return [
        (
            c.machine,
            c.variant,
            c.event,
            None if c.from_status is None else c.from_status.value,
            c.to_status.value,
        )
        for c in read_all(store, limit=4)
    ]


def running(any_store: Store) -> tuple[ExperimentService, Reconciler, VirtualClock]:
    clock = VirtualClock(T0)
    service = ExperimentService(any_store, clock=clock, settle_seconds=60)
    reconciler = Reconciler(service)
    service.invoke("CreateInferenceExperiment", create_payload(Name="exp", EndpointName="ep"))
    for _ in range(2):  # Creating -> Starting -> Running
        clock.advance(60)
        reconciler.run_once()
    assert service.describe_inference_experiment(Name="exp")["Status"] == "Running"
    return service, reconciler, clock


def test_a_shadow_tests_life_puts_every_variant_transition_in_the_feed_in_order(
    any_store: Store,
) -> None:
    service, reconciler, clock = running(any_store)
    service.stop_inference_experiment(
        Name="exp", ModelVariantActions={"shadow": "Promote"}, DesiredState="Completed"
    )
    clock.advance(60)
    reconciler.run_once()
    assert service.describe_inference_experiment(Name="exp")["Status"] == "Completed"
    assert feed(any_store) == [
        ("experiment", None, "create", None, "Creating"),
        ("variant", "prod", "provisioned", "Creating", "InService"),
        ("variant", "shadow", "provisioned", "Creating", "InService"),
        ("experiment", None, "provisioned", "Creating", "Starting"),
        ("experiment", None, "started", "Starting", "Running"),
        ("experiment", None, "stop", "Running", "Stopping"),
        ("variant", "prod", "remove", "InService", "Deleting"),
        ("variant", "shadow", "promote", "InService", "Updating"),
        ("variant", "shadow", "promoted", "Updating", "InService"),
        ("variant", "prod", "removed", "Deleting", "Deleted"),
        ("experiment", None, "stopped", "Stopping", "Completed"),
    ]
    # the history holds the experiment's own transitions, as before
    assert [h.event for h in any_store.history(ACCOUNT, "exp")] == [
        "create",
        "provisioned",
        "started",
        "stop",
        "stopped",
    ]


def test_a_variant_change_carries_its_request_time_and_variant_in_its_event(
    any_store: Store,
) -> None:
    service, _, clock = running(any_store)
    service.invoke(
        "StopInferenceExperiment",
        {
            "Name": "exp",
            "ModelVariantActions": {"shadow": "Remove", "prod": "Retain"},
            "DesiredState": "Cancelled",
            "Reason": "enough",
        },
        request_id="stop-1",
    )
    changes = read_all(any_store)
    stop = [c for c in changes if c.request_id == "stop-1"]
    assert [(c.machine, c.variant, c.event) for c in stop] == [
        ("experiment", None, "stop"),
        ("variant", "prod", "retain"),
        ("variant", "shadow", "remove"),
    ]
    assert len({c.time for c in stop}) == 1 and stop[0].time == clock()
    assert [c.position for c in stop] == sorted(c.position for c in stop)
    detail = event(stop[2])["detail"]
    assert detail["Machine"] == "variant" and detail["Variant"] == "shadow"
    assert (detail["PreviousStatus"], detail["Status"]) == ("InService", "Deleting")
    assert detail["RequestId"] == "stop-1" and detail["Name"] == "exp"


def test_a_refused_request_leaves_no_variant_change(any_store: Store) -> None:
    service, _, _ = running(any_store)
    before = read_all(any_store)
    try:
        service.stop_inference_experiment(
            Name="exp", ModelVariantActions={"prod": "Remove"}, DesiredState="Completed"
        )
    except ConflictError:
        pass
    else:  # pragma: no cover - the stop leaves no production variant
        raise AssertionError("the stop was not refused")
    assert read_all(any_store) == before


def test_a_failed_step_puts_its_variants_rollbacks_after_the_fail(any_store: Store) -> None:
    clock = VirtualClock(T0)
    service = ExperimentService(any_store, clock=clock, settle_seconds=60)
    actuator = SimulatedActuator()
    reconciler = Reconciler(service, actuator)
    service.invoke("CreateInferenceExperiment", create_payload(Name="exp", EndpointName="ep"))
    for _ in range(2):
        clock.advance(60)
        reconciler.run_once()
    service.stop_inference_experiment(
        Name="exp", ModelVariantActions={"shadow": "Promote"}, DesiredState="Completed"
    )
    before = len(read_all(any_store))
    actuator.fail("promote-variant", retryable=False)
    clock.advance(60)
    reconciler.run_once()
    assert service.describe_inference_experiment(Name="exp")["Status"] == "Cancelled"
    assert feed(any_store)[before:] == [
        ("experiment", None, "fail", "Stopping", "Cancelled"),
        ("variant", "prod", "rollback", "Deleting", "InService"),
        ("variant", "shadow", "rollback", "Updating", "InService"),
    ]


def test_an_updates_variant_steps_are_changes(any_store: Store) -> None:
    clock = VirtualClock(T0)
    service = ExperimentService(any_store, clock=clock, settle_seconds=60)
    reconciler = Reconciler(service)
    service.invoke(
        "CreateInferenceExperiment",
        create_payload(
            Name="exp", EndpointName="ep", Schedule={"StartTime": T0 + 3600, "EndTime": T0 + 7200}
        ),
    )
    clock.advance(60)
    reconciler.run_once()
    assert service.describe_inference_experiment(Name="exp")["Status"] == "Created"
    payload = create_payload(Name="exp", EndpointName="ep")
    variants = payload["ModelVariants"]
    variants[1] = {**variants[1], "ModelName": "model-c"}
    before = len(read_all(any_store))
    service.invoke("UpdateInferenceExperiment", {"Name": "exp", "ModelVariants": variants})
    clock.advance(60)
    reconciler.run_once()
    assert feed(any_store)[before:] == [
        ("experiment", None, "update", "Created", "Updating"),
        ("variant", "shadow", "update", "InService", "Updating"),
        ("variant", "shadow", "updated", "Updating", "InService"),
        ("experiment", None, "updated", "Updating", "Created"),
    ]
