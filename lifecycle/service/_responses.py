"""Stored records -> response dicts in the wire shape (timestamps as epoch seconds).

A response is the caller's to keep and change: its nested members are fresh
copies, never the dicts a stored record (or a store's own record, for the
memory store) holds.
"""

from __future__ import annotations

from typing import Any

from lifecycle.domain.experiment import Experiment

__all__ = ["describe_response", "summary"]


def _fresh(value: Any) -> Any:
    """A copy of a JSON value (dicts, lists and scalars), to any depth."""
    if type(value) is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if type(value) is list:
        return [_fresh(v) for v in value]
    return value


def _common(exp: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": exp.name,
        "Type": exp.type,
        "Schedule": {"StartTime": exp.start_time, "EndTime": exp.end_time},
        "Status": exp.status.value,
    }
    if exp.status_reason is not None:
        out["StatusReason"] = exp.status_reason
    if exp.description is not None:
        out["Description"] = exp.description
    out["CreationTime"] = exp.creation_time
    if exp.completion_time is not None:
        out["CompletionTime"] = exp.completion_time
    out["LastModifiedTime"] = exp.last_modified_time
    out["RoleArn"] = exp.role_arn
    return out


def summary(exp: Experiment) -> dict[str, Any]:
    """An InferenceExperimentSummary: only its members (no Arn)."""
    return _common(exp)


def _same(value: Any) -> Any:
    return value


def describe_response(exp: Experiment, *, fresh: bool = True) -> dict[str, Any]:
    """A DescribeInferenceExperimentResponse with every required member; with
    ``fresh=False`` (for a caller that only encodes it) its nested members are the
    record's own."""
    copy = _fresh if fresh else _same
    out = {"Arn": exp.arn, **_common(exp)}
    out["EndpointMetadata"] = {
        "EndpointName": exp.endpoint_name,
        "EndpointStatus": "Updating" if exp.status.transitional else "InService",
    }
    out["ModelVariants"] = [
        {
            "ModelName": v.model_name,
            "VariantName": v.name,
            "InfrastructureConfig": copy(v.infrastructure),
            "Status": v.status.value,
        }
        for v in exp.variants
    ]
    if exp.data_storage_config is not None:
        out["DataStorageConfig"] = copy(exp.data_storage_config)
    out["ShadowModeConfig"] = copy(exp.shadow_mode_config)
    if exp.kms_key is not None:
        out["KmsKey"] = exp.kms_key
    return out
