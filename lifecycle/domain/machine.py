"""The `transitions` machines, built once from the tables, and how an event is fired.

One ``Machine`` per table is built at import and never per request. Records
are not added to it (``add_model`` keeps a list, so the cost of adding grows
with the number of records); an event is fired on a plain record through the
machine's ``Event`` objects, which read and write the record's ``status``.

Both are ``LeanMachine``s (``_events.py``): ``transitions`` machines whose
event and transition classes skip the library's hooks we never use.

This module is the one adapter to ``transitions``: the guards
(``rules``) and the effects (``effects.py``) are plain functions of the record
and the :class:`~lifecycle.domain.rules.Firing`, and are wrapped here as the
library's conditions and ``after`` callbacks. A guard answers a bool to the
library and records *why* it refused on the ``Firing``; when no row is taken,
:func:`fire` raises ``ConflictError`` naming the rule. The variant events an
experiment effect returns are fired here, on the variant machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from transitions import EventData, Machine

from lifecycle.domain._events import LeanMachine
from lifecycle.domain.catalog import status_rule, variant_status_rule
from lifecycle.domain.effects import (
    EXPERIMENT_EFFECTS,
    VARIANT_EFFECTS,
    ExperimentEffect,
    VariantEffect,
    VariantEvent,
    after_experiment_change,
)
from lifecycle.domain.experiment import JSON, Experiment, Variant
from lifecycle.domain.rules import ANY_STATUS_RULES, GUARDS, Firing, Refusal, VariantTransition
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE, MachineTable
from lifecycle.errors import ConflictError

__all__ = ["explain_event", "fire", "fire_variant", "refusal_error"]

_Callback = Callable[[EventData], None]


def _condition(name: str) -> Callable[[EventData], bool]:
    rule = GUARDS[name]

    def check(event_data: EventData) -> bool:
        firing: Firing = event_data.kwargs["firing"]
        refused = rule(firing)
        if refused:
            firing.refusals.extend(refused)
            return False
        return True

    check.__name__ = name
    return check


def _experiment_after(effect: ExperimentEffect | None) -> _Callback:
    """One ``after`` callback per experiment row: the effect, the variant events it asks
    for, then the bookkeeping of every change."""
    if effect is None:

        def bookkeeping(event_data: EventData) -> None:
            firing: Firing = event_data.kwargs["firing"]
            after_experiment_change(firing.experiment, firing)

        return bookkeeping

    def after(event_data: EventData) -> None:
        firing: Firing = event_data.kwargs["firing"]
        exp = firing.experiment
        for e in effect(exp, firing) or ():
            firing.variants.append(_fire_variant_event(e))
        after_experiment_change(exp, firing)

    return after


def _variant_after(effect: VariantEffect) -> _Callback:
    def after(event_data: EventData) -> None:
        event: VariantEvent = event_data.kwargs["event"]
        effect(event.variant, event)

    return after


def _build(table: MachineTable, after: Mapping[str, _Callback]) -> Machine:
    machine = LeanMachine(
        model=None,
        states=list(table.statuses),
        initial=table.initial,
        auto_transitions=False,
        send_event=True,
        model_attribute="status",
    )
    for t in table.transitions:
        if t.source is None:  # the record is made by the service, not fired
            continue
        callback = after.get(t.event)
        machine.add_transition(
            t.event,
            t.source,
            t.dest,
            conditions=[_condition(g) for g in t.guards],
            after=[callback] if callback is not None else [],
        )
    return machine


EXPERIMENT_MACHINE = _build(
    EXPERIMENT_TABLE,
    {e: _experiment_after(EXPERIMENT_EFFECTS.get(e)) for e in EXPERIMENT_TABLE.events},
)
VARIANT_MACHINE = _build(VARIANT_TABLE, {e: _variant_after(f) for e, f in VARIANT_EFFECTS.items()})

_EXPERIMENT_SOURCES = {e: frozenset(EXPERIMENT_TABLE.sources(e)) for e in EXPERIMENT_TABLE.events}
_VARIANT_SOURCES = {e: frozenset(VARIANT_TABLE.sources(e)) for e in VARIANT_TABLE.events}


def _status_refusal(name: str, status: StrEnum, event: str, allowed: frozenset[StrEnum]) -> Refusal:
    order = [s for s in EXPERIMENT_TABLE.statuses if s in allowed]
    where = ", ".join(s.value for s in order) if order else "no status (it is made by create)"
    return Refusal(
        status_rule(event),
        f"Cannot {event} inference experiment '{name}' while it is {status.value}: {event} is allowed only from {where}",
        "Status",
    )


def explain_event(exp: Experiment, event: str, firing: Firing) -> list[Refusal]:
    """Every refusal that firing ``event`` on ``exp`` would meet, changing nothing."""
    allowed = _EXPERIMENT_SOURCES.get(event, frozenset())
    if exp.status not in allowed:
        anywhere = ANY_STATUS_RULES.get(event)
        return [
            _status_refusal(exp.name, exp.status, event, allowed),
            *(anywhere(firing) if anywhere is not None else ()),
        ]
    refusals: list[Refusal] = []
    for t in EXPERIMENT_TABLE.rows(event, exp.status):
        row = [r for g in t.guards for r in GUARDS[g](firing)]
        if not row:
            return []
        refusals.extend(row)
    return refusals


def refusal_error(
    exp_name: str, status: StrEnum, event: str, refusals: list[Refusal]
) -> ConflictError:
    first = refusals[0]
    message = first.message if len(refusals) == 1 else "; ".join(r.message for r in refusals)
    return ConflictError(
        message,
        name=exp_name,
        status=status.value,
        event=event,
        rule=first.rule,
        field=first.field,
        refusals=refusals,
    )


def fire(exp: Experiment, event: str, firing: Firing) -> None:
    """Fire ``event`` on ``exp`` (changed in place), or raise ``ConflictError`` naming the rule."""
    allowed = _EXPERIMENT_SOURCES.get(event)
    source = exp.status
    if allowed is None or source not in allowed:
        raise refusal_error(
            exp.name,
            source,
            event,
            [_status_refusal(exp.name, source, event, allowed or frozenset())],
        )
    firing.source = source
    if not EXPERIMENT_MACHINE.events[event].trigger(exp, firing=firing):
        raise refusal_error(exp.name, source, event, firing.refusals)
    firing.refusals.clear()


def _fire_variant_event(e: VariantEvent) -> VariantTransition:
    variant, event = e.variant, e.event
    allowed = _VARIANT_SOURCES.get(event)
    source = variant.status
    if allowed is None or source not in allowed:
        raise ConflictError(
            f"Cannot {event} variant '{variant.name}' while it is {variant.status.value}",
            name=variant.name,
            status=variant.status.value,
            event=event,
            rule=variant_status_rule(event),
        )
    VARIANT_MACHINE.events[event].trigger(variant, event=e)
    return VariantTransition(variant.name, event, source, variant.status)


def fire_variant(
    variant: Variant,
    event: str,
    *,
    pending: str | None = None,
    model_name: str | None = None,
    infrastructure: JSON | None = None,
) -> VariantTransition:
    """Fire ``event`` on one variant, or raise ``ConflictError``; a step's event names the
    event that ends it (``pending``) and the configuration the variant has once it is.
    Returns the transition it made."""
    return _fire_variant_event(VariantEvent(variant, event, pending, model_name, infrastructure))
