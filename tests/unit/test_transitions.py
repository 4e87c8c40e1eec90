"""Every (status, event) pair of both machines, against a matrix written by hand from SPEC.md.

The pairs come from ``lifecycle.testing.transition_cases`` (read from the
tables); the expected outcomes are NOT: the hand-written matrix is the
oracle, so a wrong table, a wrong case or a wrong engine fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from lifecycle.domain.experiment import Experiment, Variant
from lifecycle.domain.machine import fire, fire_variant
from lifecycle.domain.rules import Firing, StopPlan, UpdatePlan, plan_stop
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantStatus
from lifecycle.errors import ConflictError
from lifecycle.testing import TransitionCase, transition_cases

E = ExperimentStatus
V = VariantStatus
C = "ConflictException"

# SPEC §1, written out by hand: status -> event -> outcome
EXPERIMENT_MATRIX: dict[E, dict[str, object]] = {
    E.CREATING: {"provisioned": "Created|Starting", "fail": E.CANCELLED},
    E.CREATED: {"start": E.STARTING, "update": E.UPDATING},
    E.UPDATING: {"updated": "back", "fail": E.CANCELLED},
    E.STARTING: {"started": E.RUNNING, "fail": E.CANCELLED},
    E.RUNNING: {"update": E.UPDATING, "stop": E.STOPPING},
    E.STOPPING: {"stopped": "desired", "fail": E.CANCELLED},
    E.COMPLETED: {},
    E.CANCELLED: {},
}
EVENTS = ["provisioned", "start", "started", "update", "updated", "stop", "stopped", "fail"]

# SPEC §2, by hand
VARIANT_MATRIX: dict[V, dict[str, V]] = {
    V.CREATING: {"provisioned": V.IN_SERVICE, "rollback": V.DELETED},
    V.UPDATING: {"updated": V.IN_SERVICE, "promoted": V.IN_SERVICE, "rollback": V.IN_SERVICE},
    V.IN_SERVICE: {
        "update": V.UPDATING,
        "promote": V.UPDATING,
        "remove": V.DELETING,
        "retain": V.IN_SERVICE,
    },
    V.DELETING: {"removed": V.DELETED, "rollback": V.IN_SERVICE},
    V.DELETED: {},
}
VARIANT_EVENTS = [
    "provisioned",
    "update",
    "updated",
    "promote",
    "promoted",
    "remove",
    "removed",
    "retain",
    "rollback",
]

NOW = 1_000_000.0


def _experiment(status: E, *, start: float = NOW - 10) -> Experiment:
    variant_status = V.CREATING if status is E.CREATING else V.IN_SERVICE
    variants = [
        Variant("prod", "model-a", {}, variant_status),
        Variant("shadow", "model-b", {}, variant_status),
    ]
    return Experiment(
        account="123456789012",
        name="exp",
        arn="arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp",
        endpoint_name="ep",
        role_arn="arn:aws:iam::123456789012:role/r",
        variants=variants,
        shadow_mode_config={
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 10}],
        },
        start_time=start,
        end_time=start + 86400,
        creation_time=NOW - 100,
        last_modified_time=NOW - 100,
        status=status,
        update_origin=E.RUNNING if status is E.UPDATING else None,
        desired_state=DesiredState.COMPLETED if status is E.STOPPING else None,
    )


def _firing(exp: Experiment, event: str) -> Firing:
    plan: StopPlan | UpdatePlan | None = None
    if event == "stop":
        plan = plan_stop({"shadow": "Promote"}, [], "Completed", None)
    elif event == "update":
        plan = UpdatePlan(description="new")
    return Firing(exp, NOW, plan=plan, reason="boom" if event == "fail" else None)


EXPERIMENT_PAIRS = [(s, e) for s in E for e in EVENTS]
EXPERIMENT_CASES = transition_cases("experiment")
# the hand-written outcomes of a pair that guards route: the statuses each may reach
ROUTED = {
    "Created|Starting": {E.CREATED, E.STARTING},
    "back": {E.CREATED, E.RUNNING},
    "desired": {E.COMPLETED, E.CANCELLED},
}


def test_the_cases_are_every_pair_of_the_hand_written_matrix() -> None:
    assert [(c.status, c.event) for c in EXPERIMENT_CASES] == EXPERIMENT_PAIRS


@pytest.mark.parametrize("case", EXPERIMENT_CASES)
def test_experiment_pair_follows_the_spec_matrix(case: TransitionCase) -> None:
    status, event = case.status, case.event
    assert isinstance(status, E)
    expected = EXPERIMENT_MATRIX[status].get(event, C)
    # the tables (through the case) say what the spec says
    if expected == C:
        assert (case.code, case.targets) == (C, ())
    else:
        assert set(case.targets) == ROUTED.get(str(expected), {expected})
    # and the engine does what the case says
    exp = _experiment(status)
    if not case.allowed:
        before = dataclasses.asdict(exp)
        with pytest.raises(ConflictError) as info:
            fire(exp, event, _firing(exp, event))
        assert (info.value.code, info.value.rule) == (case.code, case.rule)
        assert info.value.status == status.value
        assert info.value.event == event
        assert event in info.value.message
        assert status.value in info.value.message
        assert dataclasses.asdict(exp) == before
        return
    fire(exp, event, _firing(exp, event))
    assert exp.status in case.targets
    if expected == "Created|Starting":
        assert exp.status is E.STARTING  # StartTime has passed
    elif expected == "back":
        assert exp.status is E.RUNNING
    elif expected == "desired":
        assert exp.status is E.COMPLETED
    else:
        assert exp.status is expected


def test_provisioned_with_a_future_start_time_goes_to_created() -> None:
    exp = _experiment(E.CREATING, start=NOW + 3600)
    fire(exp, "provisioned", Firing(exp, NOW))
    assert exp.status is E.CREATED
    assert exp.due_at == NOW + 3600


def test_updated_returns_to_created_when_the_update_left_created() -> None:
    exp = _experiment(E.UPDATING)
    exp.update_origin = E.CREATED
    fire(exp, "updated", Firing(exp, NOW))
    assert exp.status is E.CREATED


def test_stopped_ends_in_cancelled_when_the_stop_asked_for_it() -> None:
    exp = _experiment(E.STOPPING)
    exp.desired_state = DesiredState.CANCELLED
    fire(exp, "stopped", Firing(exp, NOW))
    assert exp.status is E.CANCELLED
    assert exp.completion_time == NOW


def test_stopped_is_refused_while_a_variant_step_is_pending() -> None:
    exp = _experiment(E.STOPPING)
    exp.variants[1].pending = "promoted"
    with pytest.raises(ConflictError) as info:
        fire(exp, "stopped", Firing(exp, NOW))
    assert info.value.rule == "variant_steps_done"
    assert exp.status is E.STOPPING


def test_fail_records_the_error_and_rolls_back_variants_caught_mid_step() -> None:
    exp = _experiment(E.STOPPING)
    fire_variant(exp.variants[0], "remove", pending="removed")
    fire(exp, "fail", Firing(exp, NOW, reason="endpoint update failed"))
    assert exp.status is E.CANCELLED
    assert exp.status_reason == "endpoint update failed"
    assert exp.variants[0].status is V.IN_SERVICE
    assert exp.variants[0].pending is None


def test_fail_while_creating_ends_variants_deleted() -> None:
    exp = _experiment(E.CREATING)
    for v in exp.variants:
        v.pending = "provisioned"
    fire(exp, "fail", Firing(exp, NOW, reason="no capacity"))
    assert [v.status for v in exp.variants] == [V.DELETED, V.DELETED]


VARIANT_PAIRS = [(s, e) for s in V for e in VARIANT_EVENTS]
VARIANT_CASES = transition_cases("variant")


def test_the_variant_cases_are_every_pair_of_the_hand_written_matrix() -> None:
    assert [(c.status, c.event) for c in VARIANT_CASES] == VARIANT_PAIRS


@pytest.mark.parametrize("case", VARIANT_CASES)
def test_variant_pair_follows_the_spec_matrix(case: TransitionCase) -> None:
    status, event = case.status, case.event
    assert isinstance(status, V)
    expected = VARIANT_MATRIX[status].get(event)
    assert case.target == expected
    variant = Variant("v", "model", {}, status)
    if expected is None:
        before = dataclasses.asdict(variant)
        with pytest.raises(ConflictError) as info:
            fire_variant(variant, event)
        assert (info.value.code, info.value.rule) == (case.code, case.rule)
        assert dataclasses.asdict(variant) == before
        return
    fire_variant(variant, event)
    assert variant.status is expected


def test_promoted_puts_the_desired_configuration_in_place() -> None:
    variant = Variant("v", "old-model", {"InfrastructureType": "RealTimeInference"}, V.IN_SERVICE)
    new_infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.c5.large", "InstanceCount": 3},
    }
    fire_variant(
        variant, "promote", pending="promoted", model_name="new-model", infrastructure=new_infra
    )
    assert (variant.model_name, variant.status) == ("old-model", V.UPDATING)
    fire_variant(variant, "promoted")
    assert (variant.model_name, variant.infrastructure, variant.status) == (
        "new-model",
        new_infra,
        V.IN_SERVICE,
    )
