"""A service, store, reconciler, actuator and controllable clock, wired for tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.actuators import SimulatedActuator
from lifecycle.domain.statuses import Operation
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.base import ListQuery
from lifecycle.stores.memory import MemoryStore

__all__ = ["T0", "VirtualClock", "World"]

#: where a :class:`VirtualClock` starts unless told: 2027-01-15T08:00:00Z
T0 = 1_800_000_000.0


class VirtualClock:
    """A clock that moves only when told: call it for the time, ``advance`` to move it."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` on (never back); return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} seconds)")
        self.now += seconds
        return self.now

    def set(self, now: float) -> float:
        """Move the clock to ``now`` (never back); return it."""
        return self.advance(now - self.now)

    def __repr__(self) -> str:
        return f"VirtualClock({self.now})"


class World:
    """Everything a test of the engine needs, in memory, on a :class:`VirtualClock`.

    ``name`` is the experiment the world was arranged for (``experiment_in``
    sets it); the helpers take another name where given.
    """

    def __init__(
        self,
        *,
        name: str = "exp",
        settle: float = 0.0,
        clock: VirtualClock | None = None,
        actuator: SimulatedActuator | None = None,
        max_attempts: int = 3,
        retry_seconds: float = 1.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        max_live_experiments: int | None = 100,
    ) -> None:
        self.name = name
        self.clock = clock if clock is not None else VirtualClock()
        self.store = MemoryStore()
        self.service = ExperimentService(
            self.store,
            clock=self.clock,
            settle_seconds=settle,
            region=region,
            account_id=account_id,
            max_live_experiments=max_live_experiments,
        )
        self.actuator = actuator if actuator is not None else SimulatedActuator()
        self.reconciler = Reconciler(
            self.service,
            self.actuator,
            clock=self.clock,
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
        )

    # -- calls ------------------------------------------------------------------------

    def invoke(
        self, operation: str, payload: Mapping[str, Any] | None = None, **members: Any
    ) -> dict[str, Any]:
        """``service.invoke(operation, {"Name": self.name, **payload, **members})``.

        Pass ``Name`` to name another experiment (``ListInferenceExperiments``
        gets no Name).
        """
        body: dict[str, Any] = {} if operation == Operation.LIST else {"Name": self.name}
        body.update(payload or {})
        body.update(members)
        return self.service.invoke(operation, body)

    def describe(self, name: str | None = None) -> dict[str, Any]:
        return self.service.invoke(Operation.DESCRIBE, {"Name": name or self.name})

    def status(self, name: str | None = None) -> str:
        return str(self.describe(name)["Status"])

    def variant_statuses(self, name: str | None = None) -> dict[str, str]:
        """Each variant's status by variant name."""
        return {v["VariantName"]: v["Status"] for v in self.describe(name)["ModelVariants"]}

    # -- time ---------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The earliest time the reconciler has something to do, across every experiment."""
        due = [
            e.due_at
            for e in self.store.list(ListQuery(limit=1_000_000)).items
            if e.due_at is not None
        ]
        return min(due, default=None)

    def advance(self, seconds: float = 0.0) -> int:
        """Move the clock ``seconds`` on, running the reconciler at each due time on the way.

        Every step falls due at its own time (a settle time, a StartTime, an
        EndTime, a retry), so what Describe shows afterwards is what a real
        reconciler polling all along would have left. Returns how many
        reconciler steps were saved.
        """
        target = self.clock.now + seconds
        moved = self.reconciler.run_once()
        for _ in range(100_000):
            due = self.next_due()
            if due is None or due > target:
                break
            if due > self.clock.now:
                self.clock.set(due)
            step = self.reconciler.run_once()
            moved += step
            if step == 0 and due <= self.clock.now:
                break  # due but not moving (someone else holds it): do not spin
        if target > self.clock.now:
            self.clock.set(target)
            moved += self.reconciler.run_once()
        return moved

    def __repr__(self) -> str:
        return f"World(name={self.name!r}, now={self.clock.now}, experiments={len(self.store)})"
