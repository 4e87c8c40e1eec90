"""StopInferenceExperiment through `invoke` on a MemoryStore, against a bare `transitions` trigger.

Prints, from one run: the median microseconds of a Stop through
``ExperimentService.invoke`` with 1,000 and 100,000 stored experiments (each
stop on a Running experiment drawn at random), and of a bare trigger on a
model bound to a plain Machine with the same states. The three take turns
in short rounds, so a change in background load reaches all of them alike.

    python benchmarks/bench_engine.py [--stops 6000] [--round 100]
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
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

T0 = 1_800_000_000.0
INFRA = {
    "InfrastructureType": "RealTimeInference",
    "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
}


def seed(n: int) -> tuple[ExperimentService, list[str]]:
    store = MemoryStore()
    service = ExperimentService(store, clock=lambda: T0 + 60, max_live_experiments=None)
    names = []
    for i in range(n):
        name = f"exp-{i:07d}"
        exp = Experiment(
            account=service.account_id,
            name=name,
            arn=service.arn(name),
            endpoint_name=f"ep-{i}",
            role_arn="arn:aws:iam::123456789012:role/r",
            variants=[
                Variant("prod", "model-a", INFRA, VariantStatus.IN_SERVICE),
                Variant("shadow", "model-b", INFRA, VariantStatus.IN_SERVICE),
            ],
            shadow_mode_config={
                "SourceModelVariantName": "prod",
                "ShadowModelVariants": [
                    {"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}
                ],
            },
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
    """A Stop request as a server decodes it: new objects, the name a new string equal to the stored one."""
    return {
        "Name": name.encode().decode(),
        "ModelVariantActions": {"shadow": "Promote"},
        "DesiredState": "Completed",
        "Reason": "shadow wins",
    }


class _StopRun:
    """Stops on one store, each on a Running experiment drawn at random; timed one by one."""

    def __init__(self, stored: int, stops: int) -> None:
        self.service, names = seed(stored)
        self.picks = iter(random.Random(stored).sample(names, stops))
        self.samples: list[int] = []

    def run(self, count: int) -> None:
        invoke = self.service.invoke
        for _, name in zip(
            range(count), self.picks, strict=False
        ):  # range first: zip stops before taking a pick
            payload = _stop_request(
                name
            )  # built just before the call, as a server decodes a request
            t = time.perf_counter_ns()
            invoke("StopInferenceExperiment", payload)
            self.samples.append(time.perf_counter_ns() - t)


class _Model:
    pass


class _BareRun:
    """A bare trigger on a model bound to a plain Machine with the same states."""

    def __init__(self) -> None:
        self.model = _Model()
        Machine(
            self.model,
            states=list(ExperimentStatus),
            initial=ExperimentStatus.RUNNING,
            transitions=[
                ["stop", ExperimentStatus.RUNNING, ExperimentStatus.STOPPING],
                ["again", ExperimentStatus.STOPPING, ExperimentStatus.RUNNING],
            ],
            auto_transitions=False,
        )
        self.samples: list[int] = []

    def run(self, count: int) -> None:
        model = self.model
        for _ in range(count):
            t = time.perf_counter_ns()
            model.stop()  # type: ignore[attr-defined]
            self.samples.append(time.perf_counter_ns() - t)
            model.again()  # type: ignore[attr-defined]


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=6000, help="timed stops per store size")
    parser.add_argument("--round", type=int, default=100, help="calls per run in each round")
    args = parser.parse_args()
    # Several 1,000-experiment stores (one can be stopped only 1,000 times), one of
    # 100,000. The three measurements take turns in short rounds, so all of them
    # see the same background load; the first round of each is a warm-up.
    per_small = 900
    smalls = [_StopRun(1_000, per_small) for _ in range(-(-(args.stops + args.round) // per_small))]
    large = _StopRun(100_000, args.stops + args.round)
    bare = _BareRun()
    gc.collect()
    gc.disable()  # the same for all three: no collection inside a timed call
    try:
        for r in range(args.stops // args.round + 1):
            bare.run(args.round)
            smalls[r * args.round // per_small].run(args.round)
            large.run(args.round)
            if r == 0:
                for run in (bare, smalls[0], large):
                    run.samples.clear()
    finally:
        gc.enable()
    small_samples = [x for run in smalls for x in run.samples]
    bare_us, small_us, large_us = (
        _median_us(bare.samples),
        _median_us(small_samples),
        _median_us(large.samples),
    )
    print(
        f"timed calls: {len(bare.samples)} bare, {len(small_samples)} on 1,000 stored, {len(large.samples)} on 100,000 stored"
    )
    print(f"bare transitions trigger:              median {bare_us:7.2f} us")
    print(
        f"Stop via invoke, 1,000 stored:         median {small_us:7.2f} us  ({small_us / bare_us:.2f}x bare; target <= 4x)"
    )
    print(
        f"Stop via invoke, 100,000 stored:       median {large_us:7.2f} us  ({large_us / bare_us:.2f}x bare; target <= 4x)"
    )
    print(f"100,000 vs 1,000 stored:               {large_us / small_us:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
