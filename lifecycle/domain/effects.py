"""What each transition does to the record besides changing its status.

Effects are plain functions of the record and the :class:`~lifecycle.domain.rules.Firing`
(experiment effects) or of the variant and its :class:`VariantEvent` (variant
effects), as the guards are; they know nothing of ``transitions``. An
experiment effect that moves variants on returns the variant events to fire,
and ``machine.py`` (the one adapter to ``transitions``) fires them on the
variant machine. ``after_experiment_change`` runs after every experiment
transition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from lifecycle.domain.experiment import JSON, Experiment, Variant
from lifecycle.domain.rules import MAX_DURATION, UNSET, Firing, StopPlan, UpdatePlan, whole_ms
from lifecycle.domain.statuses import ExperimentStatus, VariantAction

__all__ = [
    "EXPERIMENT_EFFECTS",
    "VARIANT_EFFECTS",
    "ExperimentEffect",
    "VariantEffect",
    "VariantEvent",
    "after_experiment_change",
    "next_due",
]


class VariantEvent(NamedTuple):
    """One variant event an experiment effect asks for, with the step it begins.

    ``pending`` is the event that ends the step (the reconciler fires it once the
    step is carried out); ``model_name`` and ``infrastructure`` the configuration
    the variant has once it is.
    """

    variant: Variant
    event: str
    pending: str | None = None
    model_name: str | None = None
    infrastructure: JSON | None = None


#: an experiment effect: changes the record, and returns the variant events to fire after it
ExperimentEffect = Callable[[Experiment, Firing], "list[VariantEvent] | None"]
#: a variant effect
VariantEffect = Callable[[Variant, VariantEvent], None]


def next_due(exp: Experiment, settle: float) -> float | None:
    """When the reconciler next has something to do for ``exp``."""
    status = exp.status
    if status.transitional:
        return exp.entered_at + settle
    if status is ExperimentStatus.CREATED:
        return exp.start_time
    if status is ExperimentStatus.RUNNING:
        return exp.end_time
    return None


def _start(exp: Experiment, f: Firing) -> None:
    if f.now < exp.start_time:  # started early by StartInferenceExperiment
        exp.start_time = f.now
        exp.end_time = min(exp.end_time, whole_ms(f.now + MAX_DURATION))


def _update(exp: Experiment, f: Firing) -> list[VariantEvent]:
    plan = f.plan
    assert isinstance(plan, UpdatePlan)
    exp.update_origin = f.source
    if plan.start_time is not UNSET:
        exp.start_time = plan.start_time
    if plan.end_time is not UNSET:
        exp.end_time = plan.end_time
    if plan.description is not UNSET:
        exp.description = plan.description
    if plan.data_storage_config is not UNSET:
        exp.data_storage_config = plan.data_storage_config
    if plan.shadow_mode_config is not UNSET:
        exp.shadow_mode_config = plan.shadow_mode_config
    out = []
    for name, (model, infra) in plan.changed_variants(exp).items():
        v = exp.variant(name)
        assert v is not None
        out.append(VariantEvent(v, "update", "updated", model, infra))
    return out


def _updated(exp: Experiment, f: Firing) -> None:
    exp.update_origin = None


def _stop(exp: Experiment, f: Firing) -> list[VariantEvent]:
    plan = f.plan
    assert isinstance(plan, StopPlan)
    actions = plan.resolve(exp)
    out = []
    for v in exp.variants:
        action = actions[v.name]
        model, infra = plan.desired.get(v.name, (None, None))
        if action is VariantAction.PROMOTE:
            out.append(VariantEvent(v, "promote", "promoted", model, infra))
        elif action is VariantAction.REMOVE:
            out.append(VariantEvent(v, "remove", "removed"))
        elif model is not None or infra is not None:  # retained with a new configuration: a step
            out.append(VariantEvent(v, "update", "updated", model, infra))
        else:
            out.append(VariantEvent(v, "retain"))
    exp.stop_actions = actions
    exp.desired_state = plan.desired_state
    if plan.reason is not None:
        exp.status_reason = plan.reason
    return out


def _finish(exp: Experiment, f: Firing) -> None:
    exp.completion_time = f.now


def _fail(exp: Experiment, f: Firing) -> list[VariantEvent]:
    exp.status_reason = f.reason
    exp.completion_time = f.now
    exp.update_origin = None
    return [VariantEvent(v, "rollback") for v in exp.variants if v.pending is not None]


def after_experiment_change(exp: Experiment, f: Firing) -> None:
    """Bookkeeping of every experiment transition: times, attempts, next due time."""
    exp.last_modified_time = f.now
    exp.entered_at = f.now
    exp.attempts = 0
    exp.last_error = None
    exp.due_at = next_due(exp, f.settle)


EXPERIMENT_EFFECTS: dict[str, ExperimentEffect] = {
    "start": _start,
    "update": _update,
    "updated": _updated,
    "stop": _stop,
    "stopped": _finish,
    "fail": _fail,
}


# --- variants -------------------------------------------------------------------


def _begin_step(v: Variant, e: VariantEvent) -> None:
    """A variant step starts: remember what the reconciler must do and with what."""
    v.pending = e.pending
    v.pending_model_name = e.model_name
    v.pending_infrastructure = e.infrastructure


def _end_step(v: Variant, e: VariantEvent) -> None:
    """A variant step is carried out: its new configuration is now in place."""
    if v.pending_model_name is not None:
        v.model_name = v.pending_model_name
    if v.pending_infrastructure is not None:
        v.infrastructure = v.pending_infrastructure
    v.pending = v.pending_model_name = v.pending_infrastructure = None


def _retain(v: Variant, e: VariantEvent) -> None:
    """Retain keeps the variant in service as it is (a new configuration is an update)."""


def _rollback(v: Variant, e: VariantEvent) -> None:
    v.pending = v.pending_model_name = v.pending_infrastructure = None


VARIANT_EFFECTS: dict[str, VariantEffect] = {
    "provisioned": _end_step,
    "update": _begin_step,
    "updated": _end_step,
    "promote": _begin_step,
    "promoted": _end_step,
    "remove": _begin_step,
    "removed": _end_step,
    "retain": _retain,
    "rollback": _rollback,
}
