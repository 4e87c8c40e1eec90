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

This module holds the structures; the scalar field types and :data:`CONSTRAINTS`
are in :mod:`lifecycle.wire._scalars`, the validators they use in
:mod:`lifecycle.wire._constraints`, and the wording of errors in
:mod:`lifecycle.wire._messages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, cast, get_args

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import ValidationError as PydanticValidationError

from lifecycle.domain.statuses import Operation
from lifecycle.errors import UnknownOperationError, not_an_object
from lifecycle.wire import _scalars
from lifecycle.wire._messages import MAX_MESSAGE_ENTRIES, validation_error
from lifecycle.wire._scalars import CONSTRAINTS, INSTANCE_TYPE_FORM

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
    StartTime: _scalars.Timestamp | None = None
    EndTime: _scalars.Timestamp | None = None


class RealTimeInferenceConfig(_Shape):
    InstanceType: _scalars.ProductionVariantInstanceType
    InstanceCount: _scalars.TaskCount


class ModelInfrastructureConfig(_Shape):
    InfrastructureType: _scalars.ModelInfrastructureType
    RealTimeInferenceConfig: RealTimeInferenceConfig


class ModelVariantConfig(_Shape):
    ModelName: _scalars.ModelName
    VariantName: _scalars.ModelVariantName
    InfrastructureConfig: ModelInfrastructureConfig


_ModelVariantConfigList = Annotated[
    list[ModelVariantConfig], _scalars.list_size("ModelVariantConfigList", 1, 2)
]


class CaptureContentTypeHeader(_Shape):
    CsvContentTypes: (
        Annotated[list[_scalars.CsvContentType], _scalars.list_size("CsvContentTypes", 1, 10)]
        | None
    ) = None
    JsonContentTypes: (
        Annotated[list[_scalars.JsonContentType], _scalars.list_size("JsonContentTypes", 1, 10)]
        | None
    ) = None


class InferenceExperimentDataStorageConfig(_Shape):
    Destination: _scalars.DestinationS3Uri
    KmsKey: _scalars.KmsKeyId | None = None
    ContentType: CaptureContentTypeHeader | None = None


class ShadowModelVariantConfig(_Shape):
    ShadowModelVariantName: _scalars.ModelVariantName
    SamplingPercentage: _scalars.Percentage


class ShadowModeConfig(_Shape):
    SourceModelVariantName: _scalars.ModelVariantName
    ShadowModelVariants: Annotated[
        list[ShadowModelVariantConfig], _scalars.list_size("ShadowModelVariantConfigList", 1, 1)
    ]


_ShadowModeConfig = ShadowModeConfig


class Tag(_Shape):
    Key: _scalars.TagKey
    Value: _scalars.TagValue


class EndpointMetadata(_Shape):
    EndpointName: _scalars.EndpointName
    EndpointConfigName: _scalars.EndpointConfigName | None = None
    EndpointStatus: _scalars.EndpointStatus | None = None
    FailureReason: _scalars.FailureReason | None = None


class ModelVariantConfigSummary(_Shape):
    ModelName: _scalars.ModelName
    VariantName: _scalars.ModelVariantName
    InfrastructureConfig: ModelInfrastructureConfig
    Status: _scalars.ModelVariantStatus


class InferenceExperimentSummary(_Shape):
    Name: _scalars.InferenceExperimentName
    Type: _scalars.InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Status: _scalars.InferenceExperimentStatus
    StatusReason: _scalars.InferenceExperimentStatusReason | None = None
    Description: _scalars.InferenceExperimentDescription | None = None
    CreationTime: _scalars.Timestamp
    CompletionTime: _scalars.Timestamp | None = None
    LastModifiedTime: _scalars.Timestamp
    RoleArn: _scalars.RoleArn | None = None


# -- requests --------------------------------------------------------------------------


class CreateInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName
    Type: _scalars.InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Description: _scalars.InferenceExperimentDescription | None = None
    RoleArn: _scalars.RoleArn
    EndpointName: _scalars.EndpointName
    ModelVariants: _ModelVariantConfigList
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: ShadowModeConfig
    KmsKey: _scalars.KmsKeyId | None = None
    Tags: Annotated[list[Tag], _scalars.list_size("TagList", 0, 50)] | None = None


class DescribeInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName


class ListInferenceExperimentsRequest(_Shape):
    NameContains: _scalars.NameContains | None = None
    Type: _scalars.InferenceExperimentType | None = None
    StatusEquals: _scalars.InferenceExperimentStatus | None = None
    CreationTimeAfter: _scalars.Timestamp | None = None
    CreationTimeBefore: _scalars.Timestamp | None = None
    LastModifiedTimeAfter: _scalars.Timestamp | None = None
    LastModifiedTimeBefore: _scalars.Timestamp | None = None
    SortBy: _scalars.SortInferenceExperimentsBy | None = None
    SortOrder: _scalars.SortOrder | None = None
    NextToken: _scalars.NextToken | None = None
    MaxResults: _scalars.MaxResults | None = None


class StartInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName


class StopInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName
    ModelVariantActions: _scalars.ModelVariantActionMap
    DesiredModelVariants: _ModelVariantConfigList | None = None
    DesiredState: _scalars.InferenceExperimentStopDesiredState | None = None
    Reason: _scalars.InferenceExperimentStatusReason | None = None


class UpdateInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName
    Schedule: InferenceExperimentSchedule | None = None
    Description: _scalars.InferenceExperimentDescription | None = None
    ModelVariants: _ModelVariantConfigList | None = None
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: _ShadowModeConfig | None = None


class DeleteInferenceExperimentRequest(_Shape):
    Name: _scalars.InferenceExperimentName


# -- responses -------------------------------------------------------------------------


class _ArnResponse(_Shape):
    InferenceExperimentArn: _scalars.InferenceExperimentArn


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
    Arn: _scalars.InferenceExperimentArn
    Name: _scalars.InferenceExperimentName
    Type: _scalars.InferenceExperimentType
    Schedule: InferenceExperimentSchedule | None = None
    Status: _scalars.InferenceExperimentStatus
    StatusReason: _scalars.InferenceExperimentStatusReason | None = None
    Description: _scalars.InferenceExperimentDescription | None = None
    CreationTime: _scalars.Timestamp | None = None
    CompletionTime: _scalars.Timestamp | None = None
    LastModifiedTime: _scalars.Timestamp | None = None
    RoleArn: _scalars.RoleArn | None = None
    EndpointMetadata: EndpointMetadata
    ModelVariants: Annotated[
        list[ModelVariantConfigSummary], _scalars.list_size("ModelVariantConfigSummaryList")
    ]
    DataStorageConfig: InferenceExperimentDataStorageConfig | None = None
    ShadowModeConfig: _ShadowModeConfig | None = None
    KmsKey: _scalars.KmsKeyId | None = None


class ListInferenceExperimentsResponse(_Shape):
    InferenceExperiments: (
        Annotated[list[InferenceExperimentSummary], _scalars.list_size("InferenceExperimentList")]
        | None
    ) = None
    NextToken: _scalars.NextToken | None = None


REQUEST_MODELS: dict[str, type[BaseModel]] = {op: globals()[f"{op}Request"] for op in Operation}
RESPONSE_MODELS: dict[str, type[BaseModel]] = {op: globals()[f"{op}Response"] for op in Operation}


# -- parsing ---------------------------------------------------------------------------


def _structures_in(annotation: Any) -> list[type[_Shape]]:
    if isinstance(annotation, type) and issubclass(annotation, _Shape):
        return [annotation]
    return [s for arg in get_args(annotation) for s in _structures_in(arg)]


#: structure -> {member: the structure it holds (directly or as list items)}
_CHILDREN: dict[type[BaseModel], dict[str, type[_Shape]]] = {
    cls: {
        name: found[0]
        for name, f in cls.model_fields.items()
        if (found := _structures_in(f.annotation))
    }
    for cls in (*_Shape.__subclasses__(), *_ArnResponse.__subclasses__())
}
_VALIDATE = {
    op: model.__pydantic_validator__.validate_python for op, model in REQUEST_MODELS.items()
}


def _owner(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, list[str]] | None:
    """The name and members of the structure at ``loc`` below ``root``."""
    cls: type[BaseModel] | None = root
    for seg in loc:
        if isinstance(seg, str) and cls is not None:  # ints are list indexes: same structure
            cls = _CHILDREN.get(cls, {}).get(seg)
    return (cls.__name__, list(cls.model_fields)) if cls is not None else None


def parse_request(operation: str, payload: object) -> BaseModel:
    """Validate ``payload`` (a decoded JSON body) as the request of ``operation``, once.

    Raises :class:`lifecycle.errors.ValidationError` naming every broken constraint,
    and ``UnknownOperationError`` for an operation not of this API.
    """
    validate = _VALIDATE.get(operation)
    if validate is None:
        raise UnknownOperationError(
            f"Operation '{operation}' is not an inference-experiment operation"
        )
    if not isinstance(payload, dict):
        raise not_an_object(payload)
    try:
        return cast(BaseModel, validate(payload))
    except PydanticValidationError as exc:
        model = REQUEST_MODELS[operation]
        raise validation_error(exc, lambda loc: _owner(model, loc)) from None
