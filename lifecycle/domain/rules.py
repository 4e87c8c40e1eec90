"""The guards: schedule rules, variant-action rules, update rules.

Every rule answers *why*: it returns a list of :class:`Refusal` (empty when
the rule passes), each naming the rule and the field it is about. The
machine turns a refusal into our ``ConflictError``; the service turns a
refusal of a request-alone rule into a ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantAction

__all__ = [
    "DAY",
    "DEFAULT_DURATION",
    "GUARDS",
    "MAX_DURATION",
    "Firing",
    "Refusal",
    "StopPlan",
    "UpdatePlan",
    "effective_schedule",
    "plan_stop",
    "schedule_refusals",
    "stop_request_refusals",
]

DAY = 86400.0
DEFAULT_DURATION = 7 * DAY
MAX_DURATION = 30 * DAY

#: a variant's configuration: (ModelName, InfrastructureConfig)
VariantConfig = tuple[str, JSON]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One broken rule: its stable id, the field it is about, and why."""

    rule: str
    message: str
    field: str | None = None


@dataclass(slots=True)
class Firing:
    """What one event is fired with: the record, the time, and the event's arguments."""

    experiment: Experiment
    now: float
    settle: float = 0.0
    plan: Any = None
    reason: str | None = None
    refusals: list[Refusal] = field(default_factory=list)


# --- schedule ---------------------------------------------------------------


