"""Versioned schemas: databases made by the build before versions were recorded, upgraded in place;
replicas that migrate at once; a schema newer than the build; ``lifecycle migrate``.

The landed databases are ``tests/fixtures/landed_v1/``: SQL dumps of a
SQLite file and a PostgreSQL schema that the build of commit e0a89f4 wrote,
with what that build answered for each experiment, and
``tests/fixtures/landed_v3/``, the same of the build of commit 0b731a1 (schema
version 3: one account per service, the change feed) with experiments of two
accounts; both made by ``scripts/landed_fixtures.py``. Each test loads them
into a file or schema of its own.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.errors import (
    EndpointInUseError,
    LiveLimitError,
    NameInUseError,
    NotFoundError,
    SchemaTooNewError,
    StoreError,
)
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore, _migrations, migrate_store, open_store
from lifecycle.stores._migrations import LATEST, Migration
from lifecycle.stores._sql_statements import Statements
from lifecycle.stores._sql_store import SqlStore
from lifecycle.testing import create_payload
from tests._feed import read_all
from tests._landed import (
    EXPECTED,
    EXPECTED_V3,
    FIXTURES_V3,
    Db,
    load_landed,
    postgres_db,
    sqlite_db,
)

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

if TYPE_CHECKING:
    from lifecycle.stores.postgres import PostgresStore

#: the account of the version-3 fixture's other service
OTHER_ACCOUNT = "210987654321"
NAMES = sorted(EXPECTED["sqlite"]["describe"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    """An empty database of each dialect: a new SQLite path, a PostgreSQL schema not made yet."""
    if request.param == "sqlite":
        return sqlite_db(tmp_path / "lifecycle.db")
    return postgres_db(
        request.getfixturevalue("postgres_dsn"), request.getfixturevalue("postgres_schema")
    )


@pytest.fixture
def landed(db: Db) -> Db:
    """A database of each dialect as the landed build left it."""
    return load_landed(db)


@pytest.fixture
def landed_v3(db: Db) -> Db:
    """A database of each dialect as the build of schema version 3 left it: two accounts'
    experiments on one store, and its change feed."""
    return load_landed(db, FIXTURES_V3)


def open_sql(url: str) -> SqliteStore | PostgresStore:
    """``open_store(url)`` for a SQL store, which says what opening migrated."""
    store = open_store(url)
    assert isinstance(store, SqlStore)
    return cast("SqliteStore | PostgresStore", store)


def json_of(value: Any) -> Any:
    return json.loads(json.dumps(value))


def landed_fields(entry: HistoryEntry) -> list[Any]:
    """A history entry's fields a landed database wrote (the history holds the experiment
    machine's transitions only: the fields after are always ``experiment`` and None)."""
    assert (entry.machine, entry.variant) == ("experiment", None)
    return list(entry)[:8]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- the landed layout, upgraded ------------------------------------------------------------------


def test_a_landed_database_is_recognised_as_version_1_without_a_stamp(landed: Db) -> None:
    assert "lifecycle_migrations" not in landed.tables()
    if landed.path is not None:
        assert landed.query("PRAGMA user_version") == [(0,)]
    report = migrate_store(landed.url, dry_run=True)
    assert (report.from_version, report.to_version) == (1, LATEST)
    assert [m.version for m in report.steps] == list(range(2, LATEST + 1))
    assert "lifecycle_migrations" not in landed.tables()  # a dry run writes nothing


def test_opening_a_landed_database_migrates_it_and_keeps_every_experiment(landed: Db) -> None:
    expected = EXPECTED[landed.dialect]
    store = open_sql(landed.url)
    try:
        migration = store.migration
        assert (migration.from_version, migration.to_version) == (1, LATEST)
        service = ExperimentService(store)
        for name in NAMES:
            assert (
                json_of(service.describe_inference_experiment(Name=name))
                == expected["describe"][name]
            )
            assert (
                json_of([landed_fields(e) for e in store.history(ACCOUNT, name)])
                == expected["history"][name]
            )
        assert json_of(service.list_inference_experiments(MaxResults=100)) == expected["list"]
        assert len(store) == expected["count"] == 5
        assert store.live_count() == expected["live_count"] == 3
        assert store.token_secret().hex() == expected["token_secret"]
    finally:
        store.close()
    assert landed.version_log() == list(range(1, LATEST + 1))
    # builds from before versions were recorded read this row and refuse anything but '1'
    assert landed.query("SELECT value FROM {p}lifecycle_meta WHERE key = 'schema_version'") == [
        (str(LATEST),)
    ]
    if landed.path is not None:
        assert landed.query("PRAGMA user_version") == [(LATEST,)]


