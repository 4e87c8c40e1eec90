"""The change feed's contract: every store writes, pages, trims and keeps cursors the same way."""

from __future__ import annotations

import pytest

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.errors import ResourceInUseError, StaleVersionError, TrimmedChangesError
from lifecycle.stores import Store
from lifecycle.stores.base import Change
from tests._feed import read_all as everything
from tests._feed import settled
from tests.contract.test_store_contract import T0, S, entry, make

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"


def created_and_saved(
    store: Store, name: str, *, time: float = T0, account: str = ACCOUNT
) -> list[HistoryEntry]:
    """Create ``name`` (in ``account``) and save it once with two entries; the three
    entries, in order."""
    first = entry(name, time=time, request_id=f"{name}-create")
    exp = make(name, status=S.CREATING, account=account)
    store.create(exp, first)
    exp.status = S.RUNNING
    more = [
        entry(name, "provisioned", S.CREATED, source=S.CREATING, time=time + 1),
        entry(name, "start", S.STARTING, source=S.CREATED, time=time + 2, reason="go"),
    ]
    store.save(exp, 1, more)
    return [first, *more]


def as_entries(changes: list[Change]) -> list[HistoryEntry]:
    return [
        HistoryEntry(c.name, c.time, c.event, c.from_status, c.to_status, c.reason, c.request_id, 0)
        for c in changes
    ]


def test_each_history_entry_of_a_create_and_a_save_is_one_change_in_order(store: Store) -> None:
    written = created_and_saved(store, "a")
    changes = everything(store)
    assert as_entries(changes) == [e._replace(version=0) for e in written]
    assert {c.arn for c in changes} == {make("a").arn}
    assert {(c.machine, c.variant) for c in changes} == {("experiment", None)}
    positions = [c.position for c in changes]
    assert positions == sorted(set(positions)) and positions[0] > 0


def test_pages_walk_every_change_once_in_position_order(store: Store) -> None:
    for i in range(5):
        created_and_saved(store, f"exp-{i}", time=T0 + 10 * i)
    settled(store)
    one_page = store.changes(None, 1000).changes
    assert len(one_page) == 15
    assert everything(store, limit=2) == one_page
    assert [c.position for c in one_page] == sorted(c.position for c in one_page)
    assert len(store.changes(None, 4).changes) == 4


def test_a_read_past_the_last_change_is_empty_and_keeps_its_position(store: Store) -> None:
    created_and_saved(store, "a")
    settled(store)
    last = store.changes(None, 100).next_position
    page = store.changes(last, 100)
    assert page.changes == [] and page.next_position == last
    assert store.changes(last + 1000, 10).next_position == last + 1000


def test_an_empty_feed_reads_empty_from_the_start(store: Store) -> None:
    page = store.changes(None, 10)
    assert page.changes == [] and page.next_position == 0
    assert store.changes(0, 10).changes == []


def test_a_stale_save_and_a_save_without_entries_write_no_change(store: Store) -> None:
    created_and_saved(store, "a")
    before = everything(store)
    exp = store.get(ACCOUNT, "a")
    assert exp is not None
    with pytest.raises(StaleVersionError):
        store.save(exp, 1, [entry("a", "stop", S.STOPPING, source=S.STARTING)])
    store.save(exp, exp.version, [])  # a failed attempt's bookkeeping: no transition
    assert everything(store) == before


def test_save_many_writes_the_changes_of_the_saves_written_only(store: Store) -> None:
    for name in ("a", "b", "c"):
        store.create(make(name), entry(name))
    settled(store)
    start = store.changes(None, 100).next_position
    a, b, c = (store.get(ACCOUNT, n) for n in "abc")
    assert a is not None and b is not None and c is not None
    written = store.save_many(
        [
            (a, 1, [entry("a", "stop", S.STOPPING, source=S.RUNNING)]),
            (b, 7, [entry("b", "stop", S.STOPPING, source=S.RUNNING)]),  # stale
            (c, 1, [entry("c", "stop", S.STOPPING, source=S.RUNNING, reason="r")]),
        ]
    )
    assert written == [True, False, True]
    assert [(ch.name, ch.event) for ch in everything(store, start)] == [
        ("a", "stop"),
        ("c", "stop"),
    ]


