"""The change feed as readers get it: checked reads, retention, and each change as an event.

:meth:`ExperimentService.changes <lifecycle.service.service.ExperimentService.changes>`
reads the store's feed (``Store.changes``) after :func:`check_read` has
checked its arguments; ``GET /events`` and the webhook subscriptions send
each :class:`~lifecycle.stores.base.Change` as :func:`event`, a JSON
object in the shape of an Amazon EventBridge event::

    {"version": "0", "id": "<uuid>", "detail-type": DETAIL_TYPE,
     "source": "aws.sagemaker", "account": "123456789012",
     "time": "2027-01-15T08:00:00Z", "region": "us-east-1",
     "resources": ["arn:aws:sagemaker:...:inference-experiment/name"],
     "detail": {"Name": ..., "Status": ..., "PreviousStatus": ..., "Event": ...,
                "Machine": "experiment", "Variant": null, "Reason": ...,
                "RequestId": ..., "Position": 17}}

The ``id`` is fixed by the change (a UUID of its ARN and position): the same
on every delivery and every read, so a receiver drops repeats by it.
``account`` is the account the experiment belongs to (the account in its
ARN) and ``region`` the ARN's. :class:`Retention` says how long the feed
keeps changes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from lifecycle.domain.experiment import is_account_id
from lifecycle.errors import ValidationError
from lifecycle.stores.base import Change

__all__ = [
    "DEFAULT_PAGE",
    "DETAIL_TYPE",
    "MAX_PAGE",
    "MAX_POSITION",
    "SOURCE",
    "Retention",
    "check_account",
    "check_read",
    "event",
    "event_bytes",
    "event_id",
]

DETAIL_TYPE = "SageMaker Inference Experiment State Change"
SOURCE = "aws.sagemaker"
#: how many changes one read returns by default, and at most
DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: the largest position there can be (a signed 64-bit integer)
MAX_POSITION = (1 << 63) - 1
#: the namespace of the events' UUIDs
_EVENT_NAMESPACE = uuid.UUID("5b1f3c0e-8f0a-4c57-9a55-1c0c7f6f2e31")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def check_read(after: object, limit: object) -> None:
    """``ValidationError``, naming the argument, unless ``after`` is None or a position
    (0 to :data:`MAX_POSITION`) and ``limit`` is 1 to :data:`MAX_PAGE`."""
    if after is not None and (type(after) is not int or not 0 <= after <= MAX_POSITION):
        raise ValidationError(
            f"after must be a position: a whole number from 0 to {MAX_POSITION}, not {after!r}",
            field="after",
        )
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}", field="limit"
        )


def check_account(account: object) -> str:
    """``account`` when it is an account id (12 digits); else ``ValidationError`` naming it."""
    if not is_account_id(account):
        shown = repr(account) if len(repr(account)) <= 40 else repr(account)[:40] + "..."
        raise ValidationError(
            f"account must be a 12-digit AWS account id, not {shown}", field="account"
        )
    assert isinstance(account, str)
    return account


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the feed keeps changes: ``max_age`` seconds, and at most ``max_count`` of them
    (None: no bound of that kind). Readers behind it get ``TrimmedChangesError``."""

    max_age: float | None = 7 * 86400.0
    max_count: int | None = None

    def __post_init__(self) -> None:
        if self.max_age is not None and not 0 < self.max_age < float("inf"):
            raise ValueError(f"max_age must be a positive number of seconds, not {self.max_age}")
        if self.max_count is not None and self.max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {self.max_count}")

    @property
    def bounded(self) -> bool:
        return self.max_age is not None or self.max_count is not None


def event_id(change: Change) -> str:
    """The event's stable id: a UUID of the change's ARN and position."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{change.arn}#{change.position}"))


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def event(change: Change) -> dict[str, Any]:
    """The change as an EventBridge-shaped event (see the module docstring)."""
    parts = change.arn.split(":", 5)
    region = parts[3] if len(parts) == 6 else ""
    return {
        "version": "0",
        "id": event_id(change),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": change.account,
        "time": _iso(change.time),
        "region": region,
        "resources": [change.arn],
        "detail": {
            "Name": change.name,
            "Status": change.to_status.value,
            "PreviousStatus": None if change.from_status is None else change.from_status.value,
            "Event": change.event,
            "Machine": change.machine,
            "Variant": change.variant,
            "Reason": change.reason,
            "RequestId": change.request_id,
            "Position": change.position,
        },
    }


def event_bytes(change: Change) -> bytes:
    """The event as the UTF-8 JSON a webhook receives (no insignificant whitespace)."""
    return _ENCODER.encode(event(change)).encode()
