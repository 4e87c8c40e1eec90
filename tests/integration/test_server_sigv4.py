"""SigV4 checking (``--auth sigv4``): signatures made by botocore itself, and boto3 end to end."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lifecycle.errors import ProtocolError
from lifecycle.http.access import ALL_OPERATIONS, READ_OPERATIONS, Principal
from lifecycle.http.app import LifecycleApp
from lifecycle.http.protocol import handle
from lifecycle.http.sigv4 import AccessKey, CredentialsError, SigV4Verifier, load_credentials
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

KEY, SECRET = "AKIDLIFECYCLETEST", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
JSON11 = "application/x-amz-json-1.1"
HOST = "127.0.0.1:8080"


def sign(
    body: bytes = b'{"Name": "exp-1"}',
    *,
    key: str = KEY,
    secret: str = SECRET,
    region: str = "us-east-1",
    query: str = "",
    token: str | None = None,
    target: str = "DescribeInferenceExperiment",
) -> dict[str, str]:
    """Headers (lower-case names) of a request signed by botocore's own SigV4Auth."""
    url = f"http://{HOST}/" + (f"?{query}" if query else "")
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": JSON11, "X-Amz-Target": f"SageMaker.{target}"},
    )
    SigV4Auth(Credentials(key, secret, token), "sagemaker", region).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = HOST  # what the HTTP client sends
    return headers


def principal(
    verifier: SigV4Verifier, headers: dict[str, str], body: bytes = b'{"Name": "exp-1"}', **kw: Any
) -> Principal:
    return verifier.verify(
        method=kw.get("method", "POST"),
        path=kw.get("path", "/"),
        query=kw.get("query", ""),
        headers=headers,
        body=body,
    )


def verify(
    verifier: SigV4Verifier, headers: dict[str, str], body: bytes = b'{"Name": "exp-1"}', **kw: Any
) -> str:
    """The access key id of the principal the verifier answers with."""
    return principal(verifier, headers, body, **kw).access_key


def refusal(verifier: SigV4Verifier, headers: dict[str, str], **kw: Any) -> tuple[int, str]:
    with pytest.raises(ProtocolError) as caught:
        verify(verifier, headers, **kw)
    return caught.value.http_status, caught.value.code


@pytest.fixture
def verifier() -> SigV4Verifier:
    return SigV4Verifier({KEY: SECRET, "AKIDOTHER": "other-secret"})


# -- the verifier against botocore's signatures -------------------------------------------


def test_a_request_signed_by_botocore_with_a_listed_key_passes(verifier: SigV4Verifier) -> None:
    assert verify(verifier, sign()) == KEY


def test_each_listed_key_is_recognised(verifier: SigV4Verifier) -> None:
    assert verify(verifier, sign(key="AKIDOTHER", secret="other-secret")) == "AKIDOTHER"


def test_an_empty_body_and_a_session_token_are_signed_like_botocore(
    verifier: SigV4Verifier,
) -> None:
    assert verify(verifier, sign(b"", token="session-token"), b"") == KEY


def test_a_query_string_is_part_of_the_signature(verifier: SigV4Verifier) -> None:
    headers = sign(query="b=2&a=1&a=0")
    assert verify(verifier, headers, query="b=2&a=1&a=0") == KEY
    assert refusal(verifier, headers, query="b=2&a=1") == (403, "InvalidSignatureException")


def test_a_client_in_another_region_still_proves_its_key(verifier: SigV4Verifier) -> None:
    assert verify(verifier, sign(region="eu-west-1")) == KEY


def test_a_wrong_secret_is_an_invalid_signature(verifier: SigV4Verifier) -> None:
    assert refusal(verifier, sign(secret="not-the-secret")) == (403, "InvalidSignatureException")


def test_an_unlisted_key_is_an_unrecognized_client(verifier: SigV4Verifier) -> None:
    assert refusal(verifier, sign(key="AKIDUNKNOWN")) == (403, "UnrecognizedClientException")


def test_an_unsigned_request_is_an_unrecognized_client(verifier: SigV4Verifier) -> None:
    headers = sign()
    del headers["authorization"]
    assert refusal(verifier, headers) == (403, "UnrecognizedClientException")


def test_a_changed_body_breaks_the_signature(verifier: SigV4Verifier) -> None:
    assert refusal(verifier, sign(), body=b'{"Name": "exp-2"}') == (
        403,
        "InvalidSignatureException",
    )


def test_a_changed_signed_header_breaks_the_signature(verifier: SigV4Verifier) -> None:
    headers = sign()
    headers["x-amz-target"] = "SageMaker.DeleteInferenceExperiment"
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")


def test_a_changed_method_or_path_breaks_the_signature(verifier: SigV4Verifier) -> None:
    assert refusal(verifier, sign(), method="PUT") == (403, "InvalidSignatureException")
    assert refusal(verifier, sign(), path="/other") == (403, "InvalidSignatureException")


