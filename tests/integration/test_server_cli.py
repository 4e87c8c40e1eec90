"""``lifecycle serve`` as a process: its flags, the AWS CLI against it, signals, warnings."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import install_hint
from lifecycle.http.serve import default_store_url, serve
from lifecycle.http.serve import main as serve_main
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

AWS = shutil.which("aws")


def aws_env(tmp_path: Path) -> dict[str, str]:
    """Dummy credentials, and no user configuration leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "absent-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "absent-credentials"),
        AWS_PAGER="",
    )
    return env


@pytest.mark.skipif(AWS is None, reason="the aws program is not installed")
def test_the_aws_cli_stops_an_experiment(
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
    tmp_path: Path,
) -> None:
    assert AWS is not None
    server = serve_process("--store", "memory://").wait_started()
    client = client_for(server.url)
    client.create_inference_experiment(**create_request("cli-1"))
    wait_for_status(client, "cli-1", "Running", timeout=5)

    result = subprocess.run(
        [
            AWS,
            "sagemaker",
            "stop-inference-experiment",
            "--endpoint-url",
            server.url,
            "--name",
            "cli-1",
            "--model-variant-actions",
            "shadow=Promote",
            "--reason",
            "stopped from the AWS CLI",
            "--output",
            "json",
        ],
        env=aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    arn = "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/cli-1"
    assert json.loads(result.stdout) == {"InferenceExperimentArn": arn}
    done = wait_for_status(client, "cli-1", "Completed", timeout=5)
    assert done["StatusReason"] == "stopped from the AWS CLI"

    again = subprocess.run(
        [
            AWS,
            "sagemaker",
            "stop-inference-experiment",
            "--endpoint-url",
            server.url,
            "--name",
            "cli-1",
            "--model-variant-actions",
            "shadow=Promote",
        ],
        env=aws_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert "ConflictException" in again.stderr


def test_serve_logs_each_request_and_exits_0_on_sigterm(
    serve_process: Any, client_for: Any
) -> None:
    server = serve_process("--store", "memory://").wait_started()
    client = client_for(server.url)
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_inference_experiment(Name="nobody")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    assert (
        "INFO lifecycle.server request op=DescribeInferenceExperiment name=nobody "
        "outcome=ResourceNotFound rule=experiment-exists status=400 ms="
    ) in server.output
    assert "reconciler stopped" in server.output
    assert "Traceback" not in server.output


def test_serve_logs_one_line_per_committed_transition_of_either_machine(
    serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    server = serve_process("--store", "memory://", "--log-format", "json").wait_started()
    client = client_for(server.url)
    client.create_inference_experiment(**create_request("logged-1"))
    wait_for_status(client, "logged-1", "Running")
    client.stop_inference_experiment(
        Name="logged-1",
        ModelVariantActions={"prod": "Remove", "shadow": "Promote"},
        DesiredState="Completed",
        Reason="shadow won",
    )
    wait_for_status(client, "logged-1", "Completed")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    lines = [json.loads(line) for line in server.lines if line.startswith("{")]
    transitions = [line for line in lines if line["message"] == "transition"]
    assert {line["experiment"] for line in transitions} == {"logged-1"}
    experiment = [
        (t["event"], t.get("from"), t["to"]) for t in transitions if t["machine"] == "experiment"
    ]
    assert experiment == [
        ("create", None, "Creating"),
        ("provisioned", "Creating", "Starting"),
        ("started", "Starting", "Running"),
        ("stop", "Running", "Stopping"),
        ("stopped", "Stopping", "Completed"),
    ]
    variants = [
        (t["variant"], t["event"], t.get("from"), t["to"])
        for t in transitions
        if t["machine"] == "variant"
    ]
    assert sorted(variants) == [
        ("prod", "provisioned", "Creating", "InService"),
        ("prod", "remove", "InService", "Deleting"),
        ("prod", "removed", "Deleting", "Deleted"),
        ("shadow", "promote", "InService", "Updating"),
        ("shadow", "promoted", "Updating", "InService"),
        ("shadow", "provisioned", "Creating", "InService"),
    ]
    # a variant transition a request fired carries that request's id
    [stop] = [t for t in transitions if t["event"] == "stop"]
    fired_by_stop = [t for t in transitions if t["event"] in ("promote", "remove")]
    assert {t["request_id"] for t in fired_by_stop} == {stop["request_id"]}
    assert all("variant" not in t for t in transitions if t["machine"] == "experiment")


def test_serve_exits_0_on_sigint(serve_process: Any) -> None:
    server = serve_process("--store", "memory://").wait_started()
    server.signal(signal.SIGINT)
    assert server.wait() == 0, server.output
    assert "Traceback" not in server.output


def test_region_account_and_live_limit_flags_reach_the_service(
    serve_process: Any, client_for: Any, create_request: Any
) -> None:
    server = serve_process(
        "--store",
        "memory://",
        "--region",
        "eu-west-1",
        "--account-id",
        "111122223333",
        "--max-live-experiments",
        "1",
    ).wait_started()
    client = client_for(server.url)
    arn = client.create_inference_experiment(**create_request("flags-1"))["InferenceExperimentArn"]
    assert arn == "arn:aws:sagemaker:eu-west-1:111122223333:inference-experiment/flags-1"
    with pytest.raises(client.exceptions.ResourceLimitExceeded):
        client.create_inference_experiment(**create_request("flags-2"))


def test_settle_seconds_holds_a_transitional_status(
    serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    server = serve_process("--store", "memory://", "--settle-seconds", "1.5").wait_started()
    client = client_for(server.url)
    client.create_inference_experiment(**create_request("settle-1"))
    time.sleep(0.6)
    assert client.describe_inference_experiment(Name="settle-1")["Status"] == "Creating"
    wait_for_status(client, "settle-1", "Running", timeout=6)


def test_binding_a_non_loopback_address_without_auth_warns(serve_process: Any) -> None:
    # 192.0.2.1 (TEST-NET-1) is not ours: the bind fails, after the warning.
    server = serve_process("--store", "memory://", "--host", "192.0.2.1")
    assert server.wait() == 1
    assert "warning:" in server.output
    assert "--auth sigv4" in server.output


def test_a_port_in_use_exits_1_before_the_store_opens_or_the_reconciler_starts(
    serve_process: Any, tmp_path: Path
) -> None:
    database = tmp_path / "never.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve_process("--store", f"sqlite:///{database}", "--port", str(port))
        assert server.wait() == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: address already in use" in server.output
    for started in ("startup complete", "reconciler started", "Uvicorn running", "Traceback"):
        assert started not in server.output
    assert not database.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--auth", "sigv4"], "needs --credentials"),
        (["--credentials", "/nonexistent"], "only used with --auth sigv4"),
        (["--auth", "sigv4", "--credentials", "/nonexistent/credentials"], "cannot read"),
    ],
)
def test_auth_flags_that_do_not_fit_exit_2_with_the_reason(
    serve_process: Any, args: list[str], words: str
) -> None:
    server = serve_process("--store", "memory://", *args)
    assert server.wait() == 2
    assert words in server.output


def test_serve_with_sigv4_credentials_file(
    serve_process: Any, client_for: Any, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[ci]\naws_access_key_id = AKIDSERVE\naws_secret_access_key = serve-secret\n"
    )
    server = serve_process(
        "--store", "memory://", "--auth", "sigv4", "--credentials", str(credentials)
    ).wait_started()
    good = client_for(
        server.url, aws_access_key_id="AKIDSERVE", aws_secret_access_key="serve-secret"
    )
    with pytest.raises(good.exceptions.ResourceNotFound):
        good.describe_inference_experiment(Name="nobody")
    bad = client_for(server.url, aws_access_key_id="AKIDSERVE", aws_secret_access_key="wrong")
    with pytest.raises(bad.exceptions.ClientError) as caught:
        bad.describe_inference_experiment(Name="nobody")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


# -- the same entry points in this process (what coverage sees) ----------------------------


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """serve() installs uvicorn's logging config; put the loggers back as they were."""
    names = ["", "lifecycle", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate, logger.level, logger.disabled)
    try:
        yield
    finally:
        for name, (handlers, propagate, level, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate, logger.level, logger.disabled = propagate, level, disabled


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _interrupt_when_healthy(port: int) -> threading.Thread:
    """Send SIGINT to this process once the server answers /health (or after 15 s)."""

    def run() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/health")
                healthy = connection.getresponse().status == 200
                connection.close()
                if healthy:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
def test_main_serves_in_process_until_sigint_and_returns_0() -> None:
    port = _free_port()
    stopper = _interrupt_when_healthy(port)
    with restored_logging():
        code = serve_main(["--port", str(port), "--store", "memory://", "--log-level", "warning"])
    stopper.join(5)
    assert code == 0


def test_serve_in_process_warns_off_loopback_and_returns_1_when_it_cannot_bind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = ExperimentService(MemoryStore())
    with restored_logging():
        code = serve(service, None, "192.0.2.1", 0, log_level="critical")
    assert code == 1
    assert "warning:" in capsys.readouterr().err


class CountingReconciler:
    def __init__(self) -> None:
        self.passes = 0

    def run_once(self) -> int:
        self.passes += 1
        return 0


def test_serve_in_process_on_a_taken_port_returns_1_before_a_reconciler_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reconciler = CountingReconciler()
    with socket.socket() as taken, restored_logging():
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = serve(ExperimentService(MemoryStore()), reconciler, "127.0.0.1", port)
    assert (code, reconciler.passes) == (1, 0)
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--auth", "sigv4"], 2, "needs --credentials"),
        (["--credentials", "/nonexistent"], 2, "only used with --auth sigv4"),
        (["--auth", "sigv4", "--credentials", "/nonexistent/credentials"], 2, "cannot read"),
        (["--store", "nosuchscheme://x"], 1, "cannot open store"),
        (["--token-secret-file", "/nonexistent/secret"], 2, "cannot read /nonexistent/secret"),
    ],
)
def test_main_in_process_refuses_what_does_not_fit(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, words: str
) -> None:
    assert serve_main(args) == code
    assert words in capsys.readouterr().err


def test_a_postgresql_store_without_psycopg_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "lifecycle.stores.postgres", raising=False)
    url = "postgresql://app:s3cret@127.0.0.1:1/experiments"
    assert serve_main(["--port", "0", "--store", url]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: cannot open store postgresql://app:***@127.0.0.1:1/experiments:")
    assert line.endswith(install_hint("postgres"))


def test_a_bad_postgresql_url_option_does_not_print_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        serve_main(["--port", "0", "--store", "postgresql://app:s3cret@h/db?migrate=perhaps"]) == 1
    )
    err = capsys.readouterr().err
    assert "migrate='perhaps' must be true or false" in err
    assert "s3cret" not in err