def test_a_migrated_landed_database_keeps_its_rules_and_its_work(landed: Db) -> None:
    store = open_sql(landed.url)
    try:
        # the landed build's clock stood at 1_800_000_180 when it stopped
        service = ExperimentService(store, clock=lambda: 1_800_000_600.0, settle_seconds=0)
        # the live endpoint index survived: ep-running is taken, ep-promoted was freed
        with pytest.raises(EndpointInUseError):
            service.create_inference_experiment(
                **create_payload(Name="again", EndpointName="ep-running")
            )
        service.create_inference_experiment(
            **create_payload(Name="next", EndpointName="ep-promoted")
        )
        # the due index survived: the one left Creating is picked up and moves on
        Reconciler(service).run_once()
        assert service.describe_inference_experiment(Name="creating")["Status"] != "Creating"
        assert store.live_count() == 4
    finally:
        store.close()


# -- a new database, and opening again ------------------------------------------------------------


def test_a_new_database_is_made_at_the_latest_version_by_the_same_steps(db: Db) -> None:
    store = open_sql(db.url)
    store.close()
    migration = store.migration
    assert (migration.from_version, migration.to_version) == (0, LATEST)
    assert [m.version for m in migration.steps] == list(range(1, LATEST + 1))
    assert db.version_log() == list(range(1, LATEST + 1))
    assert {"experiments", "history", "counters", "lifecycle_meta", "lifecycle_migrations"} <= (
        db.tables()
    )


def test_opening_and_migrating_again_changes_nothing(db: Db) -> None:
    open_store(db.url).close()
    log = db.query(
        "SELECT version, description, applied_at FROM {p}lifecycle_migrations ORDER BY 1"
    )
    for _ in range(2):
        store = open_sql(db.url)
        store.close()
        assert store.migration.steps == ()
        report = migrate_store(db.url)
        assert report.steps == ()
        assert report.lines() == [f"{report.where}: at schema version {LATEST}, nothing to migrate"]
    assert (
        db.query("SELECT version, description, applied_at FROM {p}lifecycle_migrations ORDER BY 1")
        == log
    )


def test_without_migrating_an_old_or_missing_schema_is_refused_and_left_alone(db: Db) -> None:
    sep = "&" if "?" in db.url else "?"
    with pytest.raises(StoreError, match=r"lifecycle migrate --store URL"):
        open_store(f"{db.url}{sep}migrate=false")
    if db.path is not None:
        assert not db.path.exists()  # no file made either
    assert db.tables() == set()
    load_landed(db)
    with pytest.raises(
        StoreError, match=r"at schema version 1 and this build needs version"
    ) as info:
        open_store(f"{db.url}{sep}migrate=false")
    assert not isinstance(info.value, SchemaTooNewError)
    assert "lifecycle_migrations" not in db.tables()
    migrate_store(f"{db.url}{sep}migrate=false")  # migrate ignores the option
    open_store(f"{db.url}{sep}migrate=false").close()


