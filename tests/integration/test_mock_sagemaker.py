"""mock_sagemaker(): boto3's SageMaker client answered in process, on a virtual clock."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError

from lifecycle.stores.base import ListQuery
from lifecycle.testing import NotEmulatedError, create_payload, mock_sagemaker, pytest_plugin

REPO = Path(__file__).resolve().parents[2]
#: the plugin's fixture, here too so these tests run before its entry point is installed
sagemaker_mock = pytest_plugin.sagemaker_mock


def shadow_test(
    client: Any, name: str, sleep: Callable[[float], object] | None = None, poll: float = 30.0
) -> dict[str, Any]:
    """A user's program: create, wait for Running, promote the shadow, wait for Completed."""

    def wait_for(status: str) -> dict[str, Any]:
        for _ in range(1000):
            described: dict[str, Any] = client.describe_inference_experiment(Name=name)
            if described["Status"] == status:
                return described
            (sleep or time.sleep)(poll)
        raise AssertionError(f"{name} never reached {status}")

    client.create_inference_experiment(
        Name=name, EndpointName=f"{name}-endpoint", **create_payload()
    )
    wait_for("Running")
    client.stop_inference_experiment(
        Name=name, ModelVariantActions={"shadow": "Promote"}, Reason="shadow wins"
    )
    return wait_for("Completed")


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.sleep records its calls instead of sleeping (so a test can assert none happened)."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a socket fails the test."""

    def refuse(sock: socket.socket, *args: Any) -> None:
        sock.close()
        raise AssertionError("the mock opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.usefixtures("no_network")
def test_a_boto3_shadow_test_program_runs_to_the_end_on_the_virtual_clock(
    no_sleeping: list[float],
) -> None:
    started = time.monotonic()
    with mock_sagemaker(settle=60) as mock:
        begin = mock.now()
        client = boto3.client("sagemaker")
        described = shadow_test(client, "exp-1", sleep=mock.advance)
    assert time.monotonic() - started < 5
    assert no_sleeping == []
    assert described["Status"] == "Completed"
    assert described["StatusReason"] == "shadow wins"
    assert {v["VariantName"]: v["Status"] for v in described["ModelVariants"]} == {
        "prod": "Deleted",
        "shadow": "InService",
    }
    # three settle times of 60 virtual seconds: Creating, Starting, Stopping
    assert described["CompletionTime"].timestamp() - begin == pytest.approx(180)


@pytest.mark.usefixtures("no_network")
def test_with_virtual_sleep_the_programs_own_time_sleep_moves_the_virtual_clock(
    no_sleeping: list[float],
) -> None:
    started = time.monotonic()
    with mock_sagemaker(settle=600, virtual_sleep=True) as mock:
        begin = mock.now()
        described = shadow_test(boto3.client("sagemaker"), "exp-2", poll=60)
        assert mock.now() - begin >= 3 * 600
    assert time.monotonic() - started < 5
    assert described["Status"] == "Completed"
    assert no_sleeping == []
    assert time.sleep == no_sleeping.append  # what was there before is back


def test_tick_moves_the_clock_on_each_request_so_a_polling_loop_progresses() -> None:
    with mock_sagemaker(settle=30, tick=10) as mock:
        described = shadow_test(boto3.client("sagemaker"), "exp-3", sleep=lambda s: None)
        assert described["Status"] == "Completed"
        assert len(mock.calls) > 6


def test_with_settle_zero_the_experiment_is_running_at_the_next_request() -> None:
    with mock_sagemaker():
        client = boto3.client("sagemaker")
        client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert client.describe_inference_experiment(Name="exp")["Status"] == "Running"


def test_advance_moves_the_clock_and_runs_the_reconciler_at_each_due_time() -> None:
    with mock_sagemaker(settle=60, reconcile_on_request=False) as mock:
        client = boto3.client("sagemaker")
        client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        t0 = mock.now()
        assert client.describe_inference_experiment(Name="exp")["Status"] == "Creating"
        mock.advance(3600)
        history = [(h.event, h.time - t0) for h in mock.world.history("exp")]
    assert history == [("create", 0), ("provisioned", 60), ("started", 120)]


def test_boto3_error_classes_work() -> None:
    with mock_sagemaker():
        client = boto3.client("sagemaker")
        with pytest.raises(client.exceptions.ResourceNotFound):
            client.describe_inference_experiment(Name="nope")
        client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        with pytest.raises(client.exceptions.ConflictException) as conflict:
            client.stop_inference_experiment(Name="exp", ModelVariantActions={"prod": "Promote"})
        assert "promote" in conflict.value.response["Error"]["Message"].lower()
        with pytest.raises(client.exceptions.ResourceInUse):
            client.create_inference_experiment(Name="exp", EndpointName="other", **create_payload())
        with pytest.raises(ClientError) as invalid:
            client.stop_inference_experiment(
                Name="exp", ModelVariantActions={"shadow": "Promote"}, Reason="r" * 1025
            )
        assert invalid.value.response["Error"]["Code"] == "ValidationException"


def test_an_operation_that_is_not_emulated_raises_a_clear_error() -> None:
    with mock_sagemaker() as mock:
        client = boto3.client("sagemaker")
        with pytest.raises(
            NotEmulatedError, match=r"'ListEndpoints' is not emulated.*StopInferenceExperiment"
        ):
            client.list_endpoints()
        assert mock.calls == []


def test_a_client_made_under_the_mock_refuses_to_send_after_it_ends() -> None:
    with mock_sagemaker():
        client = boto3.client("sagemaker")
    with pytest.raises(RuntimeError, match="has ended"):
        client.list_inference_experiments()


def unreachable_client() -> Any:
    """A SageMaker client whose requests, unless a mock answers them, try a closed port once."""
    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.usefixtures("no_network")
def test_a_client_made_after_the_mock_ends_is_not_answered_by_it() -> None:
    with mock_sagemaker() as mock:
        pass
    client = unreachable_client()
    with pytest.raises(HTTPClientError, match="opened a connection"):
        client.list_inference_experiments()
    assert mock.calls == []


@pytest.mark.usefixtures("no_network")
def test_a_client_made_before_the_mock_is_answered_by_it_while_it_is_active() -> None:
    client = unreachable_client()
    with mock_sagemaker() as mock:
        client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        assert client.describe_inference_experiment(Name="exp")["Status"] == "Running"
        with pytest.raises(NotEmulatedError, match="'ListEndpoints' is not emulated"):
            client.list_endpoints()
        with mock_sagemaker() as inner:  # the innermost mock answers it, while it lasts
            assert client.list_inference_experiments()["InferenceExperiments"] == []
        assert len(client.list_inference_experiments()["InferenceExperiments"]) == 1
    # the mock has ended: the client is as it was before, its requests going where it points
    with pytest.raises(HTTPClientError, match="opened a connection"):
        client.list_inference_experiments()
    assert [op for op, _ in mock.calls] == [
        "CreateInferenceExperiment",
        "DescribeInferenceExperiment",
        "ListInferenceExperiments",
    ]
    assert [op for op, _ in inner.calls] == ["ListInferenceExperiments"]


def test_every_session_and_the_service_api_see_one_engine() -> None:
    with mock_sagemaker() as mock:
        boto3.Session().client("sagemaker").create_inference_experiment(
            Name="a", EndpointName="ep-a", **create_payload()
        )
        boto3.client("sagemaker").create_inference_experiment(
            Name="b", EndpointName="ep-b", **create_payload()
        )
        names = {
            e["Name"] for e in mock.client().list_inference_experiments()["InferenceExperiments"]
        }
        assert names == {"a", "b"}
        assert mock.service.describe_inference_experiment(Name="a")["Status"] == "Running"
        assert len(mock.store) == 2


def test_the_arn_uses_the_mocks_region() -> None:
    with mock_sagemaker(region="eu-west-1") as mock:
        arn = mock.client().create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload()
        )["InferenceExperimentArn"]
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:")


