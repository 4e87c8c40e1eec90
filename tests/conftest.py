"""Fixtures shared by every test directory: the PostgreSQL server the store tests use.

The DSN comes from ``LIFECYCLE_TEST_POSTGRES_DSN``. Without it the PostgreSQL
tests are skipped, saying so; with ``LIFECYCLE_REQUIRE_POSTGRES=1`` (CI) a
missing DSN, a missing psycopg or an unreachable server is an error
instead, so CI never passes with those tests skipped. Each test gets a
schema of its own, made for it and dropped after it: nothing else on the
server is touched.

Every test starts without the ``LIFECYCLE_*`` variables of ``lifecycle serve``
(those of a developer's shell would change what the server tests start).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from lifecycle.errors import install_hint

POSTGRES_DSN_ENV = "LIFECYCLE_TEST_POSTGRES_DSN"
REQUIRE_POSTGRES_ENV = "LIFECYCLE_REQUIRE_POSTGRES"

#: one prefix per test run, so schemas of runs in parallel never meet
_RUN = f"lifecycle_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(autouse=True)
def _no_serve_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``LIFECYCLE_*`` variables ``lifecycle serve`` reads are the tests' to set: any in
    the caller's environment are taken out (the test suite's own two stay)."""
    for name in list(os.environ):
        if name.startswith("LIFECYCLE_") and name not in (POSTGRES_DSN_ENV, REQUIRE_POSTGRES_ENV):
            monkeypatch.delenv(name)


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_POSTGRES_ENV, "") not in ("", "0"):
        pytest.fail(
            f"{reason}, and {REQUIRE_POSTGRES_ENV} is set: PostgreSQL tests must run", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, checked once per run (skip or fail as the module docstring says)."""
    dsn = os.environ.get(POSTGRES_DSN_ENV, "")
    if not dsn:
        _unavailable(
            f"{POSTGRES_DSN_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    try:
        import psycopg
    except ImportError:
        _unavailable(f"psycopg is not installed: {install_hint('postgres')}")
        raise
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        pytest.fail(
            f"{POSTGRES_DSN_ENV}={dsn!r} is set but the server does not answer: {err}",
            pytrace=False,
        )
    return dsn


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name for this test alone; the schema (if made) is dropped afterwards."""
    import psycopg

    name = f"{_RUN}_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def postgres_url(postgres_dsn: str, postgres_schema: str) -> str:
    """An ``open_store`` URL of the test's own schema."""
    sep = "&" if "?" in postgres_dsn else "?"
    return f"{postgres_dsn}{sep}schema={postgres_schema}"
