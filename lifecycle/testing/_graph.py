"""The graph the paths walk: nodes, and the edges the tables and the recipes make.

The tables say which rows leave which status. Whether a row can be taken
also depends on what the experiment carries along (a StartTime in the
future, where an Updating experiment came from, the stop's DesiredState,
which variant steps are pending), so the paths walk a graph of *nodes*:
the experiment's status, each variant's status and pending step, and that
context. Each row of the experiment table is fired by a *recipe*, the
steps that make the engine take it (an operation with a payload, a
reconciler step, a clock advance, a failing actuator); the guards of the
row are checked against the node by :data:`GUARD_MODEL`. A row with no
recipe, or a guard with no model, is never taken, so
:func:`~lifecycle.testing.transition_coverage` names it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from lifecycle.domain.rules import DEFAULT_DURATION
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, Operation, VariantStatus
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE, Transition
from lifecycle.service.reconciler import STATUS_ACTIONS, VARIANT_ACTIONS
from lifecycle.testing._steps import Advance, Call, Fail, Later, PathStep, Reconcile

__all__ = [
    "GUARD_MODEL",
    "NEW",
    "PRODUCTION_VARIANT",
    "RECIPES",
    "SHADOW_VARIANT",
    "START_DELAY",
    "Edge",
    "Node",
    "VariantNode",
    "create_payload",
    "edges",
]

E = ExperimentStatus
V = VariantStatus

PRODUCTION_VARIANT = "prod"
SHADOW_VARIANT = "shadow"
#: how far in the future a "future StartTime" is (seconds)
START_DELAY = 3600.0

_CREATE, _START, _STOP, _UPDATE = (
    Operation.CREATE,
    Operation.START,
    Operation.STOP,
    Operation.UPDATE,
)


def _variant_config(name: str, model: str) -> dict[str, Any]:
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        },
    }


def create_payload(**members: Any) -> dict[str, Any]:
    """The CreateInferenceExperiment payload every path starts with (without Name and EndpointName).

    Two variants, ``prod`` (the production variant, model ``model-a``) and
    ``shadow`` (``model-b``, sampling 50%); ``members`` are added on top.
    """
    payload: dict[str, Any] = {
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/lifecycle-testing",
        "ModelVariants": [
            _variant_config(PRODUCTION_VARIANT, "model-a"),
            _variant_config(SHADOW_VARIANT, "model-b"),
        ],
        "ShadowModeConfig": {
            "SourceModelVariantName": PRODUCTION_VARIANT,
            "ShadowModelVariants": [
                {"ShadowModelVariantName": SHADOW_VARIANT, "SamplingPercentage": 50}
            ],
        },
    }
    payload.update(members)
    return payload


# --- the graph -----------------------------------------------------------------------


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

    @property
    def row(self) -> Transition:
        return self.taken[0][0]


#: each guard of the experiment table, evaluated on a node
GUARD_MODEL: dict[str, Callable[[Node], bool]] = {
    "start_time_in_future": lambda n: n.future_start,
    "start_time_reached": lambda n: not n.future_start,
    # the recipes send only updates and stops these rules accept
    "update_rules_created": lambda n: True,
    "update_rules_running": lambda n: True,
    "variant_action_rules": lambda n: True,
    "left_created": lambda n: n.origin is E.CREATED,
    "left_running": lambda n: n.origin is E.RUNNING,
    # the reconciler carries every variant step out before it fires stopped
    "variant_steps_done": lambda n: True,
    "desired_completed": lambda n: n.desired is DesiredState.COMPLETED,
    "desired_cancelled": lambda n: n.desired is DesiredState.CANCELLED,
}


def _variant_row(event: str, source: VariantStatus) -> Transition:
    rows = VARIANT_TABLE.rows(event, source)
    if len(rows) != 1:
        raise LookupError(f"the variant table has {len(rows)} rows for {event} from {source.value}")
    return rows[0]


def _fire_variants(
    node: Node, events: dict[str, str | None], pending: dict[str, str | None] | None = None
) -> tuple[tuple[VariantNode, ...], list[Taken]]:
    """Fire ``events[name]`` on the named variants (read from the variant table)."""
    out: list[VariantNode] = []
    taken: list[Taken] = []
    for v in node.variants:
        event = events.get(v.name)
        if event is None:
            out.append(v)
            continue
        row = _variant_row(event, v.status)
        taken.append((row, v.name))
        dest = row.dest
        assert isinstance(dest, VariantStatus)
        out.append(VariantNode(v.name, dest, (pending or {}).get(v.name)))
    return tuple(out), taken


def _end_pending(node: Node) -> dict[str, str | None]:
    """Each variant with a pending step: the event that ends it."""
    return {v.name: v.pending for v in node.variants if v.pending is not None}


# A recipe: (node, row) -> the ways to take the row: (label, steps, context changes, variant events, pending)
Way = tuple[str, tuple[PathStep, ...], dict[str, Any], dict[str, str | None], dict[str, str | None]]


def _create(node: Node, row: Transition) -> Iterator[Way]:
    both: dict[str, str | None] = {PRODUCTION_VARIANT: "create", SHADOW_VARIANT: "create"}
    pending: dict[str, str | None] = {
        PRODUCTION_VARIANT: "provisioned",
        SHADOW_VARIANT: "provisioned",
    }
    yield (
        "create",
        (Call(_CREATE, create_payload(), "shadow test of prod and shadow"),),
        {"future_start": False},
        both,
        pending,
    )
    yield (
        "create(StartTime in future)",
        (
            Call(
                _CREATE,
                create_payload(Schedule={"StartTime": Later(START_DELAY)}),
                f"StartTime now+{START_DELAY:g}s",
            ),
        ),
        {"future_start": True},
        both,
        pending,
    )


def _reconciler_step(label: str) -> Callable[[Node, Transition], Iterator[Way]]:
    def recipe(node: Node, row: Transition) -> Iterator[Way]:
        ends = _end_pending(node)
        yield (
            label,
            (
                Reconcile(
                    f"{row.event} ({row.source.value if row.source else ''} -> {row.dest.value})"
                ),
            ),
            {},
            ends,
            {},
        )

    return recipe


def _provisioned(node: Node, row: Transition) -> Iterator[Way]:
    for _, steps, _, events, pending in _reconciler_step("provisioned")(node, row):
        yield (
            f"provisioned->{row.dest.value}",
            steps,
            {"future_start": row.dest is E.CREATED},
            events,
            pending,
        )


def _start(node: Node, row: Transition) -> Iterator[Way]:
    yield "start", (Call(_START, {}),), {"future_start": False}, {}, {}
    if node.future_start:
        yield (
            "start(at StartTime)",
            (
                Advance(START_DELAY, "to Schedule.StartTime"),
                Reconcile("start at Schedule.StartTime"),
            ),
            {"future_start": False},
            {},
            {},
        )


def _update(node: Node, row: Transition) -> Iterator[Way]:
    yield (
        "update(Description)",
        (Call(_UPDATE, {"Description": "updated by a path"}),),
        {"origin": node.status},
        {},
        {},
    )
    if node.status is E.CREATED:
        yield (
            "update(shadow model)",
            (
                Call(
                    _UPDATE, {"ModelVariants": [_variant_config(SHADOW_VARIANT, "model-b-updated")]}
                ),
            ),
            {"origin": node.status},
            {SHADOW_VARIANT: "update"},
            {SHADOW_VARIANT: "updated"},
        )


def _updated(node: Node, row: Transition) -> Iterator[Way]:
    for label, steps, _, events, pending in _reconciler_step("updated")(node, row):
        yield f"{label}->{row.dest.value}", steps, {"origin": None}, events, pending


def _stop(node: Node, row: Transition) -> Iterator[Way]:
    yield (
        "stop(Promote)",
        (Call(_STOP, {"ModelVariantActions": {SHADOW_VARIANT: "Promote"}}),),
        {"desired": DesiredState.COMPLETED},
        {SHADOW_VARIANT: "promote", PRODUCTION_VARIANT: "remove"},
        {SHADOW_VARIANT: "promoted", PRODUCTION_VARIANT: "removed"},
    )
    yield (
        "stop(Remove, Cancelled)",
        (
            Call(
                _STOP,
                {"ModelVariantActions": {SHADOW_VARIANT: "Remove"}, "DesiredState": "Cancelled"},
            ),
        ),
        {"desired": DesiredState.CANCELLED},
        {SHADOW_VARIANT: "remove", PRODUCTION_VARIANT: "retain"},
        {SHADOW_VARIANT: "removed"},
    )
    yield (
        "stop(at EndTime)",
        (
            Advance(DEFAULT_DURATION + START_DELAY, "to Schedule.EndTime"),
            Reconcile("stop at Schedule.EndTime: production Retain, shadow Remove"),
        ),
        {"desired": DesiredState.COMPLETED},
        {SHADOW_VARIANT: "remove", PRODUCTION_VARIANT: "retain"},
        {SHADOW_VARIANT: "removed"},
    )


def _stopped(node: Node, row: Transition) -> Iterator[Way]:
    for label, steps, _, events, pending in _reconciler_step("stopped")(node, row):
        yield f"{label}->{row.dest.value}", steps, {"desired": None}, events, pending


def _fail(node: Node, row: Transition) -> Iterator[Way]:
    # the reconciler carries variant steps out first, in variant order: fail the first one
    pending = [v.pending for v in node.variants if v.pending is not None]
    assert node.status is not None
    action = VARIANT_ACTIONS[pending[0]] if pending else STATUS_ACTIONS[node.status]
    events: dict[str, str | None] = {
        v.name: "rollback" for v in node.variants if v.pending is not None
    }
    yield (
        f"fail@{node.status.value}",
        (Fail(action),),
        {"origin": None, "desired": None, "future_start": False},
        events,
        {},
    )


#: how each event of the experiment table is made to happen
RECIPES: dict[str, Callable[[Node, Transition], Iterator[Way]]] = {
    "create": _create,
    "provisioned": _provisioned,
    "start": _start,
    "started": _reconciler_step("started"),
    "update": _update,
    "updated": _updated,
    "stop": _stop,
    "stopped": _stopped,
    "fail": _fail,
}

NEW = Node(None)


def _guards_hold(row: Transition, node: Node) -> bool:
    return all(g in GUARD_MODEL and GUARD_MODEL[g](node) for g in row.guards)


def edges(node: Node) -> Iterator[Edge]:
    """Every edge that leaves ``node``, in table order then recipe order."""
    for row in EXPERIMENT_TABLE.transitions:
        if row.source != node.status:
            continue
        recipe = RECIPES.get(row.event)
        if recipe is None or not _guards_hold(row, node):
            continue
        for label, steps, ctx, events, pending in recipe(node, row):
            start = node
            if node.status is None:  # create: the variants come into being
                start = replace(
                    node,
                    variants=tuple(
                        VariantNode(n, V.CREATING) for n in (PRODUCTION_VARIANT, SHADOW_VARIANT)
                    ),
                )
                variants = tuple(
                    VariantNode(v.name, v.status, pending.get(v.name)) for v in start.variants
                )
                vtaken: list[Taken] = [(_create_row(), v.name) for v in start.variants]
            else:
                variants, vtaken = _fire_variants(start, events, pending)
            dest_status = row.dest
            assert isinstance(dest_status, ExperimentStatus)
            dest = replace(node, status=dest_status, variants=variants, **ctx)
            yield Edge(label, steps, ((row, None), *vtaken), node, dest)


def _create_row() -> Transition:
    return next(t for t in VARIANT_TABLE.transitions if t.source is None)
