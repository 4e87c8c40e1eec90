"""LifecycleApp inside a host app: under a prefix (both of Starlette's ways with the path), the
host's lifespan running the reconciler, the request log under the host's logging."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fastapi import FastAPI

from lifecycle.http.app import LifecycleApp
from lifecycle.http.sigv4 import SigV4Verifier
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio

KEY, SECRET = "AKIDLIFECYCLEHOST", "host-secret-for-the-mounted-app"
LIST = "SageMaker.ListInferenceExperiments"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def new_app(**kwargs: Any) -> LifecycleApp:
    service = ExperimentService(MemoryStore())
    return LifecycleApp(service, Reconciler(service), tick_seconds=0.01, **kwargs)


async def asgi(
    app: LifecycleApp, method: str, path: str, root_path: str = "", target: str = LIST
) -> tuple[int, dict[str, Any]]:
    """One request through the ASGI interface, as a host hands it on: status and JSON body."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [
            (b"x-amz-target", target.encode()),
            (b"content-type", b"application/x-amz-json-1.1"),
        ],
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"] or b"{}")


# -- the prefix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/sagemaker/",  # Starlette 0.33 and later: the prefix stays in path
        "/",  # earlier Starlette: the prefix stripped
        "/sagemaker",  # the bare prefix, where boto3 posts (mount_on routes it)
    ],
)
async def test_the_api_answers_under_the_prefix_either_way(path: str) -> None:
    status, body = await asgi(new_app(), "POST", path, root_path="/sagemaker")
    assert (status, body) == (200, {"InferenceExperiments": []})


@pytest.mark.parametrize("path", ["/sagemaker/health", "/health"])
async def test_health_answers_under_the_prefix_either_way(path: str) -> None:
    assert await asgi(new_app(), "GET", path, root_path="/sagemaker") == (200, {"status": "ok"})


async def test_a_wrong_path_under_the_prefix_is_named_with_the_prefix() -> None:
    status, body = await asgi(new_app(), "POST", "/sagemaker/other", root_path="/sagemaker")
    assert status == 404
    assert body["Message"] == "no such path '/sagemaker/other'; requests go to POST /sagemaker/"
    status, body = await asgi(new_app(), "GET", "/sagemaker/", root_path="/sagemaker")
    assert (status, body["Message"]) == (405, "method GET is not allowed; use POST /sagemaker/")


async def test_without_a_prefix_only_the_root_is_the_api() -> None:
    assert (await asgi(new_app(), "POST", "/"))[0] == 200
    status, body = await asgi(new_app(), "POST", "/sagemaker")
    assert (status, body["__type"]) == (404, "UnknownOperationException")


@pytest.fixture
def mounted(start_server: Any) -> tuple[Any, LifecycleApp]:
    """FastAPI with the app under /sagemaker (SigV4 on), the reconciler in FastAPI's lifespan."""
    app = new_app(auth=SigV4Verifier({KEY: SECRET}))
    host = FastAPI(lifespan=app.lifespan)
    app.mount_on(host, "/sagemaker")

    @host.get("/")
    def index() -> dict[str, str]:
        return {"host": "yes"}

    return start_server(app, host), app


@pytest.mark.parametrize("suffix", ["/sagemaker", "/sagemaker/"])
def test_boto3_signed_is_served_under_the_prefix_and_the_reconciler_runs(
    mounted: tuple[Any, LifecycleApp],
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
    suffix: str,
) -> None:
    running, app = mounted
    client = client_for(running.url + suffix, aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    client.create_inference_experiment(**create_request("mounted"))
    wait_for_status(client, "mounted", "Running")  # FastAPI's lifespan entered app.lifespan
    assert app.reconciler_passes > 0
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    try:
        connection.request("GET", "/")
        assert json.loads(connection.getresponse().read()) == {"host": "yes"}  # the host's route
        connection.request("GET", "/sagemaker/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_the_change_feed_under_the_prefix_checks_the_path_the_client_signed(
    mounted: tuple[Any, LifecycleApp], client_for: Any, create_request: Any
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    running, _ = mounted
    client = client_for(
        running.url + "/sagemaker", aws_access_key_id=KEY, aws_secret_access_key=SECRET
    )
    client.create_inference_experiment(**create_request("fed"))

    def get(path: str, signed_path: str) -> tuple[int, dict[str, Any]]:
        request = AWSRequest(method="GET", url=f"{running.url}{signed_path}?after=0")
        SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        try:
            connection.request("GET", f"{path}?after=0", headers=dict(request.headers.items()))
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    status, page = get("/sagemaker/events", "/sagemaker/events")
    assert status == 200 and page["Events"][0]["detail"]["Name"] == "fed"
    status, body = get("/sagemaker/events", "/events")  # signed without the prefix
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_a_wrong_signature_under_the_prefix_is_refused(
    mounted: tuple[Any, LifecycleApp], client_for: Any
) -> None:
    running, _ = mounted
    client = client_for(
        running.url + "/sagemaker", aws_access_key_id=KEY, aws_secret_access_key="wrong"
    )
    with pytest.raises(ClientError) as caught:
        client.list_inference_experiments()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_plain_mount_serves_boto3_at_the_prefix_with_its_slash(
    start_server: Any, client_for: Any
) -> None:
    app = new_app()
    host = FastAPI()
    host.mount("/sagemaker", app)
    running = start_server(app, host)
    listed = client_for(running.url + "/sagemaker/").list_inference_experiments()
    assert listed["InferenceExperiments"] == []
    # the bare prefix is the host's redirect, which boto3 does not follow: why mount_on exists
    with pytest.raises(ClientError) as caught:
        client_for(running.url + "/sagemaker").list_inference_experiments()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 307


# -- the lifespan hook ----------------------------------------------------------------------------


async def test_the_lifespan_hook_runs_the_reconciler_while_it_lasts() -> None:
    app = new_app()
    async with app.lifespan():
        await asyncio.sleep(0.1)
        passes = app.reconciler_passes
        assert passes > 0
    assert app._loop_task is None  # stopped when the block ended
    await asyncio.sleep(0.05)
    assert app.reconciler_passes == passes


async def test_the_hook_leaves_a_loop_it_did_not_start_running() -> None:
    app = new_app()
    app.start_reconciler()  # as the ASGI lifespan events do when the app is served on its own
    async with app.lifespan():
        pass
    assert app._loop_task is not None and not app._loop_task.done()
    await app.stop_reconciler()


# -- logging ----------------------------------------------------------------------------------


def test_the_request_log_goes_to_the_hosts_logging_and_the_app_adds_no_handler(
    mounted: tuple[Any, LifecycleApp], client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle")
    running, _ = mounted
    client = client_for(
        running.url + "/sagemaker", aws_access_key_id=KEY, aws_secret_access_key=SECRET
    )
    client.list_inference_experiments()
    lines = [r.getMessage() for r in caplog.records if r.name == "lifecycle.server"]
    assert any(
        line.startswith("request op=ListInferenceExperiments outcome=OK status=200")
        and line.endswith(f"key={KEY}")
        for line in lines
    )
    ours = {
        name: logger
        for name, logger in logging.root.manager.loggerDict.items()
        if name.split(".")[0] == "lifecycle" and isinstance(logger, logging.Logger)
    }
    assert "lifecycle.server" in ours
    # no handler that writes anywhere: at most the library's NullHandler, and every one propagates
    assert all(
        all(type(h) is logging.NullHandler for h in logger.handlers) and logger.propagate
        for logger in ours.values()
    )
