"""AWS JSON 1.1 between bytes and the service (SPEC §5), through ``protocol.handle``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from lifecycle.errors import (
    ConflictError,
    NotFoundError,
    ResourceInUseError,
    ResourceLimitExceededError,
    StoreError,
    ValidationError,
)
from lifecycle.http import protocol
from lifecycle.http.protocol import MAX_BODY_BYTES, MAX_DEPTH, WireResponse, handle

JSON11 = "application/x-amz-json-1.1"


class EchoService:
    """Answers every operation with the payload it got; raises what it is told to."""

    OPERATIONS = ("DescribeInferenceExperiment", "StopInferenceExperiment")

    def __init__(self, raises: BaseException | None = None, result: Any = None) -> None:
        self.raises = raises
        self.result = result
        self.calls: list[tuple[str, Any]] = []

    def invoke(
        self, operation: str, payload: Any, /, *, request_id: str | None = None
    ) -> Mapping[str, Any]:
        assert request_id
        self.calls.append((operation, payload))
        if self.raises is not None:
            raise self.raises
        return self.result if self.result is not None else {"Echo": payload}


def call(
    service: Any,
    body: bytes | str = b'{"Name": "exp-1"}',
    *,
    target: str | None = "SageMaker.DescribeInferenceExperiment",
    content_type: str | None = JSON11,
    method: str = "POST",
    path: str = "/",
    request_id: str | None = None,
) -> WireResponse:
    headers: dict[str, str] = {}
    if target is not None:
        headers["x-amz-target"] = target
    if content_type is not None:
        headers["content-type"] = content_type
    raw = body.encode() if isinstance(body, str) else body
    return handle(
        service, method=method, path=path, headers=headers, body=raw, request_id=request_id
    )


def header(response: WireResponse, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name.lower():
            return value
    return None


def envelope(response: WireResponse) -> tuple[int, str, str]:
    """(status, __type, Message) of an error response, checking the header agrees."""
    body = json.loads(response.body)
    assert set(body) == {"__type", "Message"}
    assert header(response, "X-Amzn-ErrorType") == body["__type"]
    assert body["Message"]
    return response.status, body["__type"], body["Message"]


# -- success ---------------------------------------------------------------------------


def test_success_is_200_with_the_json_body_and_a_request_id() -> None:
    service = EchoService()
    response = call(service)
    assert response.status == 200
    assert json.loads(response.body) == {"Echo": {"Name": "exp-1"}}
    assert header(response, "Content-Type") == JSON11
    assert header(response, "Content-Length") == str(len(response.body))
    assert header(response, "x-amzn-RequestId")
    assert header(response, "X-Amzn-ErrorType") is None
    assert service.calls == [("DescribeInferenceExperiment", {"Name": "exp-1"})]


def test_a_given_request_id_is_the_one_returned() -> None:
    response = call(EchoService(), request_id="req-123")
    assert header(response, "x-amzn-RequestId") == "req-123"


def test_request_ids_differ_between_requests() -> None:
    ids = {header(call(EchoService()), "x-amzn-RequestId") for _ in range(5)}
    assert len(ids) == 5


def test_the_response_says_operation_name_and_outcome_for_the_log() -> None:
    response = call(EchoService())
    assert (response.operation, response.name, response.outcome) == (
        "DescribeInferenceExperiment",
        "exp-1",
        "OK",
    )


def test_application_json_and_a_charset_parameter_are_accepted() -> None:
    assert call(EchoService(), content_type="application/json").status == 200
    assert (
        call(EchoService(), content_type="application/x-amz-json-1.1; charset=UTF-8").status == 200
    )


def test_an_empty_body_reads_as_an_empty_object() -> None:
    service = EchoService()
    assert call(service, b"").status == 200
    assert call(service, b"  \n").status == 200
    assert service.calls == [("DescribeInferenceExperiment", {})] * 2


def test_timestamps_and_unicode_survive_the_round_trip() -> None:
    result = {"CreationTime": 1700000000.25, "Description": "ünïcode ✓ 🎉"}
    response = call(EchoService(result=result))
    assert json.loads(response.body) == result


def test_a_body_of_exactly_one_mebibyte_is_not_too_large() -> None:
    padding = MAX_BODY_BYTES - len(b'{"Name": ""}')
    body = b'{"Name": "' + b"a" * padding + b'"}'
    assert len(body) == MAX_BODY_BYTES
    assert call(EchoService(), body).status == 200


def test_a_valid_surrogate_pair_escape_is_accepted() -> None:
    service = EchoService()
    assert call(service, b'{"Name": "\\ud83d\\ude00"}').status == 200
    assert service.calls[0][1] == {"Name": "\U0001f600"}


def test_nesting_up_to_the_limit_reaches_the_service() -> None:
    depth = MAX_DEPTH - 1  # the top-level object is one level
    body = '{"Name": ' + "[" * depth + "]" * depth + "}"
    assert call(EchoService(), body).status == 200


# -- wire errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "SageMaker.",
        "SageMaker.NoSuchOperation",
        "sagemaker.DescribeInferenceExperiment",
        "DescribeInferenceExperiment",
        "Other.DescribeInferenceExperiment",
        "SageMaker.DescribeInferenceExperiment ",
        "SageMaker." + "X" * 10_000,
    ],
)
def test_an_unknown_or_missing_target_is_unknown_operation(target: str | None) -> None:
    service = EchoService()
    status, code, message = envelope(call(service, target=target))
    assert (status, code) == (400, "UnknownOperationException")
    assert "SageMaker." in message
    assert len(message) < 1000
    assert service.calls == []


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/xml", "application/x-amz-json-1.0", "multipart/form"],
)
def test_a_wrong_content_type_is_a_serialization_exception(content_type: str | None) -> None:
    service = EchoService()
    status, code, message = envelope(call(service, content_type=content_type))
    assert (status, code) == (400, "SerializationException")
    assert "Content-Type" in message
    assert service.calls == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", "not valid JSON"),
        (b"{'Name': 'x'}", "not valid JSON"),
        (b'{"Name": "x"} trailing', "not valid JSON"),
        (b"[]", "JSON object"),
        (b'[{"Name": "x"}]', "JSON object"),
        (b'"Name"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
        (b"true", "JSON object"),
        (b'{"Name": NaN}', "NaN"),
        (b'{"Name": Infinity}', "Infinity"),
        (b'{"Name": -Infinity}', "Infinity"),
        (b'{"Name": "\xff\xfe"}', "UTF-8"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b'{"Name": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_serialization_exception(
    body: bytes, words: str
) -> None:
    service = EchoService()
    status, code, message = envelope(call(service, body))
    assert (status, code) == (400, "SerializationException")
    assert words in message
    assert service.calls == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_deep_nesting_is_a_serialization_exception_not_a_crash(depth: int) -> None:
    service = EchoService()
    for body in (
        '{"Name": ' + "[" * depth + "]" * depth + "}",
        '{"a": ' * depth + "1" + "}" * depth,
        "[" * depth,
    ):
        status, code, _ = envelope(call(service, body))
        assert (status, code) == (400, "SerializationException")
    assert service.calls == []


def test_a_body_over_one_mebibyte_is_413_request_entity_too_large() -> None:
    service = EchoService()
    body = b'{"Name": "' + b"a" * MAX_BODY_BYTES + b'"}'
    status, code, message = envelope(call(service, body))
    assert (status, code) == (413, "RequestEntityTooLarge")
    assert str(MAX_BODY_BYTES) in message
    assert service.calls == []


def test_a_method_other_than_post_is_refused() -> None:
    status, code, _ = envelope(call(EchoService(), method="GET"))
    assert (status, code) == (405, "UnknownOperationException")


def test_a_path_other_than_root_is_refused() -> None:
    status, code, _ = envelope(call(EchoService(), path="/other"))
    assert (status, code) == (404, "UnknownOperationException")


def test_every_error_carries_a_request_id() -> None:
    response = call(EchoService(), b"[]", request_id="req-9")
    assert header(response, "x-amzn-RequestId") == "req-9"
    assert response.outcome == "SerializationException"


# -- service errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            ValidationError("1 validation error detected: Value 'x' at 'name'"),
            "ValidationException",
        ),
        (ConflictError("not Running"), "ConflictException"),
        (NotFoundError("no such experiment"), "ResourceNotFound"),
        (ResourceInUseError("name taken"), "ResourceInUse"),
        (ResourceLimitExceededError("too many"), "ResourceLimitExceeded"),
    ],
)
def test_a_service_error_becomes_the_400_envelope_with_its_code(
    error: Exception, code: str
) -> None:
    response = call(EchoService(raises=error))
    assert envelope(response) == (400, code, str(error))
    assert response.outcome == code
    assert response.name == "exp-1"


def test_a_bug_in_the_service_is_500_internal_failure_with_the_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="lifecycle.wire")
    response = call(EchoService(raises=KeyError("boom")), request_id="req-500")
    status, code, message = envelope(response)
    assert (status, code) == (500, "InternalFailure")
    assert "req-500" in message
    assert "boom" not in message  # internals stay in the log
    assert any(record.exc_info for record in caplog.records)
    assert "req-500" in caplog.text


def test_a_store_failure_is_500_internal_failure_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="lifecycle.wire")
    response = call(EchoService(raises=StoreError("database is locked")), request_id="req-db")
    status, code, message = envelope(response)
    assert (status, code) == (500, "InternalFailure")
    assert "database is locked" not in message
    assert "req-db" in message
    assert "database is locked" in caplog.text


def test_a_result_that_cannot_be_encoded_is_500_not_an_exception() -> None:
    status, code, _ = envelope(call(EchoService(result={"T": float("nan")})))
    assert (status, code) == (500, "InternalFailure")


def test_error_response_builds_the_envelope() -> None:
    response = protocol.error_response("ConflictException", "nope", request_id="r1")
    assert response.status == 400
    assert json.loads(response.body) == {"__type": "ConflictException", "Message": "nope"}
    assert header(response, "x-amzn-RequestId") == "r1"


# -- thousands of bad bodies against the real service ----------------------------------------

_MEMBERS = {
    "CreateInferenceExperiment": {
        "Name": "string", "Type": "string", "Schedule": "structure", "Description": "string",
        "RoleArn": "string", "EndpointName": "string", "ModelVariants": "list",
        "DataStorageConfig": "structure", "ShadowModeConfig": "structure", "KmsKey": "string",
        "Tags": "list",
    },
    "DescribeInferenceExperiment": {"Name": "string"},
    "ListInferenceExperiments": {
        "NameContains": "string", "Type": "string", "StatusEquals": "string",
        "CreationTimeAfter": "timestamp", "CreationTimeBefore": "timestamp",
        "LastModifiedTimeAfter": "timestamp", "LastModifiedTimeBefore": "timestamp",
        "SortBy": "string", "SortOrder": "string", "NextToken": "string", "MaxResults": "integer",
    },
    "StartInferenceExperiment": {"Name": "string"},
    "StopInferenceExperiment": {
        "Name": "string", "ModelVariantActions": "map", "DesiredModelVariants": "list",
        "DesiredState": "string", "Reason": "string",
    },
    "UpdateInferenceExperiment": {
        "Name": "string", "Schedule": "structure", "Description": "string",
        "ModelVariants": "list", "DataStorageConfig": "structure", "ShadowModeConfig": "structure",
    },
    "DeleteInferenceExperiment": {"Name": "string"},
}  # fmt: skip
_REQUIRED = {
    "CreateInferenceExperiment": (
        "Name", "Type", "RoleArn", "EndpointName", "ModelVariants", "ShadowModeConfig",
    ),
    "DescribeInferenceExperiment": ("Name",),
    "ListInferenceExperiments": (),
    "StartInferenceExperiment": ("Name",),
    "StopInferenceExperiment": ("Name", "ModelVariantActions"),
    "UpdateInferenceExperiment": ("Name",),
    "DeleteInferenceExperiment": ("Name",),
}  # fmt: skip


def _variant(name: str, model: str) -> dict[str, Any]:
    return {
        "ModelName": model,
        "VariantName": name,
        "InfrastructureConfig": {
            "InfrastructureType": "RealTimeInference",
            "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        },
    }


def _create(name: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
        "EndpointName": f"{name}-endpoint",
        "ModelVariants": [_variant("prod", "model-a"), _variant("shadow", "model-b")],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }
    request.update(extra)
    return request


#: a valid request per operation: each would change the store if sent as it is
_VALID = {
    "CreateInferenceExperiment": _create("fuzz-new"),
    "DescribeInferenceExperiment": {"Name": "fuzz-running"},
    "ListInferenceExperiments": {"MaxResults": 10, "SortBy": "Name"},
    "StartInferenceExperiment": {"Name": "fuzz-created"},
    "StopInferenceExperiment": {
        "Name": "fuzz-running",
        "ModelVariantActions": {"shadow": "Remove"},
    },
    "UpdateInferenceExperiment": {"Name": "fuzz-created", "Description": "changed"},
    "DeleteInferenceExperiment": {"Name": "fuzz-created"},
}


@pytest.fixture(scope="module")
def fuzz_world() -> tuple[Any, list[str]]:
    """A real service with one Running and one Created experiment; writes are recorded."""
    import time

    from lifecycle.service.reconciler import Reconciler
    from lifecycle.service.service import ExperimentService
    from lifecycle.stores.memory import MemoryStore

    writes: list[str] = []

    class WatchedStore(MemoryStore):
        def create(self, *args: Any, **kwargs: Any) -> None:
            writes.append("create")
            super().create(*args, **kwargs)

        def save(self, *args: Any, **kwargs: Any) -> None:
            writes.append("save")
            super().save(*args, **kwargs)

        def delete(self, *args: Any, **kwargs: Any) -> None:
            writes.append("delete")
            super().delete(*args, **kwargs)

    service = ExperimentService(WatchedStore(), settle_seconds=0.0)
    service.invoke("CreateInferenceExperiment", _create("fuzz-running"))
    later = time.time() + 86_400
    service.invoke(
        "CreateInferenceExperiment", _create("fuzz-created", Schedule={"StartTime": later})
    )
    Reconciler(service).run_once()
    assert service.invoke("DescribeInferenceExperiment", {"Name": "fuzz-running"})["Status"] == (
        "Running"
    )
    assert service.invoke("DescribeInferenceExperiment", {"Name": "fuzz-created"})["Status"] == (
        "Created"
    )
    writes.clear()
    return service, writes


def _bad_bodies(operation: str) -> Any:
    from hypothesis import strategies as st

    members = _MEMBERS[operation]
    valid = _VALID[operation]
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**20), max_value=10**20)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
        | st.sampled_from(["", " ", "x" * 5000, "fuzz-running", "fuzz-created", "Promote"])
    )
    values = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=12,
    )
    wrong_type = {
        "string": values.filter(lambda v: v is not None and not isinstance(v, str)),
        "integer": values.filter(lambda v: v is not None and type(v) not in (int, float)),
        "timestamp": values.filter(lambda v: isinstance(v, list | dict | bool)),
        "list": values.filter(lambda v: v is not None and not isinstance(v, list)),
        "map": values.filter(lambda v: v is not None and not isinstance(v, dict)),
        "structure": values.filter(lambda v: v is not None and not isinstance(v, dict)),
    }

    def with_unknown(pair: tuple[str, Any]) -> dict[str, Any]:
        return {**valid, pair[0]: pair[1]}

    unknown_member = st.tuples(
        st.text(min_size=1, max_size=20).filter(lambda k: k not in members),
        values.filter(lambda v: v is not None),  # null would count as absent
    ).map(with_unknown)
    wrong_member = st.sampled_from(sorted(members)).flatmap(
        lambda key: wrong_type[members[key]].map(lambda value: {**valid, key: value})
    )
    strategies = [unknown_member, wrong_member]
    if _REQUIRED[operation]:
        strategies.append(
            st.sampled_from(_REQUIRED[operation]).map(
                lambda key: {k: v for k, v in valid.items() if k != key}
            )
        )
        strategies.append(
            st.sampled_from(_REQUIRED[operation]).map(lambda key: {**valid, key: None})
        )
    if "Name" in members:
        strategies.append(
            st.sampled_from(
                ["", "x" * 121, "fuzz-running\n", "-fuzz", "fuzz_created", "fuzz created", "é"]
            ).map(lambda name: {**valid, "Name": name})
        )
    as_json = st.one_of(strategies).map(lambda body: json.dumps(body).encode())
    not_objects = values.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: json.dumps(v).encode()
    )
    raw_bytes = st.binary(max_size=64) | st.sampled_from(
        [
            b'{"Name": NaN}',
            b'{"Name": "\\ud800"}',
            b"[" * 3000,
            b'{"Name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"Name": "fuzz-running",}',
            b"\xff" + json.dumps(valid).encode(),
        ]
    )
    deep = st.integers(min_value=1, max_value=2000).map(
        lambda d: (
            json.dumps({**valid, "Zz": 0}).encode()[:-1] + b', "D": ' + b"[" * d + b"]" * d + b"}"
        )
    )
    return st.one_of(as_json, as_json, as_json, not_objects, raw_bytes, deep)


@pytest.mark.parametrize("operation", sorted(_MEMBERS))
def test_thousands_of_bad_bodies_get_a_4xx_and_change_nothing(
    fuzz_world: tuple[Any, list[str]], operation: str
) -> None:
    from hypothesis import HealthCheck, given, settings

    service, writes = fuzz_world
    reads = {"ListInferenceExperiments", "DescribeInferenceExperiment"}
    allowed = {
        "ValidationException",
        "SerializationException",
        "ResourceNotFound",
        "ConflictException",
        "ResourceInUse",
        "RequestEntityTooLarge",
    }

    @settings(
        max_examples=450,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_bad_bodies(operation))
    def check(body: bytes) -> None:
        response = call(service, body, target=f"SageMaker.{operation}")
        assert writes == [], f"{operation} wrote {writes} for {body[:200]!r}"
        if response.status == 200 and operation in reads:
            return  # an empty body is a valid List, and reads are free to succeed
        assert response.status in (400, 413), (response.status, response.body[:300])
        _, code, _ = envelope(response)
        assert code in allowed

    check()


# -- what the review found on the wire (issue: a huge number, the rule header, a [] body) ----


def _real_service() -> Any:
    from lifecycle.service.reconciler import Reconciler
    from lifecycle.service.service import ExperimentService
    from lifecycle.stores.memory import MemoryStore

    service = ExperimentService(MemoryStore())
    service.invoke("CreateInferenceExperiment", _create("wire-running"))
    Reconciler(service).run_once()
    return service


@pytest.mark.parametrize("digits", [29, 5000, 100_000])
def test_any_json_integer_is_a_value_to_validate_never_a_decoding_failure(digits: int) -> None:
    body = '{"MaxResults": 1' + "0" * (digits - 1) + "}"
    status, code, message = envelope(
        call(_real_service(), body, target="SageMaker.ListInferenceExperiments")
    )
    assert (status, code) == (400, "ValidationException")
    assert "maxResults" in message and "less than or equal to 100" in message
    assert len(message) < 2000


def test_a_huge_integer_where_a_string_belongs_is_a_type_error_showing_its_digits() -> None:
    body = '{"Name": 1' + "0" * 5000 + "}"
    _, code, message = envelope(call(_real_service(), body))
    assert code == "ValidationException" and "10000000" in message and len(message) < 2000


def test_a_negative_huge_integer_is_below_the_minimum() -> None:
    body = '{"MaxResults": -1' + "0" * 5000 + "}"
    _, code, message = envelope(
        call(_real_service(), body, target="SageMaker.ListInferenceExperiments")
    )
    assert code == "ValidationException" and "greater than or equal to 1" in message


def test_an_error_a_rule_raised_names_the_rule_in_a_header_and_the_body_stays_awss() -> None:
    body = json.dumps({"Name": "wire-running", "ModelVariantActions": {"prod": "Promote"}})
    response = call(_real_service(), body, target="SageMaker.StopInferenceExperiment")
    assert envelope(response)[1] == "ConflictException"
    assert header(response, "X-Lifecycle-Rule") == "promote-shadow-only"


@pytest.mark.parametrize(
    ("target", "body", "rule"),
    [
        ("SageMaker.DescribeInferenceExperiment", '{"Name": "nope"}', "experiment-exists"),
        ("SageMaker.DescribeInferenceExperiment", '{"Name": "bad name"}', "pattern"),
        ("SageMaker.ListInferenceExperiments", '{"NextToken": "forged"}', "next-token"),
        ("SageMaker.DescribeInferenceExperiment", "[]", "body-object"),
    ],
)
def test_every_rule_error_carries_its_rule_header(target: str, body: str, rule: str) -> None:
    response = call(_real_service(), body, target=target)
    assert response.status == 400
    assert header(response, "X-Lifecycle-Rule") == rule


def test_an_error_no_rule_raised_has_no_rule_header() -> None:
    response = call(_real_service(), "{}", target="SageMaker.NoSuchOperation")
    assert envelope(response)[1] == "UnknownOperationException"
    assert header(response, "X-Lifecycle-Rule") is None


@pytest.mark.parametrize("payload", [[], "x", 5, None])
def test_a_body_that_is_not_an_object_is_a_serialization_error_over_http_and_through_invoke(
    payload: Any,
) -> None:
    from lifecycle.errors import LifecycleError

    service = _real_service()
    response = call(service, json.dumps(payload), target="SageMaker.DescribeInferenceExperiment")
    assert envelope(response)[1] == "SerializationException"
    with pytest.raises(LifecycleError) as refused:
        service.invoke("DescribeInferenceExperiment", payload)
    assert (refused.value.code, refused.value.rule) == ("SerializationException", "body-object")
    assert [(e.code, e.rule) for e in service.explain("DescribeInferenceExperiment", payload)] == [
        ("SerializationException", "body-object")
    ]


_TRICKY_BODIES = [
    b'{"a":1,"a":2}',
    b'\xef\xbb\xbf{"a":1}',
    b'{"a":1e400}',
    b'{"a":-1e400}',
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":"\\ud800"}',
    b'{"a":"\\ud83d\\ude00"}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":18446744073709551615}',
    b'{"a":18446744073709551616}',
    b'{"a":-9223372036854775809}',
    b'{"a":9223372036854775807}',
    b'{"a":1234567890123456789.5}',
    b'{"a":1.5} ',
    b'{"a":"\\u0000","b":"\\n\\t"}',
    b'{"a":1}x',
    b'{"a":-0,"b":0.1,"c":1E3,"d":-0.0}',
    b'{"a":[1,{"b":null,"c":true,"d":false}]}',
    b'{"a":"\xc3\xa9\xe2\x82\xac"}',
    b'{"a":"\xff"}',
    b'{"Name": "exp", "ModelVariantActions": {"prod": "Promote"}}',
    b"[" * 40 + b"]" * 40,
    b'{"a":' + b"[" * 1100 + b"]" * 1100 + b"}",
]


@pytest.mark.parametrize("body", _TRICKY_BODIES)
def test_the_fast_decoder_reads_every_body_exactly_as_the_strict_one(body: bytes) -> None:
    def outcome(decode: Any) -> object:
        try:
            return ("ok", repr(decode(body)))
        except Exception as exc:  # the same error, with the same message
            return ("error", type(exc).__name__, str(exc))

    assert outcome(protocol._decode) == outcome(protocol._decode_strict)
