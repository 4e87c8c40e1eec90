"""`lifecycle demo`: create, run and stop one experiment in memory, printing each status."""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.reconciler import Reconciler
from lifecycle.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

__all__ = ["run_demo"]


def _variant(name: str, model: str) -> dict[str, object]:
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        },
    }


def run_demo(out: Callable[[str], None] = print) -> int:
    """Run one shadow test from create to a promoting stop on a virtual clock."""
    now = [1_800_000_000.0]
    service = ExperimentService(MemoryStore(), clock=lambda: now[0], settle_seconds=60)
    reconciler = Reconciler(service)

    def show(entry: HistoryEntry) -> None:
        source = entry.from_status.value if entry.from_status else "(new)"
        out(f"{entry.name}: {entry.event:<11} {source:>9} -> {entry.to_status.value}")

    service.add_listener(show)
    service.create_inference_experiment(
        Name="demo",
        Type="ShadowMode",
        RoleArn="arn:aws:iam::123456789012:role/demo",
        EndpointName="demo-endpoint",
        ModelVariants=[_variant("production", "model-a"), _variant("shadow", "model-b")],
        ShadowModeConfig={
            "SourceModelVariantName": "production",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 20}],
        },
    )
    for _ in range(2):  # Creating -> Starting -> Running, one settle time each
        now[0] += 60
        reconciler.run_once()
    service.stop_inference_experiment(
        Name="demo",
        ModelVariantActions={"shadow": "Promote"},
        DesiredState="Completed",
        Reason="shadow model won",
    )
    now[0] += 60
    reconciler.run_once()
    final = service.describe_inference_experiment(Name="demo")
    for v in final["ModelVariants"]:
        out(f"variant {v['VariantName']}: {v['Status']} ({v['ModelName']})")
    out(f"final status: {final['Status']} ({final.get('StatusReason', '')})")
    return 0
