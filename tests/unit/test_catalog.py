"""The rule catalogue names exactly the rules the engine raises, each with the code its error has."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.domain.catalog import INTERNAL_RULES, RULE_CATALOG, rules_markdown, status_rule
from lifecycle.domain.statuses import OPERATIONS
from lifecycle.domain.table import EXPERIMENT_TABLE, OPERATION_EVENTS
from lifecycle.errors import ConflictError, RuleId
from lifecycle.testing import strategies

from .conftest import World

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


def test_the_catalogue_names_every_rule_id_of_the_engine_and_no_other() -> None:
    status_rules = {status_rule(event) for event in (*OPERATION_EVENTS.values(), "delete")}
    assert set(RULE_CATALOG) == (set(RuleId) - INTERNAL_RULES) | status_rules


def test_each_rules_operations_are_operations_of_the_api() -> None:
    assert all(
        rule.operations and set(rule.operations) <= set(OPERATIONS)
        for rule in RULE_CATALOG.values()
    )


@pytest.mark.parametrize("rule", sorted(set(RULE_CATALOG) & strategies.RULES))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_request_breaking_a_rule_gets_the_code_and_operation_the_catalogue_says(
    rule: str, data: st.DataObject
) -> None:
    case = data.draw(strategies.invalid_requests(rule=rule))
    assert (case.code, case.rule) == (RULE_CATALOG[rule].code, rule)
    assert case.operation in RULE_CATALOG[rule].operations


@pytest.mark.parametrize("rule", sorted(set(RULE_CATALOG) & set(strategies.IMPLIED)))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_rule_broken_only_with_others_gets_the_code_the_catalogue_says(
    rule: str, data: st.DataObject
) -> None:

    case = data.draw(strategies.implied_requests(rule))
    reasons = case.arrange().service.explain(case.operation, case.payload)
    assert [r.code for r in reasons if r.rule == rule] == [RULE_CATALOG[rule].code]
    assert case.operation in RULE_CATALOG[rule].operations


def test_a_stale_save_is_the_versioned_save_rule() -> None:
    world = World()
    world.running()
    stale = world.store.get(ACCOUNT, "exp")
    assert stale is not None
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Promote"}}
    )
    with pytest.raises(ConflictError) as refused:
        world.service.commit(stale, stale.version, [])
    assert (refused.value.code, refused.value.rule) == (
        RULE_CATALOG["versioned-save"].code,
        "versioned-save",
    )


def test_status_rules_say_the_statuses_the_table_allows() -> None:
    for event in ("start", "stop", "update"):
        sources = {
            t.source.value
            for t in EXPERIMENT_TABLE.transitions
            if t.event == event and t.source is not None
        }
        said = RULE_CATALOG[f"{event}-from-status"].asks
        assert all(source in said for source in sources), (event, said)
    assert all(
        s.value in RULE_CATALOG["delete-from-status"].asks for s in EXPERIMENT_TABLE.deletable_from
    )


def test_the_markdown_lists_every_rule_once_in_catalogue_order() -> None:
    rows = [line for line in rules_markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(RULE_CATALOG)
