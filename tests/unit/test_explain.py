"""explain(): every rule a request breaks, one entry per rule, empty exactly when invoke succeeds."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import LifecycleError

from .conftest import World, create_request, variant

ACTIONS = st.dictionaries(
    st.sampled_from(["prod", "shadow", "ghost", "bad_key"]),
    st.sampled_from(["Promote", "Remove", "Retain", "Keep"]),
    max_size=3,
)
DESIRED = st.lists(st.sampled_from(["prod", "shadow", "ghost"]).map(variant), max_size=3)


def stop_payloads() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"Name": st.sampled_from(["exp", "nope", "bad name"]), "ModelVariantActions": ACTIONS},
        optional={
            "DesiredModelVariants": DESIRED,
            "DesiredState": st.sampled_from(["Completed", "Cancelled", "Done"]),
            "Reason": st.sampled_from(["ok", "r" * 1025]),
        },
    )


@settings(max_examples=300, deadline=None)
@given(payload=stop_payloads(), status=st.sampled_from(["Running", "Created"]))
def test_explain_is_empty_exactly_when_invoke_succeeds(
    payload: dict[str, Any], status: str
) -> None:
    world = World()
    later: dict[str, Any] = {"Schedule": {"StartTime": world.clock.now + 3600}}
    world.create(**(later if status == "Created" else {}))
    world.reconciler.run_once()
    before = world.snapshot()
    reasons = world.service.explain("StopInferenceExperiment", copy.deepcopy(payload))
    assert world.snapshot() == before, "explain changed the store"
    try:
        world.service.invoke("StopInferenceExperiment", payload)
    except LifecycleError as err:
        assert reasons, f"explain found nothing but invoke raised {err!r}"
        assert err.code in {r.code for r in reasons}
    else:
        assert reasons == []


def test_a_request_breaking_three_rules_gets_three_entries(world: World) -> None:
    world.running()
    payload = {
        "Name": "exp",
        "ModelVariantActions": {"shadow": "Keep"},
        "DesiredState": "Done",
        "Reason": "r" * 1025,
    }
    reasons = world.service.explain("StopInferenceExperiment", payload)
    assert len(reasons) == 3
    assert {r.code for r in reasons} == {"ValidationException"}


def test_three_conflict_rules_get_three_entries(world: World) -> None:
    world.running()
    payload = {
        "Name": "exp",
        "ModelVariantActions": {"prod": "Promote", "ghost": "Retain"},
        "DesiredModelVariants": [variant("other")],
    }
    reasons = world.service.explain("StopInferenceExperiment", payload)
    assert sorted(r.rule or "" for r in reasons) == [
        "known-variant",
        "known-variant",
        "promote-shadow-only",
    ]


def test_explain_names_the_missing_experiment(world: World) -> None:
    [reason] = world.service.explain("DescribeInferenceExperiment", {"Name": "nope"})
    assert reason.code == "ResourceNotFound"


def test_explain_of_a_good_create_is_empty_and_of_a_taken_endpoint_is_resource_in_use(
    world: World,
) -> None:
    from .conftest import create_request

    assert world.service.explain("CreateInferenceExperiment", create_request("one", "ep")) == []
    world.create("one", endpoint="ep")
    codes = [
        r.code
        for r in world.service.explain("CreateInferenceExperiment", create_request("two", "ep"))
    ]
    assert codes == ["ResourceInUse"]


def test_explain_of_an_unknown_operation_says_so(world: World) -> None:
    [reason] = world.service.explain("DoSomething", {})
    assert reason.code == "UnknownOperationException"


def test_a_create_breaking_every_store_rule_lists_each() -> None:
    world = World()
    world.service.max_live_experiments = 1
    world.create("exp", endpoint="shared")
    payload = create_request("exp", endpoint="shared")
    assert [r.rule for r in world.service.explain("CreateInferenceExperiment", payload)] == [
        "unique-name",
        "one-live-experiment-per-endpoint",
        "max-live-experiments",
    ]


def test_an_update_while_running_that_changes_a_variant_and_names_an_unknown_one_lists_both(
    world: World,
) -> None:
    world.running()
    payload = {"Name": "exp", "ModelVariants": [variant("shadow", "model-z"), variant("ghost")]}
    reasons = world.service.explain("UpdateInferenceExperiment", payload)
    assert sorted(r.rule or "" for r in reasons) == ["known-variant", "running-update-fields"]


def test_a_stop_of_a_completed_experiment_naming_an_unknown_variant_lists_both(
    world: World,
) -> None:
    world.running()
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Remove"}}
    )
    world.reconciler.run_once()
    assert world.status() == "Completed"
    payload = {"Name": "exp", "ModelVariantActions": {"ghost": "Retain"}}
    reasons = world.service.explain("StopInferenceExperiment", payload)
    assert [r.rule for r in reasons] == ["stop-from-status", "known-variant"]
    with pytest.raises(LifecycleError) as refused:
        world.service.invoke("StopInferenceExperiment", payload)
    assert refused.value.rule == "stop-from-status"


# -- requests that break two and three rules at once, against a reference --------------------

FLAGS = st.lists(st.booleans(), min_size=3, max_size=3)


@settings(max_examples=40, deadline=None)
@given(flags=FLAGS, completed=st.booleans())
def test_a_stop_lists_each_rule_of_the_stored_experiment_it_breaks(
    flags: list[bool], completed: bool
) -> None:
    ghost_action, ghost_desired, promote_prod = flags
    world = World()
    world.running()
    if completed:
        world.service.invoke(
            "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Remove"}}
        )
        world.reconciler.run_once()
    actions = ({"ghost": "Retain"} if ghost_action else {}) | (
        {"prod": "Promote"} if promote_prod else {}
    )
    actions = actions or {"shadow": "Remove"}  # at most two actions, at least one
    payload: dict[str, Any] = {"Name": "exp", "ModelVariantActions": actions}
    if ghost_desired:
        payload["DesiredModelVariants"] = [variant("phantom")]
    expected = ["stop-from-status"] if completed else []
    expected += ["known-variant"] * (ghost_action + ghost_desired)
    expected += ["promote-shadow-only"] if promote_prod and not completed else []
    reasons = world.service.explain("StopInferenceExperiment", payload)
    assert sorted(r.rule or "" for r in reasons) == sorted(expected)
    if completed:
        assert reasons[0].rule == "stop-from-status"  # invoke's answer comes first


@settings(max_examples=40, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=4, max_size=4))
def test_an_update_while_running_lists_each_field_it_may_not_change(flags: list[bool]) -> None:
    start, model, ghost, storage = flags
    world = World()
    world.running()
    payload: dict[str, Any] = {"Name": "exp", "Description": "always something"}
    if start:
        payload["Schedule"] = {"StartTime": world.clock.now + 60}
    variants = ([variant("shadow", "model-z")] if model else []) + (
        [variant("ghost")] if ghost else []
    )
    if variants:
        payload["ModelVariants"] = variants
    if storage:
        payload["DataStorageConfig"] = {"Destination": "s3://bucket/x"}
    expected = ["running-update-fields"] * (start + model + storage) + ["known-variant"] * ghost
    reasons = world.service.explain("UpdateInferenceExperiment", payload)
    assert sorted(r.rule or "" for r in reasons) == sorted(expected)


@settings(max_examples=30, deadline=None)
@given(flags=FLAGS)
def test_a_create_lists_each_store_rule_it_breaks(flags: list[bool]) -> None:
    name_taken, endpoint_taken, at_limit = flags
    world = World()
    world.create("held", endpoint="busy")
    world.service.max_live_experiments = 1 if at_limit else 100
    payload = create_request(
        "held" if name_taken else "new", endpoint="busy" if endpoint_taken else "free"
    )
    expected = (
        ["unique-name"] * name_taken
        + ["one-live-experiment-per-endpoint"] * endpoint_taken
        + ["max-live-experiments"] * at_limit
    )
    assert [r.rule for r in world.service.explain("CreateInferenceExperiment", payload)] == expected
