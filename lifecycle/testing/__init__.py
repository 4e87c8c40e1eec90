"""Test your rules and your boto3 code against the lifecycle engine.

- :class:`World` -- a service, store, reconciler, actuator and
  :class:`VirtualClock` in memory; :func:`experiment_in` gives one with an
  experiment already in a status, reached through real transitions.
- :func:`create_payload` and :func:`variant_config` -- the experiment the
  toolkit makes (variants :data:`PRODUCTION_VARIANT` and
  :data:`SHADOW_VARIANT`), for your own requests.
- :func:`transition_cases` -- every (status, event) pair with its expected
  outcome, read from the tables, for ``pytest.mark.parametrize``.
- :mod:`lifecycle.testing.paths` -- sequences of operations, reconciler
  steps and clock advances that reach each status, found by running the
  engine, and the transitions a set of paths leaves untested.
- :mod:`lifecycle.testing.strategies` -- hypothesis strategies for valid
  requests and for invalid ones that each break one named rule (needs the
  ``testing`` extra).
- :func:`mock_sagemaker` -- ``boto3.client("sagemaker")`` answered in
  process by the engine, on a virtual clock (needs the ``testing`` extra),
  and beside moto's ``mock_aws()`` the other operations answered by moto;
  the pytest fixture ``sagemaker_mock`` comes with the package's pytest
  plugin.

Everything is imported on first use: importing this package loads neither
hypothesis nor boto3, nor the engine itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.testing import paths as paths
    from lifecycle.testing import strategies as strategies
    from lifecycle.testing._arrange import experiment_in
    from lifecycle.testing._cases import TransitionCase, transition_cases
    from lifecycle.testing._mock import MockSageMaker, NotEmulatedError, mock_sagemaker
    from lifecycle.testing._world import (
        PRODUCTION_VARIANT,
        SHADOW_VARIANT,
        T0,
        VirtualClock,
        World,
        create_payload,
        variant_config,
    )

__all__ = [
    "PRODUCTION_VARIANT",
    "SHADOW_VARIANT",
    "T0",
    "MockSageMaker",
    "NotEmulatedError",
    "TransitionCase",
    "VirtualClock",
    "World",
    "create_payload",
    "experiment_in",
    "mock_sagemaker",
    "paths",
    "strategies",
    "transition_cases",
    "variant_config",
]

# Names resolve on first use (importing the package loads neither hypothesis nor boto3,
# nor the engine). The names are the imports above; these are the modules they come
# from, each holding the name in its ``__all__``.
_HOMES = ("_world", "_cases", "_arrange", "_mock")
_SUBMODULES = ("paths", "strategies")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"lifecycle.testing.{name}")
    if name in __all__:
        for home in _HOMES:
            module = importlib.import_module(f"lifecycle.testing.{home}")
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module 'lifecycle.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
