"""Paths through the lifecycle, found by running the engine, and the rows they leave untested.

A :class:`Path` is a sequence of steps from a new experiment: operations
with a payload (:class:`Call`), reconciler steps (:class:`Reconcile`),
clock advances (:class:`Advance`) and an actuator that fails
(:class:`Fail`). The paths are found by carrying the :data:`WAYS` out on a
real engine, node by node (see ``_graph``), so each step of a path is one
the engine took and each row a path says it takes is one the engine
reported. :func:`shortest_paths` and :func:`simple_paths` list them,
:func:`path_to` finds one to a status, :func:`transition_coverage` names
the table rows a set of paths never takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.domain.table import EXPERIMENT_TABLE, MachineTable, Transition
from lifecycle.testing._cases import table_of
from lifecycle.testing._graph import NEW, Edge, Node, explore, row_id
from lifecycle.testing._steps import Advance, Call, Fail, Later, PathError, PathStep, Reconcile
from lifecycle.testing._ways import WAYS, Way
from lifecycle.testing._world import World

__all__ = [
    "WAYS",
    "Advance",
    "Call",
    "Fail",
    "Later",
    "Path",
    "PathError",
    "Reconcile",
    "Way",
    "path_to",
    "shortest_paths",
    "simple_paths",
    "transition_coverage",
]

Ways = Mapping[str, Sequence[Way]]


@dataclass(frozen=True, slots=True)
class Path:
    """A sequence of experiment events from a new experiment, as steps.

    ``status`` is the status the path reaches in ``machine`` (for the
    variant machine, the status of ``variant``); ``transitions`` every row
    it takes, in order (experiment and variant rows); ``steps`` what to do.
    ``replay(world)`` carries the steps out on ``world.name`` and checks
    after each event that the engine is where the path says.
    """

    machine: str
    status: StrEnum
    edges: tuple[Edge, ...]
    variant: str | None = None
    reason: str = ""

    @property
    def steps(self) -> tuple[PathStep, ...]:
        return tuple(s for e in self.edges for s in e.steps)

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(t for e in self.edges for t, _ in e.taken)

    @property
    def end(self) -> Node:
        return self.edges[-1].dest if self.edges else NEW

    @property
    def experiment_status(self) -> ExperimentStatus:
        status = self.end.status
        assert status is not None
        return status

    @property
    def variant_statuses(self) -> dict[str, VariantStatus]:
        return {v.name: v.status for v in self.end.variants}

    @property
    def id(self) -> str:
        where = f"{self.variant} {self.status.value}" if self.variant else self.status.value
        return f"{where}: " + " > ".join(e.label for e in self.edges)

    @property
    def __name__(self) -> str:  # pytest takes a parameter's id from a str ``__name__``
        return self.id

    def __len__(self) -> int:
        return len(self.edges)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"Path({self.id!r})"

    def describe(self) -> str:
        """The steps, one a line, each under the event it fires."""
        lines = [
            f"{self.machine} path to {self.status.value}"
            + (f" ({self.reason})" if self.reason else "")
        ]
        for e in self.edges:
            lines.append(f"  {e.label}: {e.source} -> {e.dest}")
            lines.extend(f"    - {s}" for s in e.steps)
        return "\n".join(lines)

    def replay(self, world: World, *, check: bool = True) -> World:
        """Carry the steps out on ``world.name``; with ``check``, after each event compare the
        experiment's and variants' statuses with the path's (``PathError`` if they differ)."""
        for edge in self.edges:
            for step in edge.steps:
                step.apply(world)
            if check:
                got = world.describe()
                want = edge.dest
                got_variants = {v["VariantName"]: v["Status"] for v in got["ModelVariants"]}
                want_variants = {v.name: v.status.value for v in want.variants}
                assert want.status is not None
                if got["Status"] != want.status.value or got_variants != want_variants:
                    raise PathError(
                        f"after {edge.label!r} of {self.id!r}: the engine has {got['Status']} {got_variants}, "
                        f"the path says {want.status.value} {want_variants}"
                    )
        return world


def _reached(machine: str, node: Node) -> list[tuple[StrEnum, str | None]]:
    """The statuses of ``machine`` that ``node`` is in (for variants: with the variant's name)."""
    if machine == EXPERIMENT_TABLE.name:
        return [] if node.status is None else [(node.status, None)]
    return [(v.status, v.name) for v in node.variants]


