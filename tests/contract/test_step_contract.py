"""The step contract (docs/actuators.md, SPEC §1 Failure), on every store: what a failing actuator leaves.

Each test drives the real service and reconciler over the store with an actuator
that fails where the test says, and checks the record after every pass.
"""

from __future__ import annotations

from typing import Any

from lifecycle.actuators import SimulatedActuator, Step
from lifecycle.errors import ActuatorError
from lifecycle.service import ExperimentService, Reconciler
from lifecycle.stores import Store
from lifecycle.testing import variant_config as variant
from lifecycle.wire import shapes

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Failing(SimulatedActuator):
    """Fails every step of ``action`` (of ``variant``, when given) with ``message``; records all."""

    def __init__(
        self, action: str, variant: str | None = None, message: str = "no capacity", **kw: Any
    ) -> None:
        super().__init__()
        self.action, self.variant, self.message, self.kw = action, variant, message, kw

    def apply(self, step: Step) -> None:
        if step.action == self.action and self.variant in (None, step.variant):
            self.calls.append(step)
            raise ActuatorError(self.message, **self.kw)
        super().apply(step)


CREATE = {
    "Name": "exp",
    "Type": "ShadowMode",
    "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
    "EndpointName": "ep",
    "ModelVariants": [variant("prod", "model-a"), variant("shadow", "model-b")],
    "ShadowModeConfig": {
        "SourceModelVariantName": "prod",
        "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
    },
}


class World:
    def __init__(self, store: Store, actuator: SimulatedActuator, **reconciler: Any) -> None:
        self.clock = Clock()
        self.actuator = actuator
        self.service = ExperimentService(store, clock=self.clock)
        self.reconciler = Reconciler(self.service, actuator, clock=self.clock, **reconciler)

    def describe(self) -> dict[str, Any]:
        return self.service.invoke("DescribeInferenceExperiment", {"Name": "exp"})

    def statuses(self) -> tuple[str, dict[str, str]]:
        d = self.describe()
        return d["Status"], {v["VariantName"]: v["Status"] for v in d["ModelVariants"]}

    def passes(self, n: int) -> list[tuple[str, dict[str, str]]]:
        """``n`` reconciler passes a minute apart (past every backoff), the statuses after each."""
        seen = []
        for _ in range(n):
            self.reconciler.run_once()
            seen.append(self.statuses())
            self.clock.now += 60
        return seen

    def running(self) -> None:
        self.service.invoke("CreateInferenceExperiment", CREATE)
        self.reconciler.run_once()
        assert self.statuses()[0] == "Running"

    def actions(self) -> list[tuple[str, str | None]]:
        return [(s.action, s.variant) for s in self.actuator.calls]


def test_a_shadow_that_cannot_be_provisioned_leaves_both_creating_then_ends_all_deleted(
    store: Store,
) -> None:
    world = World(store, Failing("provision-variant", "shadow"), max_attempts=3)
    world.service.invoke("CreateInferenceExperiment", CREATE)
    seen = world.passes(3)
    assert seen[:2] == [("Creating", {"prod": "Creating", "shadow": "Creating"})] * 2
    assert seen[2] == ("Cancelled", {"prod": "Deleted", "shadow": "Deleted"})
    reason = world.describe()["StatusReason"]
    assert "provision-variant of shadow" in reason and "no capacity" in reason
    # what was provisioned is deprovisioned: prod's provision was confirmed, so it is removed
    assert world.actions()[-1] == ("remove-variant", "prod")


def test_a_promotion_that_fails_for_good_leaves_production_in_service(store: Store) -> None:
    world = World(store, Failing("promote-variant"), max_attempts=2)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Promote"}}
    )
    seen = world.passes(2)
    assert seen[0] == ("Stopping", {"prod": "Deleting", "shadow": "Updating"})
    assert seen[1] == ("Cancelled", {"prod": "InService", "shadow": "InService"})
    assert ("remove-variant", "prod") not in world.actions(), (
        "production was removed before its replacement"
    )
    assert world.describe()["ShadowModeConfig"]["SourceModelVariantName"] == "prod"


def test_every_try_of_one_step_carries_the_same_key(store: Store) -> None:
    actuator = SimulatedActuator()
    actuator.fail("start-shadow-test", 2)
    world = World(store, actuator)
    world.service.invoke("CreateInferenceExperiment", CREATE)
    world.passes(3)
    assert world.statuses()[0] == "Running"
    keys = [s.key for s in actuator.calls if s.action == "start-shadow-test"]
    assert len(keys) == 3 and len(set(keys)) == 1
    assert [s.attempt for s in actuator.calls if s.action == "start-shadow-test"] == [1, 2, 3]