def test_region_and_dummy_credentials_are_supplied_and_taken_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with mock_sagemaker():
        assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
        assert os.environ["AWS_ACCESS_KEY_ID"]
        boto3.client("sagemaker").list_inference_experiments()
    assert "AWS_DEFAULT_REGION" not in os.environ
    assert "AWS_ACCESS_KEY_ID" not in os.environ


def test_the_environments_own_region_and_credentials_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with mock_sagemaker() as mock:
        assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
        assert mock.region == "ap-south-1"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"


def test_nested_mocks_answer_with_the_innermost_and_the_outer_one_still_works() -> None:
    with mock_sagemaker() as outer:
        outer_client = boto3.client("sagemaker")
        with mock_sagemaker() as inner:
            boto3.client("sagemaker").create_inference_experiment(
                Name="in", EndpointName="ep", **create_payload()
            )
        outer_client.create_inference_experiment(Name="out", EndpointName="ep", **create_payload())
    assert [e.name for e in inner.store.list(ListQuery(inner.service.account_id)).items] == ["in"]
    assert outer.service.describe_inference_experiment(Name="out")["Name"] == "out"


def test_a_failing_actuator_shows_through_boto3() -> None:
    with mock_sagemaker(settle=10) as mock:
        mock.actuator.fail("start-shadow-test", 3, "no capacity")
        client = mock.client()
        client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
        mock.advance(600)
        described = client.describe_inference_experiment(Name="exp")
    assert described["Status"] == "Cancelled"
    assert "no capacity" in described["StatusReason"]