def test_a_signature_older_than_fifteen_minutes_is_refused() -> None:
    late = SigV4Verifier({KEY: SECRET}, clock=lambda: time.time() + 16 * 60)
    status, code = refusal(late, sign())
    assert (status, code) == (403, "InvalidSignatureException")


def test_a_signature_within_the_allowed_skew_passes() -> None:
    skewed = SigV4Verifier({KEY: SECRET}, clock=lambda: time.time() - 10 * 60)
    assert verify(skewed, sign()) == KEY


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA1 Credential=x",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIDLIFECYCLETEST/20240101/us-east-1/sagemaker",
        "AWS4-HMAC-SHA256 Credential=AKIDLIFECYCLETEST/20240101/us-east-1/sagemaker/aws4_request",
        "Basic dXNlcjpwYXNz",
        "garbage",
    ],
)
def test_a_malformed_authorization_header_is_an_invalid_signature(
    verifier: SigV4Verifier, authorization: str
) -> None:
    headers = sign()
    headers["authorization"] = authorization
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")


def test_host_must_be_signed(verifier: SigV4Verifier) -> None:
    headers = sign()
    headers["authorization"] = headers["authorization"].replace("host;", "")
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")


def test_a_missing_or_mismatched_date_is_an_invalid_signature(verifier: SigV4Verifier) -> None:
    headers = sign()
    del headers["x-amz-date"]
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")
    headers = sign()
    headers["x-amz-date"] = "20000101T000000Z"
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")


def test_a_declared_payload_hash_must_be_the_bodys(verifier: SigV4Verifier) -> None:
    headers = sign()
    headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    assert refusal(verifier, headers) == (403, "InvalidSignatureException")


def test_a_refused_request_never_reaches_the_service(verifier: SigV4Verifier) -> None:
    class Untouchable:
        OPERATIONS = ("DescribeInferenceExperiment",)

        def invoke(self, operation: str, payload: Any, /, **_: Any) -> dict[str, Any]:
            raise AssertionError("the service was called")

    response = handle(
        Untouchable(),
        method="POST",
        path="/",
        headers=sign(secret="wrong"),
        body=b'{"Name": "exp-1"}',
        auth=verifier,
    )
    assert response.status == 403
    assert json.loads(response.body)["__type"] == "InvalidSignatureException"
    assert dict(response.headers)["X-Amzn-ErrorType"] == "InvalidSignatureException"


# -- the credentials file -----------------------------------------------------------------


def test_the_credentials_file_is_read_like_aws_credentials(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        "# keys this server accepts\n"
        "[ci]\n"
        f"aws_access_key_id = {KEY}\n"
        f"aws_secret_access_key = {SECRET}\n"
        "region = eu-west-1\n"
        "\n"
        "[alice]\n"
        "aws_access_key_id=AKIAALICE\n"
        "aws_secret_access_key=pa%ss=word\n"
    )
    assert load_credentials(path) == {
        KEY: AccessKey(SECRET, Principal(KEY)),
        "AKIAALICE": AccessKey("pa%ss=word", Principal("AKIAALICE")),
    }
    assert SigV4Verifier.from_file(path).access_keys == {KEY, "AKIAALICE"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no access key"),
        ("[a]\naws_access_key_id = AKID\n", "needs both"),
        ("aws_access_key_id = AKID\n", "not valid INI"),
        (
            "[a]\naws_access_key_id=K\naws_secret_access_key=1\n"
            "[b]\naws_access_key_id=K\naws_secret_access_key=2\n",
            "twice",
        ),
    ],
)
def test_a_bad_credentials_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text(text)
    with pytest.raises(CredentialsError, match=words):
        load_credentials(path)


def test_a_key_may_carry_its_account_and_what_it_may_do(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        f"[ci]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        "[dashboard]\naws_access_key_id = AKIDREAD\naws_secret_access_key = r\nallow = read\n"
        "[bot]\naws_access_key_id = AKIDBOT\naws_secret_access_key = b\n"
        "account_id = 111122223333\n"
        "allow = DescribeInferenceExperiment , StopInferenceExperiment\n"
        "[all]\naws_access_key_id = AKIDALL\naws_secret_access_key = a\nallow = ALL\n"
    )
    keys = load_credentials(path, account_id="123456789012")
    assert {key_id: key.principal for key_id, key in keys.items()} == {
        KEY: Principal(KEY, "123456789012", ALL_OPERATIONS),
        "AKIDREAD": Principal("AKIDREAD", "123456789012", READ_OPERATIONS),
        "AKIDBOT": Principal(
            "AKIDBOT",
            "111122223333",
            frozenset({"DescribeInferenceExperiment", "StopInferenceExperiment"}),
        ),
        "AKIDALL": Principal("AKIDALL", "123456789012", ALL_OPERATIONS),
    }
    verifier = SigV4Verifier.from_file(path, account_id="123456789012")
    assert principal(verifier, sign(key="AKIDBOT", secret="b")) == keys["AKIDBOT"].principal


