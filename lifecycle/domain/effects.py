"""What each transition does to the record besides changing its status.

These are the ``after`` callbacks the machines run once a row is taken;
``after_experiment_change`` runs after every experiment transition. The
event's arguments arrive on the :class:`~lifecycle.domain.rules.Firing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from transitions import EventData

from lifecycle.domain.experiment import Experiment, Variant
from lifecycle.domain.rules import MAX_DURATION, UNSET, Firing, StopPlan, UpdatePlan
from lifecycle.domain.statuses import ExperimentStatus, VariantAction

__all__ = ["EXPERIMENT_EFFECTS", "VARIANT_EFFECTS", "next_due"]

_TRANSITIONAL = frozenset(
    {ExperimentStatus.CREATING, ExperimentStatus.STARTING, ExperimentStatus.UPDATING, ExperimentStatus.STOPPING}
)


def next_due(exp: Experiment, settle: float) -> float | None:
    """When the reconciler next has something to do for ``exp``."""
    status = exp.status
    if status in _TRANSITIONAL:
        return exp.entered_at + settle
    if status is ExperimentStatus.CREATED:
        return exp.start_time
    if status is ExperimentStatus.RUNNING:
        return exp.end_time
    return None


def _no_variant_machine(v: Variant, event: str, **kwargs: Any) -> None:
    raise RuntimeError("lifecycle.domain.machine has not been imported: no variant machine to fire on")


_variant_event: Callable[..., None] = _no_variant_machine


def use_variant_machine(fire_variant: Callable[..., None]) -> None:
    """Called once by ``machine.py``: experiment effects fire variant events through it."""
    global _variant_event  # set once, when the machine module is imported
    _variant_event = fire_variant


def _start(ed: EventData) -> None:
    f: Firing = ed.kwargs["firing"]
    exp = cast(Experiment, ed.model)
    if f.now < exp.start_time:  # started early by StartInferenceExperiment
        exp.start_time = f.now
        exp.end_time = min(exp.end_time, f.now + MAX_DURATION)


def _update(ed: EventData) -> None:
    f: Firing = ed.kwargs["firing"]
    exp = cast(Experiment, ed.model)
    plan: UpdatePlan = f.plan
    assert ed.transition is not None
    exp.update_origin = cast(ExperimentStatus, ed.machine.get_state(ed.transition.source).value)
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
    for name, (model, infra) in plan.changed_variants(exp).items():
        v = exp.variant(name)
        assert v is not None
        _variant_event(v, "update", pending="updated", model_name=model, infrastructure=infra)


def _updated(ed: EventData) -> None:
    cast(Experiment, ed.model).update_origin = None


def _stop(ed: EventData) -> None:
    f: Firing = ed.kwargs["firing"]
    exp = cast(Experiment, ed.model)
    plan: StopPlan = f.plan
    actions = plan.resolve(exp)
    for v in exp.variants:
        action = actions[v.name]
        model, infra = plan.desired.get(v.name, (None, None))
        if action is VariantAction.PROMOTE:
            _variant_event(v, "promote", pending="promoted", model_name=model, infrastructure=infra)
        elif action is VariantAction.REMOVE:
            _variant_event(v, "remove", pending="removed")
        else:
            _variant_event(v, "retain", model_name=model, infrastructure=infra)
    exp.stop_actions = actions
    exp.desired_state = plan.desired_state
    if plan.reason is not None:
        exp.status_reason = plan.reason


def _finish(ed: EventData) -> None:
    f: Firing = ed.kwargs["firing"]
    cast(Experiment, ed.model).completion_time = f.now


def _fail(ed: EventData) -> None:
    f: Firing = ed.kwargs["firing"]
    exp = cast(Experiment, ed.model)
    for v in exp.variants:
        if v.pending is not None:
            _variant_event(v, "rollback")
    exp.status_reason = f.reason
    exp.completion_time = f.now
    exp.update_origin = None


def after_experiment_change(ed: EventData) -> None:
    """Bookkeeping of every experiment transition: times, attempts, next due time."""
    f: Firing = ed.kwargs["firing"]
    exp = cast(Experiment, ed.model)
    exp.last_modified_time = f.now
    exp.entered_at = f.now
    exp.attempts = 0
    exp.last_error = None
    exp.due_at = next_due(exp, f.settle)


EXPERIMENT_EFFECTS: dict[str, Callable[[EventData], None]] = {
    "start": _start,
    "update": _update,
    "updated": _updated,
    "stop": _stop,
    "stopped": _finish,
    "fail": _fail,
}


# --- variants -------------------------------------------------------------------


def _begin_step(ed: EventData) -> None:
    """A variant step starts: remember what the reconciler must do and with what."""
    v = cast(Variant, ed.model)
    v.pending = ed.kwargs.get("pending")
    v.pending_model_name = ed.kwargs.get("model_name")
    v.pending_infrastructure = ed.kwargs.get("infrastructure")


def _end_step(ed: EventData) -> None:
    """A variant step is carried out: its new configuration is now in place."""
    v = cast(Variant, ed.model)
    if v.pending_model_name is not None:
        v.model_name = v.pending_model_name
    if v.pending_infrastructure is not None:
        v.infrastructure = v.pending_infrastructure
    v.pending = v.pending_model_name = v.pending_infrastructure = None


def _retain(ed: EventData) -> None:
    """Retain keeps the variant in service; a DesiredModelVariants item replaces its config."""
    v = cast(Variant, ed.model)
    if ed.kwargs.get("model_name") is not None:
        v.model_name = ed.kwargs["model_name"]
    if ed.kwargs.get("infrastructure") is not None:
        v.infrastructure = ed.kwargs["infrastructure"]


def _rollback(ed: EventData) -> None:
    v = cast(Variant, ed.model)
    v.pending = v.pending_model_name = v.pending_infrastructure = None


VARIANT_EFFECTS: dict[str, Callable[[EventData], None]] = {
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
