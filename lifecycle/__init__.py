"""lifecycle: a state-machine engine for SageMaker-style inference experiments (shadow tests).

The tour::

    from lifecycle import ExperimentService, Reconciler, open_store

    service = ExperimentService(open_store("sqlite:///experiments.db"))
    service.create_inference_experiment(Name="exp", ...)   # boto3's names and shapes
    Reconciler(service).run_once()                          # moves transitional statuses on
    service.stop_inference_experiment(Name="exp", ModelVariantActions={"shadow": "Promote"})
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.actuators import Actuator, SimulatedActuator, Step
    from lifecycle.domain.catalog import RULE_CATALOG, Rule
    from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
    from lifecycle.domain.statuses import (
        OPERATIONS,
        DesiredState,
        ExperimentStatus,
        Operation,
        StepAction,
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
        AccessDeniedError,
        ActuatorError,
        BulkCreateError,
        ConflictError,
        DiagramError,
        DiagramToolMissing,
        EndpointInUseError,
        InvalidSignatureError,
        LifecycleError,
        LiveLimitError,
        MethodNotAllowedError,
        NameInUseError,
        NotEmulatedError,
        NotFoundError,
        ProtocolError,
        Refusal,
        RequestTooLargeError,
        ResourceInUseError,
        ResourceLimitExceededError,
        RuleId,
        SchemaTooNewError,
        SerializationError,
        StaleVersionError,
        StoreError,
        StoreUnavailableError,
        ThrottlingError,
        TrimmedChangesError,
        UnknownOperationError,
        UnknownPathError,
        UnrecognizedClientError,
        ValidationError,
    )
    from lifecycle.service import (
        AsyncExperimentService,
        AsyncReconciler,
        ExperimentService,
        Reconciler,
    )
    from lifecycle.stores import ListQuery, MemoryStore, Store, open_store

# Names resolve on first use, so importing `lifecycle` (as the pytest plugin does)
# loads neither pydantic nor transitions until something needs them. The names are
# the imports above; these are the modules they come from, searched in this order.
_HOMES = (
    "lifecycle.errors",
    "lifecycle.domain.statuses",
    "lifecycle.domain.table",
    "lifecycle.domain.catalog",
    "lifecycle.domain.experiment",
    "lifecycle.actuators",
    "lifecycle.stores",
    "lifecycle.service",
)


# A library leaves its log records to the application: with no logging configured, the
# engine's warnings (an experiment failed, a step is retried) would otherwise reach
# logging's last-resort handler and print on stderr; a host that configures logging
# (lifecycle serve, pytest, basicConfig) still gets every record.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name in __all__:
        for home in _HOMES:
            module = importlib.import_module(home)
            if name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "EXPERIMENT_TABLE",
    "OPERATIONS",
    "RULE_CATALOG",
    "TABLES",
    "VARIANT_TABLE",
    "AccessDeniedError",
    "Actuator",
    "ActuatorError",
    "AsyncExperimentService",
    "AsyncReconciler",
    "BulkCreateError",
    "ConflictError",
    "DesiredState",
    "DiagramError",
    "DiagramToolMissing",
    "EndpointInUseError",
    "Experiment",
    "ExperimentService",
    "ExperimentStatus",
    "HistoryEntry",
    "InvalidSignatureError",
    "LifecycleError",
    "ListQuery",
    "LiveLimitError",
    "MachineTable",
    "MemoryStore",
    "MethodNotAllowedError",
    "NameInUseError",
    "NotEmulatedError",
    "NotFoundError",
    "Operation",
    "ProtocolError",
    "Reconciler",
    "Refusal",
    "RequestTooLargeError",
    "ResourceInUseError",
    "ResourceLimitExceededError",
    "Rule",
    "RuleId",
    "SchemaTooNewError",
    "SerializationError",
    "SimulatedActuator",
    "StaleVersionError",
    "Step",
    "StepAction",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "ThrottlingError",
    "Transition",
    "TrimmedChangesError",
    "UnknownOperationError",
    "UnknownPathError",
    "UnrecognizedClientError",
    "ValidationError",
    "Variant",
    "VariantAction",
    "VariantStatus",
    "__version__",
    "open_store",
]
