"""``experiment_in``: a world with one experiment already in a status, reached for real."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from lifecycle.testing._world import World
from lifecycle.testing.paths import Path, path_to

__all__ = ["experiment_in"]


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

    The shortest path to the status (:func:`~lifecycle.testing.paths.path_to`)
    is replayed through the service, the reconciler and the clock, and
    checked as it goes; nothing writes the status field. ``status`` may be a
    variant status (with ``variant="prod"`` or ``"shadow"`` when the name is
    also an experiment status, such as ``Updating``), or a
    :class:`~lifecycle.testing.paths.Path` to replay.

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