def test_the_fixture_gives_an_active_mock(sagemaker_mock: Any) -> None:
    client = boto3.client("sagemaker")
    client.create_inference_experiment(Name="exp", EndpointName="ep", **create_payload())
    sagemaker_mock.advance(0)
    assert client.describe_inference_experiment(Name="exp")["Status"] == "Running"
    assert sagemaker_mock.active


def test_the_plugin_loads_without_boto3_or_hypothesis_and_its_fixture_works(tmp_path: Path) -> None:
    """Run pytest in a subprocess with the plugin loaded by name, as its entry point does."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import sys
            import pytest

            HEAVY = ("boto3", "botocore", "hypothesis")

            def test_nothing_heavy_is_imported_by_the_plugin():
                assert [m for m in HEAVY if m in sys.modules] == []

            @pytest.mark.sagemaker_mock(settle=30)
            def test_fixture(sagemaker_mock):
                import boto3
                from lifecycle.testing import create_payload
                client = boto3.client("sagemaker")
                client.create_inference_experiment(Name="e", EndpointName="ep", **create_payload())
                assert client.describe_inference_experiment(Name="e")["Status"] == "Creating"
                sagemaker_mock.advance(60)
                assert client.describe_inference_experiment(Name="e")["Status"] == "Running"
            """
        )
    )
    result = run_pytest(tmp_path, "-p", "lifecycle.testing.pytest_plugin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def run_pytest(where: Path, *args: str, autoload: bool = False) -> subprocess.CompletedProcess[str]:
    """pytest on ``where``'s test files in a subprocess; without ``autoload``, the only
    plugin is the one ``args`` names (not it twice with its entry point)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_", "COV_"))}
    env["PYTHONPATH"] = str(REPO)
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers", "-q", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_coverage_sees_the_package_run_though_pytest_loads_the_plugin_before_it_starts(
    tmp_path: Path,
) -> None:
    """pytest imports its entry points' modules before pytest-cov starts coverage: the
    entry point must import nothing of ``lifecycle``, or its module-level lines show as
    never run."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            def test_the_fixture_comes_from_the_entry_point(request, sagemaker_mock):
                assert request.config.pluginmanager.has_plugin("lifecycle")
                assert sagemaker_mock.active
            """
        )
    )
    report = tmp_path / "coverage.json"
    result = run_pytest(tmp_path, "--cov=lifecycle", f"--cov-report=json:{report}", autoload=True)
    assert result.returncode == 0, result.stdout + result.stderr
    files = json.loads(report.read_text())["files"]
    for module in ("lifecycle/__init__.py", "lifecycle/testing/__init__.py"):
        source = (REPO / module).read_text()
        top_level = {node.lineno for node in ast.parse(source).body}
        measured = files[str(REPO / module)]
        assert measured["executed_lines"], module
        assert sorted(top_level & set(measured["missing_lines"])) == [], module


def test_a_marker_option_the_mock_does_not_have_fails_the_test_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.sagemaker_mock(bogus=1)
            def test_misspelt(sagemaker_mock):
                pass

            @pytest.mark.sagemaker_mock(30)
            def test_positional(sagemaker_mock):
                pass
            """
        )
    )
    result = run_pytest(tmp_path, "-p", "lifecycle.testing.pytest_plugin")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 errors" in result.stdout
    assert (
        "@pytest.mark.sagemaker_mock: mock_sagemaker() has no option 'bogus'; its options are "
        "account_id, accounts, actuator," in result.stdout
    )
    assert "takes options by name (settle=30), not (30,)" in result.stdout
    assert "Traceback" not in result.stdout and "TypeError" not in result.stdout


