"""Databases the landed builds made, for the upgrade tests: loading the dumps of
``tests/fixtures/landed_v*/`` into a SQLite file or a PostgreSQL schema of a test's own.

The dumps are SQL of a SQLite file and a PostgreSQL schema that earlier
builds wrote (version 1: commit e0a89f4, the last build whose tables carry
no version; version 3: commit 0b731a1, the last of one account), with what
those builds answered for each experiment (``expected.json``); all made by
``scripts/landed_fixtures.py``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EXPECTED",
    "EXPECTED_V3",
    "FIXTURES",
    "FIXTURES_V3",
    "Db",
    "load_landed",
    "postgres_db",
    "sqlite_db",
]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "landed_v1"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())
FIXTURES_V3 = FIXTURES.parent / "landed_v3"
EXPECTED_V3: dict[str, Any] = json.loads((FIXTURES_V3 / "expected.json").read_text())
#: the schema name the landed build wrote in PostgreSQL, renamed to each test's own
FIXTURE_SCHEMA = "lifecycle_landed_fixture"


@dataclass
class Db:
    """One database under test: its URL, its dialect, and plain SQL on it (``{p}`` the table prefix)."""

    dialect: str
    url: str
    path: Path | None = None
    dsn: str = ""
    schema: str = ""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                return conn.execute(sql.format(p="")).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as pg:
            return pg.execute(sql.format(p=f'"{self.schema}".')).fetchall()

    def execute(self, sql: str) -> None:
        """Statements that return no rows."""
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                conn.executescript(sql.format(p=""))
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as pg:
            pg.execute(sql.format(p=f'"{self.schema}".'))

    def version_log(self) -> list[int]:
        return [r[0] for r in self.query("SELECT version FROM {p}lifecycle_migrations ORDER BY 1")]

    def tables(self) -> set[str]:
        if self.path is not None:
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.query(f"SELECT tablename FROM pg_tables WHERE schemaname = '{self.schema}'")
        return {r[0] for r in rows}


def sqlite_db(path: Path) -> Db:
    return Db("sqlite", f"sqlite:///{path}", path=path)


def postgres_db(dsn: str, schema: str) -> Db:
    return Db(
        "postgres", f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}", dsn=dsn, schema=schema
    )


def load_landed(db: Db, fixtures: Path = FIXTURES) -> Db:
    """Fill ``db`` with what the landed build of ``fixtures`` wrote."""
    if db.path is not None:
        conn = sqlite3.connect(db.path)
        conn.executescript((fixtures / "sqlite.sql").read_text())
        conn.close()
    else:
        import psycopg

        dump = (fixtures / "postgres.sql").read_text().replace(FIXTURE_SCHEMA, db.schema)
        with psycopg.connect(db.dsn, autocommit=True) as conn_pg:
            conn_pg.execute(dump)
    return db