def shortest_paths(machine: str = "experiment", *, ways: Ways | None = None) -> list[Path]:
    """A shortest path to every status of ``machine``, then one for every row no such path takes.

    The first ``len(statuses)`` paths reach each status in table order (a
    status no path can reach is missing: :func:`transition_coverage` then
    names its rows); each further path ends by taking a row the earlier ones
    leave out, so together they take every row the ways can take: the
    guarded alternatives (Created vs Starting after provisioned; back to
    Created vs Running after updated; Completed vs Cancelled after stopped)
    and fail from every status it leaves. ``ways`` replaces :data:`WAYS`.
    """
    table = table_of(machine)
    graph = explore(ways)
    paths: list[Path] = []
    for status in table.statuses:
        for node in graph.order:
            hit = [name for s, name in _reached(table.name, node) if s == status]
            if hit and graph.to[node]:
                path = Path(
                    table.name, status, graph.to[node], hit[0], "shortest path to the status"
                )
                paths.append(path)
                break
    taken = {id(t) for p in paths for t in p.transitions}
    rows = {id(t) for t in table.transitions}
    for node in graph.order:
        for edge in graph.out[node]:
            for row, name in edge.taken:
                if id(row) in rows and id(row) not in taken:
                    path_edges = (*graph.to[node], edge)
                    paths.append(
                        Path(table.name, row.dest, path_edges, name, f"takes {row_id(row)}")
                    )
                    taken.update(id(t) for e in path_edges for t, _ in e.taken)
    return paths


def simple_paths(
    machine: str = "experiment", *, max_length: int = 8, ways: Ways | None = None
) -> list[Path]:
    """Every path of at most ``max_length`` events that visits no node twice, except that
    its last event may close a cycle (go back to a node the path has passed).

    A node is the experiment's status with what decides its guards (see
    ``_graph``). Closing cycles is what lets these paths take the rows that
    lead back (``updated`` to Created or Running): with a long enough
    ``max_length`` they take every row a path can take. Each path's
    ``status`` is the status it ends in (for the variant machine: that of the
    variant the last event changed). ``ways`` replaces :data:`WAYS`.
    """
    table = table_of(machine)
    out = explore(ways).out
    result: list[Path] = []

    def walk(node: Node, path: tuple[Edge, ...], seen: frozenset[Node]) -> None:
        for edge in out[node]:
            longer = (*path, edge)
            result.append(_label(table, longer))
            if edge.dest not in seen and len(longer) < max_length:
                walk(edge.dest, longer, seen | {edge.dest})

    walk(NEW, (), frozenset({NEW}))
    return result


def _label(table: MachineTable, path: tuple[Edge, ...]) -> Path:
    last = path[-1]
    if table.name == EXPERIMENT_TABLE.name:
        assert last.dest.status is not None
        return Path(table.name, last.dest.status, path)
    for edge in reversed(path):
        vrows = [(row, name) for row, name in edge.taken if name is not None]
        if vrows:
            _, name = vrows[-1]
            return Path(table.name, edge.dest.variant(name).status, path, name)
    raise AssertionError("a path always creates its variants")


def transition_coverage(paths: Iterable[Path], machine: str | None = None) -> list[Transition]:
    """The rows of ``machine`` that no path in ``paths`` takes, in table order.

    ``machine`` defaults to the machine of the paths (``experiment`` when
    there are none). Empty means every transition is tested.
    """
    paths = list(paths)
    names = {p.machine for p in paths}
    if machine is None:
        if len(names) > 1:
            raise ValueError(
                f"paths of several machines ({', '.join(sorted(names))}): say which machine"
            )
        machine = names.pop() if names else EXPERIMENT_TABLE.name
    table = table_of(machine)
    # rows compare by identity: the two tables' create rows are equal as data
    # (StrEnum members of both machines compare equal by value)
    taken = {id(t) for p in paths for t in p.transitions}
    return [t for t in table.transitions if id(t) not in taken]


def _status(status: str | StrEnum, variant: str | None) -> ExperimentStatus | VariantStatus:
    value = status.value if isinstance(status, StrEnum) else status
    if variant is None and value in set(ExperimentStatus):
        return ExperimentStatus(value)
    if value in set(VariantStatus):
        return VariantStatus(value)
    known = dict.fromkeys([*ExperimentStatus, *VariantStatus])
    raise ValueError(f"{value!r} is not a status; the statuses are: {', '.join(known)}")


def path_to(status: str | StrEnum, *, variant: str | None = None) -> Path:
    """A shortest path that leaves the experiment in ``status``.

    With ``variant`` (``"prod"`` or ``"shadow"``), ``status`` is that
    variant's status; a status only variants have (``InService``,
    ``Deleting``, ``Deleted``) means any variant.
    """
    want = _status(status, variant)
    graph = explore()
    for node in graph.order[1:]:
        if isinstance(want, ExperimentStatus) and node.status is want:
            return Path("experiment", want, graph.to[node], None, "shortest path to the status")
        for v in node.variants if isinstance(want, VariantStatus) else ():
            if v.status is want and variant in (None, v.name):
                edges = graph.to[node]
                return Path("variant", want, edges, v.name, "shortest path to the variant status")
    where = f"variant {variant!r} " if variant else ""
    raise LookupError(f"no path leaves {where}in {want.value}")
