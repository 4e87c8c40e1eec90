"""`lifecycle demo`: create, run and stop one experiment in memory, printing each status."""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.domain.statuses import Operation
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import create_payload

__all__ = ["run_demo"]


def run_demo(out: Callable[[str], None] = print) -> int:
    """Run one shadow test from create to a promoting stop on a virtual clock."""
    now = [1_800_000_000.0]
    service = ExperimentService(MemoryStore(), clock=lambda: now[0], settle_seconds=60)
    reconciler = Reconciler(service)

    def show(entry: HistoryEntry) -> None:
        source = entry.from_status.value if entry.from_status else "(new)"
        out(f"{entry.name}: {entry.event:<11} {source:>9} -> {entry.to_status.value}")

    service.add_listener(show)
    # two variants: "prod" (model-a) in production and "shadow" (model-b) beside it
    service.invoke(Operation.CREATE, create_payload(Name="demo", EndpointName="demo-endpoint"))
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
