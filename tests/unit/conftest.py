from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def variant(
    name: str, model: str = "model", instance: str = "ml.m5.xlarge", count: int = 1
) -> dict[str, Any]:
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": instance, "InstanceCount": count},
        },
    }


def create_request(name: str = "exp", endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
        "EndpointName": endpoint or f"{name}-endpoint",
        "ModelVariants": [variant("prod", "model-a"), variant("shadow", "model-b")],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }
    req.update(extra)
    return req


class World:
    """A service, its store, reconciler and clock, for arranging tests."""

    def __init__(self, settle: float = 0.0) -> None:
        self.clock = Clock()
        self.store = MemoryStore()
        self.service = ExperimentService(self.store, clock=self.clock, settle_seconds=settle)
        self.reconciler = Reconciler(self.service, clock=self.clock)

    def create(self, name: str = "exp", **extra: Any) -> dict[str, Any]:
        return self.service.invoke("CreateInferenceExperiment", create_request(name, **extra))

    def running(self, name: str = "exp", **extra: Any) -> str:
        self.create(name, **extra)
        self.reconciler.run_once()
        assert self.status(name) == "Running"
        return name

    def describe(self, name: str = "exp") -> dict[str, Any]:
        return self.service.invoke("DescribeInferenceExperiment", {"Name": name})

    def status(self, name: str = "exp") -> str:
        return str(self.describe(name)["Status"])

    def variants(self, name: str = "exp") -> dict[str, dict[str, Any]]:
        return {v["VariantName"]: v for v in self.describe(name)["ModelVariants"]}

    def snapshot(self) -> Any:
        page = self.store.list(
            __import__("lifecycle.stores.base", fromlist=["ListQuery"]).ListQuery(limit=10_000)
        )
        return [(e, self.store.history(e.name)) for e in page.items]


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def make_world() -> Callable[..., World]:
    return World
