"""The Store contract: memory, SQLite and PostgreSQL stores all behave the same way."""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.statuses import DesiredState, ExperimentStatus, VariantAction, VariantStatus
from lifecycle.errors import ResourceInUseError, ResourceLimitExceededError, StaleVersionError
from lifecycle.stores import MemoryStore, SqliteStore, Store, open_store
from lifecycle.stores.base import ExperimentKey, ListQuery, SortBy, sort_key

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

S = ExperimentStatus
T0 = 1_800_000_000.0
INFRA = {
    "InfrastructureType": "RealTimeInference",
    "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
}


def make(
    name: str,
    *,
    status: ExperimentStatus = S.RUNNING,
    created: float = T0,
    modified: float | None = None,
    endpoint: str | None = None,
    due: float | None = None,
    account: str = ACCOUNT,
    **fields: Any,
) -> Experiment:
    exp = Experiment(
        account=account,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:{account}:inference-experiment/{name}",
        endpoint_name=endpoint or f"ep-{name}",
        role_arn="arn:aws:iam::123456789012:role/r",
        variants=[
            Variant("prod", "model-a", INFRA, VariantStatus.IN_SERVICE),
            Variant("shadow", "model-b", INFRA, VariantStatus.IN_SERVICE),
        ],
        shadow_mode_config={
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
        start_time=created,
        end_time=created + 7 * 86400,
        creation_time=created,
        last_modified_time=created if modified is None else modified,
        status=status,
        due_at=due,
    )
    for key, value in fields.items():
        setattr(exp, key, value)
    return exp


def entry(
    name: str, event: str = "create", to: ExperimentStatus = S.CREATING, **kw: Any
) -> HistoryEntry:
    return HistoryEntry(name, kw.pop("time", T0), event, kw.pop("source", None), to, **kw)


def names(keys: list[ExperimentKey], account: str = ACCOUNT) -> list[str]:
    """The names of ``keys`` (due or claimed experiments), each of ``account``."""
    assert all(k.account == account for k in keys), keys
    return [k.name for k in keys]


def add(store: Store, exp: Experiment, max_live: int | None = None) -> Experiment:
    store.create(exp, entry(exp.name), max_live=max_live)
    return exp


def every_field(name: str) -> Experiment:
    """An experiment with every field set to something other than its default."""
    return make(
        name,
        status=S.STOPPING,
        created=T0 + 0.125,
        modified=T0 + 99.5,
        endpoint="endpoint-ü",
        due=T0 + 123.25,
        variants=[
            Variant("prod", "model-a", INFRA, VariantStatus.DELETING, "removed", None, None),
            Variant(
                "shadow",
                "model-b",
                {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": "ml.g5.2xlarge",
                        "InstanceCount": 3,
                    },
                },
                VariantStatus.UPDATING,
                "promoted",
                "model-c",
                {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": "ml.p4d.24xlarge",
                        "InstanceCount": 0,
                    },
                },
            ),
        ],
        type="ShadowMode",
        description="line one\nline two — ✓ 'quoted' \"double\" %s ? \\",
        kms_key="arn:aws:kms:us-east-1:123456789012:key/abc",
        data_storage_config={
            "Destination": "s3://bucket/prefix",
            "KmsKey": "k",
            "ContentType": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        },
        tags=[{"Key": "team", "Value": "ml"}, {"Key": "ü", "Value": ""}],
        status_reason="shadow wins",
        completion_time=T0 + 1e-6,
        entered_at=T0 + 50.75,
        update_origin=S.RUNNING,
        desired_state=DesiredState.CANCELLED,
        attempts=2,
        last_error="simulated failure (promote-variant of shadow)",
        stop_actions={"prod": VariantAction.REMOVE, "shadow": VariantAction.PROMOTE},
        start_time=T0 - 1.5,
        end_time=T0 + 30 * 86400.0,
    )


# -- records -----------------------------------------------------------------------------


def test_create_then_get_returns_every_field_as_stored(store: Store) -> None:
    exp = every_field("everything")
    store.create(exp, entry("everything"))
    assert exp.version == 1
    assert store.get(ACCOUNT, "everything") == exp


def test_a_save_round_trips_every_field_including_none(store: Store) -> None:
    add(store, make("e"))
    changed = every_field("e")
    changed.endpoint_name = "ep-e"
    store.save(changed, 1, [])
    assert store.get(ACCOUNT, "e") == changed
    cleared = make(
        "e",
        description=None,
        kms_key=None,
        data_storage_config=None,
        tags=[],
        stop_actions=None,
        due=None,
    )
    store.save(cleared, 2, [])
    got = store.get(ACCOUNT, "e")
    assert got == cleared
    assert got is not None and got.version == 3


def test_a_save_of_a_loaded_record_writes_each_field_changed_and_keeps_the_rest(
    store: Store,
) -> None:
    """A record from ``get``, changed field by field and saved each time (the request
    path: load, fire, save), reads back as saved, every field, each time."""
    add(store, make("e"))
    target = every_field("e")
    target.endpoint_name = "ep-e"
    fields = [f for f in Experiment.__slots__ if f not in ("account", "name", "version")]
    for field in fields:
        loaded = store.get(ACCOUNT, "e")
        assert loaded is not None
        setattr(loaded, field, copy.deepcopy(getattr(target, field)))
        store.save(loaded, loaded.version, [])
        assert store.get(ACCOUNT, "e") == loaded, field
    final = store.get(ACCOUNT, "e")
    assert final is not None and final.version == 1 + len(fields)
    target.version = final.version
    assert final == target
    # and back, one nested value at a time
    loaded = store.get(ACCOUNT, "e")
    assert loaded is not None
    loaded.variants[1].pending_infrastructure = None
    loaded.data_storage_config = None
    loaded.stop_actions = None
    store.save(loaded, loaded.version, [])
    assert store.get(ACCOUNT, "e") == loaded


