"""Wire shapes: the seven operations' requests and responses, exactly as botocore's service model."""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lifecycle.errors import ProtocolError, SerializationError, ValidationError
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Enum, Int, Size, Str
from lifecycle.wire.shapes import INSTANCE_TYPE_FORM, REQUEST_MODELS, RESPONSE_MODELS, parse_request

OPERATIONS = tuple(REQUEST_MODELS)
ARN = "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"
ROLE = "arn:aws:iam::123456789012:role/lifecycle"


def variant(
    name: str = "shadow", *, model: str = "model-b", instance: Any = "ml.m5.xlarge", count: Any = 1
) -> dict[str, Any]:
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": instance, "InstanceCount": count},
        },
    }


SHADOW = {
    "SourceModelVariantName": "prod",
    "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
}
STORAGE = {
    "Destination": "s3://bucket/capture/prefix",
    "KmsKey": "arn:aws:kms:us-east-1:123456789012:key/abcd-1234",
    "ContentType": {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json", "application/jsonlines"],
    },
}

MINIMAL: dict[str, dict[str, Any]] = {
    "CreateInferenceExperiment": {
        "Name": "exp",
        "Type": "ShadowMode",
        "RoleArn": ROLE,
        "EndpointName": "endpoint",
        "ModelVariants": [variant("prod", model="model-a"), variant("shadow")],
        "ShadowModeConfig": SHADOW,
    },
    "DescribeInferenceExperiment": {"Name": "exp"},
    "ListInferenceExperiments": {},
    "StartInferenceExperiment": {"Name": "exp"},
    "StopInferenceExperiment": {"Name": "exp", "ModelVariantActions": {"shadow": "Remove"}},
    "UpdateInferenceExperiment": {"Name": "exp"},
    "DeleteInferenceExperiment": {"Name": "exp"},
}

FULL: dict[str, dict[str, Any]] = {
    **MINIMAL,
    "CreateInferenceExperiment": {
        **MINIMAL["CreateInferenceExperiment"],
        "Schedule": {"StartTime": 1_800_000_000.0, "EndTime": 1_800_086_400.5},
        "Description": "a shadow test\nover two lines",
        "DataStorageConfig": STORAGE,
        "KmsKey": "key-id",
        "Tags": [{"Key": "team", "Value": "ml"}, {"Key": "empty", "Value": ""}],
    },
    "ListInferenceExperiments": {
        "NameContains": "exp-",
        "Type": "ShadowMode",
        "StatusEquals": "Running",
        "CreationTimeAfter": 1.0,
        "CreationTimeBefore": 2.0,
        "LastModifiedTimeAfter": 3.0,
        "LastModifiedTimeBefore": 4.0,
        "SortBy": "Status",
        "SortOrder": "Ascending",
        "NextToken": "opaque-token",
        "MaxResults": 100,
    },
    "StopInferenceExperiment": {
        "Name": "exp",
        "ModelVariantActions": {"prod": "Remove", "shadow": "Promote"},
        "DesiredModelVariants": [variant("shadow", instance="ml.p6-b200.48xlarge", count=3)],
        "DesiredState": "Cancelled",
        "Reason": "shadow wins",
    },
    "UpdateInferenceExperiment": {
        "Name": "exp",
        "Schedule": {"StartTime": 1_800_000_000.0, "EndTime": 1_800_086_400.0},
        "Description": "",
        "ModelVariants": [variant("prod", model="model-a"), variant("shadow")],
        "DataStorageConfig": STORAGE,
        "ShadowModeConfig": SHADOW,
    },
}


