"""Update rules (ConflictException): what an update may change in Created and in Running."""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.rules.base import (
    UNSET,
    Firing,
    Refusal,
    Unset,
    VariantConfig,
    unknown_variants,
)
from lifecycle.errors import RuleId

__all__ = ["UpdatePlan", "update_rules_created", "update_rules_running", "update_variant_names"]


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The members of an UpdateInferenceExperiment request (UNSET where absent)."""

    start_time: float | Unset = UNSET
    end_time: float | Unset = UNSET
    description: str | Unset = UNSET
    variants: dict[str, VariantConfig] | Unset = UNSET  # by name, in request order
    data_storage_config: JSON | Unset = UNSET
    shadow_mode_config: JSON | Unset = UNSET

    def is_empty(self) -> bool:
        """True when the request names nothing besides Name."""
        return all(getattr(self, f) is UNSET for f in self.__slots__)

    def changed_variants(self, exp: Experiment) -> dict[str, VariantConfig]:
        if self.variants is UNSET:
            return {}
        out = {}
        for name, (model, infra) in self.variants.items():
            v = exp.variant(name)
            if v is not None and (v.model_name, v.infrastructure) != (model, infra):
                out[name] = (model, infra)
        return out


_RUNNING_FIXED = "cannot change while the experiment is Running"


def update_rules_running(f: Firing) -> list[Refusal]:
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, UpdatePlan)
    out: list[Refusal] = []
    if plan.start_time is not UNSET and plan.start_time != exp.start_time:
        out.append(
            Refusal(
                RuleId.RUNNING_UPDATE_FIELDS,
                f"Schedule.StartTime {_RUNNING_FIXED}",
                "Schedule.StartTime",
            )
        )
    if plan.changed_variants(exp):
        out.append(
            Refusal(
                RuleId.RUNNING_UPDATE_FIELDS, f"ModelVariants {_RUNNING_FIXED}", "ModelVariants"
            )
        )
    out.extend(update_variant_names(f))
    if (
        plan.data_storage_config is not UNSET
        and plan.data_storage_config != exp.data_storage_config
    ):
        out.append(
            Refusal(
                RuleId.RUNNING_UPDATE_FIELDS,
                f"DataStorageConfig {_RUNNING_FIXED}",
                "DataStorageConfig",
            )
        )
    smc = plan.shadow_mode_config
    if smc is not UNSET:
        if smc["SourceModelVariantName"] != exp.production_variant:
            out.append(
                Refusal(
                    RuleId.RUNNING_UPDATE_FIELDS,
                    f"ShadowModeConfig.SourceModelVariantName {_RUNNING_FIXED}",
                    "ShadowModeConfig.SourceModelVariantName",
                )
            )
        if smc["ShadowModelVariants"][0]["ShadowModelVariantName"] != exp.shadow_variant:
            out.append(
                Refusal(
                    RuleId.RUNNING_UPDATE_FIELDS,
                    f"ShadowModeConfig.ShadowModelVariants.ShadowModelVariantName {_RUNNING_FIXED}",
                    "ShadowModeConfig.ShadowModelVariants",
                )
            )
    return out


def update_variant_names(f: Firing) -> list[Refusal]:
    """known-variant: each ModelVariants name the experiment does not have (in any status)."""
    plan = f.plan
    assert isinstance(plan, UpdatePlan)
    return (
        []
        if plan.variants is UNSET
        else unknown_variants(f.experiment, plan.variants, "ModelVariants")
    )


def update_rules_created(f: Firing) -> list[Refusal]:
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, UpdatePlan)
    out = update_variant_names(f)
    smc = plan.shadow_mode_config
    if smc is not UNSET:
        known = {v.name for v in exp.variants}
        source = smc["SourceModelVariantName"]
        shadow = smc["ShadowModelVariants"][0]["ShadowModelVariantName"]
        if {source, shadow} != known:
            out.append(
                Refusal(
                    RuleId.SHADOW_CONFIG_CONSISTENT,
                    f"ShadowModeConfig must name the experiment's two variants ({', '.join(sorted(known))}) as source and shadow; it names '{source}' and '{shadow}'",
                    "ShadowModeConfig",
                )
            )
    return out
