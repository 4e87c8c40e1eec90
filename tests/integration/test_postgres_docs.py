"""docs/postgres.md says what the store makes and what it answers: checked against a schema the
store made on the test server, and against the store's own messages and defaults."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from lifecycle.errors import SchemaTooNewError, StoreError
from lifecycle.stores import open_store
from lifecycle.stores._migrations import LATEST
from tests._landed import postgres_db

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "postgres.md").read_text()
#: the page's prose (its code blocks left out) on one line, so a phrase the page wraps is
#: found whole
PROSE = " ".join(re.sub(r"```.*?```", "", PAGE, flags=re.S).split())

pytestmark = pytest.mark.postgres


def section(title: str) -> str:
    return PAGE.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def quoted_example(words: str) -> str:
    """The backquoted example message of the page that holds ``words``."""
    found: list[str] = [m for m in re.findall(r"`([^`]+)`", PROSE) if words in m]
    assert len(found) == 1, found
    return found[0]


def test_the_tables_and_indexes_the_page_lists_are_those_the_store_makes(
    postgres_dsn: str, postgres_schema: str
) -> None:
    db = postgres_db(postgres_dsn, postgres_schema)
    open_store(db.url).close()
    created = section("What is created")
    assert set(re.findall(r"^\| `(\w+)` \|", created, flags=re.M)) == db.tables()
    indexes = db.query(
        f"SELECT indexname FROM pg_indexes WHERE schemaname = '{postgres_schema}'"
        " AND indexname NOT LIKE '%\\_pkey'"
    )
    assert set(re.findall(r"`(\w+) \(", created)) == {name for (name,) in indexes}
    # "Nothing is created outside the schema: no extensions, functions or triggers."
    assert db.query(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        f" WHERE n.nspname = '{postgres_schema}'"
    ) == [(0,)]
    assert db.query(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{postgres_schema}'"
        " AND NOT t.tgisinternal"
    ) == [(0,)]


def test_the_versions_and_the_refusal_of_a_newer_schema_are_this_builds() -> None:
    assert f"this build knows versions 1 to {LATEST}," in PROSE
    example = quoted_example("newer than this build of lifecycle knows")
    refusal = str(SchemaTooNewError("PostgreSQL schema 'lifecycle'", LATEST + 1, LATEST))
    assert refusal.startswith(example), (example, refusal)


def test_the_refusal_of_a_schema_of_something_else_is_the_stores(
    postgres_dsn: str, postgres_schema: str
) -> None:
    db = postgres_db(postgres_dsn, postgres_schema)
    db.execute(
        f'CREATE SCHEMA "{postgres_schema}"; CREATE TABLE {{p}}invoices (id int);'
        " CREATE TABLE {p}orders (id int)"
    )
    with pytest.raises(StoreError) as refused:
        open_store(db.url)
    example = quoted_example("holds something else")
    assert example.replace("'public'", f"'{postgres_schema}'") in str(refused.value)


def test_the_pool_size_and_the_connect_timeout_are_the_stores_defaults() -> None:
    from lifecycle.stores.postgres import PostgresStore

    defaults = inspect.signature(PostgresStore).parameters
    connections = section("Connections")
    assert f"at most {defaults['pool_size'].default} connections" in " ".join(connections.split())
    assert f"Budget `max_connections` for {defaults['pool_size'].default} per replica" in PROSE
    assert f"waits up to {defaults['connect_timeout'].default:g} seconds" in PROSE
    assert f"is retried ({defaults['retries'].default} times" in PROSE
