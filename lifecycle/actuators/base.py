"""The step contract: what the reconciler hands an actuator, and how an actuator answers.

The reconciler hands the actuator one :class:`Step` at a time. Every step
carries an idempotency key that is the same every time the same step is
tried (after a retry, a crash, or on another replica), so an actuator that
remembers the keys it carried out does each step once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lifecycle.domain.statuses import StepAction
from lifecycle.errors import ActuatorError

__all__ = ["Actuator", "ActuatorError", "Step"]


@dataclass(frozen=True, slots=True)
class Step:
    """One change to carry out on an endpoint.

    ``action`` is a :class:`~lifecycle.domain.statuses.StepAction` (a ``str``).
    """

    key: str
    experiment: str
    endpoint: str
    action: StepAction
    variant: str | None = None
    model_name: str | None = None
    infrastructure: dict[str, Any] | None = None
    #: the experiment's ARN
    arn: str = ""
    #: the account the experiment belongs to (the account in its ARN)
    account: str = ""
    #: which try of this step (1 for the first; a retry carries the same key)
    attempt: int = 1


@runtime_checkable
class Actuator(Protocol):
    def apply(self, step: Step) -> None:
        """Carry out ``step`` (once per key); raise to report a failure."""
        ...
