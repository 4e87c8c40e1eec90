"""The real boto3 client against the server on a free loopback port (SPEC §5)."""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lifecycle.errors import StoreUnavailableError
from lifecycle.http.app import LifecycleApp
from lifecycle.http.logs import TextFormatter
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

JSON11 = "application/x-amz-json-1.1"
FUTURE = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)


def raw(
    port: int,
    body: bytes,
    *,
    target: str | None = "SageMaker.DescribeInferenceExperiment",
    content_type: str = JSON11,
    method: str = "POST",
    path: str = "/",
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = caught.value.response
    assert response["ResponseMetadata"]["RequestId"], "x-amzn-RequestId reaches boto3"
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# -- the lifecycle, end to end --------------------------------------------------------------


def test_create_run_stop_with_promote_and_describe_the_promoted_variant(
    client: Any, create_request: Any, wait_for_status: Any
) -> None:
    arn = client.create_inference_experiment(**create_request("life-1"))["InferenceExperimentArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/life-1"
    started = time.monotonic()
    running = wait_for_status(client, "life-1", "Running", timeout=3)
    assert time.monotonic() - started < 1.5, "settle 0: Running within about a second"
    assert isinstance(running["CreationTime"], datetime.datetime)

    stopped = client.stop_inference_experiment(
        Name="life-1",
        ModelVariantActions={"shadow": "Promote"},
        DesiredModelVariants=[
            {
                "ModelName": "model-shadow-v2",
                "VariantName": "shadow",
                "InfrastructureConfig": {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": "ml.c5.2xlarge",
                        "InstanceCount": 2,
                    },
                },
            }
        ],
        DesiredState="Completed",
        Reason="the shadow wins",
    )
    assert stopped["InferenceExperimentArn"] == arn

    done = wait_for_status(client, "life-1", "Completed", timeout=3)
    assert done["StatusReason"] == "the shadow wins"
    assert isinstance(done["CompletionTime"], datetime.datetime)
    variants = {v["VariantName"]: v for v in done["ModelVariants"]}
    assert variants["shadow"]["Status"] == "InService"
    assert variants["shadow"]["ModelName"] == "model-shadow-v2"
    assert variants["shadow"]["InfrastructureConfig"] == {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 2},
    }
    assert variants["prod"]["Status"] == "Deleted"
    assert done["ShadowModeConfig"]["ShadowModelVariants"][0]["ShadowModelVariantName"] == "shadow"


def test_start_update_and_delete_work_through_boto3(
    client: Any, create_request: Any, wait_for_status: Any
) -> None:
    client.create_inference_experiment(**create_request("later-1", Schedule={"StartTime": FUTURE}))
    wait_for_status(client, "later-1", "Created", timeout=3)
    client.update_inference_experiment(Name="later-1", Description="edited")
    assert wait_for_status(client, "later-1", "Created")["Description"] == "edited"
    client.start_inference_experiment(Name="later-1")
    wait_for_status(client, "later-1", "Running", timeout=3)
    client.stop_inference_experiment(
        Name="later-1", ModelVariantActions={"shadow": "Remove"}, DesiredState="Cancelled"
    )
    wait_for_status(client, "later-1", "Cancelled", timeout=3)
    client.delete_inference_experiment(Name="later-1")
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_inference_experiment(Name="later-1")


# -- every error code arrives as what boto3 users catch ----------------------------------------


def test_conflict_exception_is_client_exceptions_conflict_exception(
    client: Any, create_request: Any, wait_for_status: Any
) -> None:
    client.create_inference_experiment(
        **create_request("conflict-1", Schedule={"StartTime": FUTURE})
    )
    wait_for_status(client, "conflict-1", "Created", timeout=3)
    with pytest.raises(client.exceptions.ConflictException) as caught:
        client.stop_inference_experiment(
            Name="conflict-1", ModelVariantActions={"shadow": "Remove"}
        )
    assert error_of(caught) == ("ConflictException", 400)
    assert "Running" in caught.value.response["Error"]["Message"]
    assert client.describe_inference_experiment(Name="conflict-1")["Status"] == "Created"


