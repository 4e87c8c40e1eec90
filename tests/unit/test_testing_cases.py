"""transition_cases(): every (status, event) pair with its outcome, read from the tables."""

from __future__ import annotations

import pytest

from lifecycle.domain.statuses import ExperimentStatus as E
from lifecycle.domain.statuses import VariantStatus as V
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE
from lifecycle.testing import TransitionCase, transition_cases

from .test_transitions import EXPERIMENT_MATRIX, ROUTED, VARIANT_MATRIX


def test_experiment_cases_agree_with_the_hand_written_matrix() -> None:
    for case in transition_cases("experiment"):
        assert isinstance(case.status, E)
        expected = EXPERIMENT_MATRIX[case.status].get(case.event, "ConflictException")
        if expected == "ConflictException":
            assert not case.allowed, case
            assert case.expected == expected
        else:
            assert set(case.targets) == ROUTED.get(str(expected), {expected}), case


def test_variant_cases_agree_with_the_hand_written_matrix() -> None:
    for case in transition_cases("variant"):
        assert isinstance(case.status, V)
        assert case.target == VARIANT_MATRIX[case.status].get(case.event), case


def test_every_status_meets_every_event_once() -> None:
    for table in (EXPERIMENT_TABLE, VARIANT_TABLE):
        cases = transition_cases(table.name)
        events = [e for e in table.events if e != "create"]
        assert [(c.status, c.event) for c in cases] == [
            (s, e) for s in table.statuses for e in events
        ]


def test_ids_are_readable_and_unique() -> None:
    ids = [c.id for c in transition_cases()]
    assert len(set(ids)) == len(ids)
    assert "Running-stop->Stopping" in ids
    assert "Creating-provisioned->Created|Starting" in ids
    assert "Completed-stop->ConflictException" in ids


def test_a_refused_case_names_the_error_code_and_the_rule() -> None:
    [case] = [c for c in transition_cases() if c.id == "Completed-stop->ConflictException"]
    assert (case.code, case.rule, case.rows, case.target) == (
        "ConflictException",
        "stop-from-status",
        (),
        None,
    )
    [vcase] = [
        c for c in transition_cases("variant") if c.status is V.DELETED and c.event == "remove"
    ]
    assert vcase.rule == "variant-remove-from-status"


def test_an_allowed_case_has_its_rows_and_their_guards() -> None:
    [case] = [c for c in transition_cases() if c.status is E.STOPPING and c.event == "stopped"]
    assert case.targets == (E.COMPLETED, E.CANCELLED)
    assert case.guards == (
        ("variant_steps_done", "desired_completed"),
        ("variant_steps_done", "desired_cancelled"),
    )
    assert (case.code, case.rule, case.target) == (None, None, None)


def test_an_unknown_machine_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="experiment, variant"):
        transition_cases("robot")


@pytest.mark.parametrize("case", transition_cases()[:3])
def test_pytest_takes_the_case_id_as_the_parameter_id(
    case: TransitionCase, request: pytest.FixtureRequest
) -> None:
    assert request.node.name == f"test_pytest_takes_the_case_id_as_the_parameter_id[{case.id}]"
    assert str(case) == case.id
    assert case.id in repr(case)
