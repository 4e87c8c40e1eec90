"""shortest_paths, simple_paths, transition_coverage: paths found by running the engine, replayed
through it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lifecycle.domain import machine
from lifecycle.domain.rules import GUARDS, Firing, Refusal
from lifecycle.domain.statuses import ExperimentStatus as E
from lifecycle.domain.statuses import Operation
from lifecycle.domain.table import EXPERIMENT_TABLE, TABLES, VARIANT_TABLE, Transition
from lifecycle.testing import World, _graph
from lifecycle.testing.paths import (
    WAYS,
    Call,
    Path,
    PathError,
    Way,
    shortest_paths,
    simple_paths,
    transition_coverage,
)

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

MACHINES = ["experiment", "variant"]
ALL_SHORTEST = [p for m in MACHINES for p in shortest_paths(m)]


def experiment_rows(path: Path) -> list[tuple[str, str | None, str]]:
    """The experiment rows a path takes, as history shows them: (event, from, to)."""
    return [
        (t.event, t.source.value if t.source else None, t.dest.value)
        for e in path.edges
        for t, variant in e.taken
        if variant is None
    ]


def history(world: World) -> list[tuple[str, str | None, str]]:
    return [
        (h.event, h.from_status.value if h.from_status else None, h.to_status.value)
        for h in world.store.history(ACCOUNT, world.name)
    ]


def ends_where_it_says(path: Path, world: World) -> None:
    described = world.describe()
    variants = world.variant_statuses()
    if path.machine == "experiment":
        assert described["Status"] == path.status.value
    else:
        assert path.variant is not None
        assert variants[path.variant] == path.status.value
    assert described["Status"] == path.experiment_status.value
    assert variants == {n: s.value for n, s in path.variant_statuses.items()}
    assert history(world) == experiment_rows(path)


@pytest.mark.parametrize("machine", MACHINES)
def test_shortest_paths_reach_every_status(machine: str) -> None:
    reached = {p.status for p in shortest_paths(machine)}
    assert reached == set(TABLES[machine].statuses)


@pytest.mark.parametrize("machine", MACHINES)
def test_the_first_paths_are_one_shortest_path_per_status_in_table_order(machine: str) -> None:
    table = TABLES[machine]
    first = shortest_paths(machine)[: len(table.statuses)]
    assert [p.status for p in first] == list(table.statuses)
    assert [len(p) for p in shortest_paths("experiment")[:3]] == [
        1,
        2,
        3,
    ]  # Creating, Created, Updating


@pytest.mark.parametrize("settle", [0.0, 45.0])
@pytest.mark.parametrize("path", ALL_SHORTEST)
def test_each_shortest_path_replayed_through_the_service_ends_where_it_says(
    path: Path, settle: float
) -> None:
    world = path.replay(World(settle=settle), check=False)
    ends_where_it_says(path, world)


@pytest.mark.parametrize("machine", MACHINES)
def test_shortest_paths_leave_no_transition_untested(machine: str) -> None:
    assert transition_coverage(shortest_paths(machine)) == []


def test_the_guarded_alternatives_each_have_a_path() -> None:
    labels = {e.label for p in shortest_paths() for e in p.edges}
    assert {
        "provisioned->Created",
        "provisioned->Starting",
        "updated->Created",
        "updated->Running",
        "stopped->Completed",
        "stopped->Cancelled",
    } <= labels
    assert {f"fail@{s}" for s in ("Creating", "Starting", "Updating", "Stopping")} <= labels


@pytest.mark.parametrize(
    "row", EXPERIMENT_TABLE.transitions, ids=lambda t: f"{t.event}:{t.source}->{t.dest}"
)
def test_coverage_names_a_transition_that_a_path_set_omits(row: Transition) -> None:
    paths = [p for p in shortest_paths() if not any(t is row for t in p.transitions)]
    assert row in transition_coverage(paths)
    assert all(
        any(t is r for p in paths for t in p.transitions)
        for r in EXPERIMENT_TABLE.transitions
        if r not in transition_coverage(paths)
    )


@pytest.mark.parametrize(
    "row", VARIANT_TABLE.transitions, ids=lambda t: f"{t.event}:{t.source}->{t.dest}"
)
def test_coverage_names_a_variant_transition_that_a_path_set_omits(row: Transition) -> None:
    paths = [p for p in shortest_paths("variant") if not any(t is row for t in p.transitions)]
    assert any(t is row for t in transition_coverage(paths, "variant"))


def test_a_row_with_no_recipe_is_reported_untested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(WAYS, "fail")
    untested = transition_coverage(shortest_paths())
    assert [(t.event, t.source) for t in untested] == [
        ("fail", s) for s in (E.CREATING, E.STARTING, E.UPDATING, E.STOPPING)
    ]


def test_a_way_the_engine_refuses_is_an_error_naming_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    promote_prod = Call(Operation.STOP, {"ModelVariantActions": {"prod": "Promote"}})
    monkeypatch.setitem(WAYS, "stop", (*WAYS["stop"], Way("stop(Promote prod)", (promote_prod,))))
    with pytest.raises(PathError, match="promote-shadow-only") as refused:
        shortest_paths()
    assert refused.value.rule == "promote-shadow-only"
    assert "'stop(Promote prod)' from Running" in str(refused.value)


def test_a_new_guard_that_refuses_a_way_is_an_error_not_an_untested_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a new guard in the tables does: the engine refuses the way, and the search says so."""

    def frozen(f: Firing) -> list[Refusal]:
        return [Refusal("created-is-frozen", "a Created experiment cannot be updated")]

    monkeypatch.setitem(GUARDS, "created_is_frozen", frozen)
    [row] = machine.EXPERIMENT_MACHINE.events["update"].transitions["CREATED"]
    guard = row.condition_cls(machine._condition("created_is_frozen"))
    monkeypatch.setattr(row, "conditions", [*row.conditions, guard])
    _graph._explore.cache_clear()  # the graph of the engine as it was
    try:
        with pytest.raises(PathError, match="created-is-frozen") as refused:
            shortest_paths()
        assert "update: Created -> Updating [update_rules_created]" in str(refused.value)
    finally:
        _graph._explore.cache_clear()


