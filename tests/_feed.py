"""Helpers of the change-feed tests: waiting until what was committed can be read, and reading it.

On PostgreSQL a change becomes readable once every older writing
transaction on the server has ended (``lifecycle.stores.postgres``), and
the test server is shared: :func:`settled` waits, with a bound, until
everything committed before it was called is readable. The other stores
are readable at once.
"""

from __future__ import annotations

import time
from typing import Any

from lifecycle.stores.base import Change

__all__ = ["read_all", "settled"]


def settled(store: Any, timeout: float = 10.0) -> None:
    """Return once every change committed before the call can be read (PostgreSQL: once no
    transaction older than a fresh one is still open; the others: at once)."""
    fetch = getattr(store, "_fetch", None)
    if type(store).__name__ != "PostgresStore" or fetch is None:
        return
    mark = int(fetch("SELECT pg_current_xact_id()::text::bigint")[0][0])  # a transaction of its own
    deadline = time.monotonic() + timeout
    while int(fetch("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")[0][0]) <= mark:
        if time.monotonic() > deadline:
            raise AssertionError(f"a transaction older than {mark} stayed open past {timeout}s")
        time.sleep(0.005)


def read_all(
    store: Any, after: int | None = None, limit: int = 3, account: str | None = None
) -> list[Change]:
    """Every change after ``after`` (of ``account``, when given) once what was committed is
    readable, page by page."""
    settled(store)
    out: list[Change] = []
    while True:
        page = (
            store.changes(after, limit) if account is None else store.changes(after, limit, account)
        )
        out.extend(page.changes)
        if not page.changes:
            return out
        if account is None or len(page.changes) == limit:
            assert page.next_position == page.changes[-1].position
        else:  # a page of one account that is not full has passed the others' changes too
            assert page.next_position >= page.changes[-1].position
        after = page.next_position
