"""mock_sagemaker() beside moto's mock_aws(): one boto3 client, each mock answering its own
operations, in either nesting order, as decorators and as context managers."""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import botocore.session
import moto.core.models
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import patch_client
from moto.sagemaker.models import sagemaker_backends
from moto.server import ThreadedMotoServer

from lifecycle.testing import (
    MockSageMaker,
    NotEmulatedError,
    create_payload,
    mock_sagemaker,
    pytest_plugin,
)
from lifecycle.testing._world import World

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:latest"}
OTHER_ACCOUNT = "111111111111"
STUBBER_CALL = type(moto.core.models.botocore_stubber).__call__
CREATE_CLIENT = botocore.session.Session.create_client
MAKE_API_CALL = botocore.client.BaseClient._make_api_call

#: the plugin's fixture, here too so these tests run before its entry point is installed
sagemaker_mock = pytest_plugin.sagemaker_mock

Nesting = Callable[..., contextlib.AbstractContextManager[MockSageMaker]]


@contextlib.contextmanager
def moto_outside(**options: Any) -> Iterator[MockSageMaker]:
    with mock_aws(), mock_sagemaker(**options) as mock:
        yield mock


@contextlib.contextmanager
def moto_inside(**options: Any) -> Iterator[MockSageMaker]:
    with mock_sagemaker(**options) as mock, mock_aws():
        yield mock


NESTINGS = pytest.mark.parametrize(
    "both", [moto_outside, moto_inside], ids=["mock_aws-outside", "mock_aws-inside"]
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No credentials, region or moto account of the environment's own; after each test
    nothing of either mock is left on botocore or moto."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    yield
    assert type(moto.core.models.botocore_stubber).__call__ is STUBBER_CALL
    assert botocore.session.Session.create_client is CREATE_CLIENT
    assert botocore.client.BaseClient._make_api_call is MAKE_API_CALL
    assert not moto.core.models.botocore_stubber.enabled


def sagemaker(**kwargs: Any) -> Any:
    return boto3.client("sagemaker", region_name=REGION, **kwargs)


def endpoint_in_moto(sm: Any, endpoint: str = "ep", models: tuple[str, ...] = ("model-a",)) -> None:
    """What a suite using moto already does: models, an endpoint config, an endpoint."""
    for model in models:
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
    sm.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-config",
        ProductionVariants=[
            {
                "VariantName": "prod",
                "ModelName": models[0],
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-config")


def other_account_client(service: str = "sagemaker") -> Any:
    """A client with credentials moto issues in OTHER_ACCOUNT (moto's documented way:
    sts.assume_role into a role of that account)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/tester", RoleSessionName="tests"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def rule_of(err: ClientError) -> str:
    return str(err.response["ResponseMetadata"]["HTTPHeaders"].get("x-lifecycle-rule"))


# -- one client, each mock its own operations -------------------------------------------


@NESTINGS
def test_one_client_is_answered_by_moto_and_by_the_mock_each_for_its_own(both: Nesting) -> None:
    with both() as mock:
        sm = sagemaker()
        endpoint_in_moto(sm, models=("model-a", "model-b"))
        assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"
        created = sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert created["InferenceExperimentArn"] == (
            "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/exp"
        )
        assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
        assert {m["ModelName"] for m in sm.list_models()["Models"]} == {"model-a", "model-b"}
        # another service's client, made inside both: moto's alone
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["bucket"]
        assert [op for op, _ in mock.calls] == [
            "CreateInferenceExperiment",
            "DescribeInferenceExperiment",
        ]
        assert len(mock.store) == 1
        # moto holds what it answered, and nothing of the mock's
        moto_sagemaker = sagemaker_backends["123456789012"][REGION]
        assert set(moto_sagemaker.endpoints) == {"ep"}
        with pytest.raises(ClientError) as moto_error:
            sm.describe_model(ModelName="nope")
        assert moto_error.value.response["Error"]["Code"] == "ValidationException"


def moto_scenario(sm: Any, sqs: Any) -> list[Any]:
    """Operations moto answers, and what they return with the times and ids taken out."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: plain(v)
                for k, v in value.items()
                if k not in ("ResponseMetadata", "CreationTime", "LastModifiedTime")
            }
        if isinstance(value, list):
            return [plain(v) for v in value]
        return "<time>" if isinstance(value, datetime.datetime) else value

    seen: list[Any] = []
    endpoint_in_moto(sm, models=("model-a", "model-b"))
    seen.append(plain(sm.describe_endpoint(EndpointName="ep")))
    seen.append(plain(sm.describe_model(ModelName="model-b")))
    seen.append(plain(sm.list_endpoint_configs()))
    sm.delete_model(ModelName="model-b")
    calls: list[Callable[[], Any]] = [
        lambda: sm.delete_model(ModelName="model-b"),
        lambda: sm.list_clusters(),
    ]
    for call in calls:
        try:
            seen.append(plain(call()))
        except ClientError as err:
            seen.append(err.response["Error"])
        except NotImplementedError as err:
            seen.append(f"NotImplementedError: {err}")
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="one")
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    seen.append({k: v for k, v in attributes.items() if not k.endswith("Timestamp")})
    return seen


@NESTINGS
def test_every_other_operation_is_answered_as_moto_alone_answers_it(both: Nesting) -> None:
    with mock_aws():
        alone = moto_scenario(sagemaker(), boto3.client("sqs", region_name=REGION))
    with both():
        beside = moto_scenario(sagemaker(), boto3.client("sqs", region_name=REGION))
    assert beside == alone
    assert "ApproximateNumberOfMessages" in alone[-1]
    assert alone[-1]["ApproximateNumberOfMessages"] == "1"  # sent once, not once per handler


def test_without_moto_active_other_operations_still_raise_not_emulated() -> None:
    with mock_sagemaker():
        sm = sagemaker()
        with mock_aws():
            sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
        # moto is imported but no longer active: the mock alone, as without moto
        with pytest.raises(NotEmulatedError, match="'DescribeModel' is not emulated") as caught:
            sm.describe_model(ModelName="m")
        assert "moto's mock_aws()" in str(caught.value)  # what would answer it
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())


