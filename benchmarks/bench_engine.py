"""StopInferenceExperiment through `invoke` on a MemoryStore, against a bare `transitions` trigger.

Prints, from one run: the median microseconds of a Stop through
``ExperimentService.invoke`` with 1,000 and 100,000 stored experiments (each
stop on a Running experiment drawn at random), and of a bare trigger on a
model bound to a plain Machine with the same states.

    python benchmarks/bench_engine.py [--stops 5000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from transitions import Machine

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

T0 = 1_800_000_000.0
INFRA = {"InfrastructureType": "RealTimeInference", "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}


def seed(n: int) -> tuple[ExperimentService, list[str]]:
    store = MemoryStore()
    service = ExperimentService(store, clock=lambda: T0 + 60, max_live_experiments=None)
    names = []
    for i in range(n):
        name = f"exp-{i:07d}"
        exp = Experiment(
            name=name,
            arn=service.arn(name),
            endpoint_name=f"ep-{i}",
            role_arn="arn:aws:iam::123456789012:role/r",
            variants=[Variant("prod", "model-a", INFRA, VariantStatus.IN_SERVICE), Variant("shadow", "model-b", INFRA, VariantStatus.IN_SERVICE)],
            shadow_mode_config={"SourceModelVariantName": "prod", "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}]},
            start_time=T0,
            end_time=T0 + 7 * 86400,
            creation_time=T0,
            last_modified_time=T0,
            status=ExperimentStatus.RUNNING,
            due_at=T0 + 7 * 86400,
        )
        store.create(exp, HistoryEntry(name, T0, "create", None, ExperimentStatus.CREATING))
        names.append(name)
    return service, names


def _stop_request(name: str) -> dict[str, object]:
    return {"Name": name, "ModelVariantActions": {"shadow": "Promote"}, "DesiredState": "Completed", "Reason": "shadow wins"}


def bench_stop(n: int, stops: int) -> float:
    service, names = seed(n)
    picks = random.Random(n).sample(names, stops)
    invoke = service.invoke
    for name in picks[:200]:  # warm up on experiments not measured below
        invoke("StopInferenceExperiment", _stop_request(name))
    samples = []
    gc.collect()
    gc.disable()
    try:
        for name in picks[200:]:
            # built just before the call, as a server decodes each request just before it
            payload = _stop_request(name)
            t = time.perf_counter_ns()
            invoke("StopInferenceExperiment", payload)
            samples.append(time.perf_counter_ns() - t)
    finally:
        gc.enable()
    return statistics.median(samples) / 1000


class _Model:
    pass


def bench_bare(triggers: int) -> float:
    model = _Model()
    Machine(
        model,
        states=list(ExperimentStatus),
        initial=ExperimentStatus.RUNNING,
        transitions=[["stop", ExperimentStatus.RUNNING, ExperimentStatus.STOPPING], ["again", ExperimentStatus.STOPPING, ExperimentStatus.RUNNING]],
        auto_transitions=False,
    )
    samples = []
    for _ in range(triggers):
        t = time.perf_counter_ns()
        model.stop()  # type: ignore[attr-defined]
        samples.append(time.perf_counter_ns() - t)
        model.again()  # type: ignore[attr-defined]
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=5000)
    args = parser.parse_args()
    bare = bench_bare(args.stops)
    small = bench_stop(1_000, min(args.stops, 900))
    large = bench_stop(100_000, args.stops)
    print(f"bare transitions trigger:              median {bare:7.2f} us")
    print(f"Stop via invoke, 1,000 stored:         median {small:7.2f} us  ({small / bare:.2f}x bare; target <= 4x)")
    print(f"Stop via invoke, 100,000 stored:       median {large:7.2f} us  ({large / bare:.2f}x bare; target <= 4x)")
    print(f"100,000 vs 1,000 stored:               {large / small:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
