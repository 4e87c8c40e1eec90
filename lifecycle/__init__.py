"""lifecycle: a state-machine engine for SageMaker-style inference experiments (shadow tests).

The tour::

    from lifecycle import ExperimentService, Reconciler, open_store

    service = ExperimentService(open_store("sqlite:///lifecycle.db"))
    service.create_inference_experiment(Name="exp", ...)   # boto3's names and shapes
    Reconciler(service).run_once()                          # moves transitional statuses on
    service.stop_inference_experiment(Name="exp", ModelVariantActions={"shadow": "Promote"})
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.actuators import Actuator, ActuatorError, SimulatedActuator, Step
    from lifecycle.domain.catalog import RULE_CATALOG, Rule
    from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
    from lifecycle.domain.rules import Refusal
    from lifecycle.domain.statuses import (
        DesiredState,
        ExperimentStatus,
        VariantAction,
        VariantStatus,
    )
    from lifecycle.domain.table import (
        EXPERIMENT_TABLE,
        TABLES,
        VARIANT_TABLE,
        MachineTable,
        Transition,
    )
    from lifecycle.errors import (
        ConflictError,
        LifecycleError,
        NotFoundError,
        ProtocolError,
        ResourceInUseError,
        ResourceLimitExceededError,
        StaleVersionError,
        StoreError,
        ValidationError,
    )
    from lifecycle.service import OPERATIONS, ExperimentService, Reconciler
    from lifecycle.stores import ListQuery, MemoryStore, Store, open_store

# Names resolve on first use, so importing `lifecycle` (as the pytest plugin
# does) loads neither pydantic nor transitions until something needs them.
_HOME = {
    "lifecycle.actuators": ("Actuator", "ActuatorError", "SimulatedActuator", "Step"),
    "lifecycle.domain.catalog": ("RULE_CATALOG", "Rule"),
    "lifecycle.domain.experiment": ("Experiment", "HistoryEntry", "Variant"),
    "lifecycle.domain.rules": ("Refusal",),
    "lifecycle.domain.statuses": (
        "DesiredState",
        "ExperimentStatus",
        "VariantAction",
        "VariantStatus",
    ),
    "lifecycle.domain.table": (
        "EXPERIMENT_TABLE",
        "TABLES",
        "VARIANT_TABLE",
        "MachineTable",
        "Transition",
    ),
    "lifecycle.errors": (
        "ConflictError",
        "LifecycleError",
        "NotFoundError",
        "ProtocolError",
        "ResourceInUseError",
        "ResourceLimitExceededError",
        "StaleVersionError",
        "StoreError",
        "ValidationError",
    ),
    "lifecycle.service": ("OPERATIONS", "ExperimentService", "Reconciler"),
    "lifecycle.stores": ("ListQuery", "MemoryStore", "Store", "open_store"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "Actuator",
    "ActuatorError",
    "ConflictError",
    "DesiredState",
    "EXPERIMENT_TABLE",
    "Experiment",
    "ExperimentService",
    "ExperimentStatus",
    "HistoryEntry",
    "LifecycleError",
    "ListQuery",
    "MachineTable",
    "MemoryStore",
    "NotFoundError",
    "OPERATIONS",
    "ProtocolError",
    "RULE_CATALOG",
    "Reconciler",
    "Refusal",
    "ResourceInUseError",
    "ResourceLimitExceededError",
    "Rule",
    "SimulatedActuator",
    "StaleVersionError",
    "Step",
    "Store",
    "StoreError",
    "TABLES",
    "Transition",
    "VARIANT_TABLE",
    "ValidationError",
    "Variant",
    "VariantAction",
    "VariantStatus",
    "__version__",
    "open_store",
]