def test_a_loaded_record_saved_after_another_save_is_stale_and_writes_nothing(
    store: Store,
) -> None:
    add(store, make("e"))
    first, second = store.get(ACCOUNT, "e"), store.get(ACCOUNT, "e")
    assert first is not None and second is not None
    first.status = S.STOPPING
    store.save(first, 1, [entry("e", "stop", S.STOPPING, source=S.RUNNING)])
    second.status = S.CANCELLED
    with pytest.raises(StaleVersionError):
        store.save(second, 1, [entry("e", "stop", S.CANCELLED, source=S.RUNNING)])
    got = store.get(ACCOUNT, "e")
    assert got is not None and got.status is S.STOPPING and got.version == 2
    # the endpoint is still held by the live experiment: the stale end freed nothing
    with pytest.raises(ResourceInUseError):
        add(store, make("other", endpoint=got.endpoint_name))


def test_get_of_an_unknown_name_is_none(store: Store) -> None:
    assert store.get(ACCOUNT, "nope") is None


def test_records_handed_out_are_private_copies(store: Store) -> None:
    exp = add(store, make("e"))
    exp.status = S.CANCELLED
    exp.variants[0].status = VariantStatus.DELETED
    got = store.get(ACCOUNT, "e")
    assert got is not None
    assert got.status is S.RUNNING and got.variants[0].status is VariantStatus.IN_SERVICE
    got.variants[1].model_name = "changed"
    again = store.get(ACCOUNT, "e")
    assert again is not None and again.variants[1].model_name == "model-b"


def test_a_saved_record_stays_the_callers(store: Store) -> None:
    exp = add(store, make("e"))
    exp.status = S.STOPPING
    exp.variants[1].status = VariantStatus.UPDATING
    store.save(exp, 1, [])
    exp.status = S.CANCELLED
    exp.variants[1].status = VariantStatus.DELETED
    exp.variants.append(exp.variants[0].copy())
    got = store.get(ACCOUNT, "e")
    assert got is not None
    assert got.status is S.STOPPING and [v.status for v in got.variants] == [
        VariantStatus.IN_SERVICE,
        VariantStatus.UPDATING,
    ]


def test_a_save_that_renames_or_drops_variants_stores_the_new_set(store: Store) -> None:
    exp = add(store, make("e"))
    exp.variants = [exp.variants[1].copy()]
    exp.variants[0].name = "only"
    store.save(exp, 1, [])
    got = store.get(ACCOUNT, "e")
    assert got is not None and [(v.name, v.model_name) for v in got.variants] == [
        ("only", "model-b")
    ]


# -- versioned saves -------------------------------------------------------------------------


def test_each_save_raises_the_version_by_one(store: Store) -> None:
    exp = add(store, make("e"))
    for expected in (1, 2, 3):
        exp.description = f"v{expected}"
        store.save(exp, expected, [])
        assert exp.version == expected + 1
    got = store.get(ACCOUNT, "e")
    assert got is not None and got.version == 4 and got.description == "v3"


def test_a_save_with_a_stale_version_is_refused_and_writes_nothing(store: Store) -> None:
    add(store, make("e"))
    first = store.get(ACCOUNT, "e")
    second = store.get(ACCOUNT, "e")
    assert first is not None and second is not None
    first.status = S.STOPPING
    store.save(first, 1, [entry("e", "stop", S.STOPPING, source=S.RUNNING)])
    second.description = "late"
    with pytest.raises(StaleVersionError) as info:
        store.save(second, 1, [entry("e", "update", S.UPDATING, source=S.RUNNING)])
    assert info.value.code == "ConflictException"
    got = store.get(ACCOUNT, "e")
    assert (
        got is not None
        and got.version == 2
        and got.description is None
        and got.status is S.STOPPING
    )
    assert [h.event for h in store.history(ACCOUNT, "e")] == ["create", "stop"]


