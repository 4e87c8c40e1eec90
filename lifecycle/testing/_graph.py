"""The graph the paths walk, found by running the engine: its nodes, and the edges it takes.

A *node* is what the engine's record says decides what can follow: the
experiment's status, each variant's status and pending step, and what the
routing guards read (whether Schedule.StartTime is still ahead, the status
an update came from, the stop's DesiredState). An *edge* is a way
(``_ways``) the engine took from a node.

To expand a node, the search replays a shortest path to it on a new
in-memory :class:`~lifecycle.testing.World`, carries one way out, and reads
the edge from the engine: where it leads from the record, the experiment
rows it took from the history entries, the variant rows from the variant
machine as it takes them (and the variants a create makes, from the
record). Nothing here models a guard: a way is an edge exactly when the
engine takes it, and a way the engine refuses from a status it is offered
from raises :class:`~lifecycle.testing.paths.PathError` naming the rule.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple, cast

from transitions import EventData

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.machine import VARIANT_MACHINE
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantStatus
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE, Transition
from lifecycle.errors import LifecycleError
from lifecycle.testing._steps import Fail, PathError, PathStep, Reconcile, next_action
from lifecycle.testing._ways import WAYS, Way
from lifecycle.testing._world import World

__all__ = ["NEW", "Edge", "Graph", "Node", "VariantNode", "explore", "row_id"]

#: the experiment the search arranges
NAME = "exp"


@dataclass(frozen=True, slots=True)
class VariantNode:
    name: str
    status: VariantStatus
    pending: str | None = None  # the variant event that ends its step


@dataclass(frozen=True, slots=True)
class Node:
    """Where a path is: the experiment's status and what decides the guards of what follows."""

    status: ExperimentStatus | None  # None: not created yet
    variants: tuple[VariantNode, ...] = ()
    future_start: bool = False
    origin: ExperimentStatus | None = None
    desired: DesiredState | None = None

    def variant(self, name: str) -> VariantNode:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def __str__(self) -> str:
        if self.status is None:
            return "(new)"
        vs = ", ".join(f"{v.name} {v.status.value}" for v in self.variants)
        return f"{self.status.value} [{vs}]"


NEW = Node(None)

#: a row taken, with the variant it was taken by (None for the experiment's own rows)
Taken = tuple[Transition, str | None]


@dataclass(frozen=True, slots=True)
class Edge:
    """One experiment event on a path: its steps and every row it takes (the experiment's first)."""

    label: str
    steps: tuple[PathStep, ...]
    taken: tuple[Taken, ...]
    source: Node
    dest: Node


class Graph(NamedTuple):
    """Every node reachable from a new experiment, in breadth-first order, with a
    shortest path to each (``to``) and the edges that leave it (``out``)."""

    order: tuple[Node, ...]
    to: dict[Node, tuple[Edge, ...]]
    out: dict[Node, tuple[Edge, ...]]


def row_id(row: Transition) -> str:
    """A row as ``event: Source -> Dest [guards]``."""
    source = row.source.value if row.source is not None else "(new)"
    guards = f" [{', '.join(row.guards)}]" if row.guards else ""
    return f"{row.event}: {source} -> {row.dest.value}{guards}"


def _node_of(exp: Experiment | None, now: float) -> Node:
    if exp is None:
        return NEW
    variants = tuple(VariantNode(v.name, v.status, v.pending) for v in exp.variants)
    return Node(exp.status, variants, exp.start_time > now, exp.update_origin, exp.desired_state)


@contextmanager
def _variant_rows_taken() -> Iterator[list[Taken]]:
    """The rows the variant machine takes on this thread while the block runs, as it takes
    them (an ``after`` callback on each of its rows, removed on the way out)."""
    taken: list[Taken] = []
    me = threading.get_ident()
    hooks = []
    for row in VARIANT_TABLE.transitions:
        if row.source is None:  # the service makes new variants: read from the record
            continue

        def seen(event_data: EventData, row: Transition = row) -> None:
            variant = cast(Variant, event_data.model)
            if threading.get_ident() == me:
                taken.append((row, variant.name))

        for t in VARIANT_MACHINE.events[row.event].transitions[row.source.name]:
            if t.dest == row.dest.name:
                t.after.append(seen)
                hooks.append((t, seen))
    try:
        yield taken
    finally:
        for t, fn in hooks:
            t.after.remove(fn)


