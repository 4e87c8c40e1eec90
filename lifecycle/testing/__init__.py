"""Test your rules and your boto3 code against the lifecycle engine.

- :func:`transition_cases` -- every (status, event) pair with its expected
  outcome, read from the tables, for ``pytest.mark.parametrize``.
- :func:`shortest_paths`, :func:`simple_paths`, :func:`transition_coverage`
  -- sequences of operations, reconciler steps and clock advances that reach
  each status from a new experiment, and the transitions a set of paths
  leaves untested.
- :func:`experiment_in` -- a service, store, reconciler and clock with one
  experiment already in a status, reached through real transitions.
- :mod:`lifecycle.testing.strategies` -- hypothesis strategies for valid
  requests and for invalid ones that each break one named rule (needs the
  ``testing`` extra).
- :func:`mock_sagemaker` -- ``boto3.client("sagemaker")`` answered in
  process by the engine, on a virtual clock (needs the ``testing`` extra);
  the pytest fixture ``sagemaker_mock`` comes with the package's pytest
  plugin.

Everything is imported on first use: importing this package loads neither
hypothesis nor boto3, nor the engine itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.testing import strategies as strategies
    from lifecycle.testing._arrange import experiment_in, path_to
    from lifecycle.testing._cases import TransitionCase, transition_cases
    from lifecycle.testing._graph import PRODUCTION_VARIANT, SHADOW_VARIANT, create_payload
    from lifecycle.testing._mock import MockSageMaker, NotEmulatedError, mock_sagemaker
    from lifecycle.testing._paths import Path, shortest_paths, simple_paths, transition_coverage
    from lifecycle.testing._steps import Advance, Call, Fail, Later, PathError, Reconcile
    from lifecycle.testing._world import VirtualClock, World

__all__ = [
    "PRODUCTION_VARIANT",
    "SHADOW_VARIANT",
    "Advance",
    "Call",
    "Fail",
    "Later",
    "MockSageMaker",
    "NotEmulatedError",
    "Path",
    "PathError",
    "Reconcile",
    "TransitionCase",
    "VirtualClock",
    "World",
    "create_payload",
    "experiment_in",
    "mock_sagemaker",
    "path_to",
    "shortest_paths",
    "simple_paths",
    "strategies",
    "transition_cases",
    "transition_coverage",
]

_HOME = {
    "PRODUCTION_VARIANT": "_graph",
    "SHADOW_VARIANT": "_graph",
    "Advance": "_steps",
    "Call": "_steps",
    "Fail": "_steps",
    "Later": "_steps",
    "MockSageMaker": "_mock",
    "NotEmulatedError": "_mock",
    "Path": "_paths",
    "PathError": "_steps",
    "Reconcile": "_steps",
    "TransitionCase": "_cases",
    "VirtualClock": "_world",
    "World": "_world",
    "create_payload": "_graph",
    "experiment_in": "_arrange",
    "mock_sagemaker": "_mock",
    "path_to": "_arrange",
    "shortest_paths": "_paths",
    "simple_paths": "_paths",
    "transition_cases": "_cases",
    "transition_coverage": "_paths",
}


def __getattr__(name: str) -> Any:
    if name == "strategies":
        return importlib.import_module("lifecycle.testing.strategies")
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'lifecycle.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lifecycle.testing.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