def test_beside_moto_in_server_mode_other_operations_raise_not_emulated() -> None:
    """moto's server (moto_server, ThreadedMotoServer) is not composed with: a client that
    points at it is the mock's alone, as without moto, and nothing reaches the server."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        with mock_sagemaker() as mock:
            sm = sagemaker(endpoint_url=url, aws_access_key_id="a", aws_secret_access_key="b")
            sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
            with pytest.raises(NotEmulatedError, match="'CreateModel' is not emulated"):
                sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
            assert len(mock.store) == 1
        models = sagemaker(endpoint_url=url, aws_access_key_id="a", aws_secret_access_key="b")
        assert models.list_models()["Models"] == []
    finally:
        server.stop()


@NESTINGS
def test_moto_runs_each_of_its_operations_once_and_none_of_the_mocks(
    both: Nesting, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber = moto.core.models.botocore_stubber
    asked: list[str] = []
    process = stubber.process_request

    def counting(request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        asked.append(target.decode() if isinstance(target, bytes) else str(target))
        return process(request)

    monkeypatch.setattr(stubber, "process_request", counting)
    with both():
        sm = sagemaker()
        patch_client(sm)  # moto's own re-patching finds its handler there already
        sm.create_model(ModelName="model-a", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        sm.list_inference_experiments()
        sm.describe_model(ModelName="model-a")
    assert asked == ["SageMaker.CreateModel", "SageMaker.DescribeModel"]


@pytest.mark.parametrize("order", ["mock_aws-outside", "mock_aws-inside"])
def test_both_restore_botocore_and_moto_on_exit_even_when_the_test_fails(order: str) -> None:
    both = moto_outside if order == "mock_aws-outside" else moto_inside

    def failing_test() -> None:
        with both():
            sagemaker().create_inference_experiment(Name="e", EndpointName="ep", **create_payload())
            assert type(moto.core.models.botocore_stubber).__call__ is not STUBBER_CALL
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_test()
    # the autouse fixture checks moto's stubber and botocore's create_client; a client
    # made now is moto's alone again, with its NotImplementedError
    with mock_aws(), pytest.raises(NotImplementedError):
        sagemaker().create_inference_experiment(Name="e", EndpointName="ep", **create_payload())


def test_nested_mocks_beside_moto_each_keep_their_own_clients() -> None:
    with mock_aws(), mock_sagemaker() as outer:
        outer_client = sagemaker()
        with mock_sagemaker() as inner:
            inner_client = sagemaker()
            inner_client.create_inference_experiment(
                Name="in", EndpointName="ep", **create_payload()
            )
            inner_client.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
        outer_client.create_inference_experiment(Name="out", EndpointName="ep", **create_payload())
        # the inner mock has ended: its client still reaches moto, and says so for the rest
        assert inner_client.describe_model(ModelName="m")["ModelName"] == "m"
        with pytest.raises(RuntimeError, match="has ended"):
            inner_client.list_inference_experiments()
        assert [
            s["Name"] for s in outer_client.list_inference_experiments()["InferenceExperiments"]
        ] == ["out"]
    assert [e for e, _ in inner.calls] == ["CreateInferenceExperiment"]
    assert len(outer.store) == 1


# -- clients made before the mocks, and mocks entered in fixtures --------------------------


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's documented fixture: dummy credentials, so no client looks for real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def moto_sagemaker_client(aws_credentials: None) -> Iterator[Any]:
    """A SageMaker client as moto's documentation writes the fixture: made under mock_aws()."""
    with mock_aws():
        yield sagemaker()


