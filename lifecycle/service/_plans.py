"""What each request means, and the rules it breaks before its experiment is loaded.

The service turns a validated request into a plan (what a stop or an update
would change) and checks the rules that need only the request and the clock
(ValidationException); ``delete_refusals`` is the one rule of Delete, which
has no event of its own.
"""

from __future__ import annotations

from lifecycle.domain.catalog import status_rule
from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.rules import (
    UNSET,
    Refusal,
    StopPlan,
    UpdatePlan,
    effective_schedule,
    plan_stop,
    schedule_refusals,
    whole_ms,
)
from lifecycle.domain.table import EXPERIMENT_TABLE
from lifecycle.errors import RuleId, ValidationError
from lifecycle.wire.shapes import (
    CreateInferenceExperimentRequest,
    ModelInfrastructureConfig,
    StopInferenceExperimentRequest,
    UpdateInferenceExperimentRequest,
)

__all__ = [
    "create_refusals",
    "create_schedule",
    "delete_refusals",
    "infra",
    "stop_plan",
    "update_plan",
    "update_request_refusals",
    "update_schedule_refusals",
    "validation_error",
]


def validation_error(refusals: list[Refusal]) -> ValidationError:
    """One ValidationError for the request-alone rules ``refusals`` (at least one)."""
    errors = [(r.field or "", r.message) for r in refusals]
    n = len(errors)
    head = f"{n} validation error{'s' if n > 1 else ''} detected: "
    first = refusals[0]
    return ValidationError(
        head + "; ".join(r.message for r in refusals),
        field=first.field,
        rule=first.rule,
        errors=errors,
    )


def infra(model: ModelInfrastructureConfig) -> JSON:
    return model.model_dump(exclude_none=True)


def _distinct_source_and_shadow(source: str) -> Refusal:
    return Refusal(
        RuleId.DISTINCT_SOURCE_AND_SHADOW,
        f"ShadowModeConfig names '{source}' as both source and shadow variant; they must differ",
        "ShadowModeConfig",
    )


_DUPLICATE_VARIANT = Refusal(
    RuleId.UNIQUE_VARIANT_NAMES, "ModelVariants names a variant more than once", "ModelVariants"
)


def create_schedule(req: CreateInferenceExperimentRequest, now: float) -> tuple[float, float]:
    sched = req.Schedule
    return effective_schedule(
        sched.StartTime if sched else None, sched.EndTime if sched else None, now
    )


def create_refusals(
    req: CreateInferenceExperimentRequest, schedule: tuple[float, float], now: float
) -> list[Refusal]:
    out: list[Refusal] = []
    names = [v.VariantName for v in req.ModelVariants]
    smc = req.ShadowModeConfig
    source = smc.SourceModelVariantName
    shadow = smc.ShadowModelVariants[0].ShadowModelVariantName
    if len(set(names)) != len(names):
        out.append(_DUPLICATE_VARIANT)
    if source == shadow:
        out.append(_distinct_source_and_shadow(source))
    missing = [n for n in (source, shadow) if n not in names]
    if missing:
        out.append(
            Refusal(
                RuleId.VARIANTS_IN_MODEL_VARIANTS,
                f"ShadowModeConfig names {', '.join(repr(m) for m in missing)}, not in ModelVariants ({', '.join(names)})",
                "ShadowModeConfig",
            )
        )
    extra = [n for n in names if n not in (source, shadow)]
    if extra:
        out.append(
            Refusal(
                RuleId.VARIANTS_IN_SHADOW_CONFIG,
                f"ModelVariants names {', '.join(repr(m) for m in extra)}, which ShadowModeConfig does not use as source or shadow",
                "ModelVariants",
            )
        )
    sched = req.Schedule
    out.extend(
        schedule_refusals(*schedule, now, end_given=bool(sched and sched.EndTime is not None))
    )
    return out


def stop_plan(req: StopInferenceExperimentRequest) -> StopPlan:
    desired = [
        (d.VariantName, d.ModelName, infra(d.InfrastructureConfig))
        for d in req.DesiredModelVariants or ()
    ]
    return plan_stop(req.ModelVariantActions, desired, req.DesiredState, req.Reason)


def update_plan(req: UpdateInferenceExperimentRequest) -> UpdatePlan:
    sched = req.Schedule
    fields = req.model_fields_set
    return UpdatePlan(
        start_time=whole_ms(sched.StartTime) if sched and sched.StartTime is not None else UNSET,
        end_time=whole_ms(sched.EndTime) if sched and sched.EndTime is not None else UNSET,
        description=req.Description
        if "Description" in fields and req.Description is not None
        else UNSET,
        variants={
            v.VariantName: (v.ModelName, infra(v.InfrastructureConfig)) for v in req.ModelVariants
        }
        if req.ModelVariants
        else UNSET,
        data_storage_config=req.DataStorageConfig.model_dump(exclude_none=True)
        if req.DataStorageConfig
        else UNSET,
        shadow_mode_config=req.ShadowModeConfig.model_dump(exclude_none=True)
        if req.ShadowModeConfig
        else UNSET,
    )


def update_request_refusals(
    req: UpdateInferenceExperimentRequest, plan: UpdatePlan, now: float
) -> list[Refusal]:
    out: list[Refusal] = []
    if plan.is_empty():
        out.append(
            Refusal(
                RuleId.UPDATE_CHANGES_SOMETHING,
                "UpdateInferenceExperiment needs at least one member besides Name (Schedule, Description, ModelVariants, DataStorageConfig or ShadowModeConfig)",
                "Name",
            )
        )
    if plan.end_time is not UNSET and plan.end_time <= now:
        out.append(
            Refusal(
                RuleId.SCHEDULE_END_IN_FUTURE,
                "Schedule.EndTime must be in the future",
                "Schedule.EndTime",
            )
        )
    if plan.start_time is not UNSET and plan.end_time is not UNSET:  # judged without the stored one
        out.extend(schedule_refusals(plan.start_time, plan.end_time, now, end_given=False))
    smc = plan.shadow_mode_config
    if (
        smc is not UNSET
        and smc["SourceModelVariantName"] == smc["ShadowModelVariants"][0]["ShadowModelVariantName"]
    ):
        out.append(_distinct_source_and_shadow(smc["SourceModelVariantName"]))
    if (
        plan.variants is not UNSET
        and req.ModelVariants is not None
        and len(plan.variants) != len(req.ModelVariants)
    ):
        out.append(_DUPLICATE_VARIANT)
    return out


def update_schedule_refusals(exp: Experiment, plan: UpdatePlan, now: float) -> list[Refusal]:
    """The schedule rules of an update that gives one time: judged with the stored other."""
    if (plan.start_time is UNSET) == (plan.end_time is UNSET):  # neither, or both (judged alone)
        return []
    start = exp.start_time if plan.start_time is UNSET else plan.start_time
    end = exp.end_time if plan.end_time is UNSET else plan.end_time
    return schedule_refusals(start, end, now, end_given=False)


def delete_refusals(exp: Experiment) -> list[Refusal]:
    if exp.status in EXPERIMENT_TABLE.deletable_from:
        return []
    allowed = ", ".join(
        s.value for s in EXPERIMENT_TABLE.statuses if s in EXPERIMENT_TABLE.deletable_from
    )
    return [
        Refusal(
            status_rule("delete"),
            f"Cannot delete inference experiment '{exp.name}' while it is {exp.status.value}: delete is allowed only from {allowed}",
            "Status",
        )
    ]