def effective_schedule(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """The schedule an experiment runs on: no start means now, no end means 7 days after start."""
    eff_start = now if start is None else start
    eff_end = eff_start + DEFAULT_DURATION if end is None else end
    return eff_start, eff_end


def schedule_refusals(start: float, end: float, now: float, *, end_given: bool) -> list[Refusal]:
    """Schedule rules (ValidationException): end after start and after now, at most 30 days."""
    out: list[Refusal] = []
    if end <= start:
        out.append(
            Refusal(
                "schedule-end-after-start",
                "Schedule.EndTime must be after Schedule.StartTime",
                "Schedule.EndTime",
            )
        )
    elif end - start > MAX_DURATION:
        out.append(
            Refusal(
                "schedule-max-duration",
                "The experiment may not run for more than 30 days (Schedule.EndTime - Schedule.StartTime)",
                "Schedule.EndTime",
            )
        )
    if end_given and end <= now:
        out.append(
            Refusal(
                "schedule-end-in-future",
                "Schedule.EndTime must be in the future",
                "Schedule.EndTime",
            )
        )
    return out


# --- stop ---------------------------------------------------------------------


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
                "single-promote",
                f"At most one variant may be promoted; ModelVariantActions promotes {', '.join(promotes)}",
                "ModelVariantActions",
            )
        )
    seen: set[str] = set()
    for name in plan.desired_order:
        if name in seen:
            out.append(
                Refusal(
                    "unique-desired-variant",
                    f"DesiredModelVariants names variant '{name}' more than once",
                    "DesiredModelVariants",
                )
            )
        seen.add(name)
    for name in plan.desired:
        if plan.actions.get(name) is VariantAction.REMOVE:
            out.append(
                Refusal(
                    "desired-variant-removed",
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


def _unknown_variants(exp: Experiment, names: Iterable[str], member: str) -> list[Refusal]:
    """known-variant: each of ``names`` (from the request's ``member``) that is not one of the
    experiment's variants (the variant set is fixed at create)."""
    known = [v.name for v in exp.variants]
    return [
        Refusal(
            "known-variant",
            f"{member} names '{name}', which is not a variant of inference experiment '{exp.name}' (its variants: {', '.join(sorted(known))})",
            member,
        )
        for name in names
        if name not in known
    ]


def _variant_action_rules(f: Firing) -> list[Refusal]:
    """Stop rules that depend on the stored experiment (ConflictException)."""
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, StopPlan)
    prod, shadow = exp.production_variant, exp.shadow_variant
    out = _unknown_variants(exp, plan.actions, "ModelVariantActions")
    out += _unknown_variants(exp, plan.desired_order, "DesiredModelVariants")
    actions = plan.actions
    if actions.get(prod) is VariantAction.PROMOTE:
        out.append(
            Refusal(
                "promote-shadow-only",
                f"Variant '{prod}' is the production variant; only the shadow variant '{shadow}' can be promoted",
                "ModelVariantActions",
            )
        )
    shadow_promoted = actions.get(shadow) is VariantAction.PROMOTE
    if shadow_promoted and actions.get(prod) is VariantAction.RETAIN:
        out.append(
            Refusal(
                "promotion-replaces-production",
                f"Promoting shadow variant '{shadow}' replaces production variant '{prod}', which cannot also be Retain",
                "ModelVariantActions",
            )
        )
    if actions.get(prod) is VariantAction.REMOVE and not shadow_promoted:
        out.append(
            Refusal(
                "production-required",
                f"Removing production variant '{prod}' without promoting '{shadow}' would leave endpoint '{exp.endpoint_name}' without a production variant",
                "ModelVariantActions",
            )
        )
    if shadow_promoted and prod not in actions and prod in plan.desired:
        out.append(
            Refusal(
                "desired-variant-removed-by-promotion",
                f"DesiredModelVariants configures production variant '{prod}', which promoting '{shadow}' removes",
                "DesiredModelVariants",
            )
        )
    return out


# --- update -------------------------------------------------------------------


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The members of an UpdateInferenceExperiment request (UNSET where absent)."""

    start_time: Any = UNSET
    end_time: Any = UNSET
    description: Any = UNSET
    variants: Any = UNSET  # dict name -> VariantConfig, in request order
    data_storage_config: Any = UNSET
    shadow_mode_config: Any = UNSET

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


def _update_rules_running(f: Firing) -> list[Refusal]:
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, UpdatePlan)
    out: list[Refusal] = []
    if plan.start_time is not UNSET and plan.start_time != exp.start_time:
        out.append(
            Refusal(
                "running-update-fields",
                f"Schedule.StartTime {_RUNNING_FIXED}",
                "Schedule.StartTime",
            )
        )
    if plan.changed_variants(exp):
        out.append(
            Refusal("running-update-fields", f"ModelVariants {_RUNNING_FIXED}", "ModelVariants")
        )
    else:
        out.extend(_known_variant_refusals(exp, plan))
    if (
        plan.data_storage_config is not UNSET
        and plan.data_storage_config != exp.data_storage_config
    ):
        out.append(
            Refusal(
                "running-update-fields", f"DataStorageConfig {_RUNNING_FIXED}", "DataStorageConfig"
            )
        )
    smc = plan.shadow_mode_config
    if smc is not UNSET:
        if smc["SourceModelVariantName"] != exp.production_variant:
            out.append(
                Refusal(
                    "running-update-fields",
                    f"ShadowModeConfig.SourceModelVariantName {_RUNNING_FIXED}",
                    "ShadowModeConfig.SourceModelVariantName",
                )
            )
        if smc["ShadowModelVariants"][0]["ShadowModelVariantName"] != exp.shadow_variant:
            out.append(
                Refusal(
                    "running-update-fields",
                    f"ShadowModeConfig.ShadowModelVariants.ShadowModelVariantName {_RUNNING_FIXED}",
                    "ShadowModeConfig.ShadowModelVariants",
                )
            )
    return out


def _known_variant_refusals(exp: Experiment, plan: UpdatePlan) -> list[Refusal]:
    return [] if plan.variants is UNSET else _unknown_variants(exp, plan.variants, "ModelVariants")


def _update_rules_created(f: Firing) -> list[Refusal]:
    exp, plan = f.experiment, f.plan
    assert isinstance(plan, UpdatePlan)
    out = _known_variant_refusals(exp, plan)
    smc = plan.shadow_mode_config
    if smc is not UNSET:
        known = {v.name for v in exp.variants}
        source = smc["SourceModelVariantName"]
        shadow = smc["ShadowModelVariants"][0]["ShadowModelVariantName"]
        if {source, shadow} != known:
            out.append(
                Refusal(
                    "shadow-config-consistent",
                    f"ShadowModeConfig must name the experiment's two variants ({', '.join(sorted(known))}) as source and shadow; it names '{source}' and '{shadow}'",
                    "ShadowModeConfig",
                )
            )
    return out


# --- routing guards -------------------------------------------------------------


def _start_time_in_future(f: Firing) -> list[Refusal]:
    if f.experiment.start_time > f.now:
        return []
    return [
        Refusal("start_time_in_future", "Schedule.StartTime has been reached", "Schedule.StartTime")
    ]


def _start_time_reached(f: Firing) -> list[Refusal]:
    if f.experiment.start_time <= f.now:
        return []
    return [
        Refusal(
            "start_time_reached", "Schedule.StartTime is still in the future", "Schedule.StartTime"
        )
    ]


def _left(status: ExperimentStatus) -> Callable[[Firing], list[Refusal]]:
    def rule(f: Firing) -> list[Refusal]:
        if f.experiment.update_origin is status:
            return []
        return [
            Refusal(f"left_{status.value.lower()}", f"the update did not start from {status.value}")
        ]

    return rule


def _desired(state: DesiredState) -> Callable[[Firing], list[Refusal]]:
    def rule(f: Firing) -> list[Refusal]:
        if f.experiment.desired_state is state:
            return []
        return [
            Refusal(
                f"desired_{state.value.lower()}", f"the stop's DesiredState is not {state.value}"
            )
        ]

    return rule


def _variant_steps_done(f: Firing) -> list[Refusal]:
    pending = [v.name for v in f.experiment.variants if v.pending is not None]
    if not pending:
        return []
    return [
        Refusal("variant_steps_done", f"variant steps still to carry out: {', '.join(pending)}")
    ]


#: every guard named in the tables, by name
GUARDS: dict[str, Callable[[Firing], list[Refusal]]] = {
    "start_time_in_future": _start_time_in_future,
    "start_time_reached": _start_time_reached,
    "update_rules_created": _update_rules_created,
    "update_rules_running": _update_rules_running,
    "left_created": _left(ExperimentStatus.CREATED),
    "left_running": _left(ExperimentStatus.RUNNING),
    "variant_action_rules": _variant_action_rules,
    "variant_steps_done": _variant_steps_done,
    "desired_completed": _desired(DesiredState.COMPLETED),
    "desired_cancelled": _desired(DesiredState.CANCELLED),
}