def test_a_desired_item_for_a_retained_variant_is_a_step_the_record_shows_once_carried_out(
    store: Store,
) -> None:

    world = World(store, SimulatedActuator())
    world.running()
    world.service.invoke(
        "StopInferenceExperiment",
        {
            "Name": "exp",
            "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"},
            "DesiredModelVariants": [variant("prod", "m-new", "ml.c5.xlarge", 4)],
        },
    )
    prod = next(v for v in world.describe()["ModelVariants"] if v["VariantName"] == "prod")
    assert (prod["Status"], prod["ModelName"]) == ("Updating", "model-a")
    world.reconciler.run_once()
    steps = [s for s in world.actuator.calls if s.action == "update-variant"]
    assert [(s.variant, s.model_name, s.infrastructure) for s in steps] == [
        ("prod", "m-new", variant("prod", "m-new", "ml.c5.xlarge", 4)["InfrastructureConfig"])
    ]
    prod = next(v for v in world.describe()["ModelVariants"] if v["VariantName"] == "prod")
    assert (prod["Status"], prod["ModelName"]) == ("InService", "m-new")
    assert world.statuses()[0] == "Completed"


def test_a_long_error_is_cut_to_the_1024_characters_a_status_reason_holds(store: Store) -> None:
    world = World(store, Failing("start-shadow-test", message="x" * 2000), max_attempts=1)
    world.service.invoke("CreateInferenceExperiment", CREATE)
    world.passes(1)
    described = world.describe()
    assert described["Status"] == "Cancelled"
    assert len(described["StatusReason"]) <= 1024
    shapes.DescribeInferenceExperimentResponse.model_validate(described)


def test_an_error_retrying_cannot_mend_fails_at_once(store: Store) -> None:
    world = World(
        store,
        Failing("start-shadow-test", message="400: bad request", retryable=False),
        max_attempts=5,
    )
    world.service.invoke("CreateInferenceExperiment", CREATE)
    world.passes(1)
    assert world.statuses()[0] == "Cancelled"
    assert "400: bad request" in world.describe()["StatusReason"]
    assert len([s for s in world.actuator.calls if s.action == "start-shadow-test"]) == 1


def test_a_failed_attempt_changes_only_its_retry_bookkeeping(store: Store) -> None:
    world = World(store, Failing("remove-variant"), max_attempts=3)
    world.running()
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "exp", "ModelVariantActions": {"shadow": "Promote"}}
    )
    before = store.get(ACCOUNT, "exp")
    world.passes(1)
    after = store.get(ACCOUNT, "exp")
    assert before is not None and after is not None
    assert (after.version, after.attempts) == (before.version + 1, 1)
    assert after.last_error is not None and "no capacity" in after.last_error
    for field in ("status", "variants", "status_reason", "entered_at", "start_time", "end_time"):
        assert getattr(after, field) == getattr(before, field), field
    assert (
        store.history(ACCOUNT, "exp")
        == store.history(ACCOUNT, "exp")[: len(store.history(ACCOUNT, "exp"))]
    )
    assert [e.event for e in store.history(ACCOUNT, "exp")][-1] == "stop"


OTHER_ACCOUNT = "210987654321"


def test_two_accounts_experiments_of_one_name_never_share_a_step_key(store: Store) -> None:
    world = World(store, SimulatedActuator())
    other = world.service.for_account(OTHER_ACCOUNT)
    world.service.invoke("CreateInferenceExperiment", CREATE)
    other.invoke("CreateInferenceExperiment", CREATE)
    world.reconciler.run_once()
    for service in (world.service, other):
        assert service.invoke("DescribeInferenceExperiment", {"Name": "exp"})["Status"] == (
            "Running"
        )
    steps = list(world.actuator.calls)
    by_account: dict[str, set[str]] = {}
    for step in steps:
        by_account.setdefault(step.account, set()).add(step.key)
        assert step.account in step.key, step
        assert step.arn == store_arn(step.account)
    assert set(by_account) == {"123456789012", OTHER_ACCOUNT}
    assert by_account["123456789012"].isdisjoint(by_account[OTHER_ACCOUNT])
    # each account's steps are the same steps, and every one of them was carried out
    assert len(by_account["123456789012"]) == len(by_account[OTHER_ACCOUNT]) == len(steps) // 2
    assert set(world.actuator.applied) == {s.key for s in steps}


def store_arn(account: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:{account}:inference-experiment/exp"