def test_a_refused_create_writes_no_change(store: Store) -> None:
    store.create(make("a", endpoint="ep"), entry("a"))
    before = everything(store)
    with pytest.raises(ResourceInUseError):
        store.create(make("b", endpoint="ep"), entry("b"))
    with pytest.raises(ResourceInUseError):
        store.create(make("a", endpoint="other"), entry("a"))
    assert everything(store) == before


def test_a_delete_keeps_the_changes_that_happened(store: Store) -> None:
    created_and_saved(store, "a")
    before = everything(store)
    store.delete(ACCOUNT, "a", 2)
    assert store.history(ACCOUNT, "a") == []
    assert everything(store) == before


def test_a_bulk_load_writes_no_change(store: Store) -> None:
    bulk = getattr(store, "bulk_create")  # noqa: B009 - every store of the suite has it
    bulk([(make(f"bulk-{i}"), entry(f"bulk-{i}")) for i in range(3)])
    assert everything(store) == []


def test_trimming_keeps_the_newest_and_says_where_it_cut(store: Store) -> None:
    for i in range(4):
        created_and_saved(store, f"exp-{i}", time=T0 + 10 * i)
    changes = everything(store)
    assert store.trim_changes(keep=5) == 7
    kept = everything(store)
    assert kept == changes[7:]
    with pytest.raises(TrimmedChangesError) as caught:
        store.changes(changes[3].position, 10)
    err = caught.value
    assert (err.after, err.trimmed_through, err.oldest) == (
        changes[3].position,
        changes[6].position,
        changes[7].position,
    )
    assert str(changes[7].position) in err.message and err.http_status == 410
    assert store.changes(err.trimmed_through, 100).changes == kept  # going on from the oldest
    assert store.changes(None, 100).changes == kept
    assert store.trim_changes(keep=5) == 0


def test_trimming_an_empty_feed_removes_nothing_and_says_so(store: Store) -> None:
    assert store.trim_changes(before=T0 + 1000) == 0
    assert store.trim_changes(keep=5) == 0
    assert store.trim_changes(before=T0, keep=0) == 0
    assert everything(store) == []


def test_trimming_by_age_removes_the_oldest_run_older_than_the_instant(store: Store) -> None:
    for i in range(3):
        created_and_saved(store, f"exp-{i}", time=T0 + 10 * i)  # times T0+10i, +1, +2
    changes = everything(store)
    assert store.trim_changes(before=T0 + 11.5) == 5  # exp-0's three, exp-1's first two
    assert everything(store) == changes[5:]
    assert store.trim_changes(before=T0 - 1) == 0
    assert everything(store) == changes[5:]


def test_trimming_always_keeps_the_newest_change_and_numbers_on_past_it(store: Store) -> None:
    created_and_saved(store, "a")
    changes = everything(store)
    assert store.trim_changes(before=T0 + 1000) == 2
    assert everything(store) == changes[2:]
    assert store.trim_changes(before=T0 + 1000) == 0
    with pytest.raises(TrimmedChangesError) as caught:
        store.changes(0, 10)
    assert (caught.value.trimmed_through, caught.value.oldest) == (
        changes[1].position,
        changes[2].position,
    )
    created_and_saved(store, "b")
    later = everything(store, changes[2].position)
    assert [c.name for c in later] == ["b", "b", "b"]
    assert min(c.position for c in later) > changes[2].position


def test_age_and_count_together_cut_at_the_further_of_the_two(store: Store) -> None:
    for i in range(3):
        created_and_saved(store, f"exp-{i}", time=T0 + 10 * i)
    changes = everything(store)
    assert store.trim_changes(before=T0 + 5, keep=4) == 5
    assert store.trim_changes(keep=1) == 3
    assert everything(store) == changes[8:]


def test_a_reader_at_the_trim_point_or_past_it_reads_on(store: Store) -> None:
    created_and_saved(store, "a")
    changes = everything(store)
    store.trim_changes(keep=1)
    assert store.changes(changes[1].position, 10).changes == changes[2:]
    created_and_saved(store, "b")
    settled(store)
    assert [c.name for c in everything(store, changes[2].position)] == ["b", "b", "b"]


