"""Paths through the lifecycle, generated from the tables (see ``_graph`` for the graph they walk).

:func:`shortest_paths` and :func:`simple_paths` walk the graph of
``_graph``; :func:`transition_coverage` says which table rows a set of
paths never takes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.domain.table import EXPERIMENT_TABLE, MachineTable, Transition
from lifecycle.testing._cases import table_of
from lifecycle.testing._graph import NEW, Edge, Node, edges
from lifecycle.testing._steps import PathError, PathStep

if TYPE_CHECKING:
    from lifecycle.testing._world import World

__all__ = ["Path", "describe_rows", "shortest_paths", "simple_paths", "transition_coverage"]


# --- paths ---------------------------------------------------------------------------


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


def _bfs() -> tuple[list[Node], dict[Node, tuple[Edge, ...]], dict[Node, list[Edge]]]:
    """Breadth-first from a new experiment: nodes in visiting order, a shortest path to each."""
    order: list[Node] = [NEW]
    to: dict[Node, tuple[Edge, ...]] = {NEW: ()}
    out: dict[Node, list[Edge]] = {}
    queue = deque([NEW])
    while queue:
        node = queue.popleft()
        out[node] = list(edges(node))
        for edge in out[node]:
            if edge.dest not in to:
                to[edge.dest] = (*to[node], edge)
                order.append(edge.dest)
                queue.append(edge.dest)
    return order, to, out


def shortest_paths(machine: str = "experiment") -> list[Path]:
    """A shortest path to every status of ``machine``, then one for every row no such path takes.

    The first ``len(statuses)`` paths reach each status in table order (a
    status no path can reach is missing: :func:`transition_coverage` then
    names its rows); each further path ends by taking a row the earlier ones
    leave out, so together they take every row that can be taken: the
    guarded alternatives (Created vs Starting after provisioned; back to
    Created vs Running after updated; Completed vs Cancelled after stopped)
    and fail from every status it leaves.
    """
    table = table_of(machine)
    order, to, out = _bfs()
    paths: list[Path] = []
    for status in table.statuses:
        for node in order:
            hit = [name for s, name in _reached(table.name, node) if s == status]
            if hit and to[node]:
                paths.append(
                    Path(table.name, status, to[node], hit[0], "shortest path to the status")
                )
                break
    taken = {id(t) for p in paths for t in p.transitions}
    rows = {id(t) for t in table.transitions}
    for node in order:
        for edge in out[node]:
            for row, name in edge.taken:
                if id(row) in rows and id(row) not in taken:
                    path_edges = (*to[node], edge)
                    paths.append(
                        Path(table.name, row.dest, path_edges, name, f"takes {_row_id(row)}")
                    )
                    taken.update(id(t) for e in path_edges for t, _ in e.taken)
    return paths


def simple_paths(machine: str = "experiment", *, max_length: int = 8) -> list[Path]:
    """Every path of at most ``max_length`` events that visits no node twice, except that
    its last event may close a cycle (go back to a node the path has passed).

    A node is the experiment's status with what decides its guards (see the
    module docstring). Closing cycles is what lets these paths take the rows
    that lead back (``updated`` to Created or Running): with a long enough
    ``max_length`` they take every row a path can take. Each path's
    ``status`` is the status it ends in (for the variant machine: that of the
    variant the last event changed).
    """
    table = table_of(machine)
    result: list[Path] = []

    def walk(node: Node, path: tuple[Edge, ...], seen: frozenset[Node]) -> None:
        for edge in edges(node):
            longer = (*path, edge)
            result.append(_label(table, longer))
            if edge.dest not in seen and len(longer) < max_length:
                walk(edge.dest, longer, seen | {edge.dest})

    walk(NEW, (), frozenset({NEW}))
    return result


def _label(table: MachineTable, path: tuple[Edge, ...]) -> Path:
    last = path[-1]
    if table is EXPERIMENT_TABLE or table.name == EXPERIMENT_TABLE.name:
        assert last.dest.status is not None
        return Path(table.name, last.dest.status, path)
    for edge in reversed(path):
        vrows = [(row, name) for row, name in edge.taken if name is not None]
        if vrows:
            _, name = vrows[-1]
            return Path(table.name, edge.dest.variant(name).status, path, name)
    raise AssertionError("a path always creates its variants")


def _row_id(row: Transition) -> str:
    source = row.source.value if row.source is not None else "(new)"
    guards = f" [{', '.join(row.guards)}]" if row.guards else ""
    return f"{row.event}: {source} -> {row.dest.value}{guards}"


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


def describe_rows(rows: Sequence[Transition]) -> list[str]:
    """Each row as ``event: Source -> Dest [guards]``."""
    return [_row_id(r) for r in rows]
