"""The `transitions` machines, built once from the tables, and how an event is fired.

One ``Machine`` per table is built at import and never per request. Records
are not added to it (``add_model`` keeps a list, so the cost of adding grows
with the number of records); an event is fired on a plain record through the
machine's ``Event`` objects, which read and write the record's ``status``.

Both are ``LeanMachine``s (``_events.py``): ``transitions`` machines whose
event and transition classes skip the library's hooks we never use.

Guards are ``transitions`` conditions that answer a bool and record *why*
they refused on the :class:`~lifecycle.domain.rules.Firing`; when no row is
taken, :func:`fire` raises ``ConflictError`` naming the rule. Effects are
the transitions' ``after`` callbacks (``effects.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from transitions import EventData, Machine

from lifecycle.domain._events import LeanMachine
from lifecycle.domain.effects import (
    EXPERIMENT_EFFECTS,
    VARIANT_EFFECTS,
    after_experiment_change,
    use_variant_machine,
)
from lifecycle.domain.experiment import Experiment, Variant
from lifecycle.domain.rules import GUARDS, Firing, Refusal
from lifecycle.domain.table import EXPERIMENT_TABLE, VARIANT_TABLE, MachineTable
from lifecycle.errors import ConflictError

__all__ = ["explain_event", "fire", "fire_variant", "refusal_error"]


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


def _after(
    effect: Callable[[EventData], None] | None, after_change: Callable[[EventData], None] | None
) -> list[str | Callable[..., bool | None]]:
    """One ``after`` callback per row: the event's effect, then the bookkeeping of every change."""
    if effect is None or after_change is None:
        return [f for f in (effect, after_change) if f is not None]

    def both(event_data: EventData) -> None:
        effect(event_data)
        after_change(event_data)

    return [both]


def _build(
    table: MachineTable,
    effects: dict[str, Callable[[EventData], None]],
    after_change: Callable[[EventData], None] | None = None,
) -> Machine:
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
        effect = effects.get(t.event)
        machine.add_transition(
            t.event,
            t.source,
            t.dest,
            conditions=[_condition(g) for g in t.guards],
            after=_after(effect, after_change),
        )
    return machine


EXPERIMENT_MACHINE = _build(EXPERIMENT_TABLE, EXPERIMENT_EFFECTS, after_experiment_change)
VARIANT_MACHINE = _build(VARIANT_TABLE, VARIANT_EFFECTS)

_EXPERIMENT_SOURCES = {e: frozenset(EXPERIMENT_TABLE.sources(e)) for e in EXPERIMENT_TABLE.events}
_VARIANT_SOURCES = {e: frozenset(VARIANT_TABLE.sources(e)) for e in VARIANT_TABLE.events}


def _status_refusal(name: str, status: StrEnum, event: str, allowed: frozenset[StrEnum]) -> Refusal:
    order = [s for s in EXPERIMENT_TABLE.statuses if s in allowed]
    where = ", ".join(s.value for s in order) if order else "no status (it is made by create)"
    return Refusal(
        f"{event}-from-status",
        f"Cannot {event} inference experiment '{name}' while it is {status.value}: {event} is allowed only from {where}",
        "Status",
    )


def explain_event(exp: Experiment, event: str, firing: Firing) -> list[Refusal]:
    """Every refusal that firing ``event`` on ``exp`` would meet, changing nothing."""
    allowed = _EXPERIMENT_SOURCES.get(event, frozenset())
    if exp.status not in allowed:
        return [_status_refusal(exp.name, exp.status, event, allowed)]
    refusals: list[Refusal] = []
    for t in EXPERIMENT_TABLE.rows(event, exp.status):
        row = [r for g in t.guards for r in GUARDS[g](firing)]
        if not row:
            return []
        refusals.extend(row)
    return refusals


def refusal_error(exp_name: str, status: StrEnum, event: str, refusals: list[Refusal]) -> ConflictError:
    first = refusals[0]
    message = first.message if len(refusals) == 1 else "; ".join(r.message for r in refusals)
    err = ConflictError(message, name=exp_name, status=status.value, event=event, rule=first.rule, field=first.field)
    err.refusals = refusals  # type: ignore[attr-defined]
    return err


def fire(exp: Experiment, event: str, firing: Firing) -> None:
    """Fire ``event`` on ``exp`` (changed in place), or raise ``ConflictError`` naming the rule."""
    allowed = _EXPERIMENT_SOURCES.get(event)
    if allowed is None or exp.status not in allowed:
        raise refusal_error(exp.name, exp.status, event, [_status_refusal(exp.name, exp.status, event, allowed or frozenset())])
    source = exp.status
    if not EXPERIMENT_MACHINE.events[event].trigger(exp, firing=firing):
        raise refusal_error(exp.name, source, event, firing.refusals)
    firing.refusals.clear()


def fire_variant(variant: Variant, event: str, **kwargs: Any) -> None:
    """Fire ``event`` on one variant, or raise ``ConflictError``."""
    allowed = _VARIANT_SOURCES.get(event)
    if allowed is None or variant.status not in allowed:
        raise ConflictError(
            f"Cannot {event} variant '{variant.name}' while it is {variant.status.value}",
            name=variant.name,
            status=variant.status.value,
            event=event,
            rule=f"variant-{event}-from-status",
        )
    VARIANT_MACHINE.events[event].trigger(variant, **kwargs)


use_variant_machine(fire_variant)