def test_a_cursor_starts_unset_and_moves_forward_only(store: Store) -> None:
    assert store.feed_cursor("hook-1") is None
    store.save_feed_cursor("hook-1", 40)
    store.save_feed_cursor("hook-1", 12)
    assert store.feed_cursor("hook-1") == 40
    store.save_feed_cursor("hook-1", 41)
    store.save_feed_cursor("hook-2", 3)
    assert (store.feed_cursor("hook-1"), store.feed_cursor("hook-2")) == (41, 3)


def test_a_change_holds_what_the_entry_held(store: Store) -> None:
    name = "ü-exp"
    store.create(make(name), replace_entry(entry(name)))
    (change,) = everything(store)
    assert change.name == name and change.request_id == "rid-ü 'x'"
    assert change.reason == "line\nbreak — ✓"


def replace_entry(e: HistoryEntry) -> HistoryEntry:
    return e._replace(reason="line\nbreak — ✓", request_id="rid-ü 'x'")


def test_a_change_of_an_entry_has_the_entrys_fields() -> None:
    e = entry("a", "stop", S.STOPPING, source=S.RUNNING, reason="r", request_id="q")
    change = Change.of(9, "210987654321", "arn:x", e)
    assert change == Change(
        9, "210987654321", "a", "arn:x", T0, "stop", S.RUNNING, S.STOPPING, "r", "q"
    )


# -- accounts --------------------------------------------------------------------------------------

OTHER = "210987654321"


def test_each_change_carries_the_account_of_its_experiment(store: Store) -> None:
    created_and_saved(store, "exp")
    created_and_saved(store, "exp", account=OTHER)
    changes = everything(store)
    assert [(c.account, c.name) for c in changes] == [(ACCOUNT, "exp")] * 3 + [(OTHER, "exp")] * 3
    assert {c.account: c.arn for c in changes} == {
        ACCOUNT: make("exp").arn,
        OTHER: make("exp", account=OTHER).arn,
    }


def test_one_accounts_changes_are_the_feeds_changes_of_that_account_on_the_same_positions(
    store: Store,
) -> None:
    for i in range(4):
        created_and_saved(store, f"exp-{i}", time=T0 + 10 * i, account=(ACCOUNT, OTHER)[i % 2])
    changes = everything(store)
    for account in (ACCOUNT, OTHER):
        want = [c for c in changes if c.account == account]
        for limit in (1, 2, 5, 100):
            assert everything(store, limit=limit, account=account) == want, (account, limit)
    assert everything(store, account="999999999999") == []


def test_a_page_of_one_account_that_is_not_full_moves_its_reader_past_the_others(
    store: Store,
) -> None:
    created_and_saved(store, "mine")
    created_and_saved(store, "theirs", account=OTHER)
    settled(store)
    newest = store.changes(None, 100).changes[-1].position
    page = store.changes(None, 10, ACCOUNT)
    assert [c.name for c in page.changes] == ["mine"] * 3
    assert page.next_position == newest  # past their three changes too
    full = store.changes(None, 2, ACCOUNT)
    assert full.next_position == full.changes[-1].position  # a full page: no further
    # the others write on: a reader of this account reads nothing, and moves on with them
    created_and_saved(store, "more", account=OTHER)
    settled(store)
    empty = store.changes(page.next_position, 10, ACCOUNT)
    assert empty.changes == []
    assert empty.next_position == store.changes(None, 100).changes[-1].position > newest
    assert store.changes(empty.next_position, 10, ACCOUNT).next_position == empty.next_position
    # and its own next change is the next it reads
    created_and_saved(store, "later")
    settled(store)
    assert [c.name for c in store.changes(empty.next_position, 10, ACCOUNT).changes] == [
        "later"
    ] * 3
    assert store.changes(None, 10, "999999999999").next_position == (
        store.changes(None, 100).changes[-1].position
    )


def test_a_reader_of_one_account_behind_the_retention_is_told_so(store: Store) -> None:
    created_and_saved(store, "mine")
    created_and_saved(store, "theirs", account=OTHER)
    changes = everything(store)
    store.trim_changes(keep=2)
    with pytest.raises(TrimmedChangesError) as caught:
        store.changes(changes[0].position, 10, OTHER)
    assert caught.value.trimmed_through == changes[3].position
    assert store.changes(caught.value.trimmed_through, 10, OTHER).changes == changes[4:]
    assert store.changes(None, 10, ACCOUNT).changes == []