@pytest.fixture
def both_mocks(aws_credentials: None) -> Iterator[MockSageMaker]:
    """Both mocks entered in a fixture, the test making its clients."""
    with mock_aws(), mock_sagemaker(settle=60) as mock:
        yield mock


@NESTINGS
@pytest.mark.usefixtures("aws_credentials")
def test_a_client_made_before_both_mocks_is_answered_by_each_for_its_own(both: Nesting) -> None:
    sm = sagemaker()  # moto is imported: the client carries moto's stubber, not yet the mock
    s3 = boto3.client("s3", region_name=REGION)
    with both(check_endpoints=True) as mock:
        endpoint_in_moto(sm, models=("model-a", "model-b"))
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
        # check_endpoints asks moto through that same client
        with pytest.raises(sm.exceptions.ResourceNotFound) as refused:
            sm.create_inference_experiment(Name="two", EndpointName="elsewhere", **create_payload())
        assert rule_of(refused.value) == "endpoint-exists"
        s3.create_bucket(Bucket="bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["bucket"]
        assert [op for op, _ in mock.calls] == [
            "CreateInferenceExperiment",
            "DescribeInferenceExperiment",
            "CreateInferenceExperiment",
        ]
        assert len(mock.store) == 1
    # both have ended: the client is moto's alone again, as it was before
    with mock_aws(), pytest.raises(NotImplementedError):
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())


@pytest.mark.sagemaker_mock(settle=60, check_endpoints=True)
def test_a_moto_client_fixture_beside_the_sagemaker_mock_fixture(
    moto_sagemaker_client: Any, sagemaker_mock: MockSageMaker
) -> None:
    sm = moto_sagemaker_client  # made before the mock fixture was entered
    endpoint_in_moto(sm, models=("model-a", "model-b"))
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    sagemaker_mock.advance(120)
    assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
    sm.stop_inference_experiment(Name="exp", ModelVariantActions={"shadow": "Promote"})
    sagemaker_mock.advance(60)
    assert sm.describe_inference_experiment(Name="exp")["Status"] == "Completed"
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"


def test_both_mocks_entered_in_a_fixture(both_mocks: MockSageMaker) -> None:
    sm = sagemaker()
    endpoint_in_moto(sm)
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    both_mocks.advance(120)
    assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
    assert MockSageMaker.current() is both_mocks
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["model-a"]


@pytest.mark.usefixtures("aws_credentials")
def test_a_client_made_before_nested_mocks_is_answered_by_the_innermost_while_it_lasts() -> None:
    sm = sagemaker()
    with mock_aws(), mock_sagemaker() as outer:
        with mock_sagemaker() as inner:
            sm.create_inference_experiment(Name="in", EndpointName="ep", **create_payload())
        sm.create_inference_experiment(Name="out", EndpointName="ep", **create_payload())
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["m"]
    assert [op for op, _ in inner.calls] == ["CreateInferenceExperiment"]
    assert [op for op, _ in outer.calls] == ["CreateInferenceExperiment"]
    assert outer.world.record("out") is not None
    assert inner.world.record("in") is not None