def test_save_many_writes_each_save_and_skips_only_the_stale_ones(store: Store) -> None:
    for name in ("a", "b", "c"):
        add(store, make(name, status=S.STOPPING))
    late = store.get(ACCOUNT, "b")
    assert late is not None
    moved = store.get(ACCOUNT, "b")
    assert moved is not None
    moved.description = "moved first"
    store.save(moved, 1, [entry("b", "update", S.STOPPING, source=S.STOPPING)])
    saves = []
    for exp in (store.get(ACCOUNT, "a"), late, store.get(ACCOUNT, "c")):
        assert exp is not None
        exp.status = S.COMPLETED
        saves.append((exp, 1, [entry(exp.name, "stopped", S.COMPLETED, source=S.STOPPING)]))
    assert store.save_many(saves) == [True, False, True]
    assert [exp.version for exp, _, _ in saves] == [2, 1, 2]
    got = {name: store.get(ACCOUNT, name) for name in ("a", "b", "c")}
    assert {n: (e.status, e.version) for n, e in got.items() if e is not None} == {
        "a": (S.COMPLETED, 2), "b": (S.STOPPING, 2), "c": (S.COMPLETED, 2),
    }  # fmt: skip
    assert [h.event for h in store.history(ACCOUNT, "a")] == ["create", "stopped"]
    assert [h.event for h in store.history(ACCOUNT, "b")] == ["create", "update"]
    assert store.save_many([]) == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_save_many_that_meets_a_database_error_writes_none_of_its_saves(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from lifecycle.errors import StoreError

    store = (
        SqliteStore(tmp_path / "lifecycle.db")
        if kind == "sqlite"
        else open_store(request.getfixturevalue("postgres_url"))
    )
    try:
        first, second = add(store, make("a")), add(store, make("b"))
        first.description = "written only with the rest"
        second.endpoint_name = (
            "ep-a"  # the database's one-live-experiment-per-endpoint index refuses it
        )
        with pytest.raises(StoreError):
            store.save_many([(first, 1, [entry("a", "update", S.RUNNING)]), (second, 1, [])])
        got = store.get(ACCOUNT, "a")
        assert got is not None and (got.description, got.version) == (None, 1)
        assert [h.event for h in store.history(ACCOUNT, "a")] == ["create"]
        assert first.version == 1
    finally:
        store.close()


def test_save_many_frees_the_endpoints_of_experiments_it_ends(store: Store) -> None:
    exp = add(store, make("a", endpoint="shared", status=S.STOPPING))
    exp.status = S.CANCELLED
    assert store.save_many([(exp, 1, [])]) == [True]
    add(store, make("b", endpoint="shared"), max_live=1)
    assert store.get(ACCOUNT, "b") is not None


def test_a_save_of_a_deleted_experiment_is_stale(store: Store) -> None:
    exp = add(store, make("e", status=S.CREATED))
    store.delete(ACCOUNT, "e", 1)
    with pytest.raises(StaleVersionError):
        store.save(exp, 1, [])
    assert store.get(ACCOUNT, "e") is None


def test_history_keeps_every_entry_in_commit_order(store: Store) -> None:
    exp = add(store, make("e", status=S.CREATING))
    batches = [
        [entry("e", "provisioned", S.STARTING, source=S.CREATING, time=T0 + 1, request_id="r1")],
        [
            entry("e", "started", S.RUNNING, source=S.STARTING, time=T0 + 2),
            entry("e", "stop", S.STOPPING, source=S.RUNNING, time=T0 + 2, reason="why\nnot"),
            entry("e", "stopped", S.COMPLETED, source=S.STOPPING, time=T0 + 2, version=7),
        ],
        [],
        [entry("e", "zzz-last", S.COMPLETED, source=S.COMPLETED, time=T0 + 3)],
    ]
    for version, batch in enumerate(batches, start=1):
        store.save(exp, version, batch)
    want = [entry("e"), *(e for batch in batches for e in batch)]
    assert store.history(ACCOUNT, "e") == want


def test_history_of_an_unknown_name_is_empty(store: Store) -> None:
    assert store.history(ACCOUNT, "nope") == []


def test_delete_removes_record_and_history_and_checks_the_version(store: Store) -> None:
    exp = add(store, make("e", status=S.CREATED))
    store.save(exp, 1, [entry("e", "provisioned", S.CREATED)])
    with pytest.raises(StaleVersionError):
        store.delete(ACCOUNT, "e", 1)
    assert store.get(ACCOUNT, "e") is not None
    store.delete(ACCOUNT, "e", 2)
    assert store.get(ACCOUNT, "e") is None
    assert store.history(ACCOUNT, "e") == []
    with pytest.raises(StaleVersionError):
        store.delete(ACCOUNT, "e", 2)
    add(store, make("e"))  # the name is free again
    assert [h.event for h in store.history(ACCOUNT, "e")] == ["create"]


# -- create rules ----------------------------------------------------------------------------


def test_a_taken_name_is_resource_in_use(store: Store) -> None:
    add(store, make("e", status=S.COMPLETED))
    dup = make("e", endpoint="other")
    with pytest.raises(ResourceInUseError) as info:
        store.create(dup, entry("e"))
    assert info.value.rule == "unique-name"
    assert dup.version == 0
    assert store.get(ACCOUNT, "e") is not None and store.get(ACCOUNT, "e").endpoint_name == "ep-e"  # type: ignore[union-attr]


def test_a_second_live_experiment_on_an_endpoint_is_resource_in_use(store: Store) -> None:
    add(store, make("first", endpoint="shared"))
    with pytest.raises(ResourceInUseError) as info:
        store.create(make("second", endpoint="shared"), entry("second"))
    assert info.value.rule == "one-live-experiment-per-endpoint"
    assert "'first'" in info.value.message
    assert store.get(ACCOUNT, "second") is None
    assert store.history(ACCOUNT, "second") == []


def test_an_endpoint_is_free_again_once_its_experiment_is_terminal_or_deleted(store: Store) -> None:
    first = add(store, make("first", endpoint="shared"))
    first.status = S.COMPLETED
    store.save(first, 1, [])
    second = add(store, make("second", endpoint="shared", status=S.CREATED))
    store.delete(ACCOUNT, "second", 1)
    add(store, make("third", endpoint="shared"))
    add(store, make("done", endpoint="shared", status=S.CANCELLED))  # terminal ones never hold it
    assert second.version == 1


def test_the_live_limit_counts_only_experiments_that_are_not_terminal(store: Store) -> None:
    add(store, make("old", status=S.COMPLETED), max_live=2)
    a = add(store, make("a"), max_live=2)
    add(store, make("b", status=S.CREATED), max_live=2)
    with pytest.raises(ResourceLimitExceededError) as info:
        store.create(make("c"), entry("c"), max_live=2)
    assert info.value.rule == "max-live-experiments"
    assert store.get(ACCOUNT, "c") is None and store.history(ACCOUNT, "c") == []
    add(store, make("terminal", status=S.CANCELLED), max_live=2)  # terminal: no slot taken
    a.status = S.CANCELLED
    store.save(a, 1, [])  # frees a slot
    add(store, make("c"), max_live=2)
    with pytest.raises(ResourceLimitExceededError):
        store.create(make("d"), entry("d"), max_live=2)
    store.delete(ACCOUNT, "b", 1)  # deleting a live (Created) experiment frees a slot too
    add(store, make("d"), max_live=2)
    add(store, make("e"))  # no limit given: no limit applied


# -- List: filters --------------------------------------------------------------------------


def _listed(store: Store, **kw: Any) -> list[str]:
    return [
        e.name
        for e in store.list(
            ListQuery(ACCOUNT, limit=100, sort_by="Name", descending=False, **kw)
        ).items
    ]


@pytest.fixture
def listed(store: Store) -> Store:
    add(store, make("alpha-one", created=T0 + 1, modified=T0 + 10, status=S.RUNNING))
    add(store, make("alpha-two", created=T0 + 2, modified=T0 + 20, status=S.COMPLETED))
    add(store, make("beta", created=T0 + 3, modified=T0 + 30, status=S.RUNNING))
    add(store, make("Gamma-ALPHA", created=T0 + 4, modified=T0 + 40, status=S.CREATED))
    add(store, make("delta", created=T0 + 5, modified=T0 + 50, status=S.CANCELLED, type="Other"))
    return store


def test_name_contains_is_a_case_sensitive_substring(listed: Store) -> None:
    assert _listed(listed, name_contains="alpha") == ["alpha-one", "alpha-two"]
    assert _listed(listed, name_contains="ALPHA") == ["Gamma-ALPHA"]
    assert _listed(listed, name_contains="a-t") == ["alpha-two"]
    assert _listed(listed, name_contains="%") == []
    assert _listed(listed, name_contains="_") == []
    assert len(_listed(listed, name_contains="")) == 5


def test_type_filter(listed: Store) -> None:
    assert _listed(listed, type="Other") == ["delta"]
    assert len(_listed(listed, type="ShadowMode")) == 4


@pytest.mark.parametrize("status", list(ExperimentStatus))
def test_status_filter(listed: Store, status: ExperimentStatus) -> None:
    want = {
        S.RUNNING: ["alpha-one", "beta"],
        S.COMPLETED: ["alpha-two"],
        S.CREATED: ["Gamma-ALPHA"],
        S.CANCELLED: ["delta"],
    }
    assert _listed(listed, status=status) == want.get(status, [])


def test_time_filters_are_strict(listed: Store) -> None:
    assert _listed(listed, created_after=T0 + 2) == ["Gamma-ALPHA", "beta", "delta"]
    assert _listed(listed, created_before=T0 + 2) == ["alpha-one"]
    assert _listed(listed, created_after=T0 + 1, created_before=T0 + 4) == ["alpha-two", "beta"]
    assert _listed(listed, modified_after=T0 + 40) == ["delta"]
    assert _listed(listed, modified_before=T0 + 20) == ["alpha-one"]
    assert _listed(listed, modified_after=T0 + 10, modified_before=T0 + 50, status=S.RUNNING) == [
        "beta"
    ]


# -- List: sort and pages ----------------------------------------------------------------------


def _seed_for_sorting(store: Store) -> list[Experiment]:
    rng = random.Random(7)
    statuses = list(ExperimentStatus)
    made = []
    for i in range(40):
        status = statuses[i % len(statuses)]
        created = T0 + rng.choice([0.0, 1.5, 2.0, 1e-3])  # many ties: the name breaks them
        made.append(
            add(store, make(f"x{rng.randrange(10**6):06d}-{i}", status=status, created=created))
        )
    return made


#: more pages than any walk of these tests needs: past it, the store always has more
MAX_PAGES = 200


def _pages(store: Store, query: ListQuery) -> list[list[str]]:
    pages = []
    for _ in range(MAX_PAGES):
        page = store.list(query)
        pages.append([e.name for e in page.items])
        if not page.has_more:
            return pages
        query = replace(query, after=sort_key(page.items[-1], query.sort_by))
    raise AssertionError(f"the store still has more after {MAX_PAGES} pages: {pages[-3:]}")


@pytest.mark.parametrize("descending", [False, True], ids=["Ascending", "Descending"])
@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
def test_each_sort_and_order_with_name_breaking_ties(
    store: Store, sort_by: SortBy, descending: bool
) -> None:
    made = _seed_for_sorting(store)
    want = [e.name for e in sorted(made, key=lambda e: sort_key(e, sort_by), reverse=descending)]
    assert [
        e.name
        for e in store.list(
            ListQuery(ACCOUNT, sort_by=sort_by, descending=descending, limit=100)
        ).items
    ] == want
    pages = _pages(store, ListQuery(ACCOUNT, sort_by=sort_by, descending=descending, limit=7))
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 5]
    assert [n for p in pages for n in p] == want


