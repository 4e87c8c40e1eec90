"""docs/embedding.md runs as written: the FastAPI host under uvicorn with boto3 at /sagemaker,
and the asyncio example. The code is read from the page, so page and test cannot drift."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests._pages import block, code_blocks, free_port, on_port, wait_for_http

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "embedding.md"
BLOCKS = code_blocks(PAGE)
#: the port the page's examples use; the test serves on a free one instead
PAGE_PORT = "8000"

HOST = block(BLOCKS, "python", "FastAPI(")
CLIENT = block(BLOCKS, "python", "boto3.client(")
ASYNCIO = block(BLOCKS, "python", "AsyncExperimentService(")
COMMAND = block(BLOCKS, "console", "uvicorn")
LOG = block(BLOCKS, "text", "lifecycle.server")


def test_every_python_block_on_the_page_is_run_here() -> None:
    assert sorted(code for lang, code in BLOCKS if lang == "python") == sorted(
        [HOST, CLIENT, ASYNCIO]
    )


@pytest.mark.slow
def test_the_fastapi_example_serves_boto3_under_sagemaker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "host.py").write_text(HOST)
    port = free_port()
    command = shlex.split(on_port(COMMAND.strip().removeprefix("$ "), PAGE_PORT, port))
    assert command[0] == "uvicorn"
    log = tmp_path / "host.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=tmp_path,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/sagemaker/health", process, log)
        exec(
            compile(on_port(CLIENT, PAGE_PORT, port), str(PAGE), "exec"),
            {"__name__": "docs_client"},
        )
        assert capsys.readouterr().out == "Completed\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert answer.read() == b'{"service":"my control plane","sagemaker":"/sagemaker"}'
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    output = log.read_text()
    assert process.returncode == 0, output
    for line in LOG.strip().splitlines():  # the page's log lines, whatever the milliseconds
        pattern = re.escape(line).replace(r"ms=4\.12", r"ms=[0-9.]+")
        assert re.search(pattern, output), f"{line!r} not in:\n{output}"
    assert "request op=StopInferenceExperiment name=shadow-test outcome=OK status=200" in output
    assert "lifecycle.server: reconciler stopped after" in output  # the host's lifespan ended it
    assert (tmp_path / "embedded.db").exists()


def test_the_asyncio_example_prints_what_the_page_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(ASYNCIO, str(PAGE), "exec"), {"__name__": "docs_asyncio"})
    printed = capsys.readouterr().out
    said = re.search(r"It prints `(.*?)`\.", PAGE.read_text())
    assert said is not None
    assert printed == said.group(1) + "\n"
    assert (tmp_path / "async.db").exists()