def refused(operation: str, payload: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_request(operation, payload)
    return info.value


def stop(**members: Any) -> dict[str, Any]:
    return {**MINIMAL["StopInferenceExperiment"], **members}


def stop_errors(**members: Any) -> list[tuple[str, str]]:
    return refused("StopInferenceExperiment", stop(**members)).errors


def create(**members: Any) -> dict[str, Any]:
    return {**MINIMAL["CreateInferenceExperiment"], **members}


def create_errors(**members: Any) -> list[tuple[str, str]]:
    return refused("CreateInferenceExperiment", create(**members)).errors


def paths(errors: list[tuple[str, str]]) -> list[str]:
    return [where for where, _ in errors]


def parses(operation: str, payload: dict[str, Any]) -> BaseModel:
    return parse_request(operation, payload)


# -- valid requests ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_minimal_request_parses(operation: str) -> None:
    assert isinstance(parse_request(operation, MINIMAL[operation]), REQUEST_MODELS[operation])


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_full_request_parses_and_dumps_back_as_sent(operation: str) -> None:
    assert (
        parse_request(operation, FULL[operation]).model_dump(exclude_none=True) == FULL[operation]
    )


def test_parse_request_returns_the_models_typed_values() -> None:
    req: Any = parse_request("StopInferenceExperiment", FULL["StopInferenceExperiment"])
    assert req.ModelVariantActions == {"prod": "Remove", "shadow": "Promote"}
    assert (
        req.DesiredModelVariants[0].InfrastructureConfig.RealTimeInferenceConfig.InstanceCount == 3
    )


def test_an_unknown_operation_is_an_unknown_operation_exception() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request("StopTrainingJob", {})
    assert info.value.code == "UnknownOperationException"


@pytest.mark.parametrize("payload", [[], "x", 1, None, True])
def test_a_body_that_is_not_an_object_is_a_serialization_error_as_over_http(
    payload: object,
) -> None:
    # SPEC §5: a body that is not a JSON object is a SerializationException, on every path
    with pytest.raises(SerializationError) as info:
        parse_request("DescribeInferenceExperiment", payload)
    assert "the request body must be a json object" in info.value.message.lower()
    assert (info.value.code, info.value.rule) == ("SerializationException", "body-object")


# -- required members --------------------------------------------------------------------

REQUIRED = [
    (op, name)
    for op in OPERATIONS
    for name, f in REQUEST_MODELS[op].model_fields.items()
    if f.is_required()
]


@pytest.mark.parametrize(("operation", "member"), REQUIRED)
def test_a_missing_required_member_is_not_null_at_its_camel_case_path(
    operation: str, member: str
) -> None:
    payload = {k: v for k, v in MINIMAL[operation].items() if k != member}
    where = member[0].lower() + member[1:]
    assert refused(operation, payload).errors == [
        (where, f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
    ]


def test_a_missing_nested_required_member_is_reported_at_its_full_path() -> None:
    bad = variant()
    del bad["ModelName"]
    assert paths(stop_errors(DesiredModelVariants=[bad])) == [
        "desiredModelVariants.1.member.modelName"
    ]


@pytest.mark.parametrize("member", ["VariantName", "InfrastructureConfig"])
def test_a_desired_variant_missing_a_required_member_fails(member: str) -> None:
    bad = {k: v for k, v in variant().items() if k != member}
    where = f"desiredModelVariants.1.member.{member[0].lower()}{member[1:]}"
    assert paths(stop_errors(DesiredModelVariants=[bad])) == [where]


# -- Stop: Name ---------------------------------------------------------------------------


def test_a_name_of_120_characters_passes() -> None:
    parses("StopInferenceExperiment", stop(Name="a" * 120))


def test_a_name_of_121_characters_fails_on_length() -> None:
    errors = stop_errors(Name="a" * 121)
    assert (
        "name",
        f"Value '{'a' * 100}...' at 'name' failed to satisfy constraint: Member must have length less than or equal to 120",
    ) in errors


def test_an_empty_name_fails_on_length_and_pattern() -> None:
    assert [msg.split(": ", 1)[1] for _, msg in stop_errors(Name="")] == [
        "Member must have length greater than or equal to 1",
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}",
    ]


@pytest.mark.parametrize("name", ["exp\n", "exp!", "-exp", "exp-", "ex p", "exp\u0661"])
def test_a_name_that_is_not_a_full_match_of_the_pattern_fails(name: str) -> None:
    assert paths(stop_errors(Name=name)) == ["name"]


@pytest.mark.parametrize("name", ["a", "exp--1", "A-b-C-9"])
def test_a_name_with_inner_hyphens_passes(name: str) -> None:
    parses("StopInferenceExperiment", stop(Name=name))


# -- Stop: Reason, DesiredState -----------------------------------------------------------------


def test_a_reason_with_newlines_and_any_characters_passes() -> None:
    parses("StopInferenceExperiment", stop(Reason="line one\nline two\r\n\t\u2028 ünïcödé 🙂"))


def test_a_reason_of_1024_characters_passes() -> None:
    parses("StopInferenceExperiment", stop(Reason="r" * 1024))


def test_a_reason_of_1025_characters_fails() -> None:
    assert [m.split(": ", 1)[1] for m in (msg for _, msg in stop_errors(Reason="r" * 1025))] == [
        "Member must have length less than or equal to 1024"
    ]


@pytest.mark.parametrize("state", ["Completed", "Cancelled"])
def test_each_desired_state_passes(state: str) -> None:
    parses("StopInferenceExperiment", stop(DesiredState=state))


@pytest.mark.parametrize("state", ["Stopped", "completed", ""])
def test_another_desired_state_fails_with_the_enum_value_set(state: str) -> None:
    assert stop_errors(DesiredState=state) == [
        (
            "desiredState",
            f"Value '{state}' at 'desiredState' failed to satisfy constraint: Member must satisfy enum value set: [Completed, Cancelled]",
        )
    ]


# -- Stop: ModelVariantActions -----------------------------------------------------------------


def test_two_variant_actions_pass() -> None:
    parses(
        "StopInferenceExperiment", stop(ModelVariantActions={"prod": "Retain", "shadow": "Promote"})
    )


def test_no_variant_actions_fail() -> None:
    assert stop_errors(ModelVariantActions={}) == [
        (
            "modelVariantActions",
            "Value '{}' at 'modelVariantActions' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )
    ]


def test_three_variant_actions_fail() -> None:
    errors = stop_errors(ModelVariantActions={"a": "Retain", "b": "Retain", "c": "Retain"})
    assert [msg.split(": ", 1)[1] for _, msg in errors] == [
        "Member must have length less than or equal to 2"
    ]


def test_a_variant_action_key_of_63_characters_passes() -> None:
    parses("StopInferenceExperiment", stop(ModelVariantActions={"v" * 63: "Retain"}))


def test_a_variant_action_key_of_64_characters_fails_at_its_key() -> None:
    key = "v" * 64
    assert stop_errors(ModelVariantActions={key: "Retain"}) == [
        (
            f"modelVariantActions.'{key}'.key",
            f"Value '{key}' at 'modelVariantActions.'{key}'.key' failed to satisfy constraint: Member must have length less than or equal to 63",
        )
    ]


@pytest.mark.parametrize("key", ["bad_key", "-a", "a-", "a\n", ""])
def test_a_variant_action_key_off_the_pattern_fails(key: str) -> None:
    errors = stop_errors(ModelVariantActions={key: "Retain"})
    assert errors[-1] == (
        f"modelVariantActions.'{key}'.key",
        f"Value '{key}' at 'modelVariantActions.'{key}'.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?",
    )


@pytest.mark.parametrize("action", ["Keep", "promote", ""])
def test_a_variant_action_other_than_promote_remove_retain_fails_at_its_value(action: str) -> None:
    assert stop_errors(ModelVariantActions={"shadow": action}) == [
        (
            "modelVariantActions.'shadow'.value",
            f"Value '{action}' at 'modelVariantActions.'shadow'.value' failed to satisfy constraint: Member must satisfy enum value set: [Retain, Remove, Promote]",
        )
    ]


def test_a_null_variant_action_is_not_null_at_its_value() -> None:
    assert stop_errors(ModelVariantActions={"shadow": None}) == [
        (
            "modelVariantActions.'shadow'.value",
            "Value null at 'modelVariantActions.'shadow'.value' failed to satisfy constraint: Member must not be null",
        )
    ]


def test_every_broken_constraint_of_a_map_is_reported() -> None:
    errors = stop_errors(ModelVariantActions={"bad!": "Keep", "ok": "Retain", "third": "Remove"})
    assert paths(errors) == [
        "modelVariantActions",
        "modelVariantActions.'bad!'.key",
        "modelVariantActions.'bad!'.value",
    ]


# -- Stop: DesiredModelVariants -------------------------------------------------------------------


def test_no_desired_variants_fail() -> None:
    assert stop_errors(DesiredModelVariants=[]) == [
        (
            "desiredModelVariants",
            "Value '[]' at 'desiredModelVariants' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )
    ]


def test_two_desired_variants_pass() -> None:
    parses(
        "StopInferenceExperiment", stop(DesiredModelVariants=[variant("prod"), variant("shadow")])
    )


def test_three_desired_variants_fail() -> None:
    errors = stop_errors(DesiredModelVariants=[variant("a"), variant("b"), variant("c")])
    assert [msg.split(": ", 1)[1] for _, msg in errors] == [
        "Member must have length less than or equal to 2"
    ]


def test_a_list_over_its_maximum_also_reports_its_broken_items() -> None:
    errors = stop_errors(DesiredModelVariants=[variant("a", count=-1), variant("b"), variant("c")])
    assert paths(errors) == [
        "desiredModelVariants",
        "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceCount",
    ]


@pytest.mark.parametrize("kind", ["Serverless", "realtimeinference", ""])
def test_an_infrastructure_type_other_than_real_time_inference_fails(kind: str) -> None:
    bad = variant()
    bad["InfrastructureConfig"]["InfrastructureType"] = kind
    assert stop_errors(DesiredModelVariants=[bad]) == [
        (
            "desiredModelVariants.1.member.infrastructureConfig.infrastructureType",
            f"Value '{kind}' at 'desiredModelVariants.1.member.infrastructureConfig.infrastructureType' failed to satisfy constraint: Member must satisfy enum value set: [RealTimeInference]",
        )
    ]


def test_an_instance_count_of_zero_passes() -> None:
    parses("StopInferenceExperiment", stop(DesiredModelVariants=[variant(count=0)]))


def test_an_instance_count_of_minus_one_fails() -> None:
    where = (
        "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceCount"
    )
    assert stop_errors(DesiredModelVariants=[variant(count=-1)]) == [
        (
            where,
            f"Value '-1' at '{where}' failed to satisfy constraint: Member must have value greater than or equal to 0",
        )
    ]


def test_an_instance_count_beyond_32_bits_fails() -> None:
    assert len(stop_errors(DesiredModelVariants=[variant(count=2**31)])) == 1


@pytest.mark.parametrize(
    "instance",
    [
        "ml.p6-b200.48xlarge",
        "ml.m5.large",
        "ml.p6e-gb200.36xlarge",
        "ml.x99.metal",
        "ml.trn2.48xlarge",
    ],
)
def test_an_instance_type_of_the_form_ml_family_size_passes(instance: str) -> None:
    parses("StopInferenceExperiment", stop(DesiredModelVariants=[variant(instance=instance)]))


@pytest.mark.parametrize(
    "instance",
    [
        "ml.m5.large\n",
        "m5.large",
        "ml.m5",
        "ML.m5.large",
        "ml.m5.large.x",
        "ml.p6-.48xlarge",
        "ml.-p6.large",
        " ml.m5.large",
        "ml..large",
        "",
    ],
)
def test_an_instance_type_not_of_the_form_fails(instance: str) -> None:
    where = (
        "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceType"
    )
    assert stop_errors(DesiredModelVariants=[variant(instance=instance)]) == [
        (
            where,
            f"Value '{instance}' at '{where}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^{INSTANCE_TYPE_FORM}",
        )
    ]


def test_every_instance_type_in_the_service_model_has_the_form(
    service_model: dict[str, Any],
) -> None:
    types = service_model["shapes"]["ProductionVariantInstanceType"]["enum"]
    assert "ml.p6-b200.48xlarge" in types
    for instance in types:
        parses("StopInferenceExperiment", stop(DesiredModelVariants=[variant(instance=instance)]))


# -- wrong JSON types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "where", "kind"),
    [
        ({"Name": 5}, "name", "string"),
        ({"Name": True}, "name", "string"),
        ({"Name": ["exp"]}, "name", "string"),
        ({"Name": {"S": "exp"}}, "name", "string"),
        ({"DesiredState": 1}, "desiredState", "string"),
        ({"Reason": 1.5}, "reason", "string"),
        ({"ModelVariantActions": [["shadow", "Remove"]]}, "modelVariantActions", "map"),
        ({"ModelVariantActions": "shadow=Remove"}, "modelVariantActions", "map"),
        ({"ModelVariantActions": {"shadow": 1}}, "modelVariantActions.'shadow'.value", "string"),
        ({"DesiredModelVariants": {"ModelName": "m"}}, "desiredModelVariants", "list"),
        ({"DesiredModelVariants": ["shadow"]}, "desiredModelVariants.1.member", "structure"),
        (
            {"DesiredModelVariants": [variant(count="1")]},
            "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceCount",
            "integer",
        ),
        (
            {"DesiredModelVariants": [variant(count=True)]},
            "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceCount",
            "integer",
        ),
        (
            {"DesiredModelVariants": [variant(count=1.0)]},
            "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceCount",
            "integer",
        ),
        (
            {"DesiredModelVariants": [variant(instance=5)]},
            "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceType",
            "string",
        ),
    ],
)
def test_a_member_of_the_wrong_json_type_fails_naming_the_type(
    members: dict[str, Any], where: str, kind: str
) -> None:
    errors = stop_errors(**members)
    assert paths(errors) == [where]
    assert errors[0][1].endswith(f"failed to satisfy constraint: Member must be of type {kind}")


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00Z", True, [1], {"t": 1}])
def test_a_timestamp_that_is_not_a_number_fails(value: object) -> None:
    errors = create_errors(Schedule={"StartTime": value})
    assert errors[0][1].endswith("Member must be of type timestamp")
    assert paths(errors) == ["schedule.startTime"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_a_timestamp_that_is_not_a_finite_epoch_fails(value: object) -> None:
    assert paths(create_errors(Schedule={"EndTime": value})) == ["schedule.endTime"]


def test_a_sampling_percentage_that_is_a_float_fails() -> None:
    shadow = {
        **SHADOW,
        "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50.5}],
    }
    assert paths(create_errors(ShadowModeConfig=shadow)) == [
        "shadowModeConfig.shadowModelVariants.1.member.samplingPercentage"
    ]


def test_a_structure_given_a_string_fails() -> None:
    assert create_errors(Schedule="tomorrow")[0][1].endswith("Member must be of type structure")


# -- null counts as absent ---------------------------------------------------------------------------


def test_an_optional_member_sent_as_null_is_absent() -> None:
    req = parse_request(
        "StopInferenceExperiment", stop(DesiredState=None, Reason=None, DesiredModelVariants=None)
    )
    assert req.model_fields_set == {"Name", "ModelVariantActions"}


def test_a_nested_member_sent_as_null_is_absent() -> None:
    req: Any = parse_request(
        "CreateInferenceExperiment", create(Schedule={"StartTime": None, "EndTime": 1_800_000_000})
    )
    assert req.Schedule.model_fields_set == {"EndTime"}


def test_a_required_member_sent_as_null_is_missing() -> None:
    assert stop_errors(Name=None) == [
        ("name", "Value null at 'name' failed to satisfy constraint: Member must not be null")
    ]


def test_a_nested_required_member_sent_as_null_is_missing() -> None:
    bad = variant()
    bad["InfrastructureConfig"]["RealTimeInferenceConfig"]["InstanceType"] = None
    assert paths(stop_errors(DesiredModelVariants=[bad])) == [
        "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.instanceType"
    ]


def test_a_null_list_item_is_not_null_at_its_index() -> None:
    assert stop_errors(DesiredModelVariants=[variant(), None]) == [
        (
            "desiredModelVariants.2.member",
            "Value null at 'desiredModelVariants.2.member' failed to satisfy constraint: Member must not be null",
        )
    ]


# -- unknown members ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unknown_top_level_member_is_rejected(operation: str) -> None:
    err = refused(operation, {**MINIMAL[operation], "Bogus": 1})
    assert err.errors == [
        (
            "Bogus",
            f"Value at 'Bogus' is not a member of {operation}Request (members: {', '.join(REQUEST_MODELS[operation].model_fields)})",
        )
    ]


def test_a_member_name_in_the_wrong_case_is_unknown() -> None:
    assert paths(refused("DescribeInferenceExperiment", {"Name": "exp", "name": "exp"}).errors) == [
        "name"
    ]


def test_an_unknown_member_is_rejected_even_when_null() -> None:
    assert paths(stop_errors(Bogus=None)) == ["Bogus"]


def test_an_unknown_nested_member_is_rejected_naming_its_structure() -> None:
    bad = variant()
    bad["InfrastructureConfig"]["RealTimeInferenceConfig"]["InstanceSize"] = "large"
    where = (
        "desiredModelVariants.1.member.infrastructureConfig.realTimeInferenceConfig.InstanceSize"
    )
    assert stop_errors(DesiredModelVariants=[bad]) == [
        (
            where,
            f"Value at '{where}' is not a member of RealTimeInferenceConfig (members: InstanceType, InstanceCount)",
        )
    ]


# -- message format -----------------------------------------------------------------------------------


def test_one_error_reads_as_aws_writes_it() -> None:
    err = refused("StopInferenceExperiment", stop(Name="abc!"))
    assert (
        err.message
        == "1 validation error detected: Value 'abc!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"
    )
    assert err.code == "ValidationException"
    assert err.field == "name"
    assert err.rule == "pattern"


def test_several_errors_are_counted_and_joined_by_semicolons() -> None:
    err = refused(
        "StopInferenceExperiment",
        {"Name": "abc!", "ModelVariantActions": {}, "DesiredState": "Done"},
    )
    assert err.message == (
        "3 validation errors detected: "
        "Value 'abc!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}; "
        "Value '{}' at 'modelVariantActions' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value 'Done' at 'desiredState' failed to satisfy constraint: Member must satisfy enum value set: [Completed, Cancelled]"
    )
    assert paths(err.errors) == ["name", "modelVariantActions", "desiredState"]
    assert err.field == "name"


def test_each_error_pair_holds_its_own_entry() -> None:
    err = refused("StopInferenceExperiment", {"Name": "abc!", "ModelVariantActions": {}})
    assert err.message == f"2 validation errors detected: {err.errors[0][1]}; {err.errors[1][1]}"


def test_a_long_value_is_cut_to_100_characters_in_the_message() -> None:
    err = refused("StopInferenceExperiment", stop(Reason="x" * 5000))
    assert f"Value '{'x' * 100}...' at 'reason'" in err.message
    assert len(err.message) < 300


def test_a_flood_of_errors_is_counted_but_listed_only_in_part() -> None:
    err = refused(
        "DescribeInferenceExperiment", {"Name": "exp", **{f"Bogus{i}": i for i in range(500)}}
    )
    assert err.message.startswith("500 validation errors detected: ")
    assert err.message.count("is not a member") == shapes.MAX_MESSAGE_ENTRIES
    assert len(err.errors) == 500


# -- timestamps ---------------------------------------------------------------------------------------


def test_an_aware_datetime_is_accepted_as_epoch_seconds() -> None:
    start = datetime(2027, 1, 15, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    req: Any = parse_request("CreateInferenceExperiment", create(Schedule={"StartTime": start}))
    assert req.Schedule.StartTime == start.timestamp()
    assert type(req.Schedule.StartTime) is float


def test_a_naive_datetime_is_read_as_utc() -> None:
    req: Any = parse_request(
        "ListInferenceExperiments", {"CreationTimeAfter": datetime(2027, 1, 15, 6, 0)}
    )
    assert req.CreationTimeAfter == datetime(2027, 1, 15, 6, 0, tzinfo=UTC).timestamp()


def test_an_integer_timestamp_is_stored_as_a_float() -> None:
    req: Any = parse_request("ListInferenceExperiments", {"CreationTimeBefore": 1_800_000_000})
    assert req.CreationTimeBefore == 1_800_000_000.0
    assert type(req.CreationTimeBefore) is float


# -- Tags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["team", "環境", "clé de voûte", "a b", "_.:/=+-@", "١٢٣", "Ωmega\u00a0nbsp", "x" * 128],
)
def test_a_tag_of_letters_numbers_spaces_and_allowed_signs_passes(text: str) -> None:
    parses("CreateInferenceExperiment", create(Tags=[{"Key": text, "Value": text}]))


@pytest.mark.parametrize(
    "text", ["tab\there", "line\nbreak", "emoji🙂", "semi;colon", "a\u2028b", "a*b", "#"]
)
def test_a_tag_key_with_another_character_fails_on_its_pattern(text: str) -> None:
    errors = create_errors(Tags=[{"Key": text, "Value": "v"}])
    assert errors == [
        (
            "tags.1.member.key",
            f"Value '{text}' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)",
        )
    ]


def test_a_tag_value_with_another_character_fails_on_its_pattern() -> None:
    assert paths(create_errors(Tags=[{"Key": "k", "Value": "v!"}])) == ["tags.1.member.value"]


def test_an_empty_tag_key_fails_and_an_empty_tag_value_passes() -> None:
    assert paths(create_errors(Tags=[{"Key": "", "Value": ""}])) == ["tags.1.member.key"]


def test_tag_key_and_value_lengths_are_128_and_256() -> None:
    parses("CreateInferenceExperiment", create(Tags=[{"Key": "k" * 128, "Value": "v" * 256}]))
    assert paths(create_errors(Tags=[{"Key": "k" * 129, "Value": "v" * 257}])) == [
        "tags.1.member.key",
        "tags.1.member.value",
    ]


def test_fifty_tags_pass_and_fifty_one_fail() -> None:
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    parses("CreateInferenceExperiment", create(Tags=tags[:50]))
    assert paths(create_errors(Tags=tags)) == ["tags"]


# -- Create, List and the rest of the shapes ----------------------------------------------------------


def test_a_type_other_than_shadow_mode_fails() -> None:
    assert create_errors(Type="ABTest")[0][1].endswith(
        "Member must satisfy enum value set: [ShadowMode]"
    )


@pytest.mark.parametrize(("percentage", "ok"), [(0, True), (100, True), (101, False), (-1, False)])
def test_sampling_percentage_is_0_to_100(percentage: int, ok: bool) -> None:
    payload = create(
        ShadowModeConfig={
            **SHADOW,
            "ShadowModelVariants": [
                {"ShadowModelVariantName": "shadow", "SamplingPercentage": percentage}
            ],
        }
    )
    if ok:
        parses("CreateInferenceExperiment", payload)
    else:
        assert paths(refused("CreateInferenceExperiment", payload).errors) == [
            "shadowModeConfig.shadowModelVariants.1.member.samplingPercentage"
        ]


def test_two_shadow_variants_fail() -> None:
    two = [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 1}] * 2
    assert paths(create_errors(ShadowModeConfig={**SHADOW, "ShadowModelVariants": two})) == [
        "shadowModeConfig.shadowModelVariants"
    ]


def test_three_model_variants_fail() -> None:
    assert paths(create_errors(ModelVariants=[variant("a"), variant("b"), variant("c")])) == [
        "modelVariants"
    ]


@pytest.mark.parametrize(
    ("role", "ok"),
    [
        (ROLE, True),
        ("arn:aws-us-gov:iam::123456789012:role/path/to/Role_1+=,.@-", True),
        ("arn:aws:iam::12345678901:role/r", False),
        ("arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/r", False),
        (ROLE + "\n", False),
        ("arn:aws:iam::123456789012:user/u", False),
    ],
)
def test_role_arn_is_a_full_match_with_ascii_digits(role: str, ok: bool) -> None:
    if ok:
        parses("CreateInferenceExperiment", create(RoleArn=role))
    else:
        assert "roleArn" in paths(create_errors(RoleArn=role))


def test_a_role_arn_under_20_characters_fails_on_length() -> None:
    assert create_errors(RoleArn="arn:aws:iam::1:role")[0][1].endswith(
        "Member must have length greater than or equal to 20"
    )


@pytest.mark.parametrize(
    ("destination", "ok"),
    [
        ("s3://bucket/prefix", True),
        ("https://host/x", True),
        ("s3://b", True),
        ("s3://", False),
        ("s3:///x", False),
        ("ftp://b/x", False),
        ("s3://b/x\n", False),
        ("s3://b/x\u2028y", False),
    ],
)
def test_a_destination_is_an_s3_or_https_uri_on_one_line(destination: str, ok: bool) -> None:
    payload = create(DataStorageConfig={"Destination": destination})
    if ok:
        parses("CreateInferenceExperiment", payload)
    else:
        assert paths(refused("CreateInferenceExperiment", payload).errors) == [
            "dataStorageConfig.destination"
        ]


@pytest.mark.parametrize(
    ("key", "ok"), [("alias/my-key", True), ("", True), ("key id", False), ("key\n", False)]
)
def test_a_kms_key_is_a_full_match_of_its_pattern(key: str, ok: bool) -> None:
    if ok:
        parses("CreateInferenceExperiment", create(KmsKey=key))
    else:
        assert paths(create_errors(KmsKey=key)) == ["kmsKey"]


def test_an_endpoint_name_of_63_characters_passes_and_64_fails() -> None:
    parses("CreateInferenceExperiment", create(EndpointName="e" * 63))
    assert "endpointName" in paths(create_errors(EndpointName="e" * 64))


@pytest.mark.parametrize(
    ("types", "ok"),
    [
        (["text/csv"], True),
        (["text/csv"] * 10, True),
        (["text/csv"] * 11, False),
        ([], False),
        (["text"], False),
        (["text/csv; charset=utf-8"], False),
    ],
)
def test_capture_content_types_are_1_to_10_media_types(types: list[str], ok: bool) -> None:
    payload = create(
        DataStorageConfig={"Destination": "s3://b/p", "ContentType": {"CsvContentTypes": types}}
    )
    if ok:
        parses("CreateInferenceExperiment", payload)
    else:
        assert refused("CreateInferenceExperiment", payload).field is not None


@pytest.mark.parametrize(("results", "ok"), [(0, False), (1, True), (100, True), (101, False)])
def test_max_results_is_1_to_100(results: int, ok: bool) -> None:
    if ok:
        parses("ListInferenceExperiments", {"MaxResults": results})
    else:
        assert paths(refused("ListInferenceExperiments", {"MaxResults": results}).errors) == [
            "maxResults"
        ]


@pytest.mark.parametrize(
    ("members", "where"),
    [
        ({"SortBy": "Arn"}, "sortBy"),
        ({"SortOrder": "Up"}, "sortOrder"),
        ({"StatusEquals": "Done"}, "statusEquals"),
        ({"NameContains": "a b"}, "nameContains"),
        ({"NameContains": ""}, "nameContains"),
    ],
)
def test_a_list_filter_or_sort_off_its_shape_fails(members: dict[str, Any], where: str) -> None:
    assert paths(refused("ListInferenceExperiments", members).errors) == [where]


def test_a_python_str_enum_is_accepted_as_its_value() -> None:
    class Action(enum.StrEnum):
        REMOVE = "Remove"

    req: Any = parse_request(
        "StopInferenceExperiment", stop(ModelVariantActions={"shadow": Action.REMOVE})
    )
    assert type(req.ModelVariantActions["shadow"]) is str


# -- no other error escapes ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _mutations(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    base = FULL[operation]
    names = sorted({*REQUEST_MODELS[operation].model_fields, "Bogus"})
    return st.builds(lambda name, value: {**base, name: value}, st.sampled_from(names), JSON)


@settings(max_examples=300, deadline=None)
@given(operation=st.sampled_from(OPERATIONS), data=st.data())
def test_any_json_body_parses_or_is_a_validation_error(operation: str, data: st.DataObject) -> None:
    payload = data.draw(st.one_of(JSON, _mutations(operation)))
    error: ValidationError | None = None
    try:
        parse_request(operation, payload)
    except ValidationError as err:
        error = err
    except SerializationError:
        assert not isinstance(payload, dict)  # not an object: SerializationException, as over HTTP
    if error is not None:
        count = len(error.errors)
        assert error.message.startswith(
            f"{count} validation error{'s' if count != 1 else ''} detected: "
        )
        assert "Input should be" not in error.message  # no pydantic wording


# -- responses -----------------------------------------------------------------------------------------

DESCRIBE = {
    "Arn": ARN,
    "Name": "exp",
    "Type": "ShadowMode",
    "Schedule": {"StartTime": 1.0, "EndTime": 2.0},
    "Status": "Running",
    "CreationTime": 1.0,
    "LastModifiedTime": 1.5,
    "RoleArn": ROLE,
    "EndpointMetadata": {"EndpointName": "endpoint", "EndpointStatus": "InService"},
    "ModelVariants": [
        {**variant("prod"), "Status": "InService"},
        {**variant("shadow"), "Status": "Deleted"},
    ],
    "ShadowModeConfig": SHADOW,
}


def test_a_describe_response_validates_against_its_model() -> None:
    model = RESPONSE_MODELS["DescribeInferenceExperiment"].model_validate(DESCRIBE)
    assert model.model_dump(exclude_none=True) == DESCRIBE


def test_a_list_response_validates_against_its_model() -> None:
    summary = {
        k: DESCRIBE[k]
        for k in (
            "Name",
            "Type",
            "Schedule",
            "Status",
            "CreationTime",
            "LastModifiedTime",
            "RoleArn",
        )
    }
    RESPONSE_MODELS["ListInferenceExperiments"].model_validate(
        {"InferenceExperiments": [summary], "NextToken": "t"}
    )


@pytest.mark.parametrize(
    "operation",
    [
        op
        for op in OPERATIONS
        if op not in ("DescribeInferenceExperiment", "ListInferenceExperiments")
    ],
)
def test_an_arn_response_validates_against_its_model(operation: str) -> None:
    RESPONSE_MODELS[operation].model_validate({"InferenceExperimentArn": ARN})


def test_a_describe_response_missing_endpoint_metadata_is_refused() -> None:
    with pytest.raises(Exception, match="EndpointMetadata"):
        RESPONSE_MODELS["DescribeInferenceExperiment"].model_validate(
            {k: v for k, v in DESCRIBE.items() if k != "EndpointMetadata"}
        )


def test_a_summary_with_an_arn_is_refused() -> None:
    summary = {
        k: DESCRIBE[k]
        for k in ("Arn", "Name", "Type", "Status", "CreationTime", "LastModifiedTime")
    }
    with pytest.raises(Exception, match="Arn"):
        RESPONSE_MODELS["ListInferenceExperiments"].model_validate(
            {"InferenceExperiments": [summary]}
        )


# -- drift from botocore's service model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_model() -> dict[str, Any]:
    loaders = pytest.importorskip("botocore.loaders")
    model: dict[str, Any] = loaders.Loader().load_service_model("sagemaker", "service-2")
    return model


def _structures(model: dict[str, Any], io: str) -> dict[str, dict[str, Any]]:
    """Every structure shape the seven operations' inputs (or outputs) use, by name."""
    shapes_ = model["shapes"]
    found: dict[str, dict[str, Any]] = {}

    def walk(name: str) -> None:
        shape = shapes_[name]
        if shape["type"] == "structure" and name not in found:
            found[name] = shape
            for member in shape["members"].values():
                walk(member["shape"])
        elif shape["type"] == "list":
            walk(shape["member"]["shape"])
        elif shape["type"] == "map":
            walk(shape["key"]["shape"])
            walk(shape["value"]["shape"])

    for op in OPERATIONS:
        walk(model["operations"][op][io]["shape"])
    return found


@pytest.mark.parametrize("io", ["input", "output"])
def test_every_structure_of_the_service_model_has_a_model_with_the_same_members(
    service_model: dict[str, Any], io: str
) -> None:
    for name, shape in _structures(service_model, io).items():
        cls = getattr(shapes, name)
        assert set(cls.model_fields) == set(shape["members"]), name
        required = {m for m, f in cls.model_fields.items() if f.is_required()}
        assert required == set(shape.get("required", ())), name


def test_every_request_and_response_model_is_the_operations_shape(
    service_model: dict[str, Any],
) -> None:
    for op in OPERATIONS:
        assert REQUEST_MODELS[op].__name__ == service_model["operations"][op]["input"]["shape"]
        assert RESPONSE_MODELS[op].__name__ == service_model["operations"][op]["output"]["shape"]


#: where we differ from the service model on purpose (SPEC.md)
DELIBERATE = {
    "ProductionVariantInstanceType": "checked by form, not against the enum",
    "Percentage": "SamplingPercentage is 0 to 100; the model gives only the maximum",
}


def test_every_constraint_is_the_service_models(service_model: dict[str, Any]) -> None:
    shapes_ = service_model["shapes"]
    used = {
        m["shape"]
        for s in {
            **_structures(service_model, "input"),
            **_structures(service_model, "output"),
        }.values()
        for m in s["members"].values()
    }
    used |= {
        shapes_[n][part]["shape"]
        for n in list(used)
        for part in ("member", "key", "value")
        if part in shapes_[n]
    }
    constrained = {n for n in used if shapes_[n]["type"] in ("string", "integer", "list", "map")}
    assert constrained == set(shapes.CONSTRAINTS)
    for name, spec in shapes.CONSTRAINTS.items():
        if name in DELIBERATE:
            continue
        shape = shapes_[name]
        if isinstance(spec, Enum):
            assert spec.values == tuple(shape["enum"]), name
        elif isinstance(spec, Str):
            assert (spec.min, spec.max, spec.pattern) == (
                shape.get("min"),
                shape.get("max"),
                shape.get("pattern"),
            ), name
        elif isinstance(spec, Int | Size):
            assert (spec.min, spec.max) == (shape.get("min"), shape.get("max")), name


def test_the_deliberate_differences_are_still_differences(service_model: dict[str, Any]) -> None:
    shapes_ = service_model["shapes"]
    assert "enum" in shapes_["ProductionVariantInstanceType"]
    assert "min" not in shapes_["Percentage"]
    assert shapes_["Percentage"]["max"] == shapes.CONSTRAINTS["Percentage"].max  # type: ignore[union-attr]


def test_the_model_patterns_python_cannot_compile_are_the_tag_patterns(
    service_model: dict[str, Any],
) -> None:
    import re

    failing = set()
    for name in shapes.CONSTRAINTS:
        pattern = service_model["shapes"][name].get("pattern")
        try:
            re.compile(pattern or "")
        except re.error:
            failing.add(name)
    assert failing == {"TagKey", "TagValue"}


def test_the_typical_stop_request_round_trips_through_json() -> None:
    payload = json.loads(json.dumps(FULL["StopInferenceExperiment"]))
    assert (
        parse_request("StopInferenceExperiment", payload).model_dump(exclude_none=True) == payload
    )


def test_a_map_given_as_a_dict_subclass_comes_back_as_plain_strings() -> None:
    class Action(enum.StrEnum):
        RETAIN = "Retain"

    req: Any = parse_request(
        "StopInferenceExperiment", stop(ModelVariantActions=OrderedDict(shadow=Action.RETAIN))
    )
    assert req.ModelVariantActions == {"shadow": "Retain"}
    assert type(req.ModelVariantActions["shadow"]) is str