@pytest.mark.parametrize("descending", [False, True], ids=["Ascending", "Descending"])
@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
def test_pages_of_a_status_filter_follow_the_sort(
    store: Store, sort_by: SortBy, descending: bool
) -> None:
    made = _seed_for_sorting(store)
    want = [
        e.name
        for e in sorted(made, key=lambda e: sort_key(e, sort_by), reverse=descending)
        if e.status is S.STOPPING
    ]
    pages = _pages(
        store,
        ListQuery(ACCOUNT, status=S.STOPPING, sort_by=sort_by, descending=descending, limit=2),
    )
    assert [n for p in pages for n in p] == want


def test_status_sorts_alphabetically(store: Store) -> None:
    for i, status in enumerate(ExperimentStatus):
        add(store, make(f"e{i}", status=status))
    listed = [
        e.status.value
        for e in store.list(ListQuery(ACCOUNT, sort_by="Status", descending=False)).items
    ]
    assert listed == sorted(s.value for s in ExperimentStatus)[:10]


def test_the_default_page_is_ten_newest_first(store: Store) -> None:
    for i in range(12):
        add(store, make(f"e{i:02d}", created=T0 + i))
    page = store.list(
        ListQuery(
            ACCOUNT,
        )
    )
    assert [e.name for e in page.items] == [f"e{i:02d}" for i in range(11, 1, -1)]
    assert page.has_more


