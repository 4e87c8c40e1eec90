"""One attempt at an experiment's due step: the steps it sends, their keys, what was confirmed.

The step contract (``docs/actuators.md``):

- A step's idempotency key is fixed by the committed transition that planned
  it: ``{arn}|v{version}|{action}|{variant}``, where ``version`` is the record
  version that transition wrote. The ARN carries the experiment's account and
  name, so experiments of one name in two accounts never share a key. A failed attempt saves only its retry
  bookkeeping, which raises the version by one and the attempt count by one,
  so ``version - attempts`` is that same version on every retry, after a
  restart and on every replica.
- An attempt is all or nothing: the reconciler fires the events of a step on
  a copy of the record, and saves the copy only when every step of the
  attempt was confirmed. A failed attempt keeps what the actuator confirmed
  only in the actuator (it will see the same keys again).
- Production is never left without a replacement: a stop's promotion is
  carried out before the removal of the production variant.
- When an experiment fails for good, the steps its last attempt had confirmed
  are undone where they left the endpoint changed but the record not: a
  provisioned variant of a failed Creating is removed again, a variant an
  Update reconfigured gets its former configuration back.
"""

from __future__ import annotations

from typing import Protocol

from lifecycle.actuators import Actuator, Step
from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.statuses import StepAction
from lifecycle.errors import ActuatorError

__all__ = ["PENDING_ORDER", "Attempt", "StepObserver", "cut"]

#: the order the pending variant steps of one status are carried out in: a promotion
#: before anything else, a removal last, so production is replaced before it goes
PENDING_ORDER = {"promoted": 0, "updated": 1, "provisioned": 1, "removed": 2}
#: the most a StatusReason holds (the service model's InferenceExperimentStatusReason)
REASON_CHARS = 1024


def cut(text: str, limit: int = REASON_CHARS) -> str:
    """``text`` in at most ``limit`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StepObserver(Protocol):
    def step(self, action: str, ok: bool) -> None:
        """One actuator call of ``action`` was made; ``ok`` when it was carried out."""


class Attempt:
    """One try of the due step of one experiment."""

    def __init__(
        self, actuator: Actuator, loaded: Experiment, observer: StepObserver | None = None
    ) -> None:
        self.actuator = actuator
        #: told of each step call (``observer.step(action, ok)``): the server's metrics
        self.observer = observer
        #: the version the committed transition that planned these steps wrote
        self.planned = loaded.version - loaded.attempts
        self.number = loaded.attempts + 1
        self.confirmed: list[Step] = []
        self.failed: Step | None = None

    def key(self, arn: str, action: str, variant: str | None) -> str:
        return f"{arn}|v{self.planned}|{action}|{variant or ''}"

    def apply(
        self,
        exp: Experiment,
        action: StepAction,
        variant: str | None = None,
        model: str | None = None,
        infra: JSON | None = None,
    ) -> None:
        """Hand one step to the actuator; ``ActuatorError`` when it is not carried out."""
        step = Step(
            key=self.key(exp.arn, action, variant),
            account=exp.account,
            experiment=exp.name,
            endpoint=exp.endpoint_name,
            action=action,
            variant=variant,
            model_name=model,
            infrastructure=infra,
            arn=exp.arn,
            attempt=self.number,
        )
        self._send(step)
        self.confirmed.append(step)

    def _send(self, step: Step) -> None:
        try:
            self.actuator.apply(step)
        except ActuatorError:
            self.failed = step
            self._observe(step, ok=False)
            raise
        except Exception as exc:  # an actuator's own bug is a failed step, not a failed pass
            self.failed = step
            self._observe(step, ok=False)
            raise ActuatorError(f"{type(exc).__name__}: {exc}") from exc
        self._observe(step, ok=True)

    def _observe(self, step: Step, *, ok: bool) -> None:
        if self.observer is not None:
            self.observer.step(str(step.action), ok)

    def describe_failure(self, err: ActuatorError) -> str:
        """What StatusReason says of a failure for good: the step, the tries, the error."""
        step = self.failed
        what = (
            f"{step.action} of {step.variant}"
            if step and step.variant
            else str(step.action if step else "a step")
        )
        tries = (
            ""
            if not err.retryable
            else f" after {self.number} attempt{'s' if self.number > 1 else ''}"
        )
        return cut(f"{what} failed{tries}: {err.message}")

    def undo(self, loaded: Experiment, tries: int) -> list[str]:
        """Carry out the compensating steps of what this attempt had confirmed; what failed."""
        problems: list[str] = []
        for done in self.confirmed:
            step = _compensation(done, loaded)
            if step is None:
                continue
            for _ in range(max(1, tries)):
                try:
                    self.actuator.apply(step)
                    break
                except Exception as exc:
                    error = exc
            else:
                problems.append(
                    f"{step.action} of {step.variant} to undo {done.action} failed: {error}"
                )
        return problems


def _compensation(done: Step, loaded: Experiment) -> Step | None:
    """The step that undoes ``done``, when it changed the endpoint and the record will not say so."""
    if done.action is StepAction.PROVISION_VARIANT:
        return _undo(done, StepAction.REMOVE_VARIANT)
    if done.action is StepAction.UPDATE_VARIANT and done.variant is not None:
        before = loaded.variant(done.variant)
        if before is not None:
            return _undo(done, StepAction.UPDATE_VARIANT, before.model_name, before.infrastructure)
    return None


def _undo(
    done: Step, action: StepAction, model: str | None = None, infra: JSON | None = None
) -> Step:
    return Step(
        key=f"{done.key}|undo",
        account=done.account,
        experiment=done.experiment,
        endpoint=done.endpoint,
        action=action,
        variant=done.variant,
        model_name=model,
        infrastructure=infra,
        arn=done.arn,
        attempt=1,
    )