# -- decorators ------------------------------------------------------------------------


@mock_aws
@mock_sagemaker
def moto_outside_decorated() -> tuple[str, int]:
    sm = sagemaker()
    endpoint_in_moto(sm)
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    return sm.describe_inference_experiment(Name="exp")["Status"], len(sm.list_models()["Models"])


@mock_sagemaker(settle=60)
@mock_aws
def moto_inside_decorated() -> tuple[str, int]:
    sm = sagemaker()
    endpoint_in_moto(sm)
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    MockSageMaker.current().advance(120)  # Creating, then Starting
    return sm.describe_inference_experiment(Name="exp")["Status"], len(sm.list_models()["Models"])


@pytest.mark.parametrize(
    "decorated", [moto_outside_decorated, moto_inside_decorated], ids=["aws-outer", "aws-inner"]
)
def test_as_decorators_in_either_order_and_each_call_starts_afresh(
    decorated: Callable[[], tuple[str, int]],
) -> None:
    # twice: a second call meets neither the first call's experiment nor its model
    assert decorated() == ("Running", 1)
    assert decorated() == ("Running", 1)


@mock_aws
@mock_sagemaker(settle=30)
def test_a_test_decorated_with_both(request: pytest.FixtureRequest) -> None:
    mock = MockSageMaker.current()
    assert mock.active and mock.world.service.settle_seconds == 30
    sm = sagemaker()
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
    assert sm.describe_inference_experiment(Name="exp")["Status"] == "Creating"
    assert request.node.name == "test_a_test_decorated_with_both"  # fixtures still reach it


@mock_aws
@pytest.mark.sagemaker_mock(settle=60)
def test_the_fixture_under_mock_aws(sagemaker_mock: MockSageMaker) -> None:
    sm = sagemaker()
    endpoint_in_moto(sm, models=("model-a", "model-b"))
    sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    sagemaker_mock.advance(120)
    assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
    assert MockSageMaker.current() is sagemaker_mock


def test_the_decorator_refuses_a_class_and_current_needs_an_active_mock() -> None:
    with pytest.raises(TypeError, match="plain functions"):
        mock_sagemaker(type("Tests", (), {}))
    with pytest.raises(RuntimeError, match="no mock_sagemaker"):
        MockSageMaker.current()


# -- check_endpoints ---------------------------------------------------------------------


@NESTINGS
def test_check_endpoints_is_off_by_default(both: Nesting) -> None:
    with both():
        sm = sagemaker()
        sm.create_inference_experiment(Name="exp", EndpointName="nowhere", **create_payload())
        assert (
            sm.describe_inference_experiment(Name="exp")["EndpointMetadata"]["EndpointName"]
            == "nowhere"
        )


@NESTINGS
def test_check_endpoints_accepts_an_endpoint_and_models_moto_has(both: Nesting) -> None:
    with both(check_endpoints=True) as mock:
        sm = sagemaker()
        endpoint_in_moto(sm, models=("model-a", "model-b"))
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert sm.describe_inference_experiment(Name="exp")["Status"] == "Running"
        assert len(mock.store) == 1


