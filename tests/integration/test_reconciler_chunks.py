"""The reconciler commits a round's saves in chunks of the store's ``save_chunk``.

On SQLite one transaction at a time holds the file's write lock: a round of a
hundred saves in one would keep every request's write waiting behind it. The
store says how many saves one transaction may carry (40), and a round is
committed in transactions of at most that many; a store that does not say (the
memory store, PostgreSQL, whose writers lock rows, not the store) takes the
round whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService
from lifecycle.stores import MemoryStore, SqliteStore
from lifecycle.testing import create_payload

COUNT = 100


def _round_sizes(store: Any) -> tuple[list[int], int]:
    """Run the reconciler once over COUNT new experiments: the size of each save_many,
    and how many experiments came to Running."""
    service = ExperimentService(store, settle_seconds=0.0, max_live_experiments=None)
    for i in range(COUNT):
        service.invoke(
            "CreateInferenceExperiment",
            create_payload(Name=f"exp-{i}", EndpointName=f"endpoint-{i}"),
        )
    sizes: list[int] = []
    save_many = store.save_many

    def recorded(saves: Any) -> Any:
        sizes.append(len(saves))
        return save_many(saves)

    store.save_many = recorded
    Reconciler(service).run_once()
    running = sum(
        store.get(service.account_id, f"exp-{i}").status is ExperimentStatus.RUNNING
        for i in range(COUNT)
    )
    return sizes, running


def test_on_sqlite_a_round_is_committed_in_chunks_of_the_store_s_save_chunk(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "chunks.db", synchronous="OFF")
    try:
        assert store.save_chunk == 40
        sizes, running = _round_sizes(store)
    finally:
        store.close()
    assert running == COUNT  # every experiment moved on in the one pass, as before
    assert sizes and max(sizes) <= 40, sizes
    assert sizes.count(40) >= 2 * (len(sizes) // 3), sizes  # full chunks, then the rest


def test_a_store_without_a_save_chunk_takes_the_round_whole() -> None:
    sizes, running = _round_sizes(MemoryStore())
    assert running == COUNT
    assert max(sizes) == COUNT, sizes


@pytest.mark.parametrize("chunk", [1, 5])
def test_a_reconciler_s_own_commit_chunk_wins(tmp_path: Path, chunk: int) -> None:
    store = MemoryStore()
    service = ExperimentService(store, settle_seconds=0.0, max_live_experiments=None)
    assert Reconciler(service, commit_chunk=chunk).commit_chunk == chunk
    assert Reconciler(service).commit_chunk == Reconciler(service).batch