def test_resource_not_found_is_client_exceptions_resource_not_found(client: Any) -> None:
    calls: tuple[Callable[[], object], ...] = (
        lambda: client.describe_inference_experiment(Name="absent"),
        lambda: client.start_inference_experiment(Name="absent"),
        lambda: client.stop_inference_experiment(
            Name="absent", ModelVariantActions={"a": "Retain"}
        ),
        lambda: client.delete_inference_experiment(Name="absent"),
    )
    for call in calls:
        with pytest.raises(client.exceptions.ResourceNotFound) as caught:
            call()
        assert error_of(caught) == ("ResourceNotFound", 400)


@pytest.mark.parametrize(
    ("operation", "kwargs", "field"),
    [
        ("describe_inference_experiment", {"Name": "not valid!"}, "name"),
        ("describe_inference_experiment", {"Name": "x" * 121}, "name"),
        ("stop_inference_experiment", {"Name": "a", "ModelVariantActions": {"b": "Explode"}}, ""),
        ("list_inference_experiments", {"MaxResults": 1000}, "maxResults"),
        ("list_inference_experiments", {"SortBy": "Color"}, "sortBy"),
        ("list_inference_experiments", {"NextToken": "tampered"}, ""),
    ],
)
def test_bad_input_is_a_client_error_with_validation_exception(
    client: Any, operation: str, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(client, operation)(**kwargs)
    assert error_of(caught) == ("ValidationException", 400)
    message = caught.value.response["Error"]["Message"]
    assert "validation error" in message.lower() or "token" in message.lower()
    assert field.lower() in message.lower()


def test_resource_in_use_is_client_exceptions_resource_in_use(
    client: Any, create_request: Any
) -> None:
    client.create_inference_experiment(**create_request("taken-1"))
    with pytest.raises(client.exceptions.ResourceInUse) as caught:
        client.create_inference_experiment(**create_request("taken-1"))
    assert error_of(caught) == ("ResourceInUse", 400)
    with pytest.raises(client.exceptions.ResourceInUse):
        client.create_inference_experiment(**create_request("taken-2", endpoint="ep-taken-1"))


def test_resource_limit_exceeded_is_client_exceptions_resource_limit_exceeded(
    start_server: Any, client_for: Any, create_request: Any
) -> None:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0, max_live_experiments=1)
    client = client_for(start_server(LifecycleApp(service, Reconciler(service))).url)
    client.create_inference_experiment(**create_request("limit-1"))
    with pytest.raises(client.exceptions.ResourceLimitExceeded) as caught:
        client.create_inference_experiment(**create_request("limit-2"))
    assert error_of(caught) == ("ResourceLimitExceeded", 400)


def test_a_body_over_one_mebibyte_reaches_boto3_as_413_request_entity_too_large(
    client: Any, create_request: Any
) -> None:
    with pytest.raises(ClientError) as caught:
        client.create_inference_experiment(**create_request("huge-1", Description="x" * 1_100_000))
    assert error_of(caught) == ("RequestEntityTooLarge", 413)
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_inference_experiment(Name="huge-1")


def test_wire_errors_arrive_with_their_status_code_and_request_id(server: Any) -> None:
    cases = [
        ({"body": b"[1, 2]"}, 400, "SerializationException"),
        ({"body": b"{nope"}, 400, "SerializationException"),
        ({"body": b"{}", "content_type": "text/plain"}, 400, "SerializationException"),
        ({"body": b"{}", "target": "SageMaker.CreateEndpoint"}, 400, "UnknownOperationException"),
        ({"body": b"{}", "target": None}, 400, "UnknownOperationException"),
        ({"body": b'{"Name": 5}'}, 400, "ValidationException"),
        ({"body": b'{"Name": "a", "Extra": 1}'}, 400, "ValidationException"),
        ({"body": b"{}", "method": "GET"}, 405, "UnknownOperationException"),
    ]
    for kwargs, status, code in cases:
        got_status, headers, body = raw(server.port, **kwargs)  # type: ignore[arg-type]
        assert (got_status, headers["x-amzn-errortype"]) == (status, code), kwargs
        assert json.loads(body)["__type"] == code
        assert json.loads(body)["Message"]
        assert headers["x-amzn-requestid"]


