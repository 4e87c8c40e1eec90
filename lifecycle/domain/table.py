"""The transition tables as data: the single source of truth.

The machines (``machine.py``), the diagrams (``lifecycle.diagrams``), the transition
matrix and the testing toolkit all read these tables; nothing else says which
event may leave which status.

Each row is one :class:`Transition`. Rows of the same event and source are
tried in order; a row's ``guards`` name the rules (in ``rules.py``) that must
all pass for it to be taken. ``fired_by`` says who fires the event: an
:class:`~lifecycle.domain.statuses.Operation` of the API, or ``reconciler``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from lifecycle.domain.statuses import ExperimentStatus as E
from lifecycle.domain.statuses import Operation
from lifecycle.domain.statuses import VariantStatus as V

__all__ = [
    "EXPERIMENT_TABLE",
    "OPERATION_EVENTS",
    "RECONCILER",
    "TABLES",
    "VARIANT_TABLE",
    "MachineTable",
    "Transition",
]

#: who fires the events no operation fires
RECONCILER = "reconciler"
CREATE_OP, START_OP, STOP_OP, UPDATE_OP = (
    Operation.CREATE,
    Operation.START,
    Operation.STOP,
    Operation.UPDATE,
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One row: ``event`` takes ``source`` to ``dest`` when every guard passes.

    ``source`` is ``None`` for the event that makes a new record.
    """

    event: str
    source: StrEnum | None
    dest: StrEnum
    fired_by: tuple[str, ...]
    guards: tuple[str, ...] = ()


@dataclass(frozen=True)
class MachineTable:
    """A whole machine as data: its statuses, its events in order, its rows."""

    name: str
    statuses: tuple[StrEnum, ...]
    initial: StrEnum
    terminal: frozenset[StrEnum]
    transitions: tuple[Transition, ...]
    #: statuses in which the record may be deleted (not a transition: the record goes away)
    deletable_from: frozenset[StrEnum] = field(default_factory=frozenset)

    @property
    def events(self) -> tuple[str, ...]:
        """Every event, in the order of its first row."""
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    def rows(self, event: str, source: StrEnum | None) -> tuple[Transition, ...]:
        """The rows of ``event`` that leave ``source``, in the order they are tried."""
        return tuple(t for t in self.transitions if t.event == event and t.source == source)

    def sources(self, event: str) -> tuple[StrEnum, ...]:
        """The statuses ``event`` may leave."""
        return tuple(
            dict.fromkeys(
                t.source for t in self.transitions if t.event == event and t.source is not None
            )
        )

    def guards(self) -> Iterator[str]:
        """Every guard name of the table, each once, in table order."""
        return iter(dict.fromkeys(g for t in self.transitions for g in t.guards))

    def fired_by(self, event: str) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(f for t in self.transitions if t.event == event for f in t.fired_by)
        )


_R = (RECONCILER,)

EXPERIMENT_TABLE = MachineTable(
    name="experiment",
    statuses=tuple(E),
    initial=E.CREATING,
    terminal=frozenset({E.COMPLETED, E.CANCELLED}),
    deletable_from=frozenset({E.CREATED, E.COMPLETED, E.CANCELLED}),
    transitions=(
        Transition("create", None, E.CREATING, (CREATE_OP,)),
        Transition("provisioned", E.CREATING, E.CREATED, _R, ("start_time_in_future",)),
        Transition("provisioned", E.CREATING, E.STARTING, _R, ("start_time_reached",)),
        Transition("start", E.CREATED, E.STARTING, (START_OP, RECONCILER)),
        Transition("started", E.STARTING, E.RUNNING, _R),
        Transition("update", E.CREATED, E.UPDATING, (UPDATE_OP,), ("update_rules_created",)),
        Transition("update", E.RUNNING, E.UPDATING, (UPDATE_OP,), ("update_rules_running",)),
        Transition("updated", E.UPDATING, E.CREATED, _R, ("left_created",)),
        Transition("updated", E.UPDATING, E.RUNNING, _R, ("left_running",)),
        Transition("stop", E.RUNNING, E.STOPPING, (STOP_OP, RECONCILER), ("variant_action_rules",)),
        Transition(
            "stopped", E.STOPPING, E.COMPLETED, _R, ("variant_steps_done", "desired_completed")
        ),
        Transition(
            "stopped", E.STOPPING, E.CANCELLED, _R, ("variant_steps_done", "desired_cancelled")
        ),
        Transition("fail", E.CREATING, E.CANCELLED, _R),
        Transition("fail", E.STARTING, E.CANCELLED, _R),
        Transition("fail", E.UPDATING, E.CANCELLED, _R),
        Transition("fail", E.STOPPING, E.CANCELLED, _R),
    ),
)

VARIANT_TABLE = MachineTable(
    name="variant",
    statuses=tuple(V),
    initial=V.CREATING,
    terminal=frozenset({V.DELETED}),
    transitions=(
        Transition("create", None, V.CREATING, (CREATE_OP,)),
        Transition("provisioned", V.CREATING, V.IN_SERVICE, _R),
        # a Stop's DesiredModelVariants item for a retained variant updates it too
        Transition("update", V.IN_SERVICE, V.UPDATING, (UPDATE_OP, STOP_OP)),
        Transition("updated", V.UPDATING, V.IN_SERVICE, _R),
        Transition("promote", V.IN_SERVICE, V.UPDATING, (STOP_OP,)),
        Transition("promoted", V.UPDATING, V.IN_SERVICE, _R),
        Transition("remove", V.IN_SERVICE, V.DELETING, (STOP_OP,)),
        Transition("removed", V.DELETING, V.DELETED, _R),
        Transition("retain", V.IN_SERVICE, V.IN_SERVICE, (STOP_OP,)),
        # decision: when the experiment fails, a variant caught mid-step goes back
        # to the status it had before that step; one never brought into service
        # (Creating) ends Deleted.
        Transition("rollback", V.CREATING, V.DELETED, _R),
        Transition("rollback", V.UPDATING, V.IN_SERVICE, _R),
        Transition("rollback", V.DELETING, V.IN_SERVICE, _R),
    ),
)

TABLES: dict[str, MachineTable] = {t.name: t for t in (EXPERIMENT_TABLE, VARIANT_TABLE)}

#: the experiment event each operation fires on a stored experiment, in the order of
#: :class:`Operation`, read from the rows' ``fired_by`` (Create makes the record and Delete
#: removes it: neither fires one)
OPERATION_EVENTS: dict[str, str] = {
    op: t.event
    for op in Operation
    for t in EXPERIMENT_TABLE.transitions
    if t.source is not None and op in t.fired_by
}