def test_the_default_store_is_sqlite_once_it_exists() -> None:
    assert default_store_url() in ("sqlite:///lifecycle.db", "memory://")


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "70000"],
        ["--port", "http"],
        ["--max-live-experiments", "0"],
        ["--max-live-experiments", "many"],
        ["--settle-seconds", "-1"],
        ["--settle-seconds", "nan"],
        ["--settle-seconds", "soon"],
        ["--account-id", "12"],
        ["--region", "Mars"],
        ["--auth", "basic"],
    ],
)
def test_bad_flag_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        serve_main(args)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_an_empty_token_secret_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "secret"
    empty.write_text("\n")
    assert serve_main(["--store", "memory://", "--token-secret-file", str(empty)]) == 2
    assert f"{empty} is empty" in capsys.readouterr().err


def test_the_token_secret_file_signs_the_servers_list_tokens(
    tmp_path: Path, serve_process: Any, client_for: Any, create_request: Any
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  a shared secret of the deployment \n")
    server = serve_process(
        "--store", "memory://", "--token-secret-file", str(secret)
    ).wait_started()
    client = client_for(server.url)
    for i in range(3):
        client.create_inference_experiment(**create_request(f"tok-{i}"))
    token = client.list_inference_experiments(MaxResults=1)["NextToken"]
    data, _, sig = token.partition(".")
    body = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    expected = hmac.digest(b"a shared secret of the deployment", body, hashlib.sha256)[:18]
    assert base64.urlsafe_b64decode(sig) == expected


# -- --actuator: the webhook, a Python actuator of one's own, and what does not fit -------------


class _StepHandler(BaseHTTPRequestHandler):
    """Keeps each request's headers and body; answers 200, or the refusal of its action.
    HTTP/1.0: every request has a connection of its own."""

    server: StepReceiver
    timeout = 10

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status, answer = self.server.refusals.get(json.loads(body)["action"], (200, b"{}"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class StepReceiver(ThreadingHTTPServer):
    """A webhook receiver on a free loopback port: ``refusals[action]`` is the (status,
    body) it answers a step of that action with."""

    def __init__(self, refusals: dict[str, tuple[int, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _StepHandler)
        self.refusals = refusals
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/steps"

    def steps(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@contextlib.contextmanager
def receiving(refusals: dict[str, tuple[int, bytes]] | None = None) -> Iterator[StepReceiver]:
    """A StepReceiver answering in a thread until the block ends."""
    receiver = StepReceiver(refusals or {})
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        thread.join(5)
        receiver.server_close()


def test_serve_sends_each_step_to_the_webhook_actuator_signed(
    serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "webhook-secret"
    secret.write_text("a webhook secret\n")
    with receiving() as receiver:
        server = serve_process(
            "--store",
            "memory://",
            "--actuator",
            "webhook",
            "--actuator-url",
            receiver.url,
            "--actuator-secret-file",
            str(secret),
            "--actuator-timeout",
            "5",
        ).wait_started()
        client = client_for(server.url)
        arn = client.create_inference_experiment(**create_request("hook-1"))[
            "InferenceExperimentArn"
        ]
        wait_for_status(client, "hook-1", "Running")
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
    steps = receiver.steps()
    assert sorted((s["action"], s["variant"]) for s in steps) == [
        ("provision-variant", "prod"),
        ("provision-variant", "shadow"),
        ("start-shadow-test", None),
    ]
    assert {(s["experiment"], s["endpoint"], s["arn"]) for s in steps} == {
        ("hook-1", "ep-hook-1", arn)
    }
    for headers, body in receiver.received:
        assert headers["idempotency-key"] == json.loads(body)["key"]
        expected = "sha256=" + hmac.new(b"a webhook secret", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-lifecycle-signature"], expected)
    assert "Traceback" not in server.output


def test_a_step_the_webhook_refuses_cancels_the_experiment_with_the_receivers_message(
    serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    refusal = (400, b'{"message": "no capacity for ml.p4d"}')
    with receiving({"start-shadow-test": refusal}) as receiver:
        server = serve_process(
            "--store", "memory://", "--actuator", "webhook", "--actuator-url", receiver.url
        ).wait_started()
        client = client_for(server.url)
        client.create_inference_experiment(**create_request("hook-2"))
        done = wait_for_status(client, "hook-2", "Cancelled")
    assert "no capacity for ml.p4d" in done["StatusReason"]
    assert [s["action"] for s in receiver.steps()].count("start-shadow-test") == 1


ACTUATOR_MODULE = """
    import json
    import os


    class FileActuator:
        def __init__(self, path):
            self.path = path

        def apply(self, step):
            with open(self.path, "a") as f:
                f.write(json.dumps({"action": step.action, "variant": step.variant}) + "\\n")

        def close(self):
            with open(self.path, "a") as f:
                f.write("closed\\n")


    def make():
        return FileActuator(os.environ["MYMOD_STEPS"])


    not_callable = 3


    def no_apply():
        return object()
"""


def test_serve_runs_a_python_actuator_named_module_colon_factory_and_closes_it(
    serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any, tmp_path: Path
) -> None:
    (tmp_path / "mymod.py").write_text(textwrap.dedent(ACTUATOR_MODULE))
    record = tmp_path / "steps.jsonl"
    repo = str(Path(__file__).resolve().parents[2])
    server = serve_process(
        "--store",
        "memory://",
        "--actuator",
        "mymod:make",
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), repo]), "MYMOD_STEPS": str(record)},
    ).wait_started()
    client = client_for(server.url)
    client.create_inference_experiment(**create_request("own-1"))
    wait_for_status(client, "own-1", "Running")
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    *steps, last = record.read_text().splitlines()
    assert last == "closed"  # closed on shutdown
    assert sorted((s["action"], s["variant"]) for s in map(json.loads, steps)) == [
        ("provision-variant", "prod"),
        ("provision-variant", "shadow"),
        ("start-shadow-test", None),
    ]


WEBHOOK = ["--actuator", "webhook", "--actuator-url", "http://127.0.0.1:9/"]


@pytest.fixture
def own_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a module of ACTUATOR_MODULE's, importable in this process."""
    name = f"own_actuator_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(ACTUATOR_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("args", "flag", "words"),
    [
        (["--actuator", "webhook"], "--actuator-url", "needs --actuator-url"),
        (["--actuator", "webhook", "--actuator-url", "ftp://x/y"], "--actuator-url", "http://"),
        (["--actuator", "webhook", "--actuator-url", "localhost:9"], "--actuator-url", "http://"),
        (["--actuator-url", "http://127.0.0.1:9/"], "--actuator-url", "only used with"),
        (["--actuator-timeout", "3"], "--actuator-timeout", "only used with"),
        (["--actuator", "nosuch_module_xyz:make"], "--actuator", "cannot import"),
        (["--actuator", "MOD:absent"], "--actuator", "has no absent"),
        (["--actuator", "MOD:not_callable"], "--actuator", "not a callable"),
        (["--actuator", "MOD:no_apply"], "--actuator", "no apply(step) method"),
        (["--actuator", "MOD"], "--actuator", "package.module:factory"),
        (
            [*WEBHOOK, "--actuator-secret-file", "/nonexistent/secret"],
            "--actuator-secret-file",
            "cannot read /nonexistent/secret",
        ),
        ([*WEBHOOK, "--actuator-secret-file", "EMPTY"], "--actuator-secret-file", "is empty"),
    ],
)
def test_actuator_flags_that_do_not_fit_exit_2_naming_the_flag_before_the_store_opens(
    tmp_path: Path,
    own_module: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    flag: str,
    words: str,
) -> None:
    (tmp_path / "empty-secret").write_text(" \n")
    args = [
        a.replace("MOD", own_module).replace("EMPTY", str(tmp_path / "empty-secret")) for a in args
    ]
    store = tmp_path / "never.db"
    assert serve_main(["--store", f"sqlite:///{store}", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --actuator")
    assert flag in err
    assert words in err
    assert "\n" not in err  # one line
    assert not store.exists()


def test_a_timeout_that_is_not_positive_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        serve_main(
            ["--actuator", "webhook", "--actuator-url", "http://x/", "--actuator-timeout", "0"]
        )
    assert caught.value.code == 2
    assert "--actuator-timeout" in capsys.readouterr().err


def test_workers_need_a_store_the_workers_share(serve_process: Any) -> None:
    server = serve_process("--store", "memory://", "--workers", "2")
    assert server.wait() == 2
    assert "--workers N needs a store the workers share" in server.output
