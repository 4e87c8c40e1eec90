"""What a key may do, and how fast: ``allow`` and ``account_id`` in the credentials file, and
``--rate-limit``, through boto3 against ``lifecycle serve``."""

from __future__ import annotations

import http.client
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lifecycle.http.access import Principal
from lifecycle.http.app import LifecycleApp
from lifecycle.http.sigv4 import AccessKey, SigV4Verifier
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

SERVER_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111122223333"
#: section: (access key id, secret, more lines)
KEYS = {
    "admin": ("AKIDADMIN", "admin-secret", ""),
    "reader": ("AKIDREADER", "reader-secret", "allow = read\n"),
    "stopper": (
        "AKIDSTOPPER",
        "stopper-secret",
        "allow = DescribeInferenceExperiment, StopInferenceExperiment\n",
    ),
    "mine": ("AKIDMINE", "mine-secret", f"account_id = {SERVER_ACCOUNT}\n"),
    "other": ("AKIDOTHER", "other-secret", f"account_id = {OTHER_ACCOUNT}\n"),
}
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5)


def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "credentials"
    path.write_text(
        "".join(
            f"[{section}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n{more}"
            for section, (key, secret, more) in KEYS.items()
        )
    )
    return path


def client_of(url: str, section: str | None = None, config: Config = NO_RETRIES) -> Any:
    key, secret, _ = KEYS[section] if section else ("testing", "testing", "")
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def described(client: Any, name: str) -> dict[str, Any]:
    answer = dict(client.describe_inference_experiment(Name=name))
    answer.pop("ResponseMetadata")
    return answer


def scrape(url: str) -> str:
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        connection.close()


