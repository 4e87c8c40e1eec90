"""The fixture every contract suite runs on: each store, the real ones on real files and servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.stores import MemoryStore, SqliteStore, Store, open_store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store: in memory, a SQLite file, a schema of its own on the PostgreSQL server."""
    if request.param == "memory":
        made: Store = MemoryStore()
    elif request.param == "sqlite":
        made = SqliteStore(tmp_path / "lifecycle.db")
    else:
        made = open_store(request.getfixturevalue("postgres_url"))
    yield made
    made.close()
