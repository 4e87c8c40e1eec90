"""explain(): every rule a request breaks, one entry per rule, empty exactly when invoke succeeds."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import LifecycleError

from .conftest import World, variant

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
    world.create(
        **({"Schedule": {"StartTime": world.clock.now + 3600}} if status == "Created" else {})
    )
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
