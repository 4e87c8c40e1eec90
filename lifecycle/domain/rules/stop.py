"""Stop rules: the request as the rules see it, the rules it breaks alone
(ValidationException) and against the stored experiment (ConflictException)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.rules.base import Firing, Refusal, VariantConfig, unknown_variants
from lifecycle.domain.statuses import DesiredState, VariantAction
from lifecycle.errors import RuleId

__all__ = [
    "StopPlan",
    "plan_stop",
    "stop_request_refusals",
    "stop_variant_names",
    "variant_action_rules",
]


class StopPlan(NamedTuple):
    """A StopInferenceExperiment request as the rules see it (immutable).

    ``actions`` are the actions named in the request; ``desired`` the
    DesiredModelVariants items by variant name.
    """

    actions: Mapping[str, VariantAction]
    desired: Mapping[str, VariantConfig]
    desired_order: tuple[str, ...] = ()
    desired_state: DesiredState = DesiredState.COMPLETED
    reason: str | None = None

    def resolve(self, exp: Experiment) -> dict[str, VariantAction]:
        """The action for every variant (decision: unnamed means Retain, except that
        the production variant is Remove when the shadow is promoted)."""
        actions = self.actions
        production = exp.production_variant if VariantAction.PROMOTE in actions.values() else None
        out: dict[str, VariantAction] = {}
        for v in exp.variants:
            name = v.name
            action = actions.get(name)
            if action is None:
                action = VariantAction.REMOVE if name == production else VariantAction.RETAIN
            out[name] = action
        return out


def stop_request_refusals(plan: StopPlan) -> list[Refusal]:
    """Stop rules judged from the request alone (ValidationException)."""
    if len(plan.actions) < 2 and not plan.desired_order:
        return []  # each rule below needs two promotes or a DesiredModelVariants item
    out: list[Refusal] = []
    promotes = [n for n, a in plan.actions.items() if a is VariantAction.PROMOTE]
    if len(promotes) > 1:
        out.append(
            Refusal(
                RuleId.SINGLE_PROMOTE,
                f"At most one variant may be promoted; ModelVariantActions promotes {', '.join(promotes)}",
                "ModelVariantActions",
            )
        )
    seen: set[str] = set()
    for name in plan.desired_order:
        if name in seen:
            out.append(
                Refusal(
                    RuleId.UNIQUE_DESIRED_VARIANT,
                    f"DesiredModelVariants names variant '{name}' more than once",
                    "DesiredModelVariants",
                )
            )
        seen.add(name)
    for name in plan.desired:
        if plan.actions.get(name) is VariantAction.REMOVE:
            out.append(
                Refusal(
                    RuleId.DESIRED_VARIANT_REMOVED,
                    f"DesiredModelVariants configures variant '{name}', whose action is Remove",
                    "DesiredModelVariants",
                )
            )
    return out


_ACTIONS = {a.value: a for a in VariantAction}
_STATES = {d.value: d for d in DesiredState}


def plan_stop(
    actions: Mapping[str, str],
    desired: Sequence[tuple[str, str, JSON]],
    desired_state: str | None,
    reason: str | None,
) -> StopPlan:
    return StopPlan(
        {k: _ACTIONS[v] for k, v in actions.items()},
        {name: (model, infra) for name, model, infra in desired} if desired else {},
        tuple([name for name, _, _ in desired]) if desired else (),
        _STATES[desired_state] if desired_state else DesiredState.COMPLETED,
        reason,
    )


def stop_variant_names(f: Firing) -> list[Refusal]:
    """known-variant: each variant the stop names that the experiment does not have (in any status)."""
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, StopPlan)
    return unknown_variants(exp, plan.actions, "ModelVariantActions") + unknown_variants(
        exp, plan.desired_order, "DesiredModelVariants"
    )


def variant_action_rules(f: Firing) -> list[Refusal]:
    """Stop rules that depend on the stored experiment (ConflictException)."""
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, StopPlan)
    prod, shadow = exp.production_variant, exp.shadow_variant
    out = stop_variant_names(f)
    actions = plan.actions
    if actions.get(prod) is VariantAction.PROMOTE:
        out.append(
            Refusal(
                RuleId.PROMOTE_SHADOW_ONLY,
                f"Variant '{prod}' is the production variant; only the shadow variant '{shadow}' can be promoted",
                "ModelVariantActions",
            )
        )
    shadow_promoted = actions.get(shadow) is VariantAction.PROMOTE
    if shadow_promoted and actions.get(prod) is VariantAction.RETAIN:
        out.append(
            Refusal(
                RuleId.PROMOTION_REPLACES_PRODUCTION,
                f"Promoting shadow variant '{shadow}' replaces production variant '{prod}', which cannot also be Retain",
                "ModelVariantActions",
            )
        )
    if actions.get(prod) is VariantAction.REMOVE and not shadow_promoted:
        out.append(
            Refusal(
                RuleId.PRODUCTION_REQUIRED,
                f"Removing production variant '{prod}' without promoting '{shadow}' would leave endpoint '{exp.endpoint_name}' without a production variant",
                "ModelVariantActions",
            )
        )
    if shadow_promoted and prod not in actions and prod in plan.desired:
        out.append(
            Refusal(
                RuleId.DESIRED_VARIANT_REMOVED_BY_PROMOTION,
                f"DesiredModelVariants configures production variant '{prod}', which promoting '{shadow}' removes",
                "DesiredModelVariants",
            )
        )
    return out
