"""The Experiment and Variant records: plain data with a version number.

Nested configurations (infrastructure, shadow mode, data storage, tags) are
kept in their wire shape as plain dicts, which is what every store writes and
what Describe returns. Times are epoch seconds (float).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, NamedTuple

from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantAction, VariantStatus

__all__ = ["Experiment", "HistoryEntry", "Variant", "is_account_id"]

JSON = dict[str, Any]
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


def is_account_id(value: object) -> bool:
    """Whether ``value`` is an AWS account id: a string of 12 digits (what an ARN holds)."""
    return type(value) is str and _ACCOUNT_ID.fullmatch(value) is not None


@dataclass(slots=True)
class Variant:
    """One model variant of an experiment.

    ``pending`` is the step the reconciler still has to carry out for it (the
    variant event that ends its transitional status: ``provisioned``,
    ``updated``, ``promoted``, ``removed``), and ``pending_config`` the model
    and infrastructure that step will put in place.
    """

    name: str
    model_name: str
    infrastructure: JSON
    status: VariantStatus = VariantStatus.CREATING
    pending: str | None = None
    pending_model_name: str | None = None
    pending_infrastructure: JSON | None = None

    def copy(self) -> Variant:
        return Variant(*_variant_fields(self))  # every field, in the dataclass's own order

    def assign(self, other: Variant) -> None:
        """Take every field of ``other``, keeping this object."""
        self.name = other.name
        self.model_name = other.model_name
        self.infrastructure = other.infrastructure
        self.status = other.status
        self.pending = other.pending
        self.pending_model_name = other.pending_model_name
        self.pending_infrastructure = other.pending_infrastructure


@dataclass(slots=True)
class Experiment:
    """One inference experiment as stored. ``version`` grows by one on every save.

    ``account`` is the AWS account the experiment belongs to (the account in
    its ARN): names are unique per account, and an experiment is found by
    its account and its name together.
    """

    account: str
    name: str
    arn: str
    endpoint_name: str
    role_arn: str
    variants: list[Variant]
    shadow_mode_config: JSON
    start_time: float
    end_time: float
    creation_time: float
    last_modified_time: float
    type: str = "ShadowMode"
    status: ExperimentStatus = ExperimentStatus.CREATING
    description: str | None = None
    kms_key: str | None = None
    data_storage_config: JSON | None = None
    tags: list[JSON] = field(default_factory=list)
    status_reason: str | None = None
    completion_time: float | None = None
    version: int = 0
    #: when the current status was entered (settling is counted from here)
    entered_at: float = 0.0
    #: when the reconciler next has something to do (None: nothing, ever)
    due_at: float | None = None
    #: the status an Updating experiment goes back to
    update_origin: ExperimentStatus | None = None
    #: the DesiredState of the stop being carried out
    desired_state: DesiredState | None = None
    #: failed attempts of the step being carried out
    attempts: int = 0
    last_error: str | None = None
    #: the variant actions of the stop being carried out (variant name -> action)
    stop_actions: dict[str, VariantAction] | None = None

    @property
    def production_variant(self) -> str:
        return str(self.shadow_mode_config["SourceModelVariantName"])

    @property
    def shadow_variant(self) -> str:
        return str(self.shadow_mode_config["ShadowModelVariants"][0]["ShadowModelVariantName"])

    def variant(self, name: str) -> Variant | None:
        for v in self.variants:
            if v.name == name:
                return v
        return None

    def copy(self) -> Experiment:
        """A copy whose changes never reach this one (nested dicts are never mutated in place)."""
        new = Experiment(*_experiment_fields(self))  # every field, in the dataclass's own order
        new.variants = [v.copy() for v in self.variants]
        return new

    def assign(self, other: Experiment) -> None:
        """Take every field of ``other``, keeping this object and, where the variants
        are the same ones in the same order, its Variant objects (a store that keeps
        records as objects updates them in place instead of swapping in new ones)."""
        mine, theirs = self.variants, other.variants
        if [v.name for v in mine] == [v.name for v in theirs]:
            for a, b in zip(mine, theirs, strict=True):
                a.assign(b)
        else:
            self.variants = [v.copy() for v in theirs]
        self.account = other.account
        self.name = other.name
        self.arn = other.arn
        self.endpoint_name = other.endpoint_name
        self.role_arn = other.role_arn
        self.shadow_mode_config = other.shadow_mode_config
        self.start_time = other.start_time
        self.end_time = other.end_time
        self.creation_time = other.creation_time
        self.last_modified_time = other.last_modified_time
        self.type = other.type
        self.status = other.status
        self.description = other.description
        self.kms_key = other.kms_key
        self.data_storage_config = other.data_storage_config
        self.tags = other.tags
        self.status_reason = other.status_reason
        self.completion_time = other.completion_time
        self.version = other.version
        self.entered_at = other.entered_at
        self.due_at = other.due_at
        self.update_origin = other.update_origin
        self.desired_state = other.desired_state
        self.attempts = other.attempts
        self.last_error = other.last_error
        self.stop_actions = other.stop_actions


# A record's fields as a tuple in declaration order, read in C: a copy passes them by
# position without naming them again, so no field can be left out or swapped.
_variant_fields = attrgetter(*(f.name for f in fields(Variant)))
_experiment_fields = attrgetter(*(f.name for f in fields(Experiment)))


class HistoryEntry(NamedTuple):
    """One committed transition of one experiment (immutable).

    ``machine`` is the machine it fired on: ``experiment`` (the experiment's own
    transition, kept in its history), or ``variant``, a transition of the
    variant ``variant`` (its statuses are the variant's), which a commit writes
    to the change feed beside the experiment transition it came with.
    """

    name: str
    time: float
    event: str
    from_status: ExperimentStatus | VariantStatus | None
    to_status: ExperimentStatus | VariantStatus
    reason: str | None = None
    request_id: str | None = None
    version: int = 0
    machine: str = "experiment"
    variant: str | None = None