def test_an_option_the_mock_does_not_have_is_a_type_error_listing_those_it_has() -> None:
    with pytest.raises(TypeError) as refused:
        mock_sagemaker(settle=1, clock=None, bogus=1)
    message = str(refused.value)
    assert message.startswith("mock_sagemaker() has no options 'bogus', 'clock'; its options are")
    for option in ("settle", "tick", "virtual_sleep", "region", "start", "max_attempts"):
        assert option in message


@pytest.mark.usefixtures("no_network")
def test_a_boto3_read_modify_write_under_the_mock_is_no_change_of_schedule() -> None:
    with mock_sagemaker() as mock:
        client = boto3.client("sagemaker")
        client.create_inference_experiment(
            Name="rmw", EndpointName="rmw-endpoint", **create_payload()
        )
        mock.advance(1)
        described = client.describe_inference_experiment(Name="rmw")
        assert described["Status"] == "Running"
        client.update_inference_experiment(
            Name="rmw", Schedule=described["Schedule"], Description="read, modified, written"
        )
        with pytest.raises(client.exceptions.ConflictException) as caught:
            client.stop_inference_experiment(Name="rmw", ModelVariantActions={"prod": "Promote"})
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-lifecycle-rule"] in ("stop-from-status", "promote-shadow-only")


# -- accounts by access key -----------------------------------------------------------------------

THEIRS = "210987654321"


def keyed(access_key: str) -> Any:
    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
    )


def test_a_mapped_access_key_is_in_its_account_and_any_other_in_the_mocks() -> None:
    with mock_sagemaker(accounts={"AKIATHEIRS": THEIRS}) as mock:
        theirs, mine, stranger = keyed("AKIATHEIRS"), keyed("AKIAMINE"), keyed("AKIAOTHER")
        their_arn = theirs.create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload()
        )["InferenceExperimentArn"]
        my_arn = mine.create_inference_experiment(
            Name="exp", EndpointName="ep", **create_payload()
        )["InferenceExperimentArn"]
        assert their_arn == my_arn.replace(":123456789012:", f":{THEIRS}:")
        assert set(mock.accounts) == {"123456789012", THEIRS}
        assert mock.account(THEIRS).record("exp") is not None
        # an unmapped key is in the mock's own account, with the experiments of it
        assert stranger.describe_inference_experiment(Name="exp")["Arn"] == my_arn
        theirs.create_inference_experiment(
            Name="only-theirs", EndpointName="ep-2", **create_payload()
        )
        with pytest.raises(mine.exceptions.ResourceNotFound) as refused:
            mine.describe_inference_experiment(Name="only-theirs")
        assert "'only-theirs' does not exist" in str(refused.value)
        listed = theirs.list_inference_experiments()["InferenceExperiments"]
        assert sorted(s["Name"] for s in listed) == ["exp", "only-theirs"]
        assert [s["Name"] for s in mine.list_inference_experiments()["InferenceExperiments"]] == [
            "exp"
        ]


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ({"AKIA1": "12345"}, "the account of access key 'AKIA1' must be a 12-digit"),
        ({"": THEIRS}, "accounts: '' is not an access key"),
        ({"A/B": THEIRS}, "accounts: 'A/B' is not an access key"),
    ],
)
def test_a_bad_accounts_map_is_refused_naming_the_entry(
    accounts: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mock_sagemaker(accounts=accounts)