def test_an_exact_last_page_says_no_more(store: Store) -> None:
    for i in range(3):
        add(store, make(f"e{i}"))
    page = store.list(ListQuery(ACCOUNT, limit=3))
    assert len(page.items) == 3 and not page.has_more
    assert (
        store.list(
            ListQuery(ACCOUNT, limit=3, after=sort_key(page.items[-1], "CreationTime"))
        ).items
        == []
    )


@pytest.mark.parametrize("descending", [False, True], ids=["Ascending", "Descending"])
@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
def test_pages_neither_skip_nor_repeat_while_others_are_created(
    store: Store, sort_by: SortBy, descending: bool
) -> None:
    rng = random.Random(11)
    original = {e.name for e in _seed_for_sorting(store)}
    query = ListQuery(ACCOUNT, sort_by=sort_by, descending=descending, limit=4)
    seen: list[str] = []
    created = 0
    for _ in range(MAX_PAGES):
        page = store.list(query)
        seen.extend(e.name for e in page.items)
        for _ in range(3):  # new experiments land before, at and after the position
            created += 1
            add(
                store,
                make(
                    f"{rng.choice('aclxz')}{created:04d}",
                    created=T0 + rng.choice([-1.0, 0.0, 1.5, 5.0]),
                    status=rng.choice(list(ExperimentStatus)),
                ),
            )
        if not page.has_more:
            break
        query = replace(query, after=sort_key(page.items[-1], sort_by))
    else:
        raise AssertionError(f"the store still has more after {MAX_PAGES} pages: {seen[-5:]}")
    assert len(seen) == len(set(seen)), "a page repeated an experiment"
    assert original <= set(seen), f"pages skipped {sorted(original - set(seen))}"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(list(ExperimentStatus)),
            st.integers(0, 4),
            st.integers(0, 4),
            st.sampled_from(["ab", "ba", "b-c", "ca"]),
        ),
        max_size=25,
    ),
    sort_by=st.sampled_from(["Name", "CreationTime", "Status"]),
    descending=st.booleans(),
    limit=st.integers(1, 6),
    status=st.none() | st.sampled_from(list(ExperimentStatus)),
    contains=st.none() | st.sampled_from(["a", "b-", "ca"]),
    created_after=st.none() | st.integers(0, 4),
)
def test_any_query_pages_through_exactly_what_a_sort_of_everything_gives(
    store: Store,
    rows: list[tuple[ExperimentStatus, int, int, str]],
    sort_by: SortBy,
    descending: bool,
    limit: int,
    status: ExperimentStatus | None,
    contains: str | None,
    created_after: int | None,
) -> None:
    made = []
    for i, (st_, created, modified, stem) in enumerate(rows):
        made.append(
            add(store, make(f"{stem}{i}", status=st_, created=T0 + created, modified=T0 + modified))
        )
    query = ListQuery(
        ACCOUNT,
        status=status,
        name_contains=contains,
        created_after=None if created_after is None else T0 + created_after,
        sort_by=sort_by,
        descending=descending,
        limit=limit,
    )
    try:
        want = [
            e.name
            for e in sorted(
                (e for e in made if query.matches(e)),
                key=lambda e: sort_key(e, sort_by),
                reverse=descending,
            )
        ]
        assert [n for p in _pages(store, query) for n in p] == want
    finally:
        for e in made:
            store.delete(ACCOUNT, e.name, e.version)


def test_a_status_change_moves_an_experiment_between_status_filters_and_status_sort(
    store: Store,
) -> None:
    exps = [add(store, make(f"m{i}", created=T0 + i)) for i in range(6)]
    for round_, to in enumerate((S.STOPPING, S.COMPLETED)):
        for exp in exps[: 4 - round_]:
            exp.status = to
            store.save(exp, exp.version, [])
            listed = {s: _listed(store, status=s) for s in (S.RUNNING, S.STOPPING, S.COMPLETED)}
            by_status = [
                (e.status, e.name)
                for e in store.list(
                    ListQuery(ACCOUNT, sort_by="Status", descending=False, limit=100)
                ).items
            ]
            assert by_status == sorted((e.status.value, e.name) for e in exps)
            assert listed == {s: sorted(e.name for e in exps if e.status is s) for s in listed}
    assert [e.name for e in store.list(ListQuery(ACCOUNT, status=S.COMPLETED)).items] == [
        "m2",
        "m1",
        "m0",
    ]