def test_coverage_of_no_paths_is_every_row_and_of_mixed_machines_needs_a_machine() -> None:
    assert transition_coverage([]) == list(EXPERIMENT_TABLE.transitions)
    assert transition_coverage([], "variant") == list(VARIANT_TABLE.transitions)
    with pytest.raises(ValueError, match="say which machine"):
        transition_coverage(shortest_paths("experiment") + shortest_paths("variant"))


SIMPLE = simple_paths(max_length=6)


def test_simple_paths_visit_no_node_twice_but_may_close_a_cycle_at_the_end() -> None:
    assert SIMPLE
    for path in SIMPLE:
        nodes = [path.edges[0].source] + [e.dest for e in path.edges]
        assert len(set(nodes[:-1])) == len(nodes) - 1, path
        assert len(path) <= 6
    closing = [p for p in SIMPLE if p.end in [e.source for e in p.edges]]
    assert {p.edges[-1].label for p in closing} == {"updated->Created", "updated->Running"}
    assert max(len(p) for p in simple_paths(max_length=3)) == 3
    assert len({p.id for p in SIMPLE}) == len(SIMPLE)


@pytest.mark.parametrize("machine", MACHINES)
def test_simple_paths_leave_no_transition_untested(machine: str) -> None:
    assert transition_coverage(simple_paths(machine, max_length=10)) == []


@pytest.mark.parametrize("path", SIMPLE)
def test_each_simple_path_replays_as_it_says(path: Path) -> None:
    world = path.replay(World(settle=5.0))  # checks after each event
    ends_where_it_says(path, world)


def test_a_path_and_each_step_can_be_described() -> None:
    [completed] = [p for p in shortest_paths() if p.status is E.COMPLETED]
    text = completed.describe()
    assert (
        completed.id
        == "Completed: create > provisioned->Starting > started > stop(Promote) > stopped->Completed"
    )
    assert 'StopInferenceExperiment {"ModelVariantActions":{"shadow":"Promote"}}' in text
    assert "reconciler: stopped (Stopping -> Completed)" in text
    for path in ALL_SHORTEST:
        assert all(str(step) for step in path.steps)
    fail = next(p for p in shortest_paths() if "fail@Starting" in p.id)
    assert "actuator fails start-shadow-test" in fail.describe()


def test_a_path_that_disagrees_with_the_engine_says_where() -> None:
    [completed] = [p for p in shortest_paths() if p.status is E.COMPLETED]
    *edges, last = completed.edges
    edges.append(replace(last, dest=replace(last.dest, status=E.CANCELLED)))
    wrong = Path("experiment", E.CANCELLED, tuple(edges))
    with pytest.raises(PathError, match="the engine has Completed"):
        wrong.replay(World())
