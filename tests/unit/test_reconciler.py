"""The reconciler: settle times, due work, retries, failure (SPEC §1 Settling, Failure)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lifecycle.actuators import SimulatedActuator
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.base import ExperimentKey
from lifecycle.stores.memory import MemoryStore

from .conftest import Clock, World, create_request

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


def test_each_transitional_status_lasts_the_settle_time(make_world: Any) -> None:
    world = make_world(settle=30)
    world.create()
    world.clock.advance(29)
    world.reconciler.run_once()
    assert world.status() == "Creating"
    world.clock.advance(1)
    world.reconciler.run_once()
    assert world.status() == "Starting"
    world.clock.advance(30)
    world.reconciler.run_once()
    assert world.status() == "Running"


def test_with_settle_zero_one_pass_runs_a_new_experiment_to_running(world: World) -> None:
    world.create()
    assert world.reconciler.run_once() == 2
    assert world.status() == "Running"


def test_nothing_due_does_nothing(world: World) -> None:
    world.running()
    version = world.store.get(ACCOUNT, "exp").version  # type: ignore[union-attr]
    assert world.reconciler.run_once() == 0
    assert world.store.get(ACCOUNT, "exp").version == version  # type: ignore[union-attr]


def failing_world(action: str, times: int, **kw: Any) -> tuple[World, SimulatedActuator]:
    world = World()
    actuator = SimulatedActuator()
    actuator.fail(action, times, "capacity error")
    world.reconciler = Reconciler(world.service, actuator, clock=world.clock, **kw)
    return world, actuator


def test_a_failed_step_is_retried_and_then_succeeds() -> None:
    world, _ = failing_world("start-shadow-test", 2, retry_seconds=5)
    world.create()
    world.reconciler.run_once()
    assert world.status() == "Starting"
    world.clock.advance(5)  # the first retry waits retry_seconds
    world.reconciler.run_once()
    assert world.status() == "Starting"
    world.clock.advance(10)  # the second twice as long (exponential backoff)
    world.reconciler.run_once()
    assert world.status() == "Running"


def test_the_last_failed_attempt_cancels_with_the_error_as_status_reason() -> None:
    world, _ = failing_world("start-shadow-test", 3, retry_seconds=1)
    world.create()
    for wait in (1, 2, 4):  # each retry waits twice as long as the one before
        world.reconciler.run_once()
        world.clock.advance(wait)
    d = world.describe()
    assert d["Status"] == "Cancelled"
    assert "capacity error" in d["StatusReason"]
    assert "CompletionTime" in d


def test_a_failed_stop_returns_variants_caught_mid_step_to_their_status() -> None:
    world, _ = failing_world("promote-variant", 1, max_attempts=1)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Promote"}}
    )
    world.reconciler.run_once()
    assert world.status() == "Cancelled"
    statuses = {n: v["Status"] for n, v in world.variants().items()}
    assert statuses["shadow"] == "InService"


def test_a_failed_create_ends_its_variants_deleted() -> None:
    world, _ = failing_world("provision-variant", 1, max_attempts=1)
    world.create()
    world.reconciler.run_once()
    assert world.status() == "Cancelled"
    assert {v["Status"] for v in world.variants().values()} == {"Deleted"}


def test_each_variant_step_reaches_the_actuator_once_with_a_key() -> None:
    world = World()
    actuator = SimulatedActuator()
    world.reconciler = Reconciler(world.service, actuator, clock=world.clock)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Promote"}}
    )
    world.reconciler.run_once()
    actions = [(str(s.action), s.variant) for s in actuator.calls]
    assert actions.count(("promote-variant", "shadow")) == 1
    assert actions.count(("remove-variant", "prod")) == 1
    assert len({s.key for s in actuator.calls}) == len(actuator.calls)


def test_a_repeated_key_is_carried_out_once(tmp_path: Any) -> None:
    log = tmp_path / "steps.jsonl"
    from lifecycle.actuators import Step
    from lifecycle.domain.statuses import StepAction

    step = Step("k1", "exp", "ep", StepAction.REMOVE_VARIANT, "prod")
    SimulatedActuator(log).apply(step)
    again = SimulatedActuator(log)  # a restarted process
    again.apply(step)
    assert log.read_text().count('"k1"') == 1


class _CountingStore(MemoryStore):
    """A memory store that records how each save reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []
        self._batching = False

    def save(self, exp: Any, expected_version: int, entries: list[Any]) -> None:
        if not self._batching:
            self.calls.append(("save", [exp.name]))
        super().save(exp, expected_version, entries)

    def save_many(self, saves: Any) -> list[bool]:
        self.calls.append(("save_many", [exp.name for exp, _, _ in saves]))
        self._batching = True
        try:
            return super().save_many(saves)
        finally:
            self._batching = False


def _counted() -> tuple[_CountingStore, ExperimentService, Clock]:
    store, clock = _CountingStore(), Clock()
    return store, ExperimentService(store, clock=clock), clock


