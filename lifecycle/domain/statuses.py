"""Status and action enums. Each member's value is its wire value."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DesiredState", "ExperimentStatus", "VariantAction", "VariantStatus"]


class ExperimentStatus(StrEnum):
    CREATING = "Creating"
    CREATED = "Created"
    UPDATING = "Updating"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"

    #: Completed or Cancelled: no event leaves it (set on each member below; a plain
    #: attribute, as stores and the machine read it on every save)
    terminal: bool


for _status in ExperimentStatus:
    _status.terminal = _status in (ExperimentStatus.COMPLETED, ExperimentStatus.CANCELLED)
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
