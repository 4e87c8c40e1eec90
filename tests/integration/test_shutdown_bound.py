"""SIGTERM in the middle of a reconciler pass: the server exits within its bound, no step is lost.

A SQLite file holds 1,000 experiments in Creating, due now (made by the real
service in a :class:`~lifecycle.testing.World`, then loaded in bulk).
``lifecycle serve`` works through them with an actuator that takes 20 ms a
step and writes down each step's key once it has carried it out. Once it has
done a few, SIGTERM: the process must exit 0 within 10 s, not at the end of
its pass (1,000 experiments, 2,000 steps in Creating alone). Restarted with
the simulated actuator, the server must take every experiment out of
Creating at once, since the first one gave its claims back on the way out,
and no experiment may fail. Every step the first server carried out was
either saved (its experiment moved past the step) or is carried out again
under the same idempotency key; none that was saved is carried out twice.

This module is also the actuator: the server imports
``tests.integration.test_shutdown_bound:slow_actuator`` (or
``recorded_simulated``), each writing keys to ``$LIFECYCLE_TEST_STEPS``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from lifecycle.actuators import SimulatedActuator, Step
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.stores import SqliteStore
from lifecycle.testing import VirtualClock, World

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

EXPERIMENTS = 1_000
STEP_SECONDS = 0.02
#: steps the first server carries out before it is told to stop
BEFORE_SIGTERM = 40
SHUTDOWN_BOUND = 10.0
#: how long the restarted server may take to move all of them out of Creating: well under
#: the 30 s lease a claim that was never given back would hold an experiment for
RESTART_BOUND = 15.0
MODULE = "tests.integration.test_shutdown_bound"
STEPS_ENV = "LIFECYCLE_TEST_STEPS"


# -- the actuators the server runs (imported by name in its process) ----------------------------


class _KeyRecord:
    """Appends each carried-out step's key to ``$LIFECYCLE_TEST_STEPS``, a line each."""

    def __init__(self) -> None:
        self.path = os.environ[STEPS_ENV]

    def write(self, step: Step) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(step.key + "\n")


class SlowActuator:
    """Takes STEP_SECONDS per step, then records its key: a step is confirmed once written."""

    def __init__(self) -> None:
        self.record = _KeyRecord()

    def apply(self, step: Step) -> None:
        time.sleep(STEP_SECONDS)
        self.record.write(step)


class RecordedSimulatedActuator(SimulatedActuator):
    """The simulated actuator, also writing down the key of each step it carries out."""

    def __init__(self) -> None:
        super().__init__()
        self.record = _KeyRecord()

    def apply(self, step: Step) -> None:
        super().apply(step)
        self.record.write(step)


def slow_actuator() -> SlowActuator:
    return SlowActuator()


def recorded_simulated() -> RecordedSimulatedActuator:
    return RecordedSimulatedActuator()


# -- the test ------------------------------------------------------------------------------------


def seed_creating(path: Path, n: int) -> list[str]:
    """``n`` experiments in Creating, due now, created by the service and loaded into ``path``."""
    world = World(clock=VirtualClock(time.time() - 60), max_live_experiments=None)
    names = [f"sd-{i:04d}" for i in range(n)]
    for name in names:
        world.create(name)
    store = SqliteStore(path)
    try:
        loaded = store.bulk_create((exp, history[0]) for exp, history in world.snapshot())
    finally:
        store.close()
    assert loaded == n
    return names


def read_keys(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def parse_key(key: str) -> tuple[str, int]:
    """The experiment name and the planned version in ``{arn}|v{version}|{action}|{variant}``."""
    arn, version, _action, _variant = key.split("|")
    return arn.rpartition("/")[2], int(version.removeprefix("v"))


def wait_for_lines(path: Path, n: int, server: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(read_keys(path)) < n:
        assert server.process.poll() is None, f"the server died:\n{server.output[-3000:]}"
        assert time.monotonic() < deadline, (
            f"under {n} steps in {timeout}s:\n{server.output[-3000:]}"
        )
        time.sleep(0.02)


def creating_left(client: Any) -> bool:
    page = client.list_inference_experiments(StatusEquals="Creating", MaxResults=1)
    return bool(page["InferenceExperiments"])


@pytest.mark.slow
def test_sigterm_mid_pass_exits_within_the_bound_and_the_rest_runs_after_a_restart(
    serve_process: Any, client_for: Any, tmp_path: Path
) -> None:

    db = tmp_path / "shutdown.db"
    names = seed_creating(db, EXPERIMENTS)
    url = f"sqlite:///{db}"
    first_keys, second_keys = tmp_path / "first.keys", tmp_path / "second.keys"

    first = serve_process(
        "--store", url, "--actuator", f"{MODULE}:slow_actuator", env={STEPS_ENV: str(first_keys)}
    ).wait_started()
    wait_for_lines(first_keys, BEFORE_SIGTERM, first, timeout=20.0)
    first.signal(signal.SIGTERM)
    told = time.monotonic()
    code = first.wait(timeout=SHUTDOWN_BOUND + 10)
    took = time.monotonic() - told
    assert code == 0, first.output[-3000:]
    assert took < SHUTDOWN_BOUND, f"exited {took:.1f}s after SIGTERM:\n{first.output[-3000:]}"
    assert "still running after" not in first.output  # it stopped between steps, in time

    confirmed = read_keys(first_keys)
    assert len(confirmed) < EXPERIMENTS, "the pass ran to its end: SIGTERM did not cut it"
    store = SqliteStore(db)
    try:
        after_first = {name: store.get(ACCOUNT, name) for name in names}
    finally:
        store.close()
    saved: list[str] = []
    unsaved: list[str] = []
    for key in confirmed:
        name, planned = parse_key(key)
        stored = after_first[name]
        assert stored is not None
        (saved if stored.version > planned else unsaved).append(key)
    assert saved, "nothing the first server carried out was saved"

    restarted = time.monotonic()
    second = serve_process(
        "--store",
        url,
        "--actuator",
        f"{MODULE}:recorded_simulated",
        env={STEPS_ENV: str(second_keys)},
    ).wait_started()
    client = client_for(second.url)
    while creating_left(client):
        waited = time.monotonic() - restarted
        assert waited < RESTART_BOUND, f"experiments still Creating {waited:.1f}s after restart"
        time.sleep(0.1)
    second.signal(signal.SIGTERM)
    assert second.wait(timeout=SHUTDOWN_BOUND + 10) == 0, second.output[-3000:]

    # no step lost: each one the first server confirmed was saved, or came again with its key
    repeated = set(read_keys(second_keys))
    assert [key for key in unsaved if key not in repeated] == []
    assert [key for key in saved if key in repeated] == []  # a saved step is never redone
    store = SqliteStore(db)
    try:
        final = [store.get(ACCOUNT, name) for name in names]
    finally:
        store.close()
    moved_on = {ExperimentStatus.CREATED, ExperimentStatus.STARTING, ExperimentStatus.RUNNING}
    assert all(exp is not None and exp.status in moved_on for exp in final), {
        exp.status for exp in final if exp is not None
    }
    failed = [exp.name for exp in final if exp is not None and (exp.attempts or exp.last_error)]
    assert failed == []
    assert "Traceback" not in first.output + second.output
