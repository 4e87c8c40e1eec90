"""What every rule shares: the refusal it answers with, and what an event is fired with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final, NamedTuple

from lifecycle.domain.experiment import JSON, Experiment
from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.errors import Refusal, RuleId

if TYPE_CHECKING:
    from lifecycle.domain.rules.stop import StopPlan
    from lifecycle.domain.rules.update import UpdatePlan

__all__ = [
    "UNSET",
    "Firing",
    "Refusal",
    "Unset",
    "VariantConfig",
    "VariantTransition",
    "unknown_variants",
]

#: a variant's configuration: (ModelName, InfrastructureConfig)
VariantConfig = tuple[str, JSON]


class VariantTransition(NamedTuple):
    """One transition of the variant machine: which variant, the event, from and to."""

    variant: str
    event: str
    source: VariantStatus
    dest: VariantStatus


@dataclass(slots=True)
class Firing:
    """What one event is fired with: the record, the time, and the event's arguments.

    ``plan`` is what a stop or an update asks for; ``refusals`` collects why the
    guards refused, ``source`` is the status the event leaves, and ``variants``
    the variant transitions the event's effect fired, in order (all set by the
    machine while it fires).
    """

    experiment: Experiment
    now: float
    settle: float = 0.0
    plan: StopPlan | UpdatePlan | None = None
    reason: str | None = None
    refusals: list[Refusal] = field(default_factory=list)
    source: ExperimentStatus | None = None
    variants: list[VariantTransition] = field(default_factory=list)


class Unset(Enum):
    """The type of :data:`UNSET`: a member the request did not send (``None`` can be a value)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


def unknown_variants(exp: Experiment, names: Iterable[str], member: str) -> list[Refusal]:
    """known-variant: each of ``names`` (from the request's ``member``) that is not one of the
    experiment's variants (the variant set is fixed at create)."""
    known = [v.name for v in exp.variants]
    return [
        Refusal(
            RuleId.KNOWN_VARIANT,
            f"{member} names '{name}', which is not a variant of inference experiment '{exp.name}' (its variants: {', '.join(sorted(known))})",
            member,
        )
        for name in names
        if name not in known
    ]
