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

    @property
    def terminal(self) -> bool:
        return self in (ExperimentStatus.COMPLETED, ExperimentStatus.CANCELLED)


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
