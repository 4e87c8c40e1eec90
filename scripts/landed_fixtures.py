#!/usr/bin/env python3
"""Make the fixtures of the upgrade tests: databases written by earlier builds, at their schemas.

For each fixture (``--version``), the code of its commit (:data:`LANDED`) is
taken out of git into a temporary directory and run there, in a subprocess
whose ``PYTHONPATH`` puts it before the checkout. It fills a SQLite file and
a PostgreSQL schema with the same experiments, asks its own service what it
stores, and the script dumps both databases as SQL into
``tests/fixtures/landed_v{N}/``:

- ``sqlite.sql``: the file, as ``iterdump()`` writes it (and the
  ``PRAGMA user_version`` stamp, which ``iterdump()`` leaves out);
- ``postgres.sql``: the schema ``lifecycle_landed_fixture``, as ``pg_dump
  --inserts`` writes it, without its session settings and psql commands (the
  tests load it with psycopg into a schema of their own);
- ``expected.json``: what that build answered for each experiment
  (Describe, the List, the history), the live count and the token secret.

The fixtures:

- **version 1** (commit e0a89f4, the last build whose tables carry no
  version stamp): experiments running, completed, cancelled, scheduled and
  one still creating, with their history.
- **version 3** (commit 0b731a1, the last build of one account, with the
  change feed): the same in account 123456789012, and two more in account
  210987654321 (the build served one account per service; two services
  shared the store, so their names and endpoints differ), with the feed
  (``expected.json`` has it under ``changes``).

``tests/integration/test_migrations.py`` loads the dumps and opens them with
the current code. Run from the checkout, with a PostgreSQL server and
``pg_dump`` on the PATH:

    python scripts/landed_fixtures.py --version 3 --dsn postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

#: the commit of each fixture's build: the last whose stores made unversioned tables (1),
#: the last of one account (3)
LANDED = {
    1: "e0a89f4abb0001884e3cbacc1de6e0aa42285157",
    3: "0b731a18beaa2f86dceb590fc4562491546a03fd",
}
#: the schema the landed build writes in PostgreSQL; the tests rename it
SCHEMA = "lifecycle_landed_fixture"
ROOT = Path(__file__).resolve().parents[1]

# runs inside the landed build: argv is the SQLite path, the DSN, the schema, the JSON path,
# the build's code and the fixture's version; version 3 adds another account's service on
# the same store (its names and endpoints differ: that build kept them unique in the store)
# and the change feed
_FILL = r"""
import json, sys
import lifecycle
assert lifecycle.__file__.startswith(sys.argv[5]), lifecycle.__file__
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores.postgres import PostgresStore
from lifecycle.stores.sqlite import SqliteStore
from lifecycle.testing import create_payload

V3 = sys.argv[6] == "3"
NAMES = ["running", "promoted", "cancelled", "scheduled", "creating"]
ACCOUNTS = {"123456789012": NAMES, "210987654321": ["elsewhere", "elsewhere-done"]}


def fill(store):
    now = [1_800_000_000.0]
    service = ExperimentService(store, clock=lambda: now[0], settle_seconds=60)
    reconciler = Reconciler(service)
    if V3:
        other = ExperimentService(
            store, clock=lambda: now[0], settle_seconds=60, account_id="210987654321"
        )
        services = {"123456789012": service, "210987654321": other}

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
    if V3:
        other.create_inference_experiment(**create_payload(Name="elsewhere", EndpointName="ep-elsewhere"))
        other.create_inference_experiment(**create_payload(Name="elsewhere-done", EndpointName="ep-done"))
    tick()
    tick()
    service.stop_inference_experiment(
        Name="promoted", ModelVariantActions={"shadow": "Promote"},
        DesiredState="Completed", Reason="the shadow model won",
    )
    service.stop_inference_experiment(
        Name="cancelled", ModelVariantActions={"shadow": "Remove"}, DesiredState="Cancelled",
    )
    if V3:
        other.stop_inference_experiment(
            Name="elsewhere-done", ModelVariantActions={"shadow": "Remove"}, DesiredState="Completed",
        )
    tick()
    service.create_inference_experiment(**create_payload(Name="creating", EndpointName="ep-creating"))
    if V3:
        answer = {
            "describe": {
                account: {n: services[account].describe_inference_experiment(Name=n) for n in names}
                for account, names in ACCOUNTS.items()
            },
            "list": {
                account: services[account].list_inference_experiments(MaxResults=100)
                for account in ACCOUNTS
            },
            "history": {
                account: {n: [list(e) for e in store.history(n)] for n in names}
                for account, names in ACCOUNTS.items()
            },
            "changes": [list(c) for c in store.changes(None, 1000).changes],
        }
    else:
        answer = {
            "describe": {n: service.describe_inference_experiment(Name=n) for n in NAMES},
            "list": service.list_inference_experiments(MaxResults=100),
            "history": {n: [list(e) for e in store.history(n)] for n in NAMES},
        }
    answer.update(
        live_count=store.live_count(), token_secret=store.token_secret().hex(), count=len(store)
    )
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
    parser.add_argument(
        "--version",
        type=int,
        choices=sorted(LANDED),
        default=1,
        help="which fixture: the schema version of the build that writes it (default 1)",
    )
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn is required (or LIFECYCLE_TEST_POSTGRES_DSN)")
    landed, out = LANDED[args.version], ROOT / "tests" / "fixtures" / f"landed_v{args.version}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "landed"
        code.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", landed, "lifecycle"],
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
                    str(out / "expected.json"),
                    str(code),
                    str(args.version),
                ],
                env={**os.environ, "PYTHONPATH": str(code)},
                cwd=tmp,
                check=True,
                timeout=120,
            )
            (out / "postgres.sql").write_text(
                f"-- schema {SCHEMA} as the build of commit {landed[:7]} made it;"
                " made by scripts/landed_fixtures.py\n" + _postgres_dump(args.dsn)
            )
        finally:
            _drop(args.dsn)
        conn = sqlite3.connect(db)
        try:
            stamp = conn.execute("PRAGMA user_version").fetchone()[0]
            assert stamp == (0 if args.version == 1 else args.version), stamp
            dump = "\n".join(conn.iterdump())
        finally:
            conn.close()
        if stamp:  # iterdump() leaves the stamp out
            dump += f"\nPRAGMA user_version = {stamp};"
        (out / "sqlite.sql").write_text(
            f"-- a SQLite file as the build of commit {landed[:7]} made it;"
            " made by scripts/landed_fixtures.py\n" + dump + "\n"
        )
    for name in ("sqlite.sql", "postgres.sql", "expected.json"):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