@NESTINGS
def test_check_endpoints_refuses_what_moto_does_not_have(both: Nesting) -> None:
    with both(check_endpoints=True) as mock:
        sm = sagemaker()
        with pytest.raises(sm.exceptions.ResourceNotFound) as no_endpoint:
            sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert rule_of(no_endpoint.value) == "endpoint-exists"
        assert "EndpointName: endpoint 'ep' does not exist in moto's account 123456789012" in str(
            no_endpoint.value
        )
        endpoint_in_moto(sm, models=("model-a",))  # model-b, the shadow's, is missing
        with pytest.raises(sm.exceptions.ResourceNotFound) as no_model:
            sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert rule_of(no_model.value) == "model-exists"
        assert "ModelVariants[1].ModelName: model 'model-b' of variant 'shadow'" in str(
            no_model.value
        )
        sm.create_model(ModelName="model-b", ExecutionRoleArn=ROLE, PrimaryContainer=IMAGE)
        # moto's endpoints are InService at once; one being updated is not yet ready
        sagemaker_backends["123456789012"][REGION].endpoints["ep"].endpoint_status = "Updating"
        with pytest.raises(sm.exceptions.ResourceNotFound) as updating:
            sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert rule_of(updating.value) == "endpoint-in-service"
        assert "endpoint 'ep' is Updating, not InService" in str(updating.value)
        assert len(mock.store) == 0  # nothing refused was stored
        sagemaker_backends["123456789012"][REGION].endpoints["ep"].endpoint_status = "InService"
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert len(mock.store) == 1


@NESTINGS
def test_with_check_endpoints_the_engines_own_refusals_come_first(both: Nesting) -> None:
    with both(check_endpoints=True):
        sm = sagemaker()
        with pytest.raises(ClientError) as invalid:
            sm.create_inference_experiment(Name="bad name!", EndpointName="ep", **create_payload())
        assert invalid.value.response["Error"]["Code"] == "ValidationException"
        endpoint_in_moto(sm, models=("model-a", "model-b"))
        sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        with pytest.raises(sm.exceptions.ResourceInUse):
            sm.create_inference_experiment(Name="exp", EndpointName="gone", **create_payload())


def test_check_endpoints_without_moto_says_it_needs_moto() -> None:
    with mock_sagemaker(check_endpoints=True) as mock:
        with pytest.raises(RuntimeError, match=r"check_endpoints=True.*no moto mock_aws\(\)"):
            sagemaker().create_inference_experiment(
                Name="exp", EndpointName="ep", **create_payload()
            )
        assert len(mock.store) == 0


# -- moto's accounts ---------------------------------------------------------------------


@NESTINGS
def test_an_experiment_lives_in_the_moto_account_of_the_credentials(both: Nesting) -> None:
    with both() as mock:
        mine = sagemaker()
        mine.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        theirs = other_account_client()
        assert theirs.list_inference_experiments()["InferenceExperiments"] == []
        with pytest.raises(theirs.exceptions.ResourceNotFound):
            theirs.describe_inference_experiment(Name="exp")
        arn = theirs.create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload(Description="theirs")
        )["InferenceExperimentArn"]
        assert arn == f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:inference-experiment/exp"
        assert "Description" not in mine.describe_inference_experiment(Name="exp")
        assert theirs.describe_inference_experiment(Name="exp")["Description"] == "theirs"
        # moto agrees on whose the credentials are
        sts = other_account_client("sts")
        assert sts.get_caller_identity()["Account"] == OTHER_ACCOUNT
        assert set(mock.accounts) == {"123456789012", OTHER_ACCOUNT}
        assert (
            mock.account(OTHER_ACCOUNT).service.describe_inference_experiment(Name="exp")["Arn"]
            == arn
        )
        assert len(mock.store) == 1  # the mock's own account: the first experiment only


def test_moto_account_id_in_the_environment_places_the_experiment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    with mock_aws(), mock_sagemaker() as mock:
        monkeypatch.setenv("MOTO_ACCOUNT_ID", "222222222222")
        arn = sagemaker().create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload()
        )["InferenceExperimentArn"]
        assert ":222222222222:" in arn
        monkeypatch.delenv("MOTO_ACCOUNT_ID")
        assert sagemaker().list_inference_experiments()["InferenceExperiments"] == []
        assert len(mock.account("222222222222").store) == 1


def test_an_x_moto_account_id_header_places_the_experiment_where_moto_places_the_endpoint() -> None:
    def to_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = "333344445555"

    with mock_aws(), mock_sagemaker(check_endpoints=True) as mock:
        sm = sagemaker()
        sm.meta.events.register("before-sign.sagemaker", to_account)
        endpoint_in_moto(sm, models=("model-a", "model-b"))
        assert set(sagemaker_backends["333344445555"][REGION].endpoints) == {"ep"}
        arn = sm.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())[
            "InferenceExperimentArn"
        ]
        assert ":333344445555:" in arn
        assert len(mock.account("333344445555").store) == 1
        assert sagemaker().list_inference_experiments()["InferenceExperiments"] == []


