"""What a check of the table of operations is made of: stages, gates, and the spec of one operation.

A :class:`Stage` is the rules of one step of the check order that a request
breaks; a check hands each to a :class:`Gate`. ``invoke``'s gate (:data:`RAISE`)
raises the first stage that refuses; ``explain``'s (:class:`Collect`) keeps its
errors and stops the check. :class:`OperationSpec` ties an operation's request
shape, check and change together (``_operations.OPERATION_SPECS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel

from lifecycle.domain.experiment import Experiment
from lifecycle.domain.machine import refusal_error
from lifecycle.errors import LifecycleError, Refusal
from lifecycle.service._plans import validation_error

if TYPE_CHECKING:
    from lifecycle.service.service import ExperimentService

__all__ = ["PASSED", "RAISE", "Collect", "Gate", "OperationSpec", "Response", "Stage"]

Response = dict[str, Any]
Req = TypeVar("Req", bound=BaseModel)
Ready = TypeVar("Ready")


class Stage(NamedTuple):
    """The rules of one step of the check order that the request breaks.

    ``errors`` has one error per broken rule (what ``explain`` lists); ``error`` is
    what ``invoke`` raises for them all at once (None when nothing is broken).
    """

    errors: list[LifecycleError]
    error: LifecycleError | None

    @classmethod
    def validation(cls, refusals: list[Refusal]) -> Stage:
        if not refusals:
            return PASSED
        return cls([validation_error([r]) for r in refusals], validation_error(refusals))

    @classmethod
    def conflicts(cls, exp: Experiment, event: str, refusals: list[Refusal]) -> Stage:
        if not refusals:
            return PASSED
        errors: list[LifecycleError] = [
            refusal_error(exp.name, exp.status, event, [r]) for r in refusals
        ]
        return cls(errors, refusal_error(exp.name, exp.status, event, refusals))

    @classmethod
    def of(cls, errors: list[LifecycleError]) -> Stage:
        return cls(errors, errors[0]) if errors else PASSED


PASSED = Stage([], None)


class Gate:
    """What a check hands each stage to: ``passes(stage)`` is True when the check goes on."""

    #: whether the rules that the change itself enforces are to be judged beforehand too
    explaining = False

    def passes(self, stage: Stage) -> bool:
        """``invoke``'s gate: raise the stage's error, if it has one."""
        if stage.error is not None:
            raise stage.error
        return True


class Collect(Gate):
    """``explain``'s gate: keep the first refusing stage's errors, and stop the check there."""

    explaining = True

    def __init__(self) -> None:
        self.errors: list[LifecycleError] = []

    def passes(self, stage: Stage) -> bool:
        if stage.errors:
            self.errors = stage.errors
            return False
        return True


#: the gate of ``invoke`` (it keeps nothing, so one serves every call)
RAISE = Gate()


@dataclass(frozen=True, slots=True)
class OperationSpec(Generic[Req, Ready]):
    """One operation: its request shape, its check, and its change.

    ``check(service, request, now, gate)`` returns what ``apply`` needs, or None when
    the gate stopped it. ``apply_to_encode``, where given, is ``apply`` for a caller
    that encodes the response at once and keeps nothing of it: its nested members
    may be the stored record's own, uncopied.
    """

    model: type[Req]
    check: Callable[[ExperimentService, Req, float, Gate], Ready | None]
    apply: Callable[[ExperimentService, Ready, str | None], Response]
    apply_to_encode: Callable[[ExperimentService, Ready, str | None], Response] | None = None
