"""StopInferenceExperiment, exactly as SPEC §3 says: each rule on its own, then the decisions."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.errors import ConflictError, NotFoundError, ValidationError

from .conftest import World, variant

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


def stop(world: World, **kw: Any) -> dict[str, Any]:
    kw.setdefault("Name", "exp")
    return world.service.invoke("StopInferenceExperiment", kw)


def refused(world: World, error: type[Exception], **kw: Any) -> Any:
    before = world.snapshot()
    with pytest.raises(error) as info:
        stop(world, **kw)
    assert world.snapshot() == before, "a refused stop changed the store"
    return info.value


# --- ValidationException: the request alone -------------------------------------------


@pytest.mark.parametrize(
    ("request_members", "field"),
    [
        ({"Name": ""}, "name"),
        ({"Name": "a" * 121}, "name"),
        ({"Name": "bad_name"}, "name"),
        ({"Name": "exp\n"}, "name"),
        ({"ModelVariantActions": {}}, "modelVariantActions"),
        (
            {"ModelVariantActions": {"a": "Retain", "b": "Retain", "c": "Retain"}},
            "modelVariantActions",
        ),
        ({"ModelVariantActions": {"-bad": "Retain"}}, "modelVariantActions"),
        ({"ModelVariantActions": {"a" * 64: "Retain"}}, "modelVariantActions"),
        ({"ModelVariantActions": {"shadow": "Keep"}}, "modelVariantActions"),
        (
            {"ModelVariantActions": {"shadow": "Promote"}, "DesiredModelVariants": []},
            "desiredModelVariants",
        ),
        (
            {
                "ModelVariantActions": {"shadow": "Promote"},
                "DesiredModelVariants": [variant("shadow")] * 3,
            },
            "desiredModelVariants",
        ),
        ({"ModelVariantActions": {"shadow": "Promote"}, "DesiredState": "Done"}, "desiredState"),
        ({"ModelVariantActions": {"shadow": "Promote"}, "Reason": "r" * 1025}, "reason"),
        ({"ModelVariantActions": {"shadow": "Promote"}, "Extra": 1}, "Extra"),
    ],
    ids=[
        "empty-name",
        "long-name",
        "name-pattern",
        "name-newline",
        "no-actions",
        "three-actions",
        "key-pattern",
        "key-length",
        "action-value",
        "desired-empty",
        "desired-three",
        "desired-state",
        "reason-length",
        "unknown-member",
    ],
)
def test_request_alone_rules_are_validation_errors(
    world: World, request_members: dict[str, Any], field: str
) -> None:
    world.running()
    kw = {"ModelVariantActions": {"shadow": "Promote"}, **request_members}
    err = refused(world, ValidationError, **kw)
    assert field.lower() in err.message.lower()


def test_missing_model_variant_actions_is_a_validation_error(world: World) -> None:
    world.running()
    err = refused(world, ValidationError)
    assert "modelVariantActions" in err.message


@pytest.mark.parametrize(
    "item",
    [
        {"ModelName": "m", "VariantName": "shadow"},
        {
            "VariantName": "shadow",
            "InfrastructureConfig": variant("shadow")["InfrastructureConfig"],
        },
        {"ModelName": "m", "InfrastructureConfig": variant("shadow")["InfrastructureConfig"]},
        {
            **variant("shadow"),
            "InfrastructureConfig": {
                "InfrastructureType": "Serverless",
                "RealTimeInferenceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            },
        },
        variant("shadow", count=-1),
        variant("shadow", instance="m5.large"),
        variant("shadow", instance="ml.m5.large\n"),
    ],
    ids=[
        "no-infrastructure",
        "no-model-name",
        "no-variant-name",
        "infrastructure-type",
        "negative-count",
        "instance-form",
        "instance-newline",
    ],
)
def test_bad_desired_model_variant_items_are_validation_errors(
    world: World, item: dict[str, Any]
) -> None:
    world.running()
    refused(
        world,
        ValidationError,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[item],
    )


def test_a_new_instance_family_is_accepted_by_form(world: World) -> None:
    world.running()
    stop(
        world,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[variant("shadow", instance="ml.p6-b200.48xlarge")],
    )
    assert world.status() == "Stopping"


def test_more_than_one_promote_is_a_validation_error(world: World) -> None:
    world.running()
    err = refused(
        world, ValidationError, ModelVariantActions={"prod": "Promote", "shadow": "Promote"}
    )
    assert err.rule == "single-promote"


def test_two_desired_items_for_one_variant_is_a_validation_error(world: World) -> None:
    world.running()
    err = refused(
        world,
        ValidationError,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[variant("shadow"), variant("shadow")],
    )
    assert err.rule == "unique-desired-variant"


def test_a_desired_item_for_a_removed_variant_is_a_validation_error(world: World) -> None:
    world.running()
    err = refused(
        world,
        ValidationError,
        ModelVariantActions={"shadow": "Remove"},
        DesiredModelVariants=[variant("shadow")],
    )
    assert err.rule == "desired-variant-removed"


def test_validation_comes_before_existence(world: World) -> None:
    refused(world, ValidationError, Name="nope", ModelVariantActions={"shadow": "Keep"})


# --- ResourceNotFound ------------------------------------------------------------------------


def test_stopping_an_unknown_experiment_is_not_found(world: World) -> None:
    err = refused(world, NotFoundError, Name="nope", ModelVariantActions={"shadow": "Promote"})
    assert "nope" in err.message


def test_existence_comes_before_conflict(world: World) -> None:
    refused(world, NotFoundError, Name="nope", ModelVariantActions={"ghost": "Promote"})


# --- ConflictException: depends on the stored experiment ----------------------------------


@pytest.mark.parametrize("status", ["Creating", "Created", "Completed"])
def test_stop_outside_running_is_a_conflict(make_world: Any, status: str) -> None:
    world = make_world()
    world.create(Schedule={"StartTime": world.clock.now + 3600} if status == "Created" else None)
    if status == "Created":
        world.reconciler.run_once()
    if status == "Completed":
        world.reconciler.run_once()
        stop(world, ModelVariantActions={"shadow": "Remove"})
        world.reconciler.run_once()
    assert world.status() == status
    err = refused(world, ConflictError, ModelVariantActions={"shadow": "Remove"})
    assert status in err.message and "Running" in err.message


def test_an_action_for_an_unknown_variant_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(world, ConflictError, ModelVariantActions={"ghost": "Retain"})
    assert err.rule == "known-variant" and "ghost" in err.message


def test_a_desired_item_for_an_unknown_variant_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(
        world,
        ConflictError,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[variant("ghost")],
    )
    assert err.rule == "known-variant"


def test_promoting_the_production_variant_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(world, ConflictError, ModelVariantActions={"prod": "Promote"})
    assert err.rule == "promote-shadow-only"


def test_promoting_the_shadow_while_production_is_retained_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(world, ConflictError, ModelVariantActions={"shadow": "Promote", "prod": "Retain"})
    assert err.rule == "promotion-replaces-production"


def test_removing_production_without_a_promotion_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(world, ConflictError, ModelVariantActions={"prod": "Remove"})
    assert err.rule == "production-required"


def test_a_desired_item_for_production_removed_by_implication_is_a_conflict(world: World) -> None:
    world.running()
    err = refused(
        world,
        ConflictError,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[variant("prod")],
    )
    assert err.rule == "desired-variant-removed-by-promotion"


# --- success and the decisions ----------------------------------------------------------------


def test_a_promoting_stop_returns_the_arn_and_moves_to_stopping(world: World) -> None:
    world.running()
    out = stop(world, ModelVariantActions={"shadow": "Promote"}, Reason="shadow wins")
    assert out == {
        "InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"
    }
    d = world.describe()
    assert (d["Status"], d["StatusReason"]) == ("Stopping", "shadow wins")
    assert {n: v["Status"] for n, v in world.variants().items()} == {
        "prod": "Deleting",
        "shadow": "Updating",
    }


def test_desired_state_defaults_to_completed(world: World) -> None:
    world.running()
    stop(world, ModelVariantActions={"shadow": "Remove"})
    world.reconciler.run_once()
    d = world.describe()
    assert d["Status"] == "Completed"
    assert d["CompletionTime"] == world.clock.now


def test_desired_state_cancelled_ends_cancelled(world: World) -> None:
    world.running()
    stop(world, ModelVariantActions={"shadow": "Remove"}, DesiredState="Cancelled")
    world.reconciler.run_once()
    assert world.status() == "Cancelled"


def test_an_unnamed_variant_is_retained(world: World) -> None:
    world.running()
    stop(world, ModelVariantActions={"shadow": "Remove"})
    world.reconciler.run_once()
    assert {n: v["Status"] for n, v in world.variants().items()} == {
        "prod": "InService",
        "shadow": "Deleted",
    }


def test_promoting_the_shadow_removes_an_unnamed_production_variant(world: World) -> None:
    world.running()
    stop(world, ModelVariantActions={"shadow": "Promote"})
    world.reconciler.run_once()
    assert {n: v["Status"] for n, v in world.variants().items()} == {
        "prod": "Deleted",
        "shadow": "InService",
    }


def test_a_promoted_variant_without_a_desired_item_keeps_its_configuration(world: World) -> None:
    world.running()
    before = world.variants()["shadow"]
    stop(world, ModelVariantActions={"shadow": "Promote", "prod": "Remove"})
    world.reconciler.run_once()
    after = world.variants()["shadow"]
    assert (after["ModelName"], after["InfrastructureConfig"]) == (
        before["ModelName"],
        before["InfrastructureConfig"],
    )


def test_a_desired_item_replaces_the_promoted_variants_model_and_infrastructure(
    world: World,
) -> None:

    world.running()
    stop(
        world,
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[variant("shadow", "model-c", "ml.c5.2xlarge", 4)],
    )
    assert world.variants()["shadow"]["ModelName"] == "model-b"  # in place only once carried out
    world.reconciler.run_once()
    after = world.variants()["shadow"]
    assert after["ModelName"] == "model-c"
    assert after["InfrastructureConfig"]["RealTimeInferenceConfig"] == {
        "InstanceType": "ml.c5.2xlarge",
        "InstanceCount": 4,
    }


def test_a_desired_item_replaces_a_retained_variants_configuration(world: World) -> None:
    world.running()
    stop(
        world,
        ModelVariantActions={"shadow": "Remove", "prod": "Retain"},
        DesiredModelVariants=[variant("prod", "model-z")],
    )
    world.reconciler.run_once()
    assert world.variants()["prod"]["ModelName"] == "model-z"


def test_shadow_mode_config_is_kept_after_a_promotion(world: World) -> None:
    world.running()
    before = world.describe()["ShadowModeConfig"]
    stop(world, ModelVariantActions={"shadow": "Promote"})
    world.reconciler.run_once()
    assert world.describe()["ShadowModeConfig"] == before


def test_the_stop_is_recorded_once_in_history(world: World) -> None:
    world.running()
    stop(world, ModelVariantActions={"shadow": "Promote"}, Reason="why")
    entries = [h for h in world.store.history(ACCOUNT, "exp") if h.event == "stop"]
    assert len(entries) == 1
    assert (entries[0].from_status, entries[0].to_status, entries[0].reason) == (
        "Running",
        "Stopping",
        "why",
    )