def test_a_success_carries_the_request_id_and_epoch_second_timestamps(
    server: Any, client: Any, create_request: Any
) -> None:
    client.create_inference_experiment(**create_request("epoch-1"))
    status, headers, body = raw(server.port, b'{"Name": "epoch-1"}')
    assert status == 200
    assert headers["x-amzn-requestid"]
    assert headers["content-type"] == JSON11
    described = json.loads(body)
    assert isinstance(described["CreationTime"], int | float)
    assert abs(described["CreationTime"] - time.time()) < 60


def test_a_chunked_body_over_one_mebibyte_is_413(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: SageMaker.DescribeInferenceExperiment\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 65536
        for _ in range(17):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"RequestEntityTooLarge" in reply


def test_a_declared_huge_body_is_refused_without_reading_it(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: SageMaker.DescribeInferenceExperiment\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")


# -- the ListInferenceExperiments paginator ---------------------------------------------------


@pytest.fixture
def many(start_server: Any, client_for: Any, create_request: Any) -> tuple[Any, list[str]]:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0, max_live_experiments=1000)
    client = client_for(start_server(LifecycleApp(service, Reconciler(service))).url)
    names = [f"page-{i:03d}" for i in range(300)]
    for name in names:
        client.create_inference_experiment(**create_request(name))
    deadline = time.monotonic() + 10
    while (statuses := Counter(s["Status"] for s in _all(client))).keys() != {"Running"}:
        assert time.monotonic() < deadline, f"not all Running after 10s: {dict(statuses)}"
        time.sleep(0.05)  # Status sort keys settle
    return client, names


#: more pages than a walk of these tests needs: past it, the NextTokens never end
MAX_PAGES = 100


def _pages(pages: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The paginator's pages, failing past :data:`MAX_PAGES`."""
    for count, page in enumerate(pages, 1):
        assert count <= MAX_PAGES, f"still a NextToken after {MAX_PAGES} pages"
        yield page


def _all(client: Any) -> list[dict[str, Any]]:
    paginator = client.get_paginator("list_inference_experiments")
    return [item for page in _pages(paginator.paginate()) for item in page["InferenceExperiments"]]


@pytest.mark.parametrize(
    "sort",
    [{}, {"SortBy": "Name", "SortOrder": "Ascending"}, {"SortBy": "Status"}],
)
def test_the_paginator_walks_hundreds_with_no_skip_or_repeat(
    many: tuple[Any, list[str]], create_request: Any, sort: dict[str, str]
) -> None:
    client, names = many
    paginator = client.get_paginator("list_inference_experiments")
    seen: list[str] = []
    extra = 0
    pages = paginator.paginate(NameContains="page-", PaginationConfig={"PageSize": 37}, **sort)
    for page in _pages(pages):
        seen.extend(item["Name"] for item in page["InferenceExperiments"])
        assert all("Arn" not in item for item in page["InferenceExperiments"])
        if sort.get("SortBy") != "Status":  # Status changes while the reconciler runs
            extra += 1
            client.create_inference_experiment(**create_request(f"zz-new-{extra}-{len(sort)}"))
    assert len(seen) == len(set(seen)), "a repeat"
    assert set(names) <= set(seen), f"skipped: {sorted(set(names) - set(seen))[:5]}"
    if sort.get("SortBy") == "Name":
        assert seen == sorted(seen)


def test_a_next_token_used_with_other_filters_is_a_validation_exception(
    many: tuple[Any, list[str]],
) -> None:
    client, _ = many
    token = client.list_inference_experiments(MaxResults=5)["NextToken"]
    with pytest.raises(ClientError) as caught:
        client.list_inference_experiments(MaxResults=5, NextToken=token, NameContains="page-1")
    assert error_of(caught) == ("ValidationException", 400)


# -- health, logging, the reconciler loop ----------------------------------------------------


def test_health_is_200_when_the_store_answers(server: Any) -> None:
    status, headers, body = raw(server.port, b"", method="GET", path="/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["x-amzn-requestid"]


def test_health_is_liveness_and_ready_is_503_when_the_store_cannot_take_a_write(
    start_server: Any,
) -> None:
    class DownStore(MemoryStore):
        def check_writable(self) -> None:
            raise StoreUnavailableError("cannot reach the database", kind="connection")

    service = ExperimentService(DownStore())
    running = start_server(LifecycleApp(service, Reconciler(service)))
    status, _, body = raw(running.port, b"", method="GET", path="/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})  # the process is up
    status, headers, body = raw(running.port, b"", method="GET", path="/ready")
    assert status == 503
    assert headers["retry-after"] == "1"
    assert json.loads(body) == {"status": "unavailable", "message": "cannot reach the database"}


def test_ready_is_200_when_the_store_takes_a_write(server: Any) -> None:
    status, _, body = raw(server.port, b"", method="GET", path="/ready")
    assert (status, json.loads(body)) == (200, {"status": "ready"})


def test_one_log_line_per_request_with_operation_name_outcome_and_milliseconds(
    server: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle.server")
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_inference_experiment(Name="logged-1")
    records = [
        r
        for r in caplog.records
        if r.name == "lifecycle.server" and getattr(r, "fields", {}).get("name") == "logged-1"
    ]
    assert len(records) == 1
    fields = records[0].fields  # type: ignore[attr-defined]
    assert fields["op"] == "DescribeInferenceExperiment"
    assert (fields["outcome"], fields["status"]) == ("ResourceNotFound", 400)
    assert fields["ms"] >= 0
    assert fields["client"].startswith("127.0.0.1:")
    assert len(fields["id"]) == 36  # the x-amzn-RequestId the client got
    line = TextFormatter().format(records[0])
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO lifecycle.server request ", line)
    assert (
        "op=DescribeInferenceExperiment name=logged-1 outcome=ResourceNotFound "
        "rule=experiment-exists status=400 ms="
    ) in line


def test_the_reconciler_loop_runs_in_a_worker_thread_and_stops_on_shutdown(
    start_server: Any,
) -> None:
    threads: set[str] = set()
    passes = threading.Event()

    class Probe:
        calls = 0

        def run_once(self) -> int:
            threads.add(threading.current_thread().name)
            Probe.calls += 1
            if Probe.calls >= 5:
                passes.set()
            return 0

    service = ExperimentService(MemoryStore())
    app = LifecycleApp(service, Probe(), tick_seconds=0.01)
    running = start_server(app)
    assert passes.wait(5)
    running.stop()
    calls = Probe.calls
    time.sleep(0.1)
    assert Probe.calls == calls, "no pass after shutdown"
    assert all(name.startswith("lifecycle-reconciler") for name in threads)
    assert app.reconciler_passes == calls


def test_a_failing_reconciler_pass_is_logged_once_and_the_loop_goes_on(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle.server")
    recovered = threading.Event()

    class Flaky:
        calls = 0

        def run_once(self) -> int:
            Flaky.calls += 1
            if Flaky.calls <= 5:
                raise RuntimeError("store is down")
            recovered.set()
            return 0

    service = ExperimentService(MemoryStore())
    running = start_server(LifecycleApp(service, Flaky(), tick_seconds=0.01))
    assert recovered.wait(5)
    running.stop()
    failures = [r for r in caplog.records if r.getMessage() == "reconciler pass failed"]
    assert len(failures) == 1
    assert any("succeed again" in r.getMessage() for r in caplog.records)


def test_a_client_that_leaves_mid_body_changes_nothing(
    server: Any, service: ExperimentService, create_request: Any
) -> None:
    body = json.dumps(create_request("half-1")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: SageMaker.CreateInferenceExperiment\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body) + 10, body)
        )
    time.sleep(0.3)
    assert service.store.get(ACCOUNT, "half-1") is None
    status, _, _ = raw(server.port, b'{"Name": "half-1"}')
    assert status == 400  # ResourceNotFound, and the server still answers


def test_requests_can_run_in_worker_threads_for_stores_that_wait_on_a_network(
    start_server: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0)
    app = LifecycleApp(service, Reconciler(service), offload=True)
    client = client_for(start_server(app).url)
    client.create_inference_experiment(**create_request("offload-1"))
    wait_for_status(client, "offload-1", "Running", timeout=3)
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_inference_experiment(Name="offload-2")


# -- what a boto3 program does with what it reads back (SPEC §1 "Times", §5) ---------------


def test_a_schedule_read_with_describe_is_sent_back_unchanged_while_running(
    client: Any, create_request: Any, wait_for_status: Any
) -> None:
    client.create_inference_experiment(**create_request("rmw-1"))
    described = wait_for_status(client, "rmw-1", "Running", timeout=3)
    client.update_inference_experiment(
        Name="rmw-1", Schedule=described["Schedule"], Description="read, modified, written"
    )
    assert client.describe_inference_experiment(Name="rmw-1")["Status"] in ("Updating", "Running")


def test_creation_time_after_an_experiments_own_creation_time_leaves_it_out(
    client: Any, create_request: Any
) -> None:
    client.create_inference_experiment(**create_request("after-1"))
    created = client.describe_inference_experiment(Name="after-1")["CreationTime"]
    names = [
        s["Name"]
        for s in client.list_inference_experiments(CreationTimeAfter=created)[
            "InferenceExperiments"
        ]
    ]
    assert "after-1" not in names


def test_a_start_time_whose_end_passes_year_9999_is_refused_and_list_stays_readable(
    client: Any, create_request: Any
) -> None:
    last = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    with pytest.raises(ClientError) as caught:
        client.create_inference_experiment(**create_request("far-1", Schedule={"StartTime": last}))
    assert error_of(caught) == ("ValidationException", 400)
    assert (
        caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-lifecycle-rule"]
        == "schedule-in-range"
    )
    client.list_inference_experiments()  # every client can still read every page


def test_boto3_sees_the_rule_that_refused_a_request(
    client: Any, create_request: Any, wait_for_status: Any
) -> None:
    client.create_inference_experiment(**create_request("rule-1"))
    wait_for_status(client, "rule-1", "Running", timeout=3)
    with pytest.raises(client.exceptions.ConflictException) as caught:
        client.stop_inference_experiment(Name="rule-1", ModelVariantActions={"prod": "Promote"})
    assert (
        caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-lifecycle-rule"]
        == "promote-shadow-only"
    )
    assert set(caught.value.response["Error"]) == {"Code", "Message"}


def test_a_token_signed_with_the_secret_but_not_issued_is_a_validation_error_not_a_500(
    start_server: Any, client_for: Any
) -> None:

    import base64
    import hashlib
    import hmac

    service = ExperimentService(MemoryStore(), token_secret=b"a known secret for this test")
    server = start_server(LifecycleApp(service))
    client = client_for(server.url)
    for body in (b"x", b"[1,2,3]", b'[["abc","e1"],{}]', b"[[1.0,5],{}]"):
        sig = base64.urlsafe_b64encode(
            hmac.digest(b"a known secret for this test", body, hashlib.sha256)[:18]
        )
        token = base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + sig.decode()
        with pytest.raises(ClientError) as caught:
            client.list_inference_experiments(NextToken=token)
        assert error_of(caught) == ("ValidationException", 400)
