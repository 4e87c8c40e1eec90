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
from lifecycle.wire import protocol
from lifecycle.wire.protocol import MAX_BODY_BYTES, MAX_DEPTH, WireResponse, handle

JSON11 = "application/x-amz-json-1.1"


class EchoService:
    """Answers every operation with the payload it got; raises what it is told to."""

    OPERATIONS = ("DescribeInferenceExperiment", "StopInferenceExperiment")

    def __init__(self, raises: BaseException | None = None, result: Any = None) -> None:
        self.raises = raises
        self.result = result
        self.calls: list[tuple[str, Any]] = []

    def invoke(self, operation: str, payload: Any, /) -> Mapping[str, Any]:
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
    assert call(EchoService(), content_type="application/x-amz-json-1.1; charset=UTF-8").status == 200


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
        (b'{"Name": 1' + b"0" * 5000 + b"}", "not valid JSON"),
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
        (ValidationError("1 validation error detected: Value 'x' at 'name'"), "ValidationException"),
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
    status, code, _ = envelope(call(EchoService(raises=StoreError("database is locked"))))
    assert (status, code) == (500, "InternalFailure")
    assert "database is locked" in caplog.text


def test_a_result_that_cannot_be_encoded_is_500_not_an_exception() -> None:
    status, code, _ = envelope(call(EchoService(result={"T": float("nan")})))
    assert (status, code) == (500, "InternalFailure")


def test_error_response_builds_the_envelope() -> None:
    response = protocol.error_response("ConflictException", "nope", request_id="r1")
    assert response.status == 400
    assert json.loads(response.body) == {"__type": "ConflictException", "Message": "nope"}
    assert header(response, "x-amzn-RequestId") == "r1"
