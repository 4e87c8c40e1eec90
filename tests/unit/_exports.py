"""What a lazily resolved package holds as public names, for the exported-members tests."""

from __future__ import annotations

import types

#: what a package's own ``__init__`` imports to resolve its names, not what it exports
_PLUMBING = frozenset({"annotations", "importlib", "TYPE_CHECKING", "Any"})


def public_members(package: types.ModuleType, submodules: frozenset[str] = frozenset()) -> set[str]:
    """Every name in ``__all__`` resolved, the public names ``package`` holds (its
    ``submodules`` among them, other modules not)."""
    for name in getattr(package, "__all__", ()):
        getattr(package, name)
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and name not in _PLUMBING
        and (not isinstance(value, types.ModuleType) or name in submodules)
    }