def test_the_memory_store_files_status_moves_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.stores import memory

    monkeypatch.setattr(memory, "_FILE_MOVES_AT", 3)
    store = MemoryStore()
    exps = [add(store, make(f"m{i}")) for i in range(10)]
    for exp in exps:
        exp.status = S.STOPPING
        store.save(exp, 1, [])
    store.delete(ACCOUNT, "m9", 2)
    assert _listed(store, status=S.STOPPING) == [f"m{i}" for i in range(9)]
    assert _listed(store, status=S.RUNNING) == []


# -- due and claims -----------------------------------------------------------------------------


def test_due_lists_what_is_due_soonest_first(store: Store) -> None:
    add(store, make("later", due=T0 + 20))
    add(store, make("soon", due=T0 + 5))
    add(store, make("never", status=S.COMPLETED))
    add(store, make("future", due=T0 + 100))
    add(store, make("tie-b", due=T0 + 5))
    assert names(store.due(T0)) == []
    assert names(store.due(T0 + 20)) == ["soon", "tie-b", "later"]
    assert names(store.due(T0 + 20, limit=2)) == ["soon", "tie-b"]
    assert names(store.due(T0 + 20)) == ["soon", "tie-b", "later"]  # still due until saved


def test_a_save_moves_the_due_time(store: Store) -> None:
    exp = add(store, make("e", due=T0 + 5))
    exp.due_at = T0 + 50
    store.save(exp, 1, [])
    assert names(store.due(T0 + 10)) == []
    assert names(store.due(T0 + 50)) == ["e"]
    exp.due_at = None
    store.save(exp, 2, [])
    assert names(store.due(T0 + 10**6)) == []


def test_a_claim_keeps_due_work_from_other_owners_until_its_lease_ends(store: Store) -> None:
    for name in ("a", "b", "c"):
        add(store, make(name, due=T0 + ord(name)))
    now = T0 + 1000
    assert names(store.claim(now, 2, "one", 30.0)) == ["a", "b"]
    assert names(store.claim(now, 10, "two", 30.0)) == ["c"]
    assert names(store.claim(now + 1, 10, "three", 30.0)) == []
    # an owner may take its own again
    assert names(store.claim(now + 1, 10, "one", 30.0)) == ["a", "b"]
    assert names(store.claim(now + 31.5, 10, "three", 30.0)) == ["a", "b", "c"]  # leases over
    assert names(store.due(now)) == ["a", "b", "c"]  # due() ignores claims


def test_a_save_ends_the_claim_on_the_version_it_replaces(store: Store) -> None:
    exp = add(store, make("e", due=T0))
    assert names(store.claim(T0, 10, "one", 60.0)) == ["e"]
    store.save(exp, 1, [])  # still due at T0
    assert names(store.claim(T0, 10, "two", 60.0)) == ["e"]


def test_a_claim_leaves_the_version_alone(store: Store) -> None:
    add(store, make("e", due=T0))
    store.claim(T0, 10, "one", 60.0)
    got = store.get(ACCOUNT, "e")
    assert got is not None and got.version == 1


# -- accounts --------------------------------------------------------------------------------------

#: another account than the tests' own
OTHER = "210987654321"


def test_two_accounts_each_keep_an_experiment_of_one_name_on_one_endpoint(store: Store) -> None:
    mine = add(store, make("exp", endpoint="ep"), max_live=1)
    theirs = add(store, make("exp", endpoint="ep", account=OTHER, description="theirs"), max_live=1)
    assert store.get(ACCOUNT, "exp") == mine
    assert store.get(OTHER, "exp") == theirs
    assert theirs.arn == mine.arn.replace(ACCOUNT, OTHER)
    assert len(store) == 2  # type: ignore[arg-type]
    # within one account the rules hold as ever
    with pytest.raises(ResourceInUseError) as taken:
        store.create(make("exp", endpoint="other", account=OTHER), entry("exp"))
    assert taken.value.rule == "unique-name"
    with pytest.raises(ResourceInUseError) as busy:
        store.create(make("second", endpoint="ep", account=OTHER), entry("second"))
    assert busy.value.rule == "one-live-experiment-per-endpoint"


def test_another_accounts_experiment_is_to_every_call_a_name_that_does_not_exist(
    store: Store,
) -> None:
    theirs = add(store, make("exp", account=OTHER, status=S.CREATED))
    assert store.get(ACCOUNT, "exp") is None
    assert store.history(ACCOUNT, "exp") == []
    with pytest.raises(StaleVersionError) as deleting:
        store.delete(ACCOUNT, "exp", 1)
    missing = make("exp", status=S.CREATED)  # the same record, in this account
    with pytest.raises(StaleVersionError) as saving:
        store.save(missing, 1, [entry("exp", "start", S.STARTING, source=S.CREATED)])
    with pytest.raises(StaleVersionError) as deleting_nothing:
        store.delete(ACCOUNT, "nope", 1)
    with pytest.raises(StaleVersionError) as saving_nothing:
        store.save(make("nope"), 1, [])
    for refused, truly in ((deleting, deleting_nothing), (saving, saving_nothing)):
        assert (refused.value.code, refused.value.rule) == (truly.value.code, truly.value.rule)
        assert refused.value.message == truly.value.message.replace("nope", "exp")
    # and the other account's experiment is untouched by all of it
    assert store.get(OTHER, "exp") == theirs
    assert store.history(OTHER, "exp") == [entry("exp")]
    assert missing.version == 0


