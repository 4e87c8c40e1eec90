"""experiment_in(): one experiment already in any status, reached through real transitions."""

from __future__ import annotations

import pytest

from lifecycle.actuators import SimulatedActuator
from lifecycle.domain.statuses import ExperimentStatus as E
from lifecycle.domain.statuses import VariantStatus as V
from lifecycle.errors import ConflictError
from lifecycle.testing import VirtualClock, World, create_payload, experiment_in
from lifecycle.testing.paths import path_to, shortest_paths

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


@pytest.mark.parametrize("status", list(E))
def test_experiment_in_every_status(status: E) -> None:
    world = experiment_in(status)
    assert world.status() == status.value
    entries = world.store.history(ACCOUNT, "exp")
    assert entries[-1].to_status is status
    # every change of status is a transition in history: nothing wrote the field
    assert [e.from_status for e in entries[1:]] == [e.to_status for e in entries[:-1]]


@pytest.mark.parametrize("status", [V.CREATING, V.IN_SERVICE, V.UPDATING, V.DELETING, V.DELETED])
def test_experiment_in_every_variant_status(status: V) -> None:
    world = experiment_in(status, variant="shadow")
    assert world.variant_statuses()["shadow"] == status.value


@pytest.mark.parametrize("status", ["InService", "Deleting", "Deleted"])
def test_a_status_only_variants_have_means_any_variant(status: str) -> None:
    assert status in experiment_in(status).variant_statuses().values()


def test_the_world_has_everything_a_test_needs() -> None:
    world = experiment_in("Running", name="my-exp", settle=30)
    assert world.name == "my-exp"
    assert world.service.settle_seconds == 30
    assert world.store.get(ACCOUNT, "my-exp") is not None
    assert world.reconciler.clock is world.clock
    assert world.service.clock is world.clock
    assert isinstance(world.actuator, SimulatedActuator)
    assert world.describe()["EndpointMetadata"]["EndpointName"] == "my-exp-endpoint"
    world.invoke("StopInferenceExperiment", ModelVariantActions={"shadow": "Promote"})
    world.advance(30)
    assert world.status() == "Completed"


def test_settle_time_passes_on_the_virtual_clock_while_arranging() -> None:
    world = experiment_in("Running", settle=30)
    assert world.clock.now - world.describe()["CreationTime"] == 60


def test_a_second_experiment_joins_an_existing_world() -> None:
    world = experiment_in("Running", name="a")
    experiment_in("Created", name="b", world=world)
    assert (world.status("a"), world.status("b"), world.name) == ("Running", "Created", "b")
    with pytest.raises(TypeError):
        experiment_in("Created", name="c", world=world, settle=5)


def test_a_path_can_be_given_instead_of_a_status() -> None:
    path = next(p for p in shortest_paths() if p.status is E.CANCELLED and "stopped" in p.id)
    world = experiment_in(path)
    assert world.status() == "Cancelled"
    assert world.variant_statuses() == {"prod": "InService", "shadow": "Deleted"}


def test_an_arranged_world_obeys_the_rules_of_its_status() -> None:
    world = experiment_in("Completed")
    with pytest.raises(ConflictError) as info:
        world.invoke("StartInferenceExperiment")
    assert info.value.rule == "start-from-status"


def test_an_unknown_status_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="Running"):
        experiment_in("Sleeping")
    with pytest.raises(LookupError, match="variant 'prod'"):
        path_to("Updating", variant="prod")  # no recipe updates the production variant


def test_the_clock_never_goes_back_and_advance_runs_each_step_at_its_due_time() -> None:
    clock = VirtualClock(100.0)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    assert clock.set(150.0) == 150.0
    assert clock() == 150.0
    world = World(settle=30)
    world.invoke("CreateInferenceExperiment", create_payload(EndpointName="ep"))
    t0 = world.clock.now
    world.advance(3600)
    assert [(h.event, h.time - t0) for h in world.store.history(ACCOUNT, "exp")] == [
        ("create", 0),
        ("provisioned", 30),
        ("started", 60),
    ]
    assert world.clock.now == t0 + 3600


def test_running_creates_and_settles_on_the_virtual_clock() -> None:
    world = World(settle=30)
    assert world.running("a", endpoint="ep", Description="d") == "a"
    assert world.clock.now - world.describe("a")["CreationTime"] == 60
    assert world.describe("a")["EndpointMetadata"]["EndpointName"] == "ep"
    assert set(world.variants("a")) == {"prod", "shadow"}
    with pytest.raises(AssertionError, match="not Running"):
        world.running("b", Schedule={"StartTime": world.clock.now + 3600})
    assert {e.name for e, _ in world.snapshot()} == {"a", "b"}
