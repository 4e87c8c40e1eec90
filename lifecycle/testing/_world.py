"""A service, store, reconciler, actuator and controllable clock, wired for tests, and the
experiment they hold unless told otherwise (:func:`create_payload`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lifecycle.actuators import SimulatedActuator
from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.base import ListQuery
from lifecycle.stores.memory import MemoryStore

__all__ = [
    "PRODUCTION_VARIANT",
    "SHADOW_VARIANT",
    "T0",
    "VirtualClock",
    "World",
    "advance_together",
    "create_payload",
    "variant_config",
]

#: where a :class:`VirtualClock` starts unless told: 2027-01-15T08:00:00Z
T0 = 1_800_000_000.0
PRODUCTION_VARIANT = "prod"
SHADOW_VARIANT = "shadow"


def variant_config(
    name: str, model: str = "model", instance: str = "ml.m5.xlarge", count: int = 1
) -> dict[str, Any]:
    """A ModelVariantConfig: ``model`` on ``count`` real-time ``instance`` instances."""
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": instance, "InstanceCount": count},
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
            variant_config(PRODUCTION_VARIANT, "model-a"),
            variant_config(SHADOW_VARIANT, "model-b"),
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

    def create(
        self, name: str | None = None, *, endpoint: str | None = None, **members: Any
    ) -> dict[str, Any]:
        """Create experiment ``name`` from :func:`create_payload` (``members`` on top) on
        EndpointName ``endpoint`` (default ``<name>-endpoint``); return the response."""
        name = name or self.name
        payload = create_payload(EndpointName=endpoint or f"{name}-endpoint", **members)
        return self.invoke(Operation.CREATE, payload, Name=name)

    def running(self, name: str | None = None, **create_members: Any) -> str:
        """:meth:`create` experiment ``name`` and let the reconciler take it to Running,
        the clock moving only through the settle times; return the name."""
        name = name or self.name
        self.create(name, **create_members)
        self.settle(name)
        if (status := self.status(name)) != ExperimentStatus.RUNNING:
            raise AssertionError(f"{name!r} is {status}, not Running (a Schedule.StartTime?)")
        return name

    def describe(self, name: str | None = None) -> dict[str, Any]:
        return self.service.invoke(Operation.DESCRIBE, {"Name": name or self.name})

    def status(self, name: str | None = None) -> str:
        return str(self.describe(name)["Status"])

    def variants(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """Each variant as Describe shows it, by variant name."""
        return {v["VariantName"]: v for v in self.describe(name)["ModelVariants"]}

    def variant_statuses(self, name: str | None = None) -> dict[str, str]:
        """Each variant's status by variant name."""
        return {n: v["Status"] for n, v in self.variants(name).items()}

    def record(self, name: str | None = None) -> Experiment | None:
        """The stored record of experiment ``name`` in the world's account (None: there is none)."""
        return self.store.get(self.service.account_id, name or self.name)

    def history(self, name: str | None = None) -> list[HistoryEntry]:
        """The committed transitions of experiment ``name`` in the world's account."""
        return self.store.history(self.service.account_id, name or self.name)

    def snapshot(self) -> list[tuple[Experiment, list[HistoryEntry]]]:
        """Every stored experiment, of every account, with its history: what a refused
        request must leave alone."""
        return [
            (e, self.store.history(account, e.name))
            for account in self.store.accounts()
            for e in self.store.list(ListQuery(account, limit=1_000_000)).items
        ]

    # -- time ---------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The earliest time the reconciler has something to do, across every experiment."""
        return self.store.next_due()

    def settle(self, name: str | None = None) -> None:
        """While experiment ``name`` is in a transitional status, move the clock to its
        step's due time and run the reconciler (past no StartTime or EndTime)."""
        for _ in range(100):
            exp = self.record(name)
            if exp is None or not exp.status.transitional or exp.due_at is None:
                return
            self.clock.set(max(exp.due_at, self.clock.now))
            self.reconciler.run_once()

    def advance(self, seconds: float = 0.0) -> int:
        """Move the clock ``seconds`` on, running the reconciler at each due time on the way.

        Every step falls due at its own time (a settle time, a StartTime, an
        EndTime, a retry), so what Describe shows afterwards is what a real
        reconciler polling all along would have left. Returns how many
        reconciler steps were saved.
        """
        return advance_together((self,), seconds)

    def __repr__(self) -> str:
        return f"World(name={self.name!r}, now={self.clock.now}, experiments={len(self.store)})"


def advance_together(worlds: Sequence[World], seconds: float = 0.0) -> int:
    """:meth:`World.advance` for ``worlds`` that share one clock: each due time of any of
    them is visited in order, every world's reconciler running there, so none acts late.

    Returns how many reconciler steps were saved, in all of them.
    """
    if not worlds:
        return 0
    clock = worlds[0].clock
    if any(world.clock is not clock for world in worlds):
        raise ValueError("the worlds advance together only on one shared clock")

    def run_once() -> int:
        return sum(world.reconciler.run_once() for world in worlds)

    target = clock.now + seconds
    moved = run_once()
    for _ in range(100_000):
        due = min((d for world in worlds if (d := world.next_due()) is not None), default=None)
        if due is None or due > target:
            break
        if due > clock.now:
            clock.set(due)
        step = run_once()
        moved += step
        if step == 0 and due <= clock.now:
            break  # due but not moving (someone else holds it): do not spin
    if target > clock.now:
        clock.set(target)
        moved += run_once()
    return moved