def test_list_shows_one_accounts_experiments_in_every_sort_and_filter(store: Store) -> None:
    for i, name in enumerate(("a", "b", "c", "d")):
        add(store, make(name, created=T0 + i, status=S.RUNNING if i % 2 else S.CREATED))
    for i, name in enumerate(("b", "bb", "c", "z")):
        add(store, make(name, created=T0 + i + 0.5, account=OTHER))
    for sort_by in ("Name", "CreationTime", "Status"):
        for account, want in ((ACCOUNT, {"a", "b", "c", "d"}), (OTHER, {"b", "bb", "c", "z"})):
            pages = _pages(store, ListQuery(account, sort_by=sort_by, limit=3))
            listed = [n for p in pages for n in p]
            assert sorted(listed) == sorted(want), (sort_by, account)
    assert _listed(store, status=S.RUNNING) == ["b", "d"]
    assert [
        e.name for e in store.list(ListQuery(OTHER, status=S.RUNNING, name_contains="b")).items
    ] == ["bb", "b"]
    assert store.list(ListQuery("999999999999")).items == []


def test_the_live_limit_and_its_slots_count_per_account(store: Store) -> None:
    first = add(store, make("a"), max_live=1)
    add(store, make("a", account=OTHER), max_live=1)  # a limit of 1 in each account
    with pytest.raises(ResourceLimitExceededError):
        store.create(make("b"), entry("b"), max_live=1)
    with pytest.raises(ResourceLimitExceededError):
        store.create(make("b", account=OTHER), entry("b"), max_live=1)
    first.status = S.COMPLETED
    store.save(first, 1, [])  # frees this account's slot, not the other's
    add(store, make("b"), max_live=1)
    with pytest.raises(ResourceLimitExceededError):
        store.create(make("c", account=OTHER), entry("c"), max_live=1)
    store.delete(OTHER, "a", 1)  # deleting a live one frees its own account's slot
    add(store, make("c", account=OTHER), max_live=1)
    live = getattr(store, "live_count", None)  # the SQL stores' counted rows
    if live is not None:
        assert (live(ACCOUNT), live(OTHER), live()) == (1, 1, 2)


def test_due_and_claims_name_the_account_of_each_experiment(store: Store) -> None:
    add(store, make("exp", due=T0 + 1))
    add(store, make("exp", due=T0 + 2, account=OTHER))
    both = [ExperimentKey(ACCOUNT, "exp"), ExperimentKey(OTHER, "exp")]
    assert store.due(T0 + 5) == both
    assert store.claim(T0 + 5, 1, "one", 30.0) == both[:1]
    assert store.claim(T0 + 5, 10, "two", 30.0) == both[1:]  # another experiment, not held
    theirs = store.get(OTHER, "exp")
    assert theirs is not None
    store.save(theirs, 1, [])  # ends the claim on their experiment only
    assert store.claim(T0 + 5, 10, "three", 30.0) == both[1:]
    assert store.release("one") == 1


def test_bulk_create_keeps_each_accounts_rules_and_counts(store: Store) -> None:
    bulk = getattr(store, "bulk_create")  # noqa: B009 - not part of the Store protocol
    made = [make(f"b{i}", endpoint="ep" if i == 0 else None) for i in range(3)]
    made += [make(f"b{i}", account=OTHER, endpoint="ep" if i == 0 else None) for i in range(2)]
    assert bulk((e, entry(e.name)) for e in made) == 5
    assert store.get(OTHER, "b1") == made[4]
    with pytest.raises(ResourceLimitExceededError):  # 3 live here
        store.create(make("over"), entry("over"), max_live=3)
    add(store, make("fits", account=OTHER), max_live=3)  # 2 live there
    assert store.count_by_status() == {"Running": 6}


def test_ping_answers(store: Store) -> None:
    store.ping()


# -- open_store -----------------------------------------------------------------------------------


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_open_store_sqlite_relative_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///relative.db")
    absolute = open_store(
        f"sqlite:///{tmp_path / 'absolute.db'}"
    )  # sqlite:////tmp/...: four slashes
    assert isinstance(relative, SqliteStore) and isinstance(absolute, SqliteStore)
    assert (tmp_path / "relative.db").exists() and (tmp_path / "absolute.db").exists()
    assert Path(absolute.path).is_absolute()
    fast = open_store(f"sqlite:///{tmp_path / 'fast.db'}?synchronous=NORMAL")
    assert isinstance(fast, SqliteStore) and fast.synchronous == "NORMAL"
    for s in (relative, absolute, fast):
        s.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://host/db",
        "redis://x",
        "sqlite3:///x.db",
        "just-a-path.db",
        "sqlite://",
        "sqlite:///x.db?cache=big",
    ],
)
def test_open_store_refuses_what_it_does_not_know_naming_the_three(url: str) -> None:
    from lifecycle.errors import StoreError

    with pytest.raises(StoreError) as info:
        open_store(url)
    if "sqlite:" not in url:
        assert all(
            scheme in info.value.message for scheme in ("memory://", "sqlite:///", "postgresql://")
        )


@pytest.mark.postgres
def test_open_store_postgres_with_a_schema(postgres_dsn: str, postgres_schema: str) -> None:
    for scheme in ("postgresql", "postgres"):
        url = postgres_dsn.replace("postgresql://", f"{scheme}://", 1)
        store = open_store(f"{url}{'&' if '?' in url else '?'}schema={postgres_schema}")
        assert type(store).__name__ == "PostgresStore"
        assert store.schema == postgres_schema  # type: ignore[attr-defined]
        store.close()


