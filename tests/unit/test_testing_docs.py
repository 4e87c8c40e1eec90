"""docs/testing.md: every Python example on the page runs, and its tests pass."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lifecycle.testing import mock_sagemaker, pytest_plugin

PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def run_tests(namespace: dict[str, Any]) -> list[str]:
    """Call each test the block defines: once per parameter, with the mock fixture if it asks."""
    ran: list[str] = []
    for name, fn in list(namespace.items()):
        if not (name.startswith("test_") and callable(fn)):
            continue
        marks = {m.name: m for m in getattr(fn, "pytestmark", [])}
        calls: list[dict[str, Any]] = [{}]
        if "parametrize" in marks:
            argname, values = marks["parametrize"].args[:2]
            calls = [{argname: v} for v in values]
        for kwargs in calls:
            if "sagemaker_mock" in inspect.signature(fn).parameters:
                options = marks["sagemaker_mock"].kwargs if "sagemaker_mock" in marks else {}
                with mock_sagemaker(**options) as mock:
                    fn(sagemaker_mock=mock, **kwargs)
            else:
                fn(**kwargs)
        ran.append(name)
    return ran


def test_the_page_has_an_example_of_each_tool() -> None:
    text = "\n".join(BLOCKS)
    for tool in (
        "transition_cases",
        "shortest_paths",
        "simple_paths",
        "transition_coverage",
        "experiment_in",
        "strategies.valid_requests",
        "strategies.invalid_requests",
        "mock_sagemaker",
        "sagemaker_mock",
        "mock_aws",
        "check_endpoints=True",
        "MockSageMaker.current()",
    ):
        assert tool in text, tool


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_example_runs(
    block: str, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    pytest_plugin.pytest_configure(
        request.config
    )  # the marker, before the plugin's entry point is installed
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, str(PAGE), "exec"), namespace)  # our own page
    # every test the block defines was called (the With moto ones under both mocks too)
    assert run_tests(namespace) == re.findall(r"^def (test_\w+)", block, flags=re.M)


def _run_alone(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, as a user runs a script: no logging configured."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PAGE.parents[1])},
    )


SIMPLE_PATHS = next(block for block in BLOCKS if "simple_paths(max_length=5)" in block)


def test_the_simple_paths_example_prints_only_what_it_prints() -> None:
    done = _run_alone(SIMPLE_PATHS)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the reconciler's warnings on the failure paths are the host's
    assert done.stdout.count("\n") > 10


def test_the_engines_warnings_reach_a_host_that_configures_logging() -> None:
    done = _run_alone("import logging\nlogging.basicConfig()\n" + SIMPLE_PATHS)
    assert done.returncode == 0, done.stderr
    assert "WARNING:lifecycle.reconciler:" in done.stderr  # a step failed for good
