"""``experiment_in``: a world with one experiment already in a status, reached for real."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from lifecycle.domain.statuses import ExperimentStatus, VariantStatus
from lifecycle.testing._graph import NEW, Edge, Node
from lifecycle.testing._paths import Path, _bfs
from lifecycle.testing._world import World

__all__ = ["experiment_in", "path_to"]


def _status(status: str | StrEnum, variant: str | None) -> ExperimentStatus | VariantStatus:
    value = status.value if isinstance(status, StrEnum) else status
    if variant is None:
        try:
            return ExperimentStatus(value)
        except ValueError:
            pass
    try:
        return VariantStatus(value)
    except ValueError:
        known = [s.value for s in ExperimentStatus] + [
            s.value for s in VariantStatus if s.value not in set(ExperimentStatus)
        ]
        raise ValueError(
            f"{value!r} is not a status; the statuses are: {', '.join(known)}"
        ) from None


def path_to(status: str | StrEnum, *, variant: str | None = None) -> Path:
    """A shortest path that leaves the experiment in ``status``.

    With ``variant`` (``"prod"`` or ``"shadow"``), ``status`` is that
    variant's status; a status only variants have (``InService``,
    ``Deleting``, ``Deleted``) means any variant.
    """
    want = _status(status, variant)
    order, to, _ = _bfs()

    def hit(node: Node) -> str | None:
        if isinstance(want, ExperimentStatus) and variant is None:
            return "" if node.status is want else None
        for v in node.variants:
            if v.status is want and (variant is None or v.name == variant):
                return v.name
        return None

    for node in order:
        if node is NEW:
            continue
        name = hit(node)
        if name is not None:
            edges: tuple[Edge, ...] = to[node]
            if name:
                return Path("variant", want, edges, name, "shortest path to the variant status")
            return Path("experiment", want, edges, None, "shortest path to the status")
    where = f"variant {variant!r} " if variant else ""
    raise LookupError(f"no path leaves {where}in {want.value}")


def experiment_in(
    status: str | StrEnum | Path,
    *,
    name: str = "exp",
    settle: float = 0.0,
    variant: str | None = None,
    world: World | None = None,
    **world_options: Any,
) -> World:
    """A :class:`World` holding experiment ``name`` in ``status``, reached through real transitions.

    The shortest path to the status (:func:`path_to`) is replayed through the
    service, the reconciler and the clock, and checked as it goes; nothing
    writes the status field. ``status`` may be a variant status (with
    ``variant="prod"`` or ``"shadow"`` when the name is also an experiment
    status, such as ``Updating``), or a :class:`Path` to replay.

    The experiment has two variants, ``prod`` (production) and ``shadow``,
    and EndpointName ``<name>-endpoint``. ``world`` adds the experiment to
    an existing world (whose ``name`` becomes ``name``); ``world_options``
    (``actuator``, ``max_attempts``, ``retry_seconds``, ``clock``,
    ``region``, ...) go to a new :class:`World`.
    """
    path = status if isinstance(status, Path) else path_to(status, variant=variant)
    if world is None:
        world = World(name=name, settle=settle, **world_options)
    else:
        if world_options or settle:
            raise TypeError("settle and world options apply to a new world, not to the one given")
        world.name = name
    return path.replay(world)