_VARIANT_CREATE = next(t for t in VARIANT_TABLE.transitions if t.source is None)


def _experiment_row(entry: HistoryEntry) -> Transition:
    rows = [
        t
        for t in EXPERIMENT_TABLE.rows(entry.event, entry.from_status)
        if t.dest == entry.to_status
    ]
    if len(rows) != 1:
        raise PathError(f"the history has {entry}, which is {len(rows)} rows of the table")
    return rows[0]


def _refusal(node: Node, event: str, label: str, err: LifecycleError | PathError) -> PathError:
    rule = err.rule
    said = f"{err.code} {rule}" if isinstance(err, LifecycleError) else "PathError"
    rows = "; ".join(row_id(r) for r in EXPERIMENT_TABLE.rows(event, node.status))
    return PathError(
        f"the engine refused the way {label!r} from {node} ({said}: {err}), where the table "
        f"has {rows}: give the way steps the engine takes there, or leave the status out of "
        "its sources",
        rule,
    )


def _carry_out(node: Node, prefix: tuple[Edge, ...], event: str, way: Way) -> Edge:
    """Carry ``way`` out after ``prefix`` on a new world, and read the edge off the engine."""
    world = World(name=NAME)
    for edge in prefix:
        for step in edge.steps:
            step.apply(world)
    before = world.record(NAME)
    seen = len(world.history(NAME))
    label = way.label.format(source=node.status.value if node.status else "")
    if before is not None:  # a Fail of the next step: the one the record says is next
        steps = tuple(Fail(next_action(before)) if s == Fail() else s for s in way.steps)
    else:
        steps = way.steps
    try:
        with _variant_rows_taken() as variant_rows:
            for step in steps:
                step.apply(world)
    except (LifecycleError, PathError) as err:
        raise _refusal(node, event, label, err) from err
    entries = world.history(NAME)[seen:]
    if not entries or entries[0].event != event:
        fired = entries[0].event if entries else "nothing"
        raise PathError(f"the way {label!r} from {node} fired {fired}, not {event}")
    rows = [_experiment_row(e) for e in entries]
    after = world.record(NAME)
    assert after is not None
    created = [
        (_VARIANT_CREATE, v.name)
        for v in after.variants
        if before is None or before.variant(v.name) is None
    ]
    first = rows[0]
    if len({r.dest for r in EXPERIMENT_TABLE.rows(event, node.status)}) > 1:  # guards chose
        label = f"{label}->{first.dest.value}"
    note = f"{first.event} ({first.source.value if first.source else ''} -> {first.dest.value})"
    steps = tuple(
        replace(s, note=note) if isinstance(s, Reconcile) and s.note is None else s for s in steps
    )
    taken = (*((r, None) for r in rows), *created, *variant_rows)
    return Edge(label, steps, taken, node, _node_of(after, world.clock()))


def _ways_from(node: Node, ways: Mapping[str, Sequence[Way]]) -> Iterator[tuple[str, Way]]:
    """The ways offered from ``node``: of each event with a row leaving its status, in table order."""
    for event in EXPERIMENT_TABLE.events:
        if EXPERIMENT_TABLE.rows(event, node.status):
            for way in ways.get(event, ()):
                if not way.sources or node.status in way.sources:
                    yield event, way


def explore(ways: Mapping[str, Sequence[Way]] | None = None) -> Graph:
    """Breadth-first from a new experiment, expanding each node by carrying every way offered
    from it out on the engine (:data:`~lifecycle.testing.paths.WAYS` unless given);
    remembered per set of ways."""
    chosen = WAYS if ways is None else ways
    return _explore(tuple((event, tuple(w)) for event, w in chosen.items()))


@functools.lru_cache(maxsize=16)
def _explore(ways: tuple[tuple[str, tuple[Way, ...]], ...]) -> Graph:
    by_event = dict(ways)
    order: list[Node] = [NEW]
    to: dict[Node, tuple[Edge, ...]] = {NEW: ()}
    out: dict[Node, tuple[Edge, ...]] = {}
    queue = deque([NEW])
    while queue:
        node = queue.popleft()
        prefix = to[node]
        out[node] = tuple(_carry_out(node, prefix, e, w) for e, w in _ways_from(node, by_event))
        for edge in out[node]:
            if edge.dest not in to:
                to[edge.dest] = (*prefix, edge)
                order.append(edge.dest)
                queue.append(edge.dest)
    return Graph(tuple(order), to, out)
