"""Records as the SQLite and PostgreSQL stores keep them: the columns and the row mapping.

Every field of an :class:`Experiment` is a column, keyed by ``(account,
name)``; the nested configurations (variants, shadow-mode and data-storage
configs, tags, stop actions) are JSON text. Two more columns,
``claim_owner`` and ``claim_until``, hold a reconciler's claim; a save
clears them. History rows are keyed by ``(account, name, seq)`` where
``seq`` is ``version << 16 | position``: the order of an experiment's
history without a sequence or a read. Change-feed rows are a history entry
with the experiment's account and ARN, keyed by their position.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantAction, VariantStatus
from lifecycle.stores.base import Change

__all__ = [
    "CHANGE_COLUMNS",
    "COLUMNS",
    "HISTORY_COLUMNS",
    "change_params",
    "entry_params",
    "history_seq",
    "row_change",
    "row_entry",
    "row_experiment",
    "row_params",
]

#: the experiment columns, in the order of :func:`row_params` and :func:`row_experiment`
COLUMNS = (
    "account", "name", "arn", "endpoint_name", "role_arn", "type", "status", "description", "kms_key",
    "status_reason", "start_time", "end_time", "creation_time", "last_modified_time",
    "completion_time", "version", "entered_at", "due_at", "update_origin", "desired_state",
    "attempts", "last_error", "variants", "shadow_mode_config", "data_storage_config", "tags",
    "stop_actions",
)  # fmt: skip

HISTORY_COLUMNS = (
    "account",
    "name",
    "seq",
    "time",
    "event",
    "from_status",
    "to_status",
    "reason",
    "request_id",
    "version",
)

#: the change-feed columns after ``position``, in the order of :func:`change_params`
CHANGE_COLUMNS = (
    "account",
    "name",
    "arn",
    "time",
    "event",
    "from_status",
    "to_status",
    "reason",
    "request_id",
    "machine",
    "variant",
)


def _dumps_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


#: a run of digits orjson may read as a float rather than as the integer it is
_LONG_NUMBER = re.compile(r"\d{19}")

try:  # the server extra's; several times quicker for the nested columns of every save and read
    import orjson
except ImportError:  # pragma: no cover - the server extra is installed for the tests
    orjson = None  # type: ignore[assignment]


def _dumps(value: Any) -> str:
    """The JSON text of a nested column: the same value as ``_dumps_json`` writes (a
    float may be spelled otherwise, ``1e16`` for ``1e+16``); what orjson refuses (an
    integer past 64 bits) is written by ``json``."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass
    return _dumps_json(value)


def _loads(text: str) -> Any:
    """A nested column's value. ``json`` reads text that orjson would read otherwise (a
    long run of digits, which orjson may take for a float) or refuses (a NaN, which
    ``json`` may have written)."""
    if orjson is not None and _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _variant_json(v: Variant) -> dict[str, Any]:
    return {
        "name": v.name,
        "model_name": v.model_name,
        "infrastructure": v.infrastructure,
        "status": v.status.value,
        "pending": v.pending,
        "pending_model_name": v.pending_model_name,
        "pending_infrastructure": v.pending_infrastructure,
    }


def _variant(d: dict[str, Any]) -> Variant:
    return Variant(
        d["name"],
        d["model_name"],
        d["infrastructure"],
        VariantStatus(d["status"]),
        d.get("pending"),
        d.get("pending_model_name"),
        d.get("pending_infrastructure"),
    )


