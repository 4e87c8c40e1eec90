"""The scalar shapes of the service model as pydantic field types, and :data:`CONSTRAINTS`.

Each ``Annotated`` type here (strings, enums, integers, timestamps, and the one map
of them, ``ModelVariantActionMap``) is one shape of botocore's SageMaker service
model, checked by the validators of :mod:`lifecycle.wire._constraints`; building it
records its constraint in :data:`CONSTRAINTS`, as :func:`list_size` does for the
lists of structures :mod:`lifecycle.wire.shapes` declares. Where a constraint
differs from the model on purpose, and why, that module's docstring says.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, cast, get_args

from pydantic import PlainValidator, WrapValidator

from lifecycle.wire._constraints import (
    Enum,
    Int,
    Size,
    Str,
    fullmatch,
    int_validator,
    list_validator,
    map_validator,
    str_validator,
    tag_chars_ok,
    timestamp_validator,
)

__all__ = [
    "CONSTRAINTS",
    "INSTANCE_TYPE_FORM",
    "CsvContentType",
    "DestinationS3Uri",
    "EndpointConfigName",
    "EndpointName",
    "EndpointStatus",
    "FailureReason",
    "InferenceExperimentArn",
    "InferenceExperimentDescription",
    "InferenceExperimentName",
    "InferenceExperimentStatus",
    "InferenceExperimentStatusReason",
    "InferenceExperimentStopDesiredState",
    "InferenceExperimentType",
    "JsonContentType",
    "KmsKeyId",
    "MaxResults",
    "ModelInfrastructureType",
    "ModelName",
    "ModelVariantAction",
    "ModelVariantActionMap",
    "ModelVariantName",
    "ModelVariantStatus",
    "NameContains",
    "NextToken",
    "Percentage",
    "ProductionVariantInstanceType",
    "RoleArn",
    "SortInferenceExperimentsBy",
    "SortOrder",
    "TagKey",
    "TagValue",
    "TaskCount",
    "Timestamp",
    "list_size",
]

#: the form every InstanceType must have (SPEC decision), e.g. ml.p6-b200.48xlarge
INSTANCE_TYPE_FORM = r"ml\.[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+"
_JAVA_DOT = r"[^\n\r\u0085\u2028\u2029]"  # Java's '.': anything but a line terminator

#: every constraint, by service-model shape name
CONSTRAINTS: dict[str, Str | Enum | Int | Size] = {}


_S = TypeVar("_S", Str, Enum, Int, Size)


def _keep(spec: _S) -> _S:
    CONSTRAINTS[spec.shape] = spec
    return spec


def _str(
    shape: str, lo: int | None, hi: int | None, pattern: str | None = None, regex: str | None = None
) -> PlainValidator:
    """A string shape; ``regex`` is the Python translation of ``pattern`` when it differs."""
    check = None if pattern in (None, ".*") else fullmatch(regex or pattern or "")
    return PlainValidator(str_validator(_keep(Str(shape, lo, hi, pattern, check))))


def _enum(shape: str, literal: Any) -> PlainValidator:
    return PlainValidator(str_validator(_keep(Enum(shape, get_args(literal)))))


def _int(shape: str, lo: int | None, hi: int | None) -> PlainValidator:
    return PlainValidator(int_validator(_keep(Int(shape, lo, hi))))


def list_size(shape: str, lo: int | None = None, hi: int | None = None) -> WrapValidator:
    """The size of a list shape; the lists hold structures, so :mod:`lifecycle.wire.shapes` uses it."""
    return WrapValidator(list_validator(_keep(Size(shape, lo, hi))))


# -- scalar shapes ---------------------------------------------------------------------

_NAME63 = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_VARIANT = "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
_CONTENT_TYPE = "[a-zA-Z0-9](-*[a-zA-Z0-9])*\\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*"
_TAG = "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"

InferenceExperimentName = Annotated[
    str, _str("InferenceExperimentName", 1, 120, "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
]
InferenceExperimentDescription = Annotated[
    str, _str("InferenceExperimentDescription", 0, 1024, ".*")
]
InferenceExperimentStatusReason = Annotated[
    str, _str("InferenceExperimentStatusReason", 0, 1024, ".*")
]
RoleArn = Annotated[
    str,
    _str(
        "RoleArn",
        20,
        2048,
        "arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        "arn:aws[a-z\\-]*:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
    ),
]
EndpointName = Annotated[str, _str("EndpointName", 0, 63, _NAME63)]
EndpointConfigName = Annotated[str, _str("EndpointConfigName", 0, 63, _NAME63)]
ModelName = Annotated[str, _str("ModelName", 0, 63, _VARIANT)]
ModelVariantName = Annotated[str, _str("ModelVariantName", 0, 63, _VARIANT)]
DestinationS3Uri = Annotated[
    str,
    _str(
        "DestinationS3Uri",
        0,
        512,
        "(https|s3)://([^/])/?(.*)",
        f"(https|s3)://([^/])/?({_JAVA_DOT}*)",
    ),
]
KmsKeyId = Annotated[str, _str("KmsKeyId", 0, 2048, "[a-zA-Z0-9:/_-]*")]
CsvContentType = Annotated[str, _str("CsvContentType", 1, 256, _CONTENT_TYPE)]
JsonContentType = Annotated[str, _str("JsonContentType", 1, 256, _CONTENT_TYPE)]
TagKey = Annotated[
    str, PlainValidator(str_validator(_keep(Str("TagKey", 1, 128, _TAG, tag_chars_ok))))
]
TagValue = Annotated[
    str, PlainValidator(str_validator(_keep(Str("TagValue", 0, 256, _TAG, tag_chars_ok))))
]
NameContains = Annotated[str, _str("NameContains", 0, 63, "[a-zA-Z0-9\\-]+")]
NextToken = Annotated[str, _str("NextToken", 0, 8192, ".*")]
InferenceExperimentArn = Annotated[
    str,
    _str(
        "InferenceExperimentArn",
        0,
        256,
        "arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:inference-experiment/.*",
        f"arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{{12}}:inference-experiment/{_JAVA_DOT}*",
    ),
]
FailureReason = Annotated[str, _str("FailureReason", 0, 1024)]
ProductionVariantInstanceType = Annotated[
    str, _str("ProductionVariantInstanceType", None, None, INSTANCE_TYPE_FORM)
]

TaskCount = Annotated[int, _int("TaskCount", 0, None)]
Percentage = Annotated[int, _int("Percentage", 0, 100)]
MaxResults = Annotated[int, _int("MaxResults", 1, 100)]
Timestamp = Annotated[float, PlainValidator(timestamp_validator)]

_LType = Literal["ShadowMode"]
_LStatus = Literal[
    "Creating", "Created", "Updating", "Running", "Starting", "Stopping", "Completed", "Cancelled"
]
_LEndpointStatus = Literal[
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
]
_LVariantStatus = Literal["Creating", "Updating", "InService", "Deleting", "Deleted"]
_LAction = Literal["Retain", "Remove", "Promote"]
InferenceExperimentType = Annotated[_LType, _enum("InferenceExperimentType", _LType)]
InferenceExperimentStatus = Annotated[_LStatus, _enum("InferenceExperimentStatus", _LStatus)]
EndpointStatus = Annotated[_LEndpointStatus, _enum("EndpointStatus", _LEndpointStatus)]
ModelVariantStatus = Annotated[_LVariantStatus, _enum("ModelVariantStatus", _LVariantStatus)]
ModelInfrastructureType = Annotated[
    Literal["RealTimeInference"], _enum("ModelInfrastructureType", Literal["RealTimeInference"])
]
ModelVariantAction = Annotated[_LAction, _enum("ModelVariantAction", _LAction)]
InferenceExperimentStopDesiredState = Annotated[
    Literal["Completed", "Cancelled"],
    _enum("InferenceExperimentStopDesiredState", Literal["Completed", "Cancelled"]),
]
SortInferenceExperimentsBy = Annotated[
    Literal["Name", "CreationTime", "Status"],
    _enum("SortInferenceExperimentsBy", Literal["Name", "CreationTime", "Status"]),
]
SortOrder = Annotated[
    Literal["Ascending", "Descending"], _enum("SortOrder", Literal["Ascending", "Descending"])
]

ModelVariantActionMap = Annotated[
    dict[str, _LAction],
    PlainValidator(
        map_validator(
            _keep(Size("ModelVariantActionMap", 1, 2)),
            str_validator(cast(Str, CONSTRAINTS["ModelVariantName"])),
            str_validator(cast(Enum, CONSTRAINTS["ModelVariantAction"])),
        )
    ),
]
