"""The order of the checks, for every operation and every rule the service judges itself.

SPEC §3: what the request alone breaks is a ValidationException, whatever is
stored; then a missing experiment is ResourceNotFound; only then do the rules
of the stored experiment answer (ConflictException; for Create the store's
ResourceInUse and ResourceLimitExceeded). Each case below breaks a rule of
one stage and would break a later stage's rule too, so a check moved ahead of
its stage answers with the wrong code. ``explain`` must name the same first
stage as ``invoke``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from lifecycle.domain.catalog import RULE_CATALOG
from lifecycle.domain.statuses import Operation
from lifecycle.errors import LifecycleError

from .conftest import T0, World, create_request, variant

DAY = 86400.0
#: 9999-12-31T23:59:59Z, the last time a client can parse
LAST_SECOND = 253402300799.0

Arrange = Callable[[World], None]


def outcome(world: World, op: str, payload: dict[str, Any]) -> tuple[str, set[str]]:
    """What ``invoke`` answers: its code ("ok" on success) and the rules of the stage that
    refused it, as ``explain`` lists them; explain must name the same stage as invoke."""
    explained = world.service.explain(op, copy.deepcopy(payload))
    rules = {str(e.rule) for e in explained}
    try:
        world.service.invoke(op, copy.deepcopy(payload))
    except LifecycleError as err:
        assert explained, f"explain found nothing but invoke raised {err!r}"
        assert explained[0].code == err.code, (
            f"invoke raised {err.code}, explain's first stage is {[e.code for e in explained]}"
        )
        assert str(err.rule) in rules, (err.rule, rules)
        return err.code, rules
    assert explained == [], f"invoke succeeded but explain found {explained}"
    return "ok", rules


def refused(world: World, op: str, payload: dict[str, Any], code: str, rule: str) -> None:
    """``op`` with ``payload`` is refused with ``code`` for (among others) ``rule``."""
    got, rules = outcome(world, op, payload)
    assert (got, rule in rules) == (code, True), f"{got} for {sorted(rules)}, not {code} for {rule}"


# -- arrangements ----------------------------------------------------------------------------------


def running(world: World) -> None:
    world.running()


def created(world: World) -> None:
    world.create(Schedule={"StartTime": T0 + DAY})
    world.reconciler.run_once()
    assert world.status() == "Created"


def stopping(world: World) -> None:
    world.running()
    world.service.invoke(
        "StopInferenceExperiment",
        {"Name": "exp", "ModelVariantActions": {"shadow": "Remove"}, "DesiredState": "Completed"},
    )
    assert world.status() == "Stopping"


def completed(world: World) -> None:
    stopping(world)
    world.reconciler.run_once()
    assert world.status() == "Completed"


def at_the_live_limit(world: World) -> None:
    """``exp`` is live on ``exp-endpoint``, and it is the one live experiment allowed."""
    world.running()
    world.service.max_live_experiments = 1


class Case(NamedTuple):
    id: str
    op: str
    payload: dict[str, Any]
    rule: str


def smc(source: str, shadow: str) -> dict[str, Any]:
    return {
        "SourceModelVariantName": source,
        "ShadowModelVariants": [{"ShadowModelVariantName": shadow, "SamplingPercentage": 5}],
    }


def named(**members: Any) -> dict[str, Any]:
    """A request for the experiment ``exp`` with ``members``."""
    return {"Name": "exp", **members}


# -- the request alone: judged before existence ---------------------------------------------------

#: requests that break a rule of the request alone, for an experiment named ``exp``
REQUEST_ALONE: list[Case] = [
    Case("update-name-only", "UpdateInferenceExperiment", named(), "update-changes-something"),
    Case(
        "update-end-time-now",
        "UpdateInferenceExperiment",
        named(Schedule={"EndTime": T0}),
        "schedule-end-in-future",
    ),
    Case(
        "update-end-time-in-the-past",
        "UpdateInferenceExperiment",
        named(Schedule={"EndTime": T0 - DAY}),
        "schedule-end-in-future",
    ),
    Case(
        "update-source-is-shadow",
        "UpdateInferenceExperiment",
        named(ShadowModeConfig=smc("prod", "prod")),
        "distinct-source-and-shadow",
    ),
    Case(
        "update-variant-twice",
        "UpdateInferenceExperiment",
        named(ModelVariants=[variant("prod"), variant("prod", "other")]),
        "unique-variant-names",
    ),
    # both times given: judged without the stored schedule
    Case(
        "update-both-times-equal",
        "UpdateInferenceExperiment",
        named(Schedule={"StartTime": T0 + DAY, "EndTime": T0 + DAY}),
        "schedule-end-after-start",
    ),
    Case(
        "update-both-times-over-30-days",
        "UpdateInferenceExperiment",
        named(Schedule={"StartTime": T0 + DAY, "EndTime": T0 + 32 * DAY}),
        "schedule-max-duration",
    ),
    Case(
        "stop-two-promotes",
        "StopInferenceExperiment",
        named(ModelVariantActions={"prod": "Promote", "shadow": "Promote"}),
        "single-promote",
    ),
    Case(
        "stop-desired-variant-twice",
        "StopInferenceExperiment",
        named(
            ModelVariantActions={"shadow": "Promote"},
            DesiredModelVariants=[variant("shadow"), variant("shadow", "other")],
        ),
        "unique-desired-variant",
    ),
    Case(
        "stop-desired-variant-removed",
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Remove"}, DesiredModelVariants=[variant("shadow")]),
        "desired-variant-removed",
    ),
    Case("describe-bad-name", "DescribeInferenceExperiment", {"Name": "bad name"}, "pattern"),
    Case(
        "describe-unknown-member",
        "DescribeInferenceExperiment",
        {"Name": "exp", "Extra": 1},
        "unknown-member",
    ),
    Case(
        "start-unknown-member",
        "StartInferenceExperiment",
        {"Name": "exp", "Extra": 1},
        "unknown-member",
    ),
    Case(
        "delete-unknown-member",
        "DeleteInferenceExperiment",
        {"Name": "exp", "Extra": 1},
        "unknown-member",
    ),
    Case(
        "stop-unknown-action",
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Keep"}),
        "enum",
    ),
    Case(
        "list-forged-token",
        "ListInferenceExperiments",
        {"NextToken": "eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAAAA"},
        "next-token",
    ),
]


@pytest.mark.parametrize("case", REQUEST_ALONE, ids=lambda c: c.id)
def test_a_request_alone_rule_of_a_missing_experiment_is_a_validation_error(
    world: World, case: Case
) -> None:
    refused(world, case.op, case.payload, "ValidationException", case.rule)


#: for each stored-status arrangement, the REQUEST_ALONE cases whose event it refuses
_REFUSING: list[tuple[str, Arrange, list[str]]] = [
    ("completed", completed, ["UpdateInferenceExperiment", "StopInferenceExperiment"]),
    ("stopping", stopping, ["UpdateInferenceExperiment", "StopInferenceExperiment"]),
    ("created", created, ["StopInferenceExperiment"]),
    ("running", running, ["StartInferenceExperiment", "DeleteInferenceExperiment"]),
]


@pytest.mark.parametrize(
    ("arrange", "case"),
    [
        pytest.param(arrange, case, id=f"{case.id}-when-{status}")
        for status, arrange, ops in _REFUSING
        for case in REQUEST_ALONE
        if case.op in ops
    ],
)
def test_a_request_alone_rule_comes_before_the_status_that_refuses_the_event(
    world: World, arrange: Arrange, case: Case
) -> None:
    arrange(world)
    before = world.snapshot()
    refused(world, case.op, case.payload, "ValidationException", case.rule)
    assert world.snapshot() == before


def test_a_stored_schedule_rule_comes_before_the_status_that_refuses_the_update(
    world: World,
) -> None:
    completed(world)  # it started at T0: an EndTime 31 days on is too long, whatever the status
    payload = named(Schedule={"EndTime": T0 + 31 * DAY})
    refused(
        world, "UpdateInferenceExperiment", payload, "ValidationException", "schedule-max-duration"
    )


# -- Create: the request alone before the store's rules -------------------------------------------

#: Create requests that break a rule of the request alone
CREATE_ALONE: list[Case] = [
    Case(
        "variant-twice",
        "CreateInferenceExperiment",
        {"ModelVariants": [variant("prod"), variant("prod", "other")]},
        "unique-variant-names",
    ),
    Case(
        "source-is-shadow",
        "CreateInferenceExperiment",
        {"ShadowModeConfig": smc("prod", "prod")},
        "distinct-source-and-shadow",
    ),
    Case(
        "shadow-not-in-variants",
        "CreateInferenceExperiment",
        {"ShadowModeConfig": smc("prod", "ghost")},
        "variants-in-model-variants",
    ),
    Case(
        "variant-not-in-shadow-config",
        "CreateInferenceExperiment",
        {"ModelVariants": [variant("prod"), variant("extra")]},
        "variants-in-shadow-config",
    ),
    Case(
        "end-time-equals-start-time",
        "CreateInferenceExperiment",
        {"Schedule": {"StartTime": T0 + DAY, "EndTime": T0 + DAY}},
        "schedule-end-after-start",
    ),
    Case(
        "over-30-days",
        "CreateInferenceExperiment",
        {"Schedule": {"StartTime": T0 + DAY, "EndTime": T0 + 32 * DAY}},
        "schedule-max-duration",
    ),
    Case(
        "end-time-now",
        "CreateInferenceExperiment",
        {"Schedule": {"StartTime": T0 - DAY, "EndTime": T0}},
        "schedule-end-in-future",
    ),
    Case(
        "default-end-past-year-9999",
        "CreateInferenceExperiment",
        {"Schedule": {"StartTime": LAST_SECOND - DAY}},
        "schedule-in-range",
    ),
    Case("type-not-shadow-mode", "CreateInferenceExperiment", {"Type": "ABTest"}, "enum"),
]


@pytest.mark.parametrize("case", CREATE_ALONE, ids=lambda c: c.id)
@pytest.mark.parametrize(
    ("arrange", "taken"),
    [
        pytest.param(running, {}, id="name-taken"),
        pytest.param(running, {"Name": "other"}, id="endpoint-taken"),
        pytest.param(at_the_live_limit, {"Name": "other", "EndpointName": "free"}, id="live-limit"),
    ],
)
def test_a_create_breaking_a_request_alone_rule_is_a_validation_error_before_the_store_rules(
    world: World, arrange: Arrange, taken: dict[str, Any], case: Case
) -> None:
    arrange(world)
    payload = {**create_request(), **taken, **case.payload}
    refused(world, case.op, payload, "ValidationException", case.rule)
    assert len(world.store) == 1


@pytest.mark.parametrize(
    ("arrange", "taken", "expected"),
    [
        pytest.param(running, {}, ("ResourceInUse", "unique-name"), id="name-taken"),
        pytest.param(
            running,
            {"Name": "other"},
            ("ResourceInUse", "one-live-experiment-per-endpoint"),
            id="endpoint-taken",
        ),
        pytest.param(
            at_the_live_limit,
            {"Name": "other", "EndpointName": "free"},
            ("ResourceLimitExceeded", "max-live-experiments"),
            id="live-limit",
        ),
    ],
)
def test_a_valid_create_meets_the_store_rules(
    world: World, arrange: Arrange, taken: dict[str, Any], expected: tuple[str, str]
) -> None:
    arrange(world)
    refused(world, "CreateInferenceExperiment", {**create_request(), **taken}, *expected)


def test_a_create_one_below_the_live_limit_is_accepted(world: World) -> None:
    world.running()
    world.service.max_live_experiments = 2
    payload = create_request("other", "free")
    assert outcome(world, "CreateInferenceExperiment", payload) == ("ok", set())


# -- existence: before the rules of the stored experiment -----------------------------------------

#: requests whose only fault is against the stored experiment (arranged as named)
STORED_ONLY: list[tuple[str, Arrange, str, dict[str, Any], str]] = [
    (
        "stop-promote-production",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"prod": "Promote"}),
        "promote-shadow-only",
    ),
    (
        "stop-unknown-variant",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"ghost": "Retain", "shadow": "Remove"}),
        "known-variant",
    ),
    (
        "stop-unknown-desired-variant",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Remove"}, DesiredModelVariants=[variant("ghost")]),
        "known-variant",
    ),
    (
        "stop-promote-and-retain-production",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Promote", "prod": "Retain"}),
        "promotion-replaces-production",
    ),
    (
        "stop-remove-production-alone",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"prod": "Remove"}),
        "production-required",
    ),
    (
        "stop-configure-production-a-promotion-removes",
        running,
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Promote"}, DesiredModelVariants=[variant("prod")]),
        "desired-variant-removed-by-promotion",
    ),
    (
        "stop-not-running",
        created,
        "StopInferenceExperiment",
        named(ModelVariantActions={"shadow": "Remove"}),
        "stop-from-status",
    ),
    (
        "update-unknown-variant",
        created,
        "UpdateInferenceExperiment",
        named(ModelVariants=[variant("ghost")]),
        "known-variant",
    ),
    (
        "update-shadow-config-of-other-variants",
        created,
        "UpdateInferenceExperiment",
        named(ShadowModeConfig=smc("prod", "ghost")),
        "shadow-config-consistent",
    ),
    (
        "update-start-time-while-running",
        running,
        "UpdateInferenceExperiment",
        named(Schedule={"StartTime": T0 + 5}),
        "running-update-fields",
    ),
    (
        "update-not-created-or-running",
        completed,
        "UpdateInferenceExperiment",
        named(Description="d"),
        "update-from-status",
    ),
    (
        "start-not-created",
        running,
        "StartInferenceExperiment",
        {"Name": "exp"},
        "start-from-status",
    ),
    (
        "delete-running",
        running,
        "DeleteInferenceExperiment",
        {"Name": "exp"},
        "delete-from-status",
    ),
]


@pytest.mark.parametrize(
    ("arrange", "op", "payload", "rule"),
    [pytest.param(*rest, id=case_id) for case_id, *rest in STORED_ONLY],
)
def test_a_stored_experiment_rule_is_a_conflict_when_the_experiment_exists(
    world: World, arrange: Arrange, op: str, payload: dict[str, Any], rule: str
) -> None:
    arrange(world)
    refused(world, op, payload, "ConflictException", rule)


@pytest.mark.parametrize(
    ("op", "payload"),
    [pytest.param(op, payload, id=case_id) for case_id, _, op, payload, _ in STORED_ONLY],
)
def test_a_stored_experiment_rule_of_a_missing_experiment_is_resource_not_found(
    world: World, op: str, payload: dict[str, Any]
) -> None:
    refused(world, op, payload, "ResourceNotFound", "experiment-exists")


@pytest.mark.parametrize(
    "op", ["DescribeInferenceExperiment", "StartInferenceExperiment", "DeleteInferenceExperiment"]
)
def test_a_well_formed_request_for_a_missing_experiment_is_resource_not_found(
    world: World, op: str
) -> None:
    refused(world, op, {"Name": "exp"}, "ResourceNotFound", "experiment-exists")


# -- every rule is held here ---------------------------------------------------------------------

#: (rule, operation) pairs of the catalogue that no case above needs
NOT_ORDERED = {
    # a body that is not a JSON object names no experiment: nothing follows it
    *(("body-object", op) for op in Operation),
    # an Update sends no defaults and the shapes keep its times in years 1..9999
    ("schedule-in-range", Operation.UPDATE),
}


def test_every_rule_the_service_judges_has_an_order_case() -> None:
    covered = {(c.rule, c.op) for c in REQUEST_ALONE + CREATE_ALONE}
    covered |= {(rule, op) for _, _, op, _, rule in STORED_ONLY}
    wanted = {
        (rule.id, op)
        for rule in RULE_CATALOG.values()
        if rule.code in ("ValidationException", "ConflictException")
        and rule.id != "versioned-save"  # a race, not a request: tests/integration/test_races.py
        for op in rule.operations
    }
    missing = sorted(str(pair) for pair in wanted - NOT_ORDERED - covered)
    assert not missing, f"no case holds the order of {missing}"