def test_a_key_given_as_a_secret_is_of_the_verifiers_account_and_may_do_everything(
    verifier: SigV4Verifier,
) -> None:
    assert principal(verifier, sign()) == Principal(KEY, None, ALL_OPERATIONS)
    mine = SigV4Verifier({KEY: SECRET}, account_id="444455556666")
    assert principal(mine, sign()).account_id == "444455556666"


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ("account_id = 12345\n", "section [bad]: account_id '12345' is not a 12-digit"),
        ("account_id = 12345678901a\n", "section [bad]: account_id '12345678901a'"),
        ("allow =\n", "section [bad]: allow is empty"),
        ("allow = write\n", "section [bad]: allow 'write' is not an operation"),
        (
            "allow = DescribeInferenceExperiment, StopExperiment\n",
            "section [bad]: allow 'StopExperiment' is not an operation; use all, read, or",
        ),
        (
            "allow = DescribeInferenceExperiment,,\n",
            "section [bad]: allow 'DescribeInferenceExperiment,,' has an empty item",
        ),
    ],
)
def test_a_bad_account_or_allow_names_the_file_the_section_and_the_field(
    tmp_path: Path, lines: str, words: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        f"[good]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        f"[bad]\naws_access_key_id = AKIDBAD\naws_secret_access_key = s\n{lines}"
    )
    with pytest.raises(CredentialsError) as caught:
        load_credentials(path)
    assert f"credentials file {path}: {words}" in str(caught.value)


def test_a_key_listed_twice_with_different_rights_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        f"[a]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        f"[b]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\nallow = read\n"
    )
    with pytest.raises(CredentialsError, match=r"listed twice, in \[a\] and \[b\]"):
        load_credentials(path)


def test_a_key_not_allowed_the_operation_is_denied_before_the_body_is_read() -> None:
    class Untouchable:
        OPERATIONS = ("DescribeInferenceExperiment", "DeleteInferenceExperiment")

        def invoke(self, operation: str, payload: Any, /, **_: Any) -> dict[str, Any]:
            raise AssertionError("the service was called")

    reader = SigV4Verifier({KEY: AccessKey(SECRET, Principal(KEY, allowed=READ_OPERATIONS))})
    headers = sign(b"not json", target="DeleteInferenceExperiment")
    response = handle(
        Untouchable(), method="POST", path="/", headers=headers, body=b"not json", auth=reader
    )
    assert response.status == 400
    assert json.loads(response.body) == {
        "__type": "AccessDeniedException",
        "Message": f"User: {KEY} is not authorized to perform: sagemaker:DeleteInferenceExperiment "
        "(the credentials file allows this key only DescribeInferenceExperiment, "
        "ListInferenceExperiments)",
    }
    assert (response.operation, response.access_key) == ("DeleteInferenceExperiment", KEY)


def test_a_missing_credentials_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        load_credentials(tmp_path / "absent")


# -- boto3 against a server with --auth sigv4 -----------------------------------------------


@pytest.fixture
def signed_server(start_server: Any) -> tuple[Any, ExperimentService]:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0)
    app = LifecycleApp(service, Reconciler(service), auth=SigV4Verifier({KEY: SECRET}))
    return start_server(app), service


def test_boto3_with_a_listed_key_is_served(
    signed_server: tuple[Any, ExperimentService], client_for: Any, create_request: Any
) -> None:
    running, _ = signed_server
    client = client_for(running.url, aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    client.create_inference_experiment(**create_request("signed-1"))
    assert client.describe_inference_experiment(Name="signed-1")["Name"] == "signed-1"


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        (KEY, "a-wrong-secret", "InvalidSignatureException"),
        ("AKIDNOTLISTED", SECRET, "UnrecognizedClientException"),
    ],
)
def test_boto3_with_a_wrong_secret_or_key_is_refused_and_nothing_changes(
    signed_server: tuple[Any, ExperimentService],
    client_for: Any,
    create_request: Any,
    key: str,
    secret: str,
    code: str,
) -> None:
    running, service = signed_server
    client = client_for(running.url, aws_access_key_id=key, aws_secret_access_key=secret)
    with pytest.raises(ClientError) as caught:
        client.create_inference_experiment(**create_request("refused-1"))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert service.store.get(ACCOUNT, "refused-1") is None


def test_an_unsigned_http_request_is_refused(
    signed_server: tuple[Any, ExperimentService],
) -> None:

    running, _ = signed_server
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    connection.request(
        "POST",
        "/",
        body=b'{"Name": "exp-1"}',
        headers={"Content-Type": JSON11, "X-Amz-Target": "SageMaker.DescribeInferenceExperiment"},
    )
    response = connection.getresponse()
    assert response.status == 403
    assert response.getheader("X-Amzn-ErrorType") == "UnrecognizedClientException"
    assert response.getheader("x-amzn-RequestId")
    connection.close()


def test_health_needs_no_signature(signed_server: tuple[Any, ExperimentService]) -> None:
    running, _ = signed_server
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    connection.request("GET", "/health")
    assert connection.getresponse().status == 200
    connection.close()
