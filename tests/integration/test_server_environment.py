"""``lifecycle serve`` configured from the environment: every flag has its ``LIFECYCLE_*``
variable, a flag wins, a bad value names its variable, and a real server runs on them."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli import _parser, main
from lifecycle.http.options import environment_variable
from lifecycle.http.throttle import RateLimit
from lifecycle.stores import open_store

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

REPO = Path(__file__).resolve().parents[2]

#: a value for each serve flag's variable, none of them the default, and what it parses to
SAMPLES: dict[str, tuple[str, object]] = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9090", 9090),
    "store": ("memory://", "memory://"),
    "region": ("eu-west-1", "eu-west-1"),
    "account_id": ("111122223333", "111122223333"),
    "max_live_experiments": ("7", 7),
    "settle_seconds": ("2.5", 2.5),
    "auth": ("sigv4", "sigv4"),
    "credentials": ("/etc/lifecycle/credentials", "/etc/lifecycle/credentials"),
    "rate_limit": ("20:40", RateLimit(20.0, 40)),
    "token_secret_file": ("/etc/lifecycle/token", "/etc/lifecycle/token"),
    "actuator": ("webhook", "webhook"),
    "actuator_url": ("http://127.0.0.1:9/steps", "http://127.0.0.1:9/steps"),
    "actuator_secret_file": ("/etc/lifecycle/webhook", "/etc/lifecycle/webhook"),
    "actuator_timeout": ("3", 3.0),
    "webhook": (
        "http://127.0.0.1:9/a,https://hooks.test/b",
        ["http://127.0.0.1:9/a", "https://hooks.test/b"],
    ),
    "webhook_secret_file": ("/etc/lifecycle/hook-a", ["/etc/lifecycle/hook-a"]),
    "events_max_age": ("3600", 3600.0),
    "events_max_count": ("1000", 1000),
    "lock_timeout": ("1.5", 1.5),
    "workers": ("2", 2),
    "threads": ("3", 3),
    "max_connections": ("50", 50),
    "header_timeout": ("4", 4.0),
    "idle_timeout": ("2", 2.0),
    "shutdown_timeout": ("7", 7.0),
    "log_level": ("debug", "debug"),
    "log_format": ("json", "json"),
}


def serve_flags() -> list[argparse.Action]:
    parser = _parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    serve = sub.choices["serve"]
    return [a for a in serve._actions if a.option_strings and a.dest != "help"]


def test_every_serve_flag_has_its_variable_in_the_help_and_in_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flags = serve_flags()
    assert {a.dest for a in flags} == set(SAMPLES)  # a new flag needs a sample here
    for action in flags:
        assert f"(env {environment_variable(action)})" in (action.help or ""), action.dest
        monkeypatch.setenv(environment_variable(action), SAMPLES[action.dest][0])
    parsed = vars(_parser().parse_args(["serve"]))
    assert {dest: parsed[dest] for dest in SAMPLES} == {d: v for d, (_, v) in SAMPLES.items()}


def test_the_readme_lists_every_variable() -> None:
    readme = (REPO / "README.md").read_text()
    for action in serve_flags():
        assert environment_variable(action) in readme, action.dest


def test_a_bad_variable_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_MAX_LIVE_EXPERIMENTS", "0")
    with pytest.raises(SystemExit) as caught:
        main(["serve"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lifecycle serve: error: environment variable LIFECYCLE_MAX_LIVE_EXPERIMENTS: "
        "0 must be at least 1"
    )


def test_a_bad_serve_variable_does_not_stop_other_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFECYCLE_PORT", "http")
    assert main(["diagram", "--format", "matrix"]) == 0
    assert "| Creating |" in capsys.readouterr().out


def test_a_server_runs_on_its_variables_and_a_flag_wins(
    serve_process: Any, client_for: Any, create_request: Any, tmp_path: Path
) -> None:
    database = tmp_path / "from-env.db"
    with socket.socket() as taken:  # the variable's port is taken; the flag's --port 0 wins
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            "LIFECYCLE_PORT": str(taken.getsockname()[1]),
            "LIFECYCLE_STORE": f"sqlite:///{database}",
            "LIFECYCLE_REGION": "eu-west-1",
            "LIFECYCLE_ACCOUNT_ID": "111122223333",
            "LIFECYCLE_MAX_LIVE_EXPERIMENTS": "1",
        }
        server = serve_process("--region", "ap-south-1", env=env).wait_started()
        client = client_for(server.url)
        created = client.create_inference_experiment(**create_request("env-1"))
        assert created["InferenceExperimentArn"] == (
            "arn:aws:sagemaker:ap-south-1:111122223333:inference-experiment/env-1"
        )
        with pytest.raises(client.exceptions.ResourceLimitExceeded):
            client.create_inference_experiment(**create_request("env-2"))
    store = open_store(f"sqlite:///{database}")
    try:
        assert store.get("111122223333", "env-1") is not None
    finally:
        store.close()


@pytest.mark.postgres
def test_a_server_keeps_its_experiments_in_the_postgresql_its_variable_names(
    serve_process: Any, client_for: Any, create_request: Any, postgres_url: str
) -> None:
    server = serve_process(env={"LIFECYCLE_STORE": postgres_url}).wait_started()
    client_for(server.url).create_inference_experiment(**create_request("env-pg"))
    store = open_store(postgres_url)
    try:
        found = store.get(ACCOUNT, "env-pg")
        assert found is not None and found.endpoint_name == "ep-env-pg"
    finally:
        store.close()


def test_a_bad_variable_stops_the_server_before_it_starts(serve_process: Any) -> None:
    server = serve_process(env={"LIFECYCLE_AUTH": "basic"})
    assert server.wait() == 2
    assert "environment variable LIFECYCLE_AUTH: 'basic' is not one of none, sigv4" in (
        server.output
    )


def test_migrate_reads_the_store_serve_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:

    database = tmp_path / "migrated.db"
    monkeypatch.setenv("LIFECYCLE_STORE", f"sqlite:///{database}")
    assert main(["migrate", "--dry-run"]) == 0
    assert not database.exists()
    assert main(["migrate"]) == 0
    assert "migrated from schema version 0" in capsys.readouterr().out
    store = open_store(f"sqlite:///{database}?migrate=false")  # at the build's version
    store.close()
