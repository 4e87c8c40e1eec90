"""The ways the paths make the engine fire each event: hand-written, and nothing more.

A :class:`Way` is a few steps (an operation with a payload, a reconciler
step, a clock advance, a failing actuator) that should make the engine fire
one event of the experiment table. It says nothing of guards: the path
search (``_graph``) carries each way out on a real engine, and which row is
taken, if any, is the engine's answer. :data:`WAYS` lists them by event;
an event with no way is never fired, so
:func:`~lifecycle.testing.paths.transition_coverage` names its rows.
"""

from __future__ import annotations

from typing import NamedTuple

from lifecycle.domain.rules import DEFAULT_DURATION
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.testing._steps import Advance, Call, Fail, Later, PathStep, Reconcile
from lifecycle.testing._world import (
    PRODUCTION_VARIANT,
    SHADOW_VARIANT,
    create_payload,
    variant_config,
)

__all__ = ["START_DELAY", "WAYS", "Way"]

#: how far in the future a "future StartTime" is (seconds)
START_DELAY = 3600.0


class Way(NamedTuple):
    """Steps that should make the engine fire one event, from the statuses in ``sources``.

    ``sources`` empty means every status the event's rows leave. From each of
    them the engine must take the way: a refusal stops the path search with a
    :class:`~lifecycle.testing.paths.PathError` naming the rule, since a way
    offered where the engine will not take it is a way to fix (or a new
    guard to give a way of its own). ``label`` names the way in a path's id;
    ``{source}`` in it becomes the status it leaves. A :class:`Reconcile`
    without a note is described by the row the engine took.
    """

    label: str
    steps: tuple[PathStep, ...]
    sources: tuple[ExperimentStatus, ...] = ()


_RECONCILE = (Reconcile(),)
_CREATED = (ExperimentStatus.CREATED,)

#: event -> the ways to make the engine fire it, tried in order
WAYS: dict[str, tuple[Way, ...]] = {
    "create": (
        Way(
            "create", (Call(Operation.CREATE, create_payload(), "shadow test of prod and shadow"),)
        ),
        Way(
            "create(StartTime in future)",
            (
                Call(
                    Operation.CREATE,
                    create_payload(Schedule={"StartTime": Later(START_DELAY)}),
                    f"StartTime now+{START_DELAY:g}s",
                ),
            ),
        ),
    ),
    "provisioned": (Way("provisioned", _RECONCILE),),
    "start": (
        Way("start", (Call(Operation.START),)),
        Way(
            "start(at StartTime)",
            (
                Advance(START_DELAY, "to Schedule.StartTime"),
                Reconcile("start at Schedule.StartTime"),
            ),
        ),
    ),
    "started": (Way("started", _RECONCILE),),
    "update": (
        Way("update(Description)", (Call(Operation.UPDATE, {"Description": "updated by a path"}),)),
        Way(
            "update(shadow model)",
            (
                Call(
                    Operation.UPDATE,
                    {"ModelVariants": [variant_config(SHADOW_VARIANT, "model-b-updated")]},
                ),
            ),
            _CREATED,  # Running refuses a new model (running-update-fields)
        ),
    ),
    "updated": (Way("updated", _RECONCILE),),
    "stop": (
        Way(
            "stop(Promote)",
            (Call(Operation.STOP, {"ModelVariantActions": {SHADOW_VARIANT: "Promote"}}),),
        ),
        Way(
            "stop(Remove, Cancelled)",
            (
                Call(
                    Operation.STOP,
                    {
                        "ModelVariantActions": {SHADOW_VARIANT: "Remove"},
                        "DesiredState": "Cancelled",
                    },
                ),
            ),
        ),
        Way(
            "stop(at EndTime)",
            (
                Advance(DEFAULT_DURATION + START_DELAY, "to Schedule.EndTime"),
                Reconcile(
                    f"stop at Schedule.EndTime: {PRODUCTION_VARIANT} Retain, {SHADOW_VARIANT} Remove"
                ),
            ),
        ),
    ),
    "stopped": (Way("stopped", _RECONCILE),),
    "fail": (Way("fail@{source}", (Fail(),)),),
}