def test_a_bad_migrate_option_names_itself(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"migrate='maybe'.*true or false"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?migrate=maybe")


# -- newer than this build ------------------------------------------------------------------------


def _later_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process becomes a build that knows one more version: a table of notes."""

    def notes(sql: Statements) -> list[str]:
        d = sql.dialect
        return [
            f"CREATE TABLE {sql.prefix}later_notes (seq {d.bigint} PRIMARY KEY, name {d.text} NOT NULL)"
        ]

    later = (
        *_migrations.MIGRATIONS,
        Migration(LATEST + 1, "later_notes: a note of every write", notes),
    )
    monkeypatch.setattr(_migrations, "MIGRATIONS", later)
    monkeypatch.setattr(_migrations, "LATEST", LATEST + 1)


def test_a_later_build_adds_a_version_in_a_few_lines_and_this_build_refuses_it(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(db.url).close()
    with monkeypatch.context() as later:
        _later_build(later)
        store = open_sql(db.url)
        store.close()
        migration = store.migration
        assert (migration.from_version, migration.to_version) == (LATEST, LATEST + 1)
        assert [m.description for m in migration.steps] == ["later_notes: a note of every write"]
    assert "later_notes" in db.tables()
    assert db.version_log() == list(range(1, LATEST + 2))
    before = db.query("SELECT * FROM {p}lifecycle_meta ORDER BY key")
    with pytest.raises(SchemaTooNewError) as info:
        open_store(db.url)
    err = info.value
    assert (err.found, err.known) == (LATEST + 1, LATEST)
    assert f"schema version {LATEST + 1}" in err.message and f"(version {LATEST})" in err.message
    with pytest.raises(SchemaTooNewError):
        migrate_store(db.url, dry_run=True)
    with pytest.raises(SchemaTooNewError):
        migrate_store(db.url)
    assert db.query("SELECT * FROM {p}lifecycle_meta ORDER BY key") == before  # nothing written
    assert db.version_log() == list(range(1, LATEST + 2))


def _too_new(db: Db) -> None:
    """Make ``db`` look migrated by a build two versions on."""
    open_store(db.url).close()
    newer = LATEST + 2
    if db.path is not None:
        db.execute(f"PRAGMA user_version = {newer}")
    else:
        db.execute(
            "INSERT INTO {p}lifecycle_migrations (version, description) VALUES"
            f" ({newer}, 'from the future')"
        )


def test_serve_refuses_a_newer_schema_naming_both_versions(db: Db) -> None:
    _too_new(db)
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.http.serve", "--port", "0", "--store", db.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"is at schema version {LATEST + 2}, newer than this build" in done.stderr
    assert f"(version {LATEST})" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_step_that_fails_leaves_the_schema_at_the_version_before_it(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(db.url).close()

    def broken(sql: Statements) -> list[str]:
        return [f"CREATE TABLE {sql.prefix}half (x {sql.dialect.integer})", "NOT SQL AT ALL"]

    later = (*_migrations.MIGRATIONS, Migration(LATEST + 1, "a step that fails", broken))
    monkeypatch.setattr(_migrations, "MIGRATIONS", later)
    monkeypatch.setattr(_migrations, "LATEST", LATEST + 1)
    with pytest.raises(StoreError, match="cannot open"):
        open_store(db.url)
    monkeypatch.undo()
    assert "half" not in db.tables()  # the step's transaction rolled back, its table too
    assert db.version_log() == list(range(1, LATEST + 1))
    open_store(db.url).close()


# -- what is not a lifecycle store ----------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgres_schema_of_something_else_is_refused_and_not_joined(
    postgres_dsn: str, postgres_schema: str
) -> None:
    db = postgres_db(postgres_dsn, postgres_schema)
    db.execute(f'CREATE SCHEMA "{postgres_schema}"; CREATE TABLE {{p}}invoices (id int)')
    with pytest.raises(
        StoreError, match=r"holds something else \(tables invoices\).*\?schema=NAME"
    ):
        open_store(db.url)
    with pytest.raises(StoreError, match="something else"):
        migrate_store(db.url, dry_run=True)
    assert db.tables() == {"invoices"}


@pytest.mark.postgres
def test_an_empty_schema_made_beforehand_is_used(postgres_dsn: str, postgres_schema: str) -> None:
    db = postgres_db(postgres_dsn, postgres_schema)
    db.execute(f'CREATE SCHEMA "{postgres_schema}"')
    open_store(db.url).close()
    assert db.version_log() == list(range(1, LATEST + 1))


def test_a_meta_table_without_a_version_is_refused(db: Db) -> None:
    open_store(db.url).close()
    db.execute(
        "DROP TABLE {p}lifecycle_migrations; DELETE FROM {p}lifecycle_meta WHERE key = 'schema_version'"
    )
    if db.path is not None:
        db.execute("PRAGMA user_version = 0")
    with pytest.raises(StoreError, match="no schema version this build recognises"):
        open_store(db.url)


# -- replicas starting at once --------------------------------------------------------------------

_OPEN = """
import json, sys
from lifecycle.stores import open_store
print("opening", flush=True)
store = open_store(sys.argv[1])
print(json.dumps([m.version for m in store.migration.steps]), flush=True)
store.close()
"""


def _openers(url: str, count: int = 2) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def _steps_of(openers: list[subprocess.Popen[str]]) -> list[int]:
    steps: list[int] = []
    for p in openers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        steps += json.loads(out.splitlines()[-1])
    return steps


@pytest.mark.postgres
def test_two_processes_opening_a_new_postgres_schema_at_once_run_each_step_once(
    postgres_dsn: str, postgres_schema: str
) -> None:
    import psycopg

    from lifecycle.stores.postgres import migration_lock_key

    db = postgres_db(postgres_dsn, postgres_schema)
    key = migration_lock_key(postgres_schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))  # both will wait for it
        openers = _openers(db.url)
        try:
            deadline = time.monotonic() + 60
            while _waiting_for(holder, key) < 2:
                assert time.monotonic() < deadline, "the two processes never waited for the lock"
                assert all(p.poll() is None for p in openers), "a process ended early"
                time.sleep(0.05)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        steps = _steps_of(openers)
    assert sorted(steps) == list(range(1, LATEST + 1))  # every step once, by one or the other
    assert db.version_log() == list(range(1, LATEST + 1))
    assert db.query("SELECT value FROM {p}lifecycle_meta WHERE key = 'schema_version'") == [
        (str(LATEST),)
    ]


def _waiting_for(conn: Any, key: int) -> int:
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        (high, low),
    ).fetchone()
    return int(row[0])


def test_two_processes_opening_a_new_sqlite_file_at_once_run_each_step_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lifecycle.db"
    db = sqlite_db(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN IMMEDIATE")  # the file's write lock: both will wait for it
    openers = _openers(db.url)
    try:
        for p in openers:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "opening"
        time.sleep(0.5)  # time to reach the lock, which they wait for up to 30 s
        assert all(p.poll() is None for p in openers)
    finally:
        holder.execute("COMMIT")
        holder.close()
    steps = _steps_of(openers)
    assert sorted(steps) == list(range(1, LATEST + 1))
    assert db.version_log() == list(range(1, LATEST + 1))
    assert db.query("PRAGMA user_version") == [(LATEST,)]


def _open_from_threads(path: Path, count: int) -> tuple[list[SqliteStore], list[BaseException]]:
    """``count`` threads open ``path`` at once: the stores they opened and what they raised."""
    import threading

    stores: list[SqliteStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def open_it() -> None:
        barrier.wait(10)
        try:
            stores.append(SqliteStore(path))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return stores, errors


def test_many_threads_opening_one_new_sqlite_file_run_each_step_once(tmp_path: Path) -> None:
    # the race (every opener switching a new file to WAL at once) is lost only now and
    # then, so run it for several new files
    for round_ in range(40):
        stores, errors = _open_from_threads(tmp_path / f"lifecycle-{round_}.db", 6)
        steps = sorted(m.version for s in stores for m in s.migration.steps)
        for s in stores:
            s.close()
        assert errors == [], f"round {round_}: {errors!r}"
        assert len(stores) == 6
        assert steps == list(range(1, LATEST + 1))


# -- lifecycle migrate ----------------------------------------------------------------------------


def test_lifecycle_migrate_upgrades_a_landed_database_end_to_end(landed: Db) -> None:
    dry = run_cli("migrate", "--store", landed.url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would migrate from schema version 1 to {LATEST}" in dry.stdout
    assert "lifecycle_migrations" not in landed.tables()

    done = run_cli("migrate", "--store", landed.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith(f": migrated from schema version 1 to {LATEST}")
    assert lines[1].startswith("  2: lifecycle_migrations")
    assert landed.version_log() == list(range(1, LATEST + 1))

    again = run_cli("migrate", "--store", landed.url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f"at schema version {LATEST}, nothing to migrate")

    # a server that must not migrate starts on it now
    sep = "&" if "?" in landed.url else "?"
    store = open_sql(f"{landed.url}{sep}migrate=false")
    try:
        assert len(store) == 5
    finally:
        store.close()


def test_lifecycle_migrate_refuses_a_newer_schema_and_memory(db: Db) -> None:
    _too_new(db)
    done = run_cli("migrate", "--store", db.url)
    assert done.returncode == 1
    assert f"is at schema version {LATEST + 2}, newer than this build" in done.stderr
    assert "Traceback" not in done.stderr
    memory = run_cli("migrate", "--store", "memory://")
    assert memory.returncode == 1
    assert "no schema to migrate" in memory.stderr


def test_lifecycle_migrate_needs_a_store() -> None:
    done = run_cli("migrate")
    assert done.returncode == 2
    assert "--store" in done.stderr


def test_a_landed_store_gains_the_change_feed_empty_and_feeds_it_from_then_on(
    landed: Db,
) -> None:

    from tests._feed import read_all

    store = open_sql(landed.url)
    try:
        steps = [m.description for m in store.migration.steps]
        assert any(d.startswith("the change feed") for d in steps), steps
        assert {"changes", "feed_cursors"} <= landed.tables()
        assert read_all(store) == []  # the landed transitions stay in their history only
        service = ExperimentService(store, settle_seconds=0.0, max_live_experiments=None)
        service.invoke(
            "CreateInferenceExperiment", create_payload(Name="fed", EndpointName="ep-fed")
        )
        assert [(c.name, c.event) for c in read_all(store)] == [("fed", "create")]
        store.save_feed_cursor("hook", 7)
        assert store.feed_cursor("hook") == 7
    finally:
        store.close()


# -- a schema restored on another server ----------------------------------------------------------


@pytest.mark.postgres
def test_a_feed_restored_on_a_server_behind_the_dumped_one_reads_on_and_goes_on_after_it(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """On PostgreSQL a change's position is the server's transaction id (``<< 16``). A dump
    restored on another server, whose ids are behind the dumped one's, holds positions this
    server has not reached: opening the store finds them, and the feed reads them at once and
    numbers each new change after them."""
    db = postgres_db(postgres_dsn, postgres_schema)
    store = open_sql(db.url)
    service = ExperimentService(store, settle_seconds=0)
    service.create_inference_experiment(**create_payload(Name="before", EndpointName="ep-1"))
    store.save_feed_cursor("hook", read_all(store)[-1].position)
    store.close()
    # as pg_dump wrote it on a server 10 million transactions ahead of this one
    ahead = (int(db.query("SELECT pg_current_xact_id()::text::bigint")[0][0]) + 10_000_000) << 16
    db.execute(
        f"UPDATE {{p}}changes SET position = position + {ahead};"
        f" UPDATE {{p}}feed_cursors SET position = position + {ahead}"
    )
    (restored,) = [position for (position,) in db.query("SELECT position FROM {p}changes")]

    store = open_sql(db.url)
    try:
        assert [c.position for c in read_all(store)] == [restored]
        service = ExperimentService(store, settle_seconds=0)
        service.create_inference_experiment(**create_payload(Name="after", EndpointName="ep-2"))
        (new,) = read_all(store, after=store.feed_cursor("hook"))
        assert (new.name, new.position > restored) == ("after", True)
        assert [c.name for c in read_all(store)] == ["before", "after"]
    finally:
        store.close()


# -- version 3 (one account per service) to accounts in the store ---------------------------------


def test_a_version_3_database_is_found_at_3_and_lifecycle_migrate_plans_the_accounts_step(
    landed_v3: Db,
) -> None:
    report = migrate_store(landed_v3.url, dry_run=True)
    assert (report.from_version, report.to_version) == (3, LATEST)
    assert report.steps[0].version == 4 and report.steps[0].description.startswith("accounts:")
    dry = run_cli("migrate", "--store", landed_v3.url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would migrate from schema version 3 to {LATEST}" in dry.stdout
    assert "  4: accounts: experiments, history and changes keyed by account" in dry.stdout
    assert landed_v3.version_log() == [1, 2, 3]  # a dry run writes nothing


def test_opening_a_version_3_database_puts_each_experiment_in_the_account_of_its_arn(
    landed_v3: Db,
) -> None:
    expected = EXPECTED_V3[landed_v3.dialect]
    store = open_sql(landed_v3.url)
    try:
        assert (store.migration.from_version, store.migration.to_version) == (3, LATEST)
        service = ExperimentService(store)
        for account, described in expected["describe"].items():
            mine = service.for_account(account)
            for name, answer in described.items():
                assert json_of(mine.describe_inference_experiment(Name=name)) == answer
                history = store.history(account, name)
                assert (
                    json_of([landed_fields(e) for e in history])
                    == expected["history"][account][name]
                )
            # the build listed every experiment of the store; now each account lists its own
            listed = expected["list"][account]["InferenceExperiments"]
            assert json_of(mine.list_inference_experiments(MaxResults=100)) == {
                "InferenceExperiments": [e for e in listed if e["Name"] in described]
            }
        # each account sees only its own: the other's names do not exist to it
        with pytest.raises(NotFoundError):
            service.describe_inference_experiment(Name="elsewhere")
        with pytest.raises(NotFoundError):
            service.for_account(OTHER_ACCOUNT).describe_inference_experiment(Name="running")
        assert len(store) == expected["count"] == 7
        assert store.live_count() == expected["live_count"] == 4
        assert (store.live_count(ACCOUNT), store.live_count(OTHER_ACCOUNT)) == (3, 1)
        assert store.token_secret().hex() == expected["token_secret"]
        # the feed keeps its positions, each change now with its account
        feed = read_all(store, limit=100)
        assert json_of([[c[0], *c[2:]] for c in feed]) == expected["changes"]
        assert [c.account for c in feed] == [c.arn.split(":")[4] for c in feed]
        assert {c.account for c in feed} == {ACCOUNT, OTHER_ACCOUNT}
        theirs = read_all(store, limit=100, account=OTHER_ACCOUNT)
        assert theirs == [c for c in feed if c.account == OTHER_ACCOUNT]
    finally:
        store.close()
    assert landed_v3.version_log() == list(range(1, LATEST + 1))
    if landed_v3.path is not None:
        assert landed_v3.query("PRAGMA user_version") == [(LATEST,)]


def test_a_migrated_version_3_database_keeps_its_rules_per_account(landed_v3: Db) -> None:
    store = open_sql(landed_v3.url)
    try:
        # the build's clock stood at 1_800_000_180 when it stopped
        service = ExperimentService(store, clock=lambda: 1_800_000_600.0, max_live_experiments=4)
        other = service.for_account(OTHER_ACCOUNT)
        # the live endpoint index holds per account: ep-running is taken in its own only
        with pytest.raises(EndpointInUseError):
            service.create_inference_experiment(
                **create_payload(Name="again", EndpointName="ep-running")
            )
        # and a name is taken per account: the other account may have its own "running"
        arn = other.create_inference_experiment(
            **create_payload(Name="running", EndpointName="ep-running")
        )["InferenceExperimentArn"]
        assert arn == f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:inference-experiment/running"
        with pytest.raises(NameInUseError):
            service.create_inference_experiment(
                **create_payload(Name="running", EndpointName="ep-new")
            )
        # the live counts were made per account: 3 of 4 here, 2 there
        service.create_inference_experiment(**create_payload(Name="fourth", EndpointName="ep-4"))
        with pytest.raises(LiveLimitError):
            service.create_inference_experiment(**create_payload(Name="fifth", EndpointName="ep-5"))
        other.create_inference_experiment(**create_payload(Name="third", EndpointName="ep-3"))
        assert (store.live_count(ACCOUNT), store.live_count(OTHER_ACCOUNT)) == (4, 3)
        # the due index survived: the one left Creating is picked up and moves on
        Reconciler(service).run_once()
        assert service.describe_inference_experiment(Name="creating")["Status"] != "Creating"
        assert other.describe_inference_experiment(Name="third")["Status"] != "Creating"
    finally:
        store.close()
