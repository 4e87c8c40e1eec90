"""docs/embedding.md runs as written: the FastAPI host under uvicorn with boto3 at /sagemaker,
and the asyncio example. The code is read from the page, so page and test cannot drift."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "embedding.md"
BLOCKS: list[tuple[str, str]] = re.findall(r"```(\w+)\n(.*?)```", PAGE.read_text(), flags=re.S)
#: the port the page's examples use; the test serves on a free one instead
PAGE_PORT = "8000"


def block(language: str, marker: str) -> str:
    """The one block in ``language`` that holds ``marker``."""
    found = [code for lang, code in BLOCKS if lang == language and marker in code]
    assert len(found) == 1, f"{len(found)} {language} blocks hold {marker!r}"
    return found[0]


HOST = block("python", "FastAPI(")
CLIENT = block("python", "boto3.client(")
ASYNCIO = block("python", "AsyncExperimentService(")
COMMAND = block("console", "uvicorn")
LOG = block("text", "lifecycle.server")


def test_every_python_block_on_the_page_is_run_here() -> None:
    assert sorted(code for lang, code in BLOCKS if lang == "python") == sorted(
        [HOST, CLIENT, ASYNCIO]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def on_port(text: str, port: int) -> str:
    assert PAGE_PORT in text
    return text.replace(PAGE_PORT, str(port))


def wait_for_health(url: str, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the host did not serve {url}:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.mark.slow
def test_the_fastapi_example_serves_boto3_under_sagemaker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "host.py").write_text(HOST)
    port = free_port()
    command = shlex.split(on_port(COMMAND.strip().removeprefix("$ "), port))
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
        wait_for_health(f"http://127.0.0.1:{port}/sagemaker/health", process, log)
        exec(compile(on_port(CLIENT, port), str(PAGE), "exec"), {"__name__": "docs_client"})
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