def test_without_psycopg_the_postgres_store_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "lifecycle.stores.postgres", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'inference-lifecycle\[postgres\]'"):
        importlib.import_module("lifecycle.stores.postgres")


# -- bulk loading and the memory store's sorted keys ---------------------------------------------------


def test_bulk_create_loads_many_under_the_same_rules(store: Store) -> None:
    bulk = getattr(store, "bulk_create")  # noqa: B009 - not part of the Store protocol
    made = [
        make(f"b{i:03d}", created=T0 + i, status=S.RUNNING if i % 2 else S.COMPLETED)
        for i in range(200)
    ]
    assert bulk((e, entry(e.name)) for e in made) == 200
    assert len(store) == 200  # type: ignore[arg-type]
    assert store.get(ACCOUNT, "b007") == made[7]
    assert store.history(ACCOUNT, "b007") == [entry("b007")]
    assert [e.name for e in store.list(ListQuery(ACCOUNT, status=S.RUNNING, limit=3)).items] == [
        "b199",
        "b197",
        "b195",
    ]
    with pytest.raises(ResourceLimitExceededError):  # the 100 live ones count against a limit
        store.create(make("over"), entry("over"), max_live=100)
    with pytest.raises(ResourceInUseError):
        bulk([(make("fresh"), entry("fresh")), (make("b001", endpoint="elsewhere"), entry("b001"))])
    assert store.get(ACCOUNT, "fresh") is None  # all of a batch or none of it


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=300),
    st.integers(-1, 61),
    st.booleans(),
    st.booleans(),
)
def test_sorted_keys_walk_like_a_sorted_list(
    ops: list[tuple[bool, int]], start: int, descending: bool, inclusive: bool
) -> None:

    from lifecycle.stores import _sorted

    original = _sorted._LOAD
    _sorted._LOAD = 3  # tiny buckets: every split and merge path runs
    try:
        keys: _sorted.SortedKeys[int] = _sorted.SortedKeys()
        model: set[int] = set()
        for adding, key in ops:
            if adding and key not in model:
                keys.add(key)
                model.add(key)
            elif not adding:
                keys.discard(key)
                model.discard(key)
        assert len(keys) == len(model)
        ordered = sorted(model, reverse=descending)
        assert list(keys.walk(descending=descending)) == ordered
        if descending:
            want = [k for k in ordered if k < start or (inclusive and k == start)]
        else:
            want = [k for k in ordered if k > start or (inclusive and k == start)]
        assert list(keys.walk(start, descending=descending, inclusive=inclusive)) == want
    finally:
        _sorted._LOAD = original


def test_every_field_of_a_record_survives_copy_and_assign_with_distinct_values() -> None:
    exp = every_field("everything")
    values = [getattr(exp, f.name) for f in dataclasses.fields(Experiment)]
    # no two fields share a value, so a field taken for another would show
    assert len({repr(v) for v in values}) == len(values)
    variant_values = [getattr(exp.variants[1], f.name) for f in dataclasses.fields(Variant)]
    assert len({repr(v) for v in variant_values}) == len(variant_values)
    assert exp.copy() == exp
    blank = make("blank")
    blank.assign(exp)
    assert blank == exp
    same_variants = every_field("everything")
    same_variants.status = S.RUNNING
    same_variants.assign(exp)  # the variants in place
    assert same_variants == exp


def test_the_token_secret_is_random_long_and_the_same_on_every_call(store: Store) -> None:
    secret = store.token_secret()
    assert len(secret) >= 32
    assert store.token_secret() == secret
    assert secret != MemoryStore().token_secret()


@pytest.mark.postgres
def test_two_stores_on_one_postgres_schema_share_the_token_secret(postgres_url: str) -> None:
    first, second = open_store(postgres_url), open_store(postgres_url)
    try:
        assert first.token_secret() == second.token_secret()
    finally:
        first.close()
        second.close()


def test_release_gives_back_one_owners_claims_at_once_and_no_one_elses(store: Store) -> None:
    for name in ("a", "b", "c"):
        add(store, make(name, due=T0 + ord(name)))
    now = T0 + 1000
    assert names(store.claim(now, 2, "leaving", 30.0)) == ["a", "b"]
    assert names(store.claim(now, 10, "staying", 30.0)) == ["c"]
    assert store.release("leaving") == 2
    assert store.release("leaving") == 0
    # another owner takes the released work at once, not after the lease
    assert names(store.claim(now + 1, 10, "next", 30.0)) == ["a", "b"]
    assert store.get(ACCOUNT, "a") is not None and store.get(ACCOUNT, "a").version == 1  # type: ignore[union-attr]


def test_count_by_status_counts_each_status_that_has_experiments(store: Store) -> None:
    assert store.count_by_status() == {}
    add(store, make("r1"))
    add(store, make("r2"))
    add(store, make("done", status=S.COMPLETED))
    assert store.count_by_status() == {"Running": 2, "Completed": 1}


def test_check_writable_changes_nothing_an_experiment_holds(store: Store) -> None:
    exp = add(store, make("kept"))
    store.check_writable()
    store.check_writable()
    again = store.get(ACCOUNT, "kept")
    assert again is not None and again.version == exp.version
    assert len(store) == 1  # type: ignore[arg-type]
