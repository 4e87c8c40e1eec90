"""Every (status, event) pair of a machine with its expected outcome, read from the tables."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lifecycle.domain.table import TABLES, MachineTable, Transition

__all__ = ["CONFLICT", "TransitionCase", "refusal_rule", "table_of", "transition_cases"]

#: the wire code of an event sent in a status that has no row for it
CONFLICT = "ConflictException"


def table_of(machine: str | MachineTable) -> MachineTable:
    """The table of ``machine`` (``"experiment"`` or ``"variant"``, or a table itself)."""
    if isinstance(machine, MachineTable):
        return machine
    try:
        return TABLES[machine]
    except KeyError:
        raise ValueError(
            f"unknown machine {machine!r}; the machines are: {', '.join(TABLES)}"
        ) from None


def refusal_rule(machine: str, event: str) -> str:
    """The rule id the engine names when ``event`` is sent in a status with no row for it."""
    return f"{event}-from-status" if machine == "experiment" else f"variant-{event}-from-status"


@dataclass(frozen=True, slots=True)
class TransitionCase:
    """One (status, event) pair and what the tables say happens.

    ``rows`` are the table rows the event may take from ``status``, in the
    order they are tried (several when guards choose between them; none when
    the pair is refused). A refused pair has ``code`` ``ConflictException``
    and ``rule`` the id of the rule that refuses it; an allowed one has
    ``targets``, the statuses it may go to.

    The ``id`` (also ``str(case)`` and ``case.__name__``, which pytest uses
    as the parameter id) reads ``Running-stop->Stopping``,
    ``Creating-provisioned->Created|Starting`` or
    ``Completed-stop->ConflictException``.
    """

    machine: str
    status: StrEnum
    event: str
    rows: tuple[Transition, ...]

    @property
    def allowed(self) -> bool:
        return bool(self.rows)

    @property
    def targets(self) -> tuple[StrEnum, ...]:
        return tuple(dict.fromkeys(r.dest for r in self.rows))

    @property
    def target(self) -> StrEnum | None:
        """The one status the event goes to; ``None`` when refused or when guards choose."""
        targets = self.targets
        return targets[0] if len(targets) == 1 else None

    @property
    def guards(self) -> tuple[tuple[str, ...], ...]:
        """The guards of each row, in row order."""
        return tuple(r.guards for r in self.rows)

    @property
    def code(self) -> str | None:
        return None if self.rows else CONFLICT

    @property
    def rule(self) -> str | None:
        return None if self.rows else refusal_rule(self.machine, self.event)

    @property
    def expected(self) -> str:
        """The outcome in words: the target status(es), or the error code."""
        if not self.rows:
            return CONFLICT
        return "|".join(t.value for t in self.targets)

    @property
    def id(self) -> str:
        return f"{self.status.value}-{self.event}->{self.expected}"

    @property
    def __name__(self) -> str:  # pytest takes a parameter's id from a str ``__name__``
        return self.id

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"TransitionCase({self.machine}: {self.id})"


def transition_cases(machine: str | MachineTable = "experiment") -> list[TransitionCase]:
    """Every (status, event) pair of ``machine`` with its expected outcome.

    Statuses in table order, events in the order of their first row; the
    event that makes a new record (``create``) has no source status and is
    left out. Ready for ``pytest.mark.parametrize("case", transition_cases())``.
    """
    table = table_of(machine)
    events = [e for e in table.events if table.sources(e)]
    return [
        TransitionCase(table.name, status, event, table.rows(event, status))
        for status in table.statuses
        for event in events
    ]