def test_check_endpoints_asks_moto_in_the_requests_account() -> None:
    with mock_aws(), mock_sagemaker(check_endpoints=True):
        theirs = other_account_client()
        endpoint_in_moto(theirs, models=("model-a", "model-b"))
        with pytest.raises(ClientError) as not_mine:
            sagemaker().create_inference_experiment(
                Name="exp", EndpointName="ep", **create_payload()
            )
        assert rule_of(not_mine.value) == "endpoint-exists"
        arn = theirs.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())[
            "InferenceExperimentArn"
        ]
        assert f":{OTHER_ACCOUNT}:" in arn


def test_every_accounts_experiments_move_at_their_own_due_times() -> None:
    with mock_aws(), mock_sagemaker(settle=60, reconcile_on_request=False) as mock:
        sagemaker().create_inference_experiment(Name="a", EndpointName="ep", **create_payload())
        mock.advance(30)
        other_account_client().create_inference_experiment(
            Name="b", EndpointName="ep", **create_payload()
        )
        t0 = mock.now() - 30
        mock.advance(3600)

        def times(world: World, name: str) -> list[tuple[str, float]]:
            return [(h.event, h.time - t0) for h in world.history(name)]

        assert times(mock.world, "a") == [("create", 0), ("provisioned", 60), ("started", 120)]
        assert times(mock.account(OTHER_ACCOUNT), "b") == [
            ("create", 30),
            ("provisioned", 90),
            ("started", 150),
        ]


# -- moto stays optional ---------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_mock_imports_no_moto_and_finds_one_imported_after_it_started() -> None:
    result = run_python(
        """
        import sys
        import boto3
        from lifecycle.testing import create_payload, mock_sagemaker

        with mock_sagemaker():
            sm = boto3.client("sagemaker")
            sm.create_inference_experiment(Name="a", EndpointName="ep", **create_payload())
            assert not [m for m in sys.modules if m.split(".")[0] == "moto"], "moto imported"
            from moto import mock_aws
            from moto.core.models import BotocoreStubber

            own_call = BotocoreStubber.__call__
            with mock_aws():
                sm = boto3.client("sagemaker")  # made after moto's import: moto's too
                sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                                PrimaryContainer={"Image": "i"})
                sm.create_inference_experiment(Name="b", EndpointName="ep-b", **create_payload())
                assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["m"]
            print(sorted(e["Name"] for e in sm.list_inference_experiments()["InferenceExperiments"]))
        assert BotocoreStubber.__call__ is own_call, "moto's stubber is not given back"
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("\n")[0] == "['a', 'b']"


def test_beside_moto_a_mapped_access_key_wins_over_the_moto_account_of_its_credentials() -> None:
    with mock_aws(), mock_sagemaker(accounts={"AKIAMAPPED00000000": "222233334444"}) as mock:
        mapped = sagemaker(aws_access_key_id="AKIAMAPPED00000000", aws_secret_access_key="s")
        arn = mapped.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())[
            "InferenceExperimentArn"
        ]
        assert ":222233334444:" in arn
        assert mock.account("222233334444").record("exp") is not None
        # unmapped credentials keep moto's accounts
        theirs = other_account_client()
        other = theirs.create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload()
        )["InferenceExperimentArn"]
        assert f":{OTHER_ACCOUNT}:" in other
        assert set(mock.accounts) >= {"222233334444", OTHER_ACCOUNT}


def test_a_moto_account_that_is_not_12_digits_is_refused_naming_where_it_came_from() -> None:
    def to_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = "acct-b"

    with mock_aws(), mock_sagemaker():
        sm = sagemaker()
        sm.meta.events.register("before-sign.sagemaker", to_account)
        with pytest.raises(ValueError, match="is not a 12-digit AWS account id") as caught:
            sm.list_inference_experiments()
    message = str(caught.value)
    assert "'acct-b'" in message
    assert "x-moto-account-id" in message
    assert "12-digit" in message
