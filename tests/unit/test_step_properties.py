"""The step contract under an actuator that fails at random (docs/actuators.md, SPEC §1 Failure).

A hypothesis state machine drives create, start, stop, update and reconciler
passes while the actuator fails whenever the test says. After every step:

- no variant shows a status its step has not confirmed;
- the tries of one step (the experiment still where the step was planned)
  carry one key;
- once an experiment's shadow test ran, the endpoint the actuator keeps
  always has a production variant in it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lifecycle.actuators import Step
from lifecycle.errors import ActuatorError, LifecycleError
from lifecycle.service import ExperimentService, Reconciler
from lifecycle.stores import MemoryStore

from .conftest import Clock, create_request, variant

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

NAMES = st.sampled_from(["a", "b"])
#: a transitional variant status, and the step that must be confirmed to leave it for this one
_ENDED_BY = {
    ("Creating", "InService"): "provision-variant",
    ("Updating", "InService"): ("update-variant", "promote-variant"),
    ("Deleting", "Deleted"): "remove-variant",
}


class Endpoint:
    """What the confirmed steps did to one endpoint: its live variants and its production one."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.production: str | None = None
        self.tested = False

    def apply(self, step: Step) -> None:
        v = step.variant
        if step.action == "provision-variant" and v is not None:
            self.live.add(v)
            self.production = self.production or v
        elif step.action == "promote-variant":
            self.production = v
        elif step.action == "remove-variant" and v is not None:
            self.live.discard(v)
        elif step.action == "start-shadow-test":
            self.tested = True


class RandomlyFailing:
    """An actuator that fails the next ``failures`` steps, then carries steps out once by key."""

    def __init__(self) -> None:
        self.failures = 0
        self.done: dict[str, Step] = {}
        self.confirmed: list[Step] = []
        self.failed: list[Step] = []
        self.endpoints: dict[str, Endpoint] = {}

    def apply(self, step: Step) -> None:
        if self.failures:
            self.failures -= 1
            self.failed.append(step)
            raise ActuatorError("arranged failure", retryable=self.failures % 3 != 1)
        if step.key not in self.done:
            self.done[step.key] = step
            self.endpoints.setdefault(step.experiment, Endpoint()).apply(step)
        self.confirmed.append(step)


class StepMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.store = MemoryStore()
        self.actuator = RandomlyFailing()
        self.service = ExperimentService(self.store, clock=self.clock)
        self.reconciler = Reconciler(self.service, self.actuator, clock=self.clock, max_attempts=3)
        self.seen: dict[str, dict[str, str]] = {}
        self.confirmed_before = 0
        #: (experiment, action, variant) -> (status, entered_at, key) of its last failed try
        self.last_failed: dict[tuple[str, str, str | None], tuple[str, float, str]] = {}
        self.failed_before = 0
        self.keys_seen = 0

    def call(self, operation: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(LifecycleError):  # a refused request is part of the game
            self.service.invoke(operation, payload)

    @rule(name=NAMES, later=st.booleans())
    def create(self, name: str, later: bool) -> None:
        extra: dict[str, Any] = {"Schedule": {"StartTime": self.clock.now + 120}} if later else {}
        self.call("CreateInferenceExperiment", create_request(name, **extra))

    @rule(name=NAMES)
    def start(self, name: str) -> None:
        self.call("StartInferenceExperiment", {"Name": name})

    @rule(name=NAMES, how=st.sampled_from(["promote", "remove", "retain-with-config"]))
    def stop(self, name: str, how: str) -> None:
        payload: dict[str, Any] = {"Name": name}
        if how == "promote":
            payload["ModelVariantActions"] = {"shadow": "Promote"}
        elif how == "remove":
            payload["ModelVariantActions"] = {"shadow": "Remove"}
        else:
            payload["ModelVariantActions"] = {"prod": "Retain", "shadow": "Remove"}
            payload["DesiredModelVariants"] = [variant("prod", "model-new", "ml.c5.xlarge", 2)]
        self.call("StopInferenceExperiment", payload)

    @rule(name=NAMES, model=st.sampled_from(["model-x", "model-y"]))
    def update(self, name: str, model: str) -> None:
        self.call(
            "UpdateInferenceExperiment", {"Name": name, "ModelVariants": [variant("shadow", model)]}
        )

    @rule(failures=st.integers(0, 4))
    def fail_next(self, failures: int) -> None:
        self.actuator.failures = failures

    @rule(advance=st.sampled_from([0.0, 1.0, 60.0, 600.0]))
    def reconcile(self, advance: float) -> None:
        self.clock.advance(advance)
        self._note_failures_before()
        self.reconciler.run_once()

    def _note_failures_before(self) -> None:
        """Before a pass: where each experiment is, so this pass's tries can be compared."""
        self._where = {
            e.name: (e.status.value, e.entered_at)
            for e in (self.store.get(ACCOUNT, n) for n in ("a", "b"))
            if e
        }

    @invariant()
    def no_variant_shows_a_status_its_step_has_not_confirmed(self) -> None:
        new = self.actuator.confirmed[self.confirmed_before :]
        self.confirmed_before = len(self.actuator.confirmed)
        for name in ("a", "b"):
            exp = self.store.get(ACCOUNT, name)
            if exp is None:
                self.seen.pop(name, None)
                continue
            now = {v.name: v.status.value for v in exp.variants}
            before = self.seen.get(name, {})
            for v, status in now.items():
                needs = _ENDED_BY.get((before.get(v, ""), status))
                if needs is None or exp.status.value == "Cancelled":  # a rollback
                    continue
                actions = needs if isinstance(needs, tuple) else (needs,)
                assert any(
                    s.experiment == name and s.variant == v and s.action in actions for s in new
                ), f"{name}.{v} went {before.get(v)} -> {status} without a confirmed {needs}"
            self.seen[name] = now

    @invariant()
    def the_tries_of_one_step_carry_one_key(self) -> None:
        where = getattr(self, "_where", {})
        # the steps handed over since the last check only: an older plan's confirmed step
        # (the first of two updates, say) is not a try of the step that failed since
        new = self.actuator.failed[self.failed_before :] + self.actuator.confirmed[self.keys_seen :]
        for step in new:
            triple = (step.experiment, str(step.action), step.variant)
            status, entered = where.get(step.experiment, ("", -1.0))
            last = self.last_failed.get(triple)
            if last is not None and last[:2] == (status, entered):
                assert step.key == last[2], f"{triple}: key {step.key} after {last[2]}"
        for step in self.actuator.failed[self.failed_before :]:
            status, entered = where.get(step.experiment, ("", -1.0))
            self.last_failed[(step.experiment, str(step.action), step.variant)] = (
                status,
                entered,
                step.key,
            )
        self.failed_before = len(self.actuator.failed)
        self.keys_seen = len(self.actuator.confirmed)

    @invariant()
    def once_tested_an_endpoint_always_has_its_production_variant(self) -> None:
        for name, endpoint in self.actuator.endpoints.items():
            exp = self.store.get(ACCOUNT, name)
            if endpoint.tested and exp is not None and exp.status.value != "Cancelled":
                assert endpoint.production in endpoint.live, (
                    name,
                    endpoint.production,
                    endpoint.live,
                )


StepMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

test_steps_under_an_actuator_that_fails_at_random = StepMachine.TestCase