def row_params(exp: Experiment) -> tuple[Any, ...]:
    """The column values of ``exp``, in :data:`COLUMNS` order."""
    return (
        exp.account, exp.name, exp.arn, exp.endpoint_name, exp.role_arn, exp.type, exp.status.value,
        exp.description, exp.kms_key, exp.status_reason, exp.start_time, exp.end_time,
        exp.creation_time, exp.last_modified_time, exp.completion_time, exp.version,
        exp.entered_at, exp.due_at,
        None if exp.update_origin is None else exp.update_origin.value,
        None if exp.desired_state is None else exp.desired_state.value,
        exp.attempts, exp.last_error,
        _dumps([_variant_json(v) for v in exp.variants]),
        _dumps(exp.shadow_mode_config),
        None if exp.data_storage_config is None else _dumps(exp.data_storage_config),
        _dumps(exp.tags),
        None if exp.stop_actions is None else _dumps({k: a.value for k, a in exp.stop_actions.items()}),
    )  # fmt: skip


def row_experiment(row: Sequence[Any]) -> Experiment:
    """An :class:`Experiment` from a row of :data:`COLUMNS`."""
    (account, name, arn, endpoint, role, type_, status, description, kms_key, reason, start, end, created,
     modified, completed, version, entered_at, due_at, origin, desired, attempts, last_error,
     variants, smc, dsc, tags, stop_actions) = row  # fmt: skip
    return Experiment(
        account=account,
        name=name,
        arn=arn,
        endpoint_name=endpoint,
        role_arn=role,
        variants=[_variant(v) for v in _loads(variants)],
        shadow_mode_config=_loads(smc),
        start_time=start,
        end_time=end,
        creation_time=created,
        last_modified_time=modified,
        type=type_,
        status=ExperimentStatus(status),
        description=description,
        kms_key=kms_key,
        data_storage_config=None if dsc is None else _loads(dsc),
        tags=_loads(tags),
        status_reason=reason,
        completion_time=completed,
        version=version,
        entered_at=entered_at,
        due_at=due_at,
        update_origin=None if origin is None else ExperimentStatus(origin),
        desired_state=None if desired is None else DesiredState(desired),
        attempts=attempts,
        last_error=last_error,
        stop_actions=None
        if stop_actions is None
        else {k: VariantAction(a) for k, a in _loads(stop_actions).items()},
    )


def history_seq(version: int, position: int) -> int:
    """The ordering key of the ``position``-th history entry written with ``version``."""
    return (version << 16) | position


def entry_params(account: str, entry: HistoryEntry, seq: int) -> tuple[Any, ...]:
    """The :data:`HISTORY_COLUMNS` of a history entry of an experiment of ``account``."""
    return (
        account,
        entry.name,
        seq,
        entry.time,
        entry.event,
        None if entry.from_status is None else entry.from_status.value,
        entry.to_status.value,
        entry.reason,
        entry.request_id,
        entry.version,
    )


def row_entry(row: Sequence[Any]) -> HistoryEntry:
    _account, name, _seq, time, event, from_status, to_status, reason, request_id, version = row
    return HistoryEntry(
        name,
        time,
        event,
        None if from_status is None else ExperimentStatus(from_status),
        ExperimentStatus(to_status),
        reason,
        request_id,
        version,
    )


def change_params(account: str, arn: str, entry: HistoryEntry) -> tuple[Any, ...]:
    """The :data:`CHANGE_COLUMNS` of the change a history entry of ``arn`` (of ``account``) is."""
    return (
        account,
        entry.name,
        arn,
        entry.time,
        entry.event,
        None if entry.from_status is None else entry.from_status.value,
        entry.to_status.value,
        entry.reason,
        entry.request_id,
        entry.machine,
        entry.variant,
    )


def row_change(row: Sequence[Any]) -> Change:
    """A :class:`Change` from a row of ``position`` and :data:`CHANGE_COLUMNS`."""
    (
        position,
        account,
        name,
        arn,
        time,
        event,
        from_status,
        to_status,
        reason,
        request_id,
        machine,
        variant,
    ) = row
    status = VariantStatus if machine == "variant" else ExperimentStatus
    return Change(
        position,
        account,
        name,
        arn,
        time,
        event,
        None if from_status is None else status(from_status),
        status(to_status),
        reason,
        request_id,
        machine,
        variant,
    )
