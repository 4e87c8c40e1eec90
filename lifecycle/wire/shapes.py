"""Pydantic models of the seven inference-experiment operations, as the service model has them.

Class names are botocore's SageMaker shape names and fields the wire member
names, so ``Model.model_validate(body)`` takes a JSON body as it is and
``model.model_dump(exclude_none=True)`` gives it back (timestamps as float
epoch seconds). Every constraint (:data:`CONSTRAINTS`) is copied from
``botocore/data/sagemaker/2017-07-24/service-2.json.gz``; a test compares them
with it. Where this module differs from the model, on purpose (SPEC.md):

- patterns are full matches; ``.*`` members take any characters, newlines too;
- ``RoleArn``'s ``\\d`` is ASCII digits and ``.`` in ``DestinationS3Uri`` and
  ``InferenceExperimentArn`` excludes Java's line terminators, as in the Java
  regexes the patterns are written for;
- Tag keys and values are checked by Unicode category (letters, numbers,
  space separators, ``_.:/=+-@``), Python's ``re`` having no ``\\p{L}``;
- ``InstanceType`` is checked by form (:data:`INSTANCE_TYPE_FORM`), not
  against the model's list, so new instance types need no release;
- ``SamplingPercentage`` is 0..100 (the model gives only the maximum);
  integers are 32-bit; timestamps lie in years 1..9999;
- JSON ``null`` is an absent member; unknown members are rejected.

:func:`parse_request` validates a request once and raises
:class:`lifecycle.errors.ValidationError` in AWS's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, PlainValidator, WrapValidator, model_validator
from pydantic import ValidationError as PydanticValidationError

from lifecycle.errors import ProtocolError, ValidationError
from lifecycle.wire._constraints import (
    Enum,
    Int,
    Size,
    Str,
    entries,
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
    "MAX_MESSAGE_ENTRIES",
    "REQUEST_MODELS",
    "RESPONSE_MODELS",
    "CaptureContentTypeHeader",
    "CreateInferenceExperimentRequest",
    "CreateInferenceExperimentResponse",
    "DeleteInferenceExperimentRequest",
    "DeleteInferenceExperimentResponse",
    "DescribeInferenceExperimentRequest",
    "DescribeInferenceExperimentResponse",
    "EndpointMetadata",
    "InferenceExperimentDataStorageConfig",
    "InferenceExperimentSchedule",
    "InferenceExperimentSummary",
    "ListInferenceExperimentsRequest",
    "ListInferenceExperimentsResponse",
    "ModelInfrastructureConfig",
    "ModelVariantConfig",
    "ModelVariantConfigSummary",
    "RealTimeInferenceConfig",
    "ShadowModeConfig",
    "ShadowModelVariantConfig",
    "StartInferenceExperimentRequest",
    "StartInferenceExperimentResponse",
    "StopInferenceExperimentRequest",
    "StopInferenceExperimentResponse",
    "Tag",
    "UpdateInferenceExperimentRequest",
    "UpdateInferenceExperimentResponse",
    "parse_request",
]

#: the form every InstanceType must have (SPEC decision), e.g. ml.p6-b200.48xlarge
INSTANCE_TYPE_FORM = r"ml\.[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+"
#: a validation message lists at most this many errors (its count says how many there were)
MAX_MESSAGE_ENTRIES = 50
_JAVA_DOT = r"[^\n\r\u0085\u2028\u2029]"  # Java's '.': anything but a line terminator

#: every constraint, by service-model shape name
CONSTRAINTS: dict[str, Str | Enum | Int | Size] = {}


_S = TypeVar("_S", Str, Enum, Int, Size)


def _keep(spec: _S) -> _S:
    CONSTRAINTS[spec.shape] = spec
    return spec


def _str(shape: str, lo: int | None, hi: int | None, pattern: str | None = None, regex: str | None = None) -> PlainValidator:
    """A string shape; ``regex`` is the Python translation of ``pattern`` when it differs."""
    check = None if pattern in (None, ".*") else fullmatch(regex or pattern or "")
    return PlainValidator(str_validator(_keep(Str(shape, lo, hi, pattern, check))))


def _enum(shape: str, literal: Any) -> PlainValidator:
    return PlainValidator(str_validator(_keep(Enum(shape, get_args(literal)))))


def _int(shape: str, lo: int | None, hi: int | None) -> PlainValidator:
    return PlainValidator(int_validator(_keep(Int(shape, lo, hi))))


def _list(shape: str, lo: int | None = None, hi: int | None = None) -> WrapValidator:
    return WrapValidator(list_validator(_keep(Size(shape, lo, hi))))


# -- scalar shapes ---------------------------------------------------------------------

_NAME63 = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_VARIANT = "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
_CONTENT_TYPE = "[a-zA-Z0-9](-*[a-zA-Z0-9])*\\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*"
_TAG = "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"

_InferenceExperimentName = Annotated[str, _str("InferenceExperimentName", 1, 120, "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")]
_InferenceExperimentDescription = Annotated[str, _str("InferenceExperimentDescription", 0, 1024, ".*")]
_InferenceExperimentStatusReason = Annotated[str, _str("InferenceExperimentStatusReason", 0, 1024, ".*")]
_RoleArn = Annotated[str, _str("RoleArn", 20, 2048, "arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                              "arn:aws[a-z\\-]*:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")]
_EndpointName = Annotated[str, _str("EndpointName", 0, 63, _NAME63)]
_EndpointConfigName = Annotated[str, _str("EndpointConfigName", 0, 63, _NAME63)]
_ModelName = Annotated[str, _str("ModelName", 0, 63, _VARIANT)]
_ModelVariantName = Annotated[str, _str("ModelVariantName", 0, 63, _VARIANT)]
_DestinationS3Uri = Annotated[str, _str("DestinationS3Uri", 0, 512, "(https|s3)://([^/])/?(.*)", f"(https|s3)://([^/])/?({_JAVA_DOT}*)")]
_KmsKeyId = Annotated[str, _str("KmsKeyId", 0, 2048, "[a-zA-Z0-9:/_-]*")]
_CsvContentType = Annotated[str, _str("CsvContentType", 1, 256, _CONTENT_TYPE)]
_JsonContentType = Annotated[str, _str("JsonContentType", 1, 256, _CONTENT_TYPE)]
_TagKey = Annotated[str, PlainValidator(str_validator(_keep(Str("TagKey", 1, 128, _TAG, tag_chars_ok))))]
_TagValue = Annotated[str, PlainValidator(str_validator(_keep(Str("TagValue", 0, 256, _TAG, tag_chars_ok))))]
_NameContains = Annotated[str, _str("NameContains", 0, 63, "[a-zA-Z0-9\\-]+")]
_NextToken = Annotated[str, _str("NextToken", 0, 8192, ".*")]
_InferenceExperimentArn = Annotated[str, _str(
    "InferenceExperimentArn", 0, 256, "arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:inference-experiment/.*",
    f"arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{{12}}:inference-experiment/{_JAVA_DOT}*")]
_FailureReason = Annotated[str, _str("FailureReason", 0, 1024)]
_ProductionVariantInstanceType = Annotated[str, _str("ProductionVariantInstanceType", None, None, INSTANCE_TYPE_FORM)]

_TaskCount = Annotated[int, _int("TaskCount", 0, None)]
_Percentage = Annotated[int, _int("Percentage", 0, 100)]
_MaxResults = Annotated[int, _int("MaxResults", 1, 100)]
_Timestamp = Annotated[float, PlainValidator(timestamp_validator)]

_LType = Literal["ShadowMode"]
_LStatus = Literal["Creating", "Created", "Updating", "Running", "Starting", "Stopping", "Completed", "Cancelled"]
_LEndpointStatus = Literal["OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack", "InService",
                          "Deleting", "Failed", "UpdateRollbackFailed"]
_LVariantStatus = Literal["Creating", "Updating", "InService", "Deleting", "Deleted"]
_LAction = Literal["Retain", "Remove", "Promote"]
_InferenceExperimentType = Annotated[_LType, _enum("InferenceExperimentType", _LType)]
_InferenceExperimentStatus = Annotated[_LStatus, _enum("InferenceExperimentStatus", _LStatus)]
_EndpointStatus = Annotated[_LEndpointStatus, _enum("EndpointStatus", _LEndpointStatus)]
_ModelVariantStatus = Annotated[_LVariantStatus, _enum("ModelVariantStatus", _LVariantStatus)]
_ModelInfrastructureType = Annotated[Literal["RealTimeInference"], _enum("ModelInfrastructureType", Literal["RealTimeInference"])]
_ModelVariantAction = Annotated[_LAction, _enum("ModelVariantAction", _LAction)]
_InferenceExperimentStopDesiredState = Annotated[Literal["Completed", "Cancelled"], _enum("InferenceExperimentStopDesiredState", Literal["Completed", "Cancelled"])]
_SortInferenceExperimentsBy = Annotated[Literal["Name", "CreationTime", "Status"], _enum("SortInferenceExperimentsBy", Literal["Name", "CreationTime", "Status"])]
_SortOrder = Annotated[Literal["Ascending", "Descending"], _enum("SortOrder", Literal["Ascending", "Descending"])]

_ModelVariantActionMap = Annotated[dict[str, _LAction], PlainValidator(map_validator(
    _keep(Size("ModelVariantActionMap", 1, 2)),
    str_validator(cast(Str, CONSTRAINTS["ModelVariantName"])),
    str_validator(cast(Enum, CONSTRAINTS["ModelVariantAction"])),
))]


# -- structures ------------------------------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        """A member sent as JSON null counts as absent (a required one is then missing);
        an unknown member stays, to be rejected, whatever its value."""
        if type(data) is dict and None in data.values():
            members = cls.__pydantic_fields__
            return {k: v for k, v in data.items() if v is not None or k not in members}
        return data


class InferenceExperimentSchedule(_Shape):
    StartTime: _Timestamp | None = None
    EndTime: _Timestamp | None = None


class RealTimeInferenceConfig(_Shape):
    InstanceType: _ProductionVariantInstanceType
    InstanceCount: _TaskCount


class ModelInfrastructureConfig(_Shape):
    InfrastructureType: _ModelInfrastructureType
    RealTimeInferenceConfig: RealTimeInferenceConfig


class ModelVariantConfig(_Shape):
    ModelName: _ModelName
    VariantName: _ModelVariantName
    InfrastructureConfig: ModelInfrastructureConfig


_ModelVariantConfigList = Annotated[list[ModelVariantConfig], _list("ModelVariantConfigList", 1, 2)]


class CaptureContentTypeHeader(_Shape):
    CsvContentTypes: Annotated[list[_CsvContentType], _list("CsvContentTypes", 1, 10)] | None = None
    JsonContentTypes: Annotated[list[_JsonContentType], _list("JsonContentTypes", 1, 10)] | None = None


class InferenceExperimentDataStorageConfig(_Shape):
    Destination: _DestinationS3Uri
    KmsKey: _KmsKeyId | None = None
    ContentType: CaptureContentTypeHeader | None = None


class ShadowModelVariantConfig(_Shape):
    ShadowModelVariantName: _ModelVariantName
    SamplingPercentage: _Percentage


class ShadowModeConfig(_Shape):
    SourceModelVariantName: _ModelVariantName
    ShadowModelVariants: Annotated[list[ShadowModelVariantConfig], _list("ShadowModelVariantConfigList", 1, 1)]


_ShadowModeConfig = ShadowModeConfig


class Tag(_Shape):
    Key: _TagKey
    Value: _TagValue


class EndpointMetadata(_Shape):
    EndpointName: _EndpointName
    EndpointConfigName: _EndpointConfigName | None = None
    EndpointStatus: _EndpointStatus | None = None
    FailureReason: _FailureReason | None = None


class ModelVariantConfigSummary(_Shape):
    ModelName: _ModelName
    VariantName: _ModelVariantName
    InfrastructureConfig: ModelInfrastructureConfig
    Status: _ModelVariantStatus


class InferenceExperimentSummary(_Shape):
    Name: _InferenceExperimentName
    Type: _InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Status: _InferenceExperimentStatus
    StatusReason: _InferenceExperimentStatusReason | None = None
    Description: _InferenceExperimentDescription | None = None
    CreationTime: _Timestamp
    CompletionTime: _Timestamp | None = None
    LastModifiedTime: _Timestamp
    RoleArn: _RoleArn | None = None


# -- requests --------------------------------------------------------------------------


class CreateInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName
    Type: _InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Description: _InferenceExperimentDescription | None = None
    RoleArn: _RoleArn
    EndpointName: _EndpointName
    ModelVariants: _ModelVariantConfigList
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: ShadowModeConfig
    KmsKey: _KmsKeyId | None = None
    Tags: Annotated[list[Tag], _list("TagList", 0, 50)] | None = None


class DescribeInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName


class ListInferenceExperimentsRequest(_Shape):
    NameContains: _NameContains | None = None
    Type: _InferenceExperimentType | None = None
    StatusEquals: _InferenceExperimentStatus | None = None
    CreationTimeAfter: _Timestamp | None = None
    CreationTimeBefore: _Timestamp | None = None
    LastModifiedTimeAfter: _Timestamp | None = None
    LastModifiedTimeBefore: _Timestamp | None = None
    SortBy: _SortInferenceExperimentsBy | None = None
    SortOrder: _SortOrder | None = None
    NextToken: _NextToken | None = None
    MaxResults: _MaxResults | None = None


class StartInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName


class StopInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName
    ModelVariantActions: _ModelVariantActionMap
    DesiredModelVariants: _ModelVariantConfigList | None = None
    DesiredState: _InferenceExperimentStopDesiredState | None = None
    Reason: _InferenceExperimentStatusReason | None = None


class UpdateInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName
    Schedule: InferenceExperimentSchedule | None = None
    Description: _InferenceExperimentDescription | None = None
    ModelVariants: _ModelVariantConfigList | None = None
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: _ShadowModeConfig | None = None


class DeleteInferenceExperimentRequest(_Shape):
    Name: _InferenceExperimentName


# -- responses -------------------------------------------------------------------------


class _ArnResponse(_Shape):
    InferenceExperimentArn: _InferenceExperimentArn


class CreateInferenceExperimentResponse(_ArnResponse):
    pass


class StartInferenceExperimentResponse(_ArnResponse):
    pass


class StopInferenceExperimentResponse(_ArnResponse):
    pass


class UpdateInferenceExperimentResponse(_ArnResponse):
    pass


class DeleteInferenceExperimentResponse(_ArnResponse):
    pass


class DescribeInferenceExperimentResponse(_Shape):
    Arn: _InferenceExperimentArn
    Name: _InferenceExperimentName
    Type: _InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Status: _InferenceExperimentStatus
    StatusReason: _InferenceExperimentStatusReason | None = None
    Description: _InferenceExperimentDescription | None = None
    CreationTime: _Timestamp | None = None
    CompletionTime: _Timestamp | None = None
    LastModifiedTime: _Timestamp | None = None
    RoleArn: _RoleArn | None = None
    EndpointMetadata: EndpointMetadata
    ModelVariants: Annotated[list[ModelVariantConfigSummary], _list("ModelVariantConfigSummaryList")]
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: _ShadowModeConfig | None = None
    KmsKey: _KmsKeyId | None = None


class ListInferenceExperimentsResponse(_Shape):
    InferenceExperiments: Annotated[list[InferenceExperimentSummary], _list("InferenceExperimentList")] | None = None
    NextToken: _NextToken | None = None


_OPERATIONS = ("CreateInferenceExperiment", "DescribeInferenceExperiment", "ListInferenceExperiments",
               "StartInferenceExperiment", "StopInferenceExperiment", "UpdateInferenceExperiment",
               "DeleteInferenceExperiment")
REQUEST_MODELS: dict[str, type[BaseModel]] = {op: globals()[f"{op}Request"] for op in _OPERATIONS}
RESPONSE_MODELS: dict[str, type[BaseModel]] = {op: globals()[f"{op}Response"] for op in _OPERATIONS}


# -- parsing ---------------------------------------------------------------------------


def _structures_in(annotation: Any) -> list[type[_Shape]]:
    if isinstance(annotation, type) and issubclass(annotation, _Shape):
        return [annotation]
    return [s for arg in get_args(annotation) for s in _structures_in(arg)]


#: structure -> {member: the structure it holds (directly or as list items)}
_CHILDREN: dict[type[BaseModel], dict[str, type[_Shape]]] = {
    cls: {name: found[0] for name, f in cls.model_fields.items() if (found := _structures_in(f.annotation))}
    for cls in (*_Shape.__subclasses__(), *_ArnResponse.__subclasses__())
}
_VALIDATE = {op: model.__pydantic_validator__.validate_python for op, model in REQUEST_MODELS.items()}


def _owner(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, list[str]] | None:
    """The name and members of the structure at ``loc`` below ``root``."""
    cls: type[BaseModel] | None = root
    for seg in loc:
        if isinstance(seg, str) and cls is not None:  # ints are list indexes: same structure
            cls = _CHILDREN.get(cls, {}).get(seg)
    return (cls.__name__, list(cls.model_fields)) if cls is not None else None


def _validation_error(model: type[BaseModel], exc: PydanticValidationError) -> ValidationError:
    found = entries(exc, lambda loc: _owner(model, loc)) or [("", "The request does not match its shape", "shape")]
    n = len(found)
    text = f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(e[1] for e in found[:MAX_MESSAGE_ENTRIES])
    if n > MAX_MESSAGE_ENTRIES:
        text += f"; ... ({n - MAX_MESSAGE_ENTRIES} more)"
    return ValidationError(text, field=found[0][0], rule=found[0][2], errors=[(where, entry) for where, entry, _ in found])


def parse_request(operation: str, payload: object) -> BaseModel:
    """Validate ``payload`` (a decoded JSON body) as the request of ``operation``, once.

    Raises :class:`lifecycle.errors.ValidationError` naming every broken constraint,
    and ``ProtocolError`` (UnknownOperationException) for an operation not of this API.
    """
    validate = _VALIDATE.get(operation)
    if validate is None:
        raise ProtocolError("UnknownOperationException", f"Operation '{operation}' is not an inference-experiment operation")
    if not isinstance(payload, dict):
        entry = f"The request body must be a JSON object, not {type(payload).__name__}"
        raise ValidationError(f"1 validation error detected: {entry}", field="", rule="body-object", errors=[("", entry)])
    try:
        return cast(BaseModel, validate(payload))
    except PydanticValidationError as exc:
        raise _validation_error(REQUEST_MODELS[operation], exc) from None
