"""lifecycle.testing.strategies: valid requests succeed, each invalid one breaks the one rule it names,
and together the invalid ones break every rule the engine checks."""

from __future__ import annotations

from pathlib import Path

import botocore.loaders
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle
from lifecycle.domain.catalog import RULE_CATALOG
from lifecycle.errors import LifecycleError
from lifecycle.testing import strategies
from lifecycle.testing.strategies import RequestCase
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Enum, Int, Size, Str


def request_rule_ids() -> set[str]:
    """Every rule id a request can break beyond the shapes (a stale save is a race, not a request)."""
    return set(RULE_CATALOG) - {"versioned-save"}


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PACKAGE = Path(lifecycle.__file__).parent


def refused_as_it_says(case: RequestCase) -> None:
    world = case.arrange()
    before = world.snapshot()
    reasons = world.service.explain(case.operation, case.payload)
    assert [(r.code, r.rule) for r in reasons] == [(case.code, case.rule)], f"{case.id}: {reasons}"
    with pytest.raises(LifecycleError) as refused:
        world.service.invoke(case.operation, case.payload)
    assert (refused.value.code, refused.value.rule) == (case.code, case.rule), refused.value.message
    if case.field is not None:
        assert refused.value.field == case.field, refused.value.message
    assert world.snapshot() == before, "a refused request changed the store"


# --- valid requests ------------------------------------------------------------------------------


@SETTINGS
@given(case=strategies.valid_requests())
def test_every_valid_request_succeeds_on_an_experiment_in_its_status(case: RequestCase) -> None:
    world = case.arrange()
    assert world.service.explain(case.operation, case.payload) == []
    world.service.invoke(case.operation, case.payload)


@pytest.mark.parametrize("operation", strategies.OPERATIONS)
@SETTINGS
@given(data=st.data())
def test_valid_requests_of_each_operation_succeed(operation: str, data: st.DataObject) -> None:
    case = data.draw(strategies.valid_requests(operation))
    assert case.operation == operation
    assert case.valid
    case.arrange().service.invoke(case.operation, case.payload)


@pytest.mark.parametrize("status", ["Created", "Running"])
@SETTINGS
@given(data=st.data())
def test_valid_updates_succeed_in_both_statuses_that_allow_them(
    status: str, data: st.DataObject
) -> None:
    case = data.draw(strategies.valid_requests("UpdateInferenceExperiment", status=status))
    world = case.arrange()
    world.service.invoke(case.operation, case.payload)
    assert world.status() == "Updating"


def test_a_status_where_an_operation_cannot_succeed_is_refused() -> None:
    with pytest.raises(ValueError, match="does not succeed in Running"):
        strategies.valid_requests("StartInferenceExperiment", status="Running")


# --- invalid requests: one rule each --------------------------------------------------------------


@SETTINGS
@given(case=strategies.invalid_requests())
def test_every_invalid_request_is_refused_with_the_rule_it_says_it_breaks(
    case: RequestCase,
) -> None:
    refused_as_it_says(case)


@pytest.mark.parametrize("rule", sorted(strategies.RULES))
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_each_rule_has_requests_that_break_it_alone(rule: str, data: st.DataObject) -> None:
    case = data.draw(strategies.invalid_requests(rule=rule))
    assert case.constraint == rule
    refused_as_it_says(case)
    assert data.draw(strategies.invalid_requests(rule=rule, code=case.code)).constraint == rule


@SETTINGS
@given(case=strategies.invalid_requests(code="ConflictException"))
def test_conflict_requests_need_a_stored_experiment_in_a_given_status(case: RequestCase) -> None:
    assert case.status is not None
    refused_as_it_says(case)


@pytest.mark.parametrize("rule", sorted(strategies.IMPLIED))
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_an_implied_rule_comes_with_the_rules_it_says(rule: str, data: st.DataObject) -> None:
    case = data.draw(strategies.implied_requests(rule))
    world = case.arrange()
    reasons = world.service.explain(case.operation, case.payload)
    assert reasons
    assert reasons[0].rule == case.rule
    assert len(reasons) == 1 + len(strategies.IMPLIED[rule])


@pytest.mark.parametrize("operation", strategies.OPERATIONS)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_invalid_requests_of_one_operation_are_of_that_operation(
    operation: str, data: st.DataObject
) -> None:
    case = data.draw(strategies.invalid_requests(operation))
    assert case.operation == operation
    assert case.constraint in strategies.rules_of(operation)


def test_an_unknown_rule_or_operation_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="IMPLIED"):
        strategies.invalid_requests(rule="variants-in-shadow-config")
    with pytest.raises(ValueError, match="unknown operations"):
        strategies.invalid_requests("ListEndpoints")


# --- the rules the engine checks, read from the engine ------------------------------------------


def _constraint_rule_ids(name: str, kind: str, spec: Str | Enum | Int | Size | None) -> set[str]:
    """The rules of one shape's own constraint (length, pattern, enum, range)."""
    if kind == "timestamp":
        return {f"{name}:min-value", f"{name}:max-value"}
    if isinstance(spec, Enum):
        return {f"{name}:enum"}
    if isinstance(spec, Int):
        return {f"{name}:min-value", f"{name}:max-value"}  # 32-bit where the model has no bound
    out: set[str] = set()
    if isinstance(spec, Str | Size):
        if (spec.min or 0) > 0:
            out.add(f"{name}:min-length")
        if spec.max is not None:
            out.add(f"{name}:max-length")
        if isinstance(spec, Str) and spec.check is not None:
            out.add(f"{name}:pattern")
    return out


def _shape_rule_ids() -> set[str]:
    """Every shape rule of the seven requests, from the service model and the wire layer's constraints."""
    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")["shapes"]
    out: set[str] = set()
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        shape = model[name]
        kind = shape["type"]
        if kind == "structure":
            out.add(f"{name}:unknown-member")
            out.update(f"{name}.{m}:not-null" for m in shape.get("required", ()))
            for member in shape["members"].values():
                out.add(f"{model[member['shape']]['type']}:type")
                walk(member["shape"])
        elif kind == "list":
            walk(shape["member"]["shape"])
        elif kind == "map":
            walk(shape["key"]["shape"])
            walk(shape["value"]["shape"])
        out.update(_constraint_rule_ids(name, kind, shapes.CONSTRAINTS.get(name)))

    for operation in strategies.OPERATIONS:
        walk(f"{operation}Request")
    return out


def test_the_invalid_strategies_break_every_rule_the_engine_checks() -> None:
    engine = _shape_rule_ids() | request_rule_ids()
    ours = set(strategies.RULES) | set(strategies.IMPLIED)
    assert sorted(engine - ours) == [], "rules no strategy breaks"
    assert sorted(ours - engine) == [], "rules the engine does not check"


def test_each_rules_requests_send_operations_the_catalogue_gives_it() -> None:
    for rule, by_operation in strategies.RULE_CASES.items():
        assert set(by_operation) <= set(RULE_CATALOG[rule].operations), rule
        for operation in by_operation:
            assert rule in strategies.rules_of(operation), (rule, operation)


def test_the_request_rules_are_the_ones_a_request_can_break() -> None:
    ids = request_rule_ids()
    assert {
        "single-promote",
        "promote-shadow-only",
        "stop-from-status",
        "delete-from-status",
        "next-token",
        "unique-name",
        "max-live-experiments",
        "experiment-exists",
        "body-object",
    } <= ids
    assert "left_created" not in ids
    assert "provisioned-from-status" not in ids