def test_a_rounds_steps_out_of_reconciler_only_statuses_are_saved_together() -> None:
    store, service, _ = _counted()
    for name in ("a", "b", "c"):
        service.invoke("CreateInferenceExperiment", create_request(name))
    store.calls.clear()
    assert Reconciler(service).run_once() == 6
    # round 1: three Creating -> Starting in one transaction; round 2: three Starting -> Running
    assert store.calls == [("save_many", ["a", "b", "c"]), ("save_many", ["a", "b", "c"])]
    assert {
        service.invoke("DescribeInferenceExperiment", {"Name": n})["Status"] for n in "abc"
    } == {"Running"}


def test_a_step_out_of_a_status_a_request_can_change_is_saved_at_once() -> None:
    store, service, clock = _counted()
    reconciler = Reconciler(service)
    for name in ("a", "b"):
        service.invoke(
            "CreateInferenceExperiment", create_request(name, Schedule={"StartTime": clock() + 60})
        )
    reconciler.run_once()  # Creating -> Created, together
    store.calls.clear()
    clock.advance(60)
    reconciler.run_once()  # Created -> Starting: a StartInferenceExperiment could race it, so one at a time
    assert store.calls == [("save", ["a"]), ("save", ["b"]), ("save_many", ["a", "b"])]


def test_retries_wait_exponentially_longer_up_to_a_cap_with_bounded_jitter() -> None:
    world = World()
    plain = Reconciler(world.service, retry_seconds=1, backoff=2, max_retry_seconds=10)
    assert [plain.retry_delay(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    jittery = Reconciler(world.service, retry_seconds=4, jitter=0.25)
    delays = {jittery.retry_delay(1) for _ in range(200)}
    assert min(delays) >= 3 and max(delays) <= 5 and len(delays) > 100


class _Recorder:
    """An observer that keeps what it heard."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, bool]] = []
        self.passes: list[tuple[float, float]] = []

    def step(self, action: str, ok: bool) -> None:
        self.steps.append((action, ok))

    def finished_pass(self, seconds: float, oldest_due_age: float) -> None:
        self.passes.append((seconds, oldest_due_age))


def test_stop_ends_a_pass_between_steps_saving_what_was_carried_out() -> None:
    store, service, _ = _counted()
    for name in ("a", "b", "c", "d"):
        service.invoke("CreateInferenceExperiment", create_request(name))

    class StopAfterTwo(SimulatedActuator):
        def apply(self, step: Any) -> None:
            super().apply(step)
            if len(self.applied) == 4:  # a's and b's two variants
                reconciler.stop()

    actuator = StopAfterTwo()
    reconciler = Reconciler(service, actuator)
    assert reconciler.run_once() == 2
    statuses = {n: store.get(ACCOUNT, n).status for n in "abcd"}  # type: ignore[union-attr]
    assert statuses == {"a": "Starting", "b": "Starting", "c": "Creating", "d": "Creating"}
    assert reconciler.stopping
    assert reconciler.run_once() == 0  # stopped: no more passes
    assert len(actuator.applied) == 4


def test_release_lets_another_reconciler_take_the_work_at_once() -> None:
    store, service, clock = _counted()
    service.invoke("CreateInferenceExperiment", create_request("a"))
    leaving = Reconciler(service, owner="leaving")
    assert store.claim(clock(), 10, "leaving", 30.0) == [ExperimentKey(ACCOUNT, "a")]
    assert Reconciler(service, owner="next").run_once() == 0  # claimed by another
    assert leaving.release() == 1
    assert Reconciler(service, owner="next").run_once() == 2


def test_the_observer_hears_each_step_and_each_pass() -> None:
    _, service, clock = _counted()
    service.invoke("CreateInferenceExperiment", create_request("a"))
    clock.advance(2.5)
    recorder = _Recorder()
    actuator = SimulatedActuator()
    actuator.fail("start-shadow-test", times=1)
    reconciler = Reconciler(service, actuator, observer=recorder)
    reconciler.run_once()
    assert recorder.steps == [
        ("provision-variant", True),
        ("provision-variant", True),
        ("start-shadow-test", False),
    ]
    assert len(recorder.passes) == 1
    seconds, oldest = recorder.passes[0]
    assert seconds >= 0
    assert oldest == pytest.approx(2.5, abs=0.01)  # created 2.5 s before the pass


def test_each_failed_attempt_has_one_log_line_with_its_step(
    caplog: pytest.LogCaptureFixture,
) -> None:

    caplog.set_level(logging.INFO, logger="lifecycle.reconciler")
    _, service, _ = _counted()
    service.invoke("CreateInferenceExperiment", create_request("a"))
    actuator = SimulatedActuator()
    actuator.fail("provision-variant", times=1, message="quota exceeded")
    Reconciler(service, actuator).run_once()
    lines = [r for r in caplog.records if getattr(r, "fields", None)]
    assert len(lines) == 1
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["experiment"] == "a"
    assert fields["action"] == "provision-variant"
    assert fields["attempt"] == 1
    assert fields["error"].startswith("quota exceeded")
    assert fields["variant"] == "prod"
    assert fields["retry_in_s"] == 1.0
