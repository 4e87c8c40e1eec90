#!/usr/bin/env python3
"""Make the fixtures of the upgrade tests: databases written by the build before versioned schemas.

The code of commit ``LANDED`` (the last build whose tables carry no version
stamp) is taken out of git into a temporary directory and run there, in a
subprocess whose ``PYTHONPATH`` puts it before the checkout. It fills a
SQLite file and a PostgreSQL schema with the same experiments (running,
completed, cancelled, scheduled and one still creating, with their
history), asks its own service what it stores, and the script dumps both
databases as SQL:

- ``tests/fixtures/landed_v1/sqlite.sql``: the file, as ``iterdump()`` writes it;
- ``tests/fixtures/landed_v1/postgres.sql``: the schema ``lifecycle_landed_fixture``,
  as ``pg_dump --inserts`` writes it, without its session settings and psql
  commands (the tests load it with psycopg into a schema of their own);
- ``tests/fixtures/landed_v1/expected.json``: what that build answered for
  each experiment (Describe, the List, the history), the live count and the
  token secret.

``tests/integration/test_migrations.py`` loads the dumps and opens them with
the current code. Run from the checkout, with a PostgreSQL server and
``pg_dump`` on the PATH:

    python scripts/landed_fixtures.py --dsn postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

#: the last commit whose stores made unversioned tables
LANDED = "e0a89f4abb0001884e3cbacc1de6e0aa42285157"
#: the schema the landed build writes in PostgreSQL; the tests rename it
SCHEMA = "lifecycle_landed_fixture"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "landed_v1"

# runs inside the landed build: argv is the SQLite path, the DSN, the schema, the JSON path
_FILL = r"""
import json, sys
import lifecycle
assert lifecycle.__file__.startswith(sys.argv[5]), lifecycle.__file__
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.postgres import PostgresStore
from lifecycle.stores.sqlite import SqliteStore
from lifecycle.testing import create_payload

NAMES = ["running", "promoted", "cancelled", "scheduled", "creating"]


def fill(store):
    now = [1_800_000_000.0]
    service = ExperimentService(store, clock=lambda: now[0], settle_seconds=60)
    reconciler = Reconciler(service)

    def tick():
        now[0] += 60
        reconciler.run_once()

    service.create_inference_experiment(**create_payload(
        Name="running", EndpointName="ep-running", Description="a shadow test left running",
        Tags=[{"Key": "team", "Value": "ml"}],
    ))
    service.create_inference_experiment(**create_payload(Name="promoted", EndpointName="ep-promoted"))
    service.create_inference_experiment(**create_payload(Name="cancelled", EndpointName="ep-cancelled"))
    service.create_inference_experiment(**create_payload(
        Name="scheduled", EndpointName="ep-scheduled",
        Schedule={"StartTime": now[0] + 86400, "EndTime": now[0] + 2 * 86400},
    ))
    tick()
    tick()
    service.stop_inference_experiment(
        Name="promoted", ModelVariantActions={"shadow": "Promote"},
        DesiredState="Completed", Reason="the shadow model won",
    )
    service.stop_inference_experiment(
        Name="cancelled", ModelVariantActions={"shadow": "Remove"}, DesiredState="Cancelled",
    )
    tick()
    service.create_inference_experiment(**create_payload(Name="creating", EndpointName="ep-creating"))
    answer = {
        "describe": {n: service.describe_inference_experiment(Name=n) for n in NAMES},
        "list": service.list_inference_experiments(MaxResults=100),
        "history": {n: [list(e) for e in store.history(n)] for n in NAMES},
        "live_count": store.live_count(),
        "token_secret": store.token_secret().hex(),
        "count": len(store),
    }
    store.close()
    return answer


answers = {
    "sqlite": fill(SqliteStore(sys.argv[1])),
    "postgres": fill(PostgresStore(sys.argv[2], schema=sys.argv[3])),
}
with open(sys.argv[4], "w") as out:
    json.dump(answers, out, indent=1, sort_keys=True)
    out.write("\n")
"""


def _postgres_dump(dsn: str) -> str:
    done = subprocess.run(
        ["pg_dump", "--inserts", "--no-owner", "--no-privileges", f"--schema={SCHEMA}", dsn],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    kept = [
        line
        for line in done.stdout.splitlines()
        # session settings and psql's own commands: what psycopg cannot run, or need not
        if not line.startswith(("SET ", "SELECT pg_catalog.set_config", "\\"))
    ]
    return "\n".join(kept).strip() + "\n"


def _drop(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("LIFECYCLE_TEST_POSTGRES_DSN", ""),
        help="the PostgreSQL server to run the landed build on (default: $LIFECYCLE_TEST_POSTGRES_DSN)",
    )
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn is required (or LIFECYCLE_TEST_POSTGRES_DSN)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "landed"
        code.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", LANDED, "lifecycle"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True, timeout=60)
        db = Path(tmp) / "landed.db"
        _drop(args.dsn)
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _FILL,
                    str(db),
                    args.dsn,
                    SCHEMA,
                    str(OUT / "expected.json"),
                    str(code),
                ],
                env={**os.environ, "PYTHONPATH": str(code)},
                cwd=tmp,
                check=True,
                timeout=120,
            )
            (OUT / "postgres.sql").write_text(
                f"-- schema {SCHEMA} as the build of commit {LANDED[:7]} made it;"
                " made by scripts/landed_fixtures.py\n" + _postgres_dump(args.dsn)
            )
        finally:
            _drop(args.dsn)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
            dump = "\n".join(conn.iterdump())
        finally:
            conn.close()
        (OUT / "sqlite.sql").write_text(
            f"-- a SQLite file as the build of commit {LANDED[:7]} made it;"
            " made by scripts/landed_fixtures.py\n" + dump + "\n"
        )
    for name in ("sqlite.sql", "postgres.sql", "expected.json"):
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
