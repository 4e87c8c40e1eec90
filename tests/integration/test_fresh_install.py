"""A new user's first hour, in a fresh virtualenv, following only the README and the docs: install
the checkout under its distribution name, run docs/embedding.md's FastAPI example, serve with
PostgreSQL configured from the environment (docs/postgres.md), and upgrade a database that the
landed build made.

The virtualenv is made in a copy of the checkout by the README's first command; pip installs
from the package registries as configured on the machine (from its cache, mostly: the test run's
own install fetched the same packages). Every command
is read from the page that gives it, so a page and this test cannot drift: only ports, URLs and
paths are the test's own. Nothing of the test run's own virtualenv is on the shell's ``PATH``,
so a command the fresh one lacks fails here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import DISTRIBUTION, install_hint
from lifecycle.stores import open_store
from lifecycle.stores._migrations import LATEST
from tests._landed import EXPECTED, Db, load_landed, postgres_db, sqlite_db
from tests._pages import block, code_blocks, free_port, on_port, wait_for_http

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
#: the account of the experiments here (the server's default)
ACCOUNT = "123456789012"
#: how long pip may take over one install (from the cache, a few seconds; from the registry,
#: under a minute)
INSTALL_SECONDS = 240.0


#: the README's first command: make the virtualenv, install the server extra, serve on 8080
README_SERVE = next(
    line
    for line in block(code_blocks(REPO / "README.md"), "sh", "lifecycle serve --port").splitlines()
    if "pip install" in line
)
EMBEDDING = code_blocks(REPO / "docs" / "embedding.md")
EMBEDDING_INSTALL = block(EMBEDDING, "sh", "pip install").strip()
HOST = block(EMBEDDING, "python", "FastAPI(")
CLIENT = block(EMBEDDING, "python", "boto3.client(")
UVICORN = block(EMBEDDING, "console", "uvicorn").strip().removeprefix("$ ")
POSTGRES_PAGE = (REPO / "docs" / "postgres.md").read_text()
(POSTGRES_INSTALL,) = re.findall(r"`(pip install [^`]+)`", POSTGRES_PAGE)
POSTGRES_FROM_ENV = block(
    code_blocks(REPO / "docs" / "postgres.md"), "sh", "export LIFECYCLE_STORE"
)

#: what of the checkout a copy leaves out: what git ignores, and git itself
NOT_THE_CHECKOUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "htmlcov",
    ".coverage*",
    "*.db",
    "*.db-wal",
    "*.db-shm",
)


def user_environment() -> dict[str, str]:
    """This process's environment less what belongs to the test run: its virtualenv (on
    ``PATH`` and ``VIRTUAL_ENV``), ``PYTHON*``, coverage's hooks, lifecycle's variables."""
    path = os.environ["PATH"].split(os.pathsep)
    if sys.prefix != sys.base_prefix:  # the tests run in a virtualenv: take it off the PATH
        ours = (Path(sys.prefix) / "bin").resolve()
        path = [p for p in path if p and Path(p).resolve() != ours]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LIFECYCLE_", "COV_CORE_", "PYTHON")) and name != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(path)
    assert shutil.which("python3", path=env["PATH"]), "the README's python3 is not on the PATH"
    return env


@dataclass
class Fresh:
    """The copy of the checkout and its fresh virtualenv, and a user's shell in it."""

    checkout: Path
    env: dict[str, str]

    def _argv(self, command: str, activate: bool) -> list[str]:
        activation = f". {shlex.quote(str(self.checkout / '.venv/bin/activate'))} && "
        return ["bash", "-c", (activation if activate else "") + command]

    def shell(
        self,
        command: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """``command`` in bash, the virtualenv activated as the README activates it."""
        return subprocess.run(
            self._argv(command, activate=True),
            cwd=cwd or self.checkout,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self,
        command: str,
        log: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        activate: bool = True,
    ) -> subprocess.Popen[bytes]:
        """``command`` in the background, in a process group of its own, its output to ``log``."""
        with log.open("wb") as out:
            return subprocess.Popen(
                self._argv(command, activate),
                cwd=cwd or self.checkout,
                env={**self.env, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def interrupt(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGINT to the process group, as Ctrl-C in a terminal sends it; its exit status."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        raise AssertionError(f"still running 20 s after SIGINT:\n{log.read_text()}") from None


@contextlib.contextmanager
def serving(
    fresh: Fresh, command: str, log: Path, health: str, **start: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running until the block ends, once ``health`` answers; then it must exit 0."""
    process = fresh.start(command, log, **start)
    try:
        wait_for_http(health, process, log)
        yield process
    finally:
        code = interrupt(process, log)
    assert code == 0, log.read_text()


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args[-1]}\n{done.stdout}{done.stderr}"
    return done.stdout


def install_as_the_readme_says(where: Path) -> Fresh:
    """The README's first command in a copy of the checkout: it makes the virtualenv, installs
    the server extra and serves, until Ctrl-C. Then the install line of docs/embedding.md."""
    checkout = where / "checkout"
    shutil.copytree(REPO, checkout, ignore=NOT_THE_CHECKOUT)
    fresh = Fresh(checkout, user_environment())
    port = free_port()
    log = where / "readme.log"
    process = fresh.start(on_port(README_SERVE, "8080", port), log, activate=False)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, log, timeout=INSTALL_SECONDS)
    finally:
        code = interrupt(process, log)
    assert code == 0, log.read_text()
    ok(fresh.shell(EMBEDDING_INSTALL, timeout=INSTALL_SECONDS))
    return fresh


def check_the_distribution(fresh: Fresh) -> None:
    """The checkout is installed under the distribution's name; PyPI's `lifecycle` is not."""
    assert ok(fresh.shell("lifecycle --version")) == f"{DISTRIBUTION} {VERSION}\n"
    probe = (
        "import importlib.metadata as m, json, lifecycle\n"
        "names = {d.metadata['Name'] for d in m.distributions()}\n"
        "print(json.dumps([m.packages_distributions()['lifecycle'], 'lifecycle' in names,"
        " lifecycle.__file__]))"
    )
    owners, pypis_lifecycle, where = json.loads(ok(fresh.shell(f"python -c {shlex.quote(probe)}")))
    assert set(owners) == {DISTRIBUTION}
    assert not pypis_lifecycle  # the unrelated project of that name on PyPI
    assert Path(where).is_relative_to(fresh.checkout)  # the checkout, installed editable


def install_postgres_as_told(fresh: Fresh) -> None:
    """Without the postgres extra, a PostgreSQL URL is one line that ends with the command that
    installs it; that command, run as printed, does. Then docs/postgres.md's install line."""
    refused = fresh.shell("lifecycle migrate --store postgresql://app@127.0.0.1:1/db")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.endswith(install_hint("postgres")), line
    ok(fresh.shell(install_hint("postgres"), timeout=INSTALL_SECONDS))
    ok(fresh.shell("python -c 'import psycopg'"))
    ok(fresh.shell(POSTGRES_INSTALL, timeout=INSTALL_SECONDS))


def run_the_fastapi_example(fresh: Fresh, where: Path) -> None:
    """docs/embedding.md's host under its uvicorn command, and its boto3 client at /sagemaker."""
    where.mkdir()
    (where / "host.py").write_text(HOST)
    port = free_port()
    (where / "client.py").write_text(on_port(CLIENT, "8000", port))
    log = where / "host.log"
    health = f"http://127.0.0.1:{port}/sagemaker/health"
    with serving(fresh, on_port(UVICORN, "8000", port), log, health, cwd=where):
        assert ok(fresh.shell("python client.py", cwd=where, timeout=90)) == "Completed\n"
    output = log.read_text()
    assert "request op=StopInferenceExperiment name=shadow-test outcome=OK status=200" in output
    assert (where / "embedded.db").exists()


def serve_postgresql_from_the_environment(
    fresh: Fresh, where: Path, url: str, client_for: Any, create_request: Any
) -> None:
    """docs/postgres.md's ``export LIFECYCLE_STORE=...; lifecycle migrate && lifecycle serve
    ...``, on the test's schema, loopback and a credentials file of the test's own."""
    where.mkdir()
    credentials = where / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = AKIDFRESH\naws_secret_access_key = fresh\n")
    command = re.sub(r"'postgresql://[^']*'", shlex.quote(url), POSTGRES_FROM_ENV)
    command = command.replace("--host 0.0.0.0", "--host 127.0.0.1")
    command = command.replace("/run/secrets/credentials", str(credentials))
    assert url in command and str(credentials) in command, command
    port = free_port()
    log = where / "serve.log"
    with serving(
        fresh, command, log, f"http://127.0.0.1:{port}/health", env={"LIFECYCLE_PORT": str(port)}
    ):
        client = client_for(
            f"http://127.0.0.1:{port}", aws_access_key_id="AKIDFRESH", aws_secret_access_key="fresh"
        )
        client.create_inference_experiment(**create_request("fresh-pg"))
    assert f"migrated from schema version 0 to {LATEST}" in log.read_text()
    store = open_store(url)
    try:
        stored = store.get(ACCOUNT, "fresh-pg")
        assert stored is not None and stored.endpoint_name == "ep-fresh-pg"
    finally:
        store.close()


def describe(port: int, name: str) -> dict[str, Any]:
    """DescribeInferenceExperiment in AWS JSON 1.1, the answer's JSON as the server wrote it."""
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps({"Name": name}).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "SageMaker.DescribeInferenceExperiment",
        },
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        described: dict[str, Any] = json.loads(answer.read())
        return described


def upgrade_a_landed_database(fresh: Fresh, where: Path, landed: Db) -> None:
    """docs/postgres.md's rolling upgrade on what the landed build of schema version 1 wrote:
    ``lifecycle migrate --dry-run``, ``lifecycle migrate``, then serve with ``?migrate=false``;
    the experiments answer as that build answered."""
    where.mkdir()
    url = shlex.quote(landed.url)
    planned = ok(fresh.shell(f"lifecycle migrate --store {url} --dry-run"))
    assert f"would migrate from schema version 1 to {LATEST}" in planned
    assert landed.tables() == {"counters", "experiments", "history", "lifecycle_meta"}
    migrated = ok(fresh.shell(f"lifecycle migrate --store {url}"))
    assert f"migrated from schema version 1 to {LATEST}" in migrated
    port = free_port()
    upgraded = landed.url + ("&" if "?" in landed.url else "?") + "migrate=false"
    command = f"lifecycle serve --port {port} --store {shlex.quote(upgraded)}"
    answered = {}
    with serving(fresh, command, where / "serve.log", f"http://127.0.0.1:{port}/health"):
        for name in ("scheduled", "running", "promoted", "cancelled"):  # none the reconciler moves
            answered[name] = describe(port, name)
    assert answered == {name: EXPECTED[landed.dialect]["describe"][name] for name in answered}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(INSTALL_SECONDS * 3)  # four installs by pip, each well under its bound
def test_a_new_user_installs_embeds_configures_and_upgrades_following_the_docs(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, client_for: Any, create_request: Any
) -> None:
    fresh = install_as_the_readme_says(tmp_path)
    check_the_distribution(fresh)
    install_postgres_as_told(fresh)
    run_the_fastapi_example(fresh, tmp_path / "fastapi")
    serve_postgresql_from_the_environment(
        fresh,
        tmp_path / "postgres",
        postgres_db(postgres_dsn, postgres_schema).url,
        client_for,
        create_request,
    )
    landed_schema = f"{postgres_schema}_landed"
    try:
        for landed in (
            sqlite_db(tmp_path / "landed.db"),
            postgres_db(postgres_dsn, landed_schema),
        ):
            where = tmp_path / f"upgrade-{landed.dialect}"
            upgrade_a_landed_database(fresh, where, load_landed(landed))
    finally:
        import psycopg

        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{landed_schema}" CASCADE')