def sample(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text (labels in any order); 0 when absent."""
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if found and dict(re.findall(r'(\w+)="([^"]*)"', found.group(1))) == labels:
            return float(found.group(2))
    return 0.0


def get_events(url: str, section: str | None = None) -> tuple[int, dict[str, Any]]:
    """``GET /events?after=0``, signed with the key of ``section`` when given."""
    headers: dict[str, str] = {}
    if section is not None:
        key, secret, _ = KEYS[section]
        request = AWSRequest(method="GET", url=f"{url}/events?after=0")
        SigV4Auth(Credentials(key, secret), "sagemaker", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", "/events?after=0", headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def signed_serve(serve_process: Any, tmp_path: Path) -> Any:
    """``lifecycle serve --auth sigv4`` over the keys of :data:`KEYS`."""
    path = credentials_file(tmp_path)
    return serve_process(
        "--store", "memory://", "--auth", "sigv4", "--credentials", str(path)
    ).wait_started()


def running_experiment(client: Any, create_request: Any, wait_for_status: Any, name: str) -> None:
    client.create_inference_experiment(**create_request(name))
    wait_for_status(client, name, "Running", timeout=10)


# -- allow ----------------------------------------------------------------------------------------


def test_a_read_only_key_is_denied_every_mutating_operation_and_nothing_changes(
    signed_serve: Any, create_request: Any, wait_for_status: Any
) -> None:
    admin, reader = client_of(signed_serve.url, "admin"), client_of(signed_serve.url, "reader")
    running_experiment(admin, create_request, wait_for_status, "exp-1")
    before = described(reader, "exp-1")
    assert reader.list_inference_experiments()["InferenceExperiments"][0]["Name"] == "exp-1"
    attempts: dict[str, Callable[[], Any]] = {
        "CreateInferenceExperiment": lambda: reader.create_inference_experiment(
            **create_request("exp-2")
        ),
        "StartInferenceExperiment": lambda: reader.start_inference_experiment(Name="exp-1"),
        "StopInferenceExperiment": lambda: reader.stop_inference_experiment(
            Name="exp-1", ModelVariantActions={"shadow": "Promote", "prod": "Remove"}
        ),
        "UpdateInferenceExperiment": lambda: reader.update_inference_experiment(
            Name="exp-1", Description="changed"
        ),
        "DeleteInferenceExperiment": lambda: reader.delete_inference_experiment(Name="exp-1"),
    }
    for operation, attempt in attempts.items():
        with pytest.raises(ClientError) as caught:
            attempt()
        assert error_of(caught) == (
            400,
            "AccessDeniedException",
            f"User: AKIDREADER is not authorized to perform: sagemaker:{operation} (the "
            "credentials file allows this key only DescribeInferenceExperiment, "
            "ListInferenceExperiments)",
        )
    assert described(admin, "exp-1") == before
    with pytest.raises(admin.exceptions.ResourceNotFound):
        admin.describe_inference_experiment(Name="exp-2")
    assert "key=AKIDREADER" in signed_serve.output  # each denial is logged with its key
    # and an answered signed request's line ends with the key that signed it
    answered = [
        line
        for line in signed_serve.lines
        if " request op=DescribeInferenceExperiment name=exp-1 outcome=OK " in line
    ]
    keys = {line.rsplit(" ", 1)[1] for line in answered}
    assert keys == {"key=AKIDADMIN", "key=AKIDREADER"}, answered


def test_a_key_limited_to_a_list_may_call_those_and_no_others(
    signed_serve: Any, create_request: Any, wait_for_status: Any
) -> None:
    admin, stopper = client_of(signed_serve.url, "admin"), client_of(signed_serve.url, "stopper")
    running_experiment(admin, create_request, wait_for_status, "exp-1")
    refusals: tuple[Callable[[], Any], ...] = (
        lambda: stopper.list_inference_experiments(),
        lambda: stopper.delete_inference_experiment(Name="exp-1"),
        lambda: stopper.create_inference_experiment(**create_request("exp-2")),
    )
    for refused in refusals:
        with pytest.raises(ClientError) as caught:
            refused()
        assert error_of(caught)[:2] == (400, "AccessDeniedException")
        assert "only DescribeInferenceExperiment, StopInferenceExperiment" in error_of(caught)[2]
    stopper.stop_inference_experiment(
        Name="exp-1", ModelVariantActions={"shadow": "Promote", "prod": "Remove"}
    )
    assert wait_for_status(stopper, "exp-1", "Completed", timeout=10)["Name"] == "exp-1"


def test_any_listed_key_reads_the_change_feed_whatever_it_may_call(
    signed_serve: Any, create_request: Any
) -> None:
    client_of(signed_serve.url, "admin").create_inference_experiment(**create_request("exp-1"))
    status, page = get_events(signed_serve.url, "reader")
    assert status == 200
    assert page["Events"][0]["detail"]["Name"] == "exp-1"
    assert get_events(signed_serve.url)[0] == 403


# -- account_id -----------------------------------------------------------------------------------


def test_each_key_works_in_its_own_account_and_sees_another_accounts_as_missing(
    signed_serve: Any, create_request: Any
) -> None:
    mine, other = client_of(signed_serve.url, "mine"), client_of(signed_serve.url, "other")
    created = mine.create_inference_experiment(**create_request("exp-1", "ep"))
    assert created["InferenceExperimentArn"] == (
        f"arn:aws:sagemaker:us-east-1:{SERVER_ACCOUNT}:inference-experiment/exp-1"
    )
    with pytest.raises(other.exceptions.ResourceNotFound) as caught:
        other.describe_inference_experiment(Name="exp-1")
    assert error_of(caught)[2] == "Inference experiment 'exp-1' does not exist"
    theirs = other.create_inference_experiment(**create_request("exp-1", "ep"))
    assert theirs["InferenceExperimentArn"] == (
        f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:inference-experiment/exp-1"
    )
    listed = other.list_inference_experiments()["InferenceExperiments"]
    assert [s["Name"] for s in listed] == ["exp-1"]
    # each signed reader of the feed reads its own account's events only
    for section, account in (
        ("mine", SERVER_ACCOUNT),
        ("admin", SERVER_ACCOUNT),
        ("other", OTHER_ACCOUNT),
    ):
        status, page = get_events(signed_serve.url, section)
        assert status == 200
        assert {e["account"] for e in page["Events"]} == {account}, section
        assert [e["detail"]["Event"] for e in page["Events"]][:1] == ["create"]


class OneAccountService(ExperimentService):
    """A service that serves its own account only: it has no views of others."""

    for_account = None  # type: ignore[assignment]


def test_a_service_of_one_account_denies_a_key_of_another(
    start_server: Any, create_request: Any
) -> None:
    service = OneAccountService(MemoryStore(), account_id=SERVER_ACCOUNT, settle_seconds=0.0)
    auth = SigV4Verifier(
        {"AKIDOTHER": AccessKey("other-secret", Principal("AKIDOTHER", OTHER_ACCOUNT))}
    )
    url = start_server(LifecycleApp(service, Reconciler(service), auth=auth)).url
    other = client_of(url, "other")
    refusals: tuple[Callable[[], Any], ...] = (
        lambda: other.describe_inference_experiment(Name="exp-1"),
        lambda: other.create_inference_experiment(**create_request("exp-2")),
    )
    for refused in refusals:
        with pytest.raises(ClientError) as caught:
            refused()
        status, code, message = error_of(caught)
        assert (status, code) == (400, "AccessDeniedException")
        assert message.startswith("User: AKIDOTHER is not authorized to perform: sagemaker:")
        assert f"the key is of account {OTHER_ACCOUNT}" in message
        assert "accounts other than the server's are not served" in message
    assert len(service.store) == 0  # type: ignore[arg-type]


class AccountsService(ExperimentService):
    """A service that serves several accounts: a view of each, over a store of its own."""

    def __init__(self) -> None:
        super().__init__(MemoryStore(), account_id=SERVER_ACCOUNT, settle_seconds=0.0)
        self.views: dict[str, ExperimentService] = {}

    def for_account(self, account_id: str) -> ExperimentService:
        view = ExperimentService(MemoryStore(), account_id=account_id, settle_seconds=0.0)
        return self.views.setdefault(account_id, view)


def test_a_service_with_views_of_accounts_serves_each_key_in_its_own_account(
    start_server: Any, create_request: Any
) -> None:
    service = AccountsService()
    auth = SigV4Verifier(
        {
            "AKIDMINE": AccessKey("mine-secret", Principal("AKIDMINE", SERVER_ACCOUNT)),
            "AKIDOTHER": AccessKey("other-secret", Principal("AKIDOTHER", OTHER_ACCOUNT)),
        }
    )
    url = start_server(LifecycleApp(service, Reconciler(service), auth=auth)).url
    mine, other = client_of(url, "mine"), client_of(url, "other")
    arn = other.create_inference_experiment(**create_request("exp-1"))["InferenceExperimentArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:inference-experiment/exp-1"
    assert other.describe_inference_experiment(Name="exp-1")["Arn"] == arn
    with pytest.raises(mine.exceptions.ResourceNotFound):
        mine.describe_inference_experiment(Name="exp-1")
    assert service.store.get(SERVER_ACCOUNT, "exp-1") is None
    assert list(service.views) == [OTHER_ACCOUNT]


# -- the credentials file at startup --------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (
            "account_id = 1234\n",
            "section [bad]: account_id '1234' is not a 12-digit AWS account id",
        ),
        ("allow =\n", "section [bad]: allow is empty"),
        ("allow = DescribeInferenceExperiment, Stop\n", "section [bad]: allow 'Stop' is not an"),
    ],
)
def test_a_bad_credentials_file_stops_serve_naming_the_file_section_and_field(
    serve_process: Any, tmp_path: Path, lines: str, words: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text(f"[bad]\naws_access_key_id = AKIDBAD\naws_secret_access_key = s\n{lines}")
    server = serve_process("--store", "memory://", "--auth", "sigv4", "--credentials", str(path))
    assert server.wait() == 2
    assert f"error: credentials file {path}: {words}" in server.output
    assert "Uvicorn running" not in server.output


# -- --rate-limit ---------------------------------------------------------------------------------


def test_a_client_over_its_rate_is_throttled_counted_and_logged_once(serve_process: Any) -> None:
    server = serve_process("--store", "memory://", "--rate-limit", "0.5:3").wait_started()
    client = client_of(server.url)
    codes = []
    for _ in range(10):
        with pytest.raises(ClientError) as caught:
            client.describe_inference_experiment(Name="nobody")
        codes.append(error_of(caught))
    served = [c for c in codes if c[1] == "ResourceNotFound"]
    throttled = [c for c in codes if c[1] == "ThrottlingException"]
    assert codes[:3] == served[:3] and len(served) + len(throttled) == 10
    assert len(throttled) >= 5
    assert throttled[0] == (
        400,
        "ThrottlingException",
        "Rate exceeded: client address 127.0.0.1 is limited to 0.5 requests a second (bursts "
        "of up to 3) by this server process; retry with backoff",
    )
    status, body = get_events(server.url)  # the change feed takes from the same bucket
    assert (status, body["__type"]) == (400, "ThrottlingException")

    text = scrape(server.url)  # /metrics, /health and /ready are never throttled
    describe = "DescribeInferenceExperiment"
    assert sample(text, "lifecycle_throttled_requests_total", operation=describe) == len(throttled)
    assert sample(text, "lifecycle_throttled_requests_total", operation="Events") == 1
    assert sample(
        text, "lifecycle_requests_total", operation=describe, code="ThrottlingException"
    ) == len(throttled)

    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    lines = [line for line in server.lines if " throttled " in line]
    assert len(lines) == 1, lines  # the storm is one line per 10 s, not one per request
    assert "WARNING" in lines[0] and "client=127.0.0.1" in lines[0] and "limit=0.5:3" in lines[0]
    assert "outcome=ThrottlingException" not in server.output
    assert server.output.count("outcome=ResourceNotFound") == len(served)


def test_boto3s_standard_retries_get_through_a_rate_limit(serve_process: Any) -> None:
    server = serve_process("--store", "memory://", "--rate-limit", "4:1").wait_started()
    patient = client_of(server.url, config=Config(retries={"mode": "standard", "max_attempts": 10}))
    started = time.monotonic()
    for _ in range(8):
        with pytest.raises(patient.exceptions.ResourceNotFound):
            patient.describe_inference_experiment(Name="nobody")
    assert time.monotonic() - started < 60
    text = scrape(server.url)
    throttled = sample(
        text, "lifecycle_throttled_requests_total", operation="DescribeInferenceExperiment"
    )
    assert throttled >= 1  # it did meet the limit, and retried past it
    assert (
        sample(
            text,
            "lifecycle_requests_total",
            operation="DescribeInferenceExperiment",
            code="ResourceNotFound",
        )
        == 8
    )


def test_with_sigv4_each_access_key_has_its_own_rate(serve_process: Any, tmp_path: Path) -> None:
    path = credentials_file(tmp_path)
    server = serve_process(
        "--store", "memory://", "--auth", "sigv4", "--credentials", str(path),
        "--rate-limit", "0.5:2",
    ).wait_started()  # fmt: skip
    admin, reader = client_of(server.url, "admin"), client_of(server.url, "reader")
    for _ in range(2):
        with pytest.raises(admin.exceptions.ResourceNotFound):
            admin.describe_inference_experiment(Name="nobody")
    with pytest.raises(ClientError) as caught:
        admin.describe_inference_experiment(Name="nobody")
    status, code, message = error_of(caught)
    assert (status, code) == (400, "ThrottlingException")
    assert "access key AKIDADMIN is limited to 0.5 requests a second" in message
    with pytest.raises(reader.exceptions.ResourceNotFound):  # another key: its own bucket
        reader.describe_inference_experiment(Name="nobody")
    bad = boto3.client(  # a wrong secret is refused as before, and spends no one's tokens
        "sagemaker",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDREADER",
        aws_secret_access_key="wrong",
        config=NO_RETRIES,
    )
    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            bad.describe_inference_experiment(Name="nobody")
        assert error_of(caught)[1] == "InvalidSignatureException"
    with pytest.raises(reader.exceptions.ResourceNotFound):
        reader.describe_inference_experiment(Name="nobody")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "'0': RATE must be a finite number above 0"),
        ("fast", "'fast': RATE must be a number of requests a second"),
        ("5:0", "'5:0': BURST must be at least 1"),
    ],
)
def test_a_bad_rate_limit_is_a_usage_error_naming_the_flag_or_its_variable(
    serve_process: Any, value: str, words: str
) -> None:
    flag = serve_process("--store", "memory://", "--rate-limit", value)
    assert flag.wait() == 2
    assert f"argument --rate-limit: {words}" in flag.output
    variable = serve_process("--store", "memory://", env={"LIFECYCLE_RATE_LIMIT": value})
    assert variable.wait() == 2
    assert f"environment variable LIFECYCLE_RATE_LIMIT: {words}" in variable.output


@pytest.mark.slow
def test_with_workers_each_worker_process_has_its_own_limit(
    serve_process: Any, tmp_path: Path
) -> None:
    server = serve_process(
        "--store", f"sqlite:///{tmp_path / 'w.db'}", "--workers", "2", "--rate-limit", "1:1"
    ).wait_started(timeout=30)
    codes = []
    for _ in range(6):  # a connection each, taken by either worker: 2 buckets of 1
        with pytest.raises(ClientError) as caught:
            client_of(server.url).describe_inference_experiment(Name="nobody")
        codes.append(error_of(caught)[1])
    assert "ThrottlingException" in codes
    assert "ResourceNotFound" in codes
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
