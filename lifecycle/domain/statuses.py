"""The vocabulary: statuses, actions, operations and step actions.

Each is a ``StrEnum`` whose values are what goes on the wire (an API
operation's name, a status in a response, a step's action in an actuator's
request), so every module reads the one spelling here, and a member compares
equal to its plain string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "OPERATIONS",
    "DesiredState",
    "ExperimentStatus",
    "Operation",
    "StepAction",
    "VariantAction",
    "VariantStatus",
]


class ExperimentStatus(StrEnum):
    CREATING = "Creating"
    CREATED = "Created"
    UPDATING = "Updating"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"

    # Plain attributes set on each member below (the stores and the machine read
    # them on every save, where a property would cost a call):
    #: Completed or Cancelled: no event leaves it
    terminal: bool
    #: Creating, Starting, Updating or Stopping: the reconciler carries out a step to leave it
    transitional: bool


_TERMINAL = (ExperimentStatus.COMPLETED, ExperimentStatus.CANCELLED)
_TRANSITIONAL = (
    ExperimentStatus.CREATING,
    ExperimentStatus.STARTING,
    ExperimentStatus.UPDATING,
    ExperimentStatus.STOPPING,
)
for _status in ExperimentStatus:
    _status.terminal = _status in _TERMINAL
    _status.transitional = _status in _TRANSITIONAL
del _status


class VariantStatus(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    DELETED = "Deleted"


class VariantAction(StrEnum):
    PROMOTE = "Promote"
    REMOVE = "Remove"
    RETAIN = "Retain"


class DesiredState(StrEnum):
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


class Operation(StrEnum):
    """The seven operations of the API, by their names in botocore's service model."""

    CREATE = "CreateInferenceExperiment"
    DESCRIBE = "DescribeInferenceExperiment"
    LIST = "ListInferenceExperiments"
    START = "StartInferenceExperiment"
    STOP = "StopInferenceExperiment"
    UPDATE = "UpdateInferenceExperiment"
    DELETE = "DeleteInferenceExperiment"

    @property
    def short(self) -> str:
        """The name without its noun: ``Create``, ``List``, ..."""
        return self.value.removesuffix("InferenceExperiments").removesuffix("InferenceExperiment")


#: every operation, in the service model's order of the API reference
OPERATIONS: tuple[Operation, ...] = tuple(Operation)


class StepAction(StrEnum):
    """What a reconciler step asks an actuator to do (``Step.action``)."""

    PROVISION_VARIANT = "provision-variant"
    START_SHADOW_TEST = "start-shadow-test"
    UPDATE_VARIANT = "update-variant"
    APPLY_UPDATE = "apply-update"
    PROMOTE_VARIANT = "promote-variant"
    REMOVE_VARIANT = "remove-variant"
    END_SHADOW_TEST = "end-shadow-test"
