"""The steps a path is made of: operations, reconciler steps, clock advances, failures.

Each step is plain data that says what it does (``str(step)``) and carries
itself out on a :class:`~lifecycle.testing.World` (``step.apply(world)``)
for the experiment ``world.name``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifecycle.domain.experiment import Experiment
from lifecycle.domain.statuses import ExperimentStatus, Operation, StepAction
from lifecycle.service.reconciler import STATUS_ACTIONS, VARIANT_ACTIONS

if TYPE_CHECKING:
    from lifecycle.testing._world import World

__all__ = [
    "Advance",
    "Call",
    "Fail",
    "Later",
    "PathError",
    "PathStep",
    "Reconcile",
    "next_action",
]


class PathError(AssertionError):
    """A step could not be carried out as the path says (the engine and the path disagree).

    ``rule`` is the rule the engine named when it refused the step, if it did.
    """

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Later:
    """A time in a payload: ``seconds`` after the clock's time when the step is carried out."""

    seconds: float

    def __repr__(self) -> str:
        return f"now+{self.seconds:g}s"


def _resolve(value: Any, now: float) -> Any:
    if isinstance(value, Later):
        return now + value.seconds
    if isinstance(value, dict):
        return {k: _resolve(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, now) for v in value]
    return value


def _short(value: Any) -> str:
    return json.dumps(value, default=repr, separators=(",", ":"))


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    """Send ``operation`` with ``payload`` (Name is added: ``world.name``).

    A :class:`Later` in the payload becomes a time relative to the clock.
    A CreateInferenceExperiment payload without EndpointName gets
    ``<name>-endpoint``.
    """

    operation: str
    payload: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def body(self, world: World) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Name": world.name,
            **_resolve(copy.deepcopy(self.payload), world.clock()),
        }
        if self.operation == Operation.CREATE:
            body.setdefault("EndpointName", f"{world.name}-endpoint")
        return body

    def apply(self, world: World) -> None:
        world.service.invoke(self.operation, self.body(world))

    def __str__(self) -> str:
        if self.note:
            return f"{self.operation} ({self.note})"
        return f"{self.operation} {_short(self.payload)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Call) and (self.operation, self.payload) == (
            other.operation,
            other.payload,
        )

    def __hash__(self) -> int:
        return hash((self.operation, _short(self.payload)))


@dataclass(frozen=True, slots=True)
class Advance:
    """Move the clock ``seconds`` on (the reconciler does not run: a :class:`Reconcile` follows)."""

    seconds: float
    note: str | None = None

    def apply(self, world: World) -> None:
        world.clock.advance(self.seconds)

    def __str__(self) -> str:
        return f"advance the clock {self.seconds:g}s" + (f" ({self.note})" if self.note else "")


def _record(world: World) -> Experiment:
    exp = world.record()
    if exp is None:
        raise PathError(f"inference experiment {world.name!r} does not exist")
    return exp


def _wait_out(world: World) -> ExperimentStatus:
    """In a transitional status, move the clock to when its step is due (settle time, retry)."""
    exp = _record(world)
    if exp.status.transitional and exp.due_at is not None and exp.due_at > world.clock():
        world.clock.set(exp.due_at)
    return exp.status


def next_action(exp: Experiment) -> StepAction:
    """The action of the step the reconciler carries out next for ``exp``: its first
    pending variant step's, else its status's own (the reconciler's tables)."""
    for v in exp.variants:
        if v.pending is not None:
            return VARIANT_ACTIONS[v.pending]
    if exp.status not in STATUS_ACTIONS:
        raise PathError(f"{exp.name!r} is {exp.status.value}: the reconciler has no step to fail")
    return STATUS_ACTIONS[exp.status]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """The reconciler carries out the experiment's due step (``Reconciler.advance``).

    In a transitional status the clock is first moved on to when the step is
    due (the settle time); in Created and Running the step must already be
    due (an :class:`Advance` to StartTime or EndTime comes first).
    """

    note: str | None = None

    def apply(self, world: World) -> None:
        status = _wait_out(world)
        if not world.reconciler.advance(world.name, world.clock()):
            raise PathError(f"the reconciler had nothing to do for {world.name!r} ({status.value})")

    def __str__(self) -> str:
        return "reconciler" + (f": {self.note}" if self.note else "")


@dataclass(frozen=True, slots=True)
class Fail:
    """The actuator fails every attempt of ``action``; the reconciler retries, then gives up.

    ``action`` ``None`` is the step the reconciler carries out next (:func:`next_action`).
    Needs ``world.actuator`` to be a ``SimulatedActuator`` (its ``fail``).
    """

    action: str | None = None

    def apply(self, world: World) -> None:
        attempts = world.reconciler.max_attempts
        action = self.action or next_action(_record(world))
        world.actuator.fail(action, attempts, f"{action} failed (arranged by the test)")
        start = _wait_out(world)
        for _ in range(attempts):
            _wait_out(world)
            world.reconciler.advance(world.name, world.clock())
            exp = world.record()
            if exp is None or exp.status is not start:
                return
        raise PathError(
            f"{world.name!r} is still {start.value} after {attempts} failed attempts of {action}"
        )

    def __str__(self) -> str:
        action = self.action or "the next step"
        return f"the actuator fails {action} until the reconciler gives up"


PathStep = Call | Advance | Reconcile | Fail
