"""What a save of a loaded record writes on SQLite: the columns that changed, nothing read
again. Each column in the SET list costs the update of every index over it, and each
statement a trip through the library."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.domain.statuses import ExperimentStatus as S
from lifecycle.service.service import ExperimentService
from lifecycle.stores import SqliteStore
from lifecycle.stores._sql import _dumps, _dumps_json, _loads
from lifecycle.testing import create_payload

ACCOUNT = "123456789012"


def _statements(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store._conn().set_trace_callback(seen.append)
    return seen


def _created(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "x.db")
    ExperimentService(store).invoke(
        "CreateInferenceExperiment", create_payload(Name="e", EndpointName="ep")
    )
    return store


def test_a_save_of_a_loaded_record_sets_only_the_columns_that_changed(tmp_path: Path) -> None:
    store = _created(tmp_path)
    try:
        loaded = store.get(ACCOUNT, "e")
        assert loaded is not None
        seen = _statements(store)
        loaded.description = "changed"
        store.save(loaded, loaded.version, [])
        updates = [s for s in seen if s.startswith("UPDATE experiments")]
        assert len(updates) == 1
        assigned = updates[0].split(" SET ", 1)[1].split(" WHERE ", 1)[0]
        columns = {part.split(" = ", 1)[0] for part in assigned.split(", ")}
        assert columns == {"description", "version", "claim_owner", "claim_until"}
        got = store.get(ACCOUNT, "e")
        assert got is not None and got.description == "changed" and got == loaded
    finally:
        store.close()


def test_ending_a_loaded_record_does_not_read_its_status_again(tmp_path: Path) -> None:
    store = _created(tmp_path)
    try:
        loaded = store.get(ACCOUNT, "e")
        assert loaded is not None
        seen = _statements(store)
        was = loaded.status
        loaded.status = S.CANCELLED
        store.save(loaded, loaded.version, [HistoryEntry("e", 1.0, "fail", was, S.CANCELLED)])
        assert not [s for s in seen if s.startswith("SELECT")], seen
        # the live count was given back: the endpoint takes a new experiment
        ExperimentService(store).invoke(
            "CreateInferenceExperiment", create_payload(Name="next", EndpointName="ep")
        )
    finally:
        store.close()


def test_a_record_not_loaded_by_this_store_is_saved_whole(tmp_path: Path) -> None:
    store = _created(tmp_path)
    other = SqliteStore(tmp_path / "x.db")
    try:
        loaded = other.get(ACCOUNT, "e")  # loaded through another store on the file
        assert loaded is not None
        loaded.description = "from elsewhere"
        loaded.status = S.CANCELLED
        store.save(loaded, loaded.version, [])
        got = store.get(ACCOUNT, "e")
        assert got == loaded
        ExperimentService(store).invoke(
            "CreateInferenceExperiment", create_payload(Name="next", EndpointName="ep")
        )
    finally:
        other.close()
        store.close()


@pytest.mark.parametrize(
    "value",
    [
        [{"Key": 'ü ✓ "q" \\ \n\t\u2028', "Value": ""}],
        {"InstanceCount": 2**70, "nested": [1, 2.5, None, True, {"a": []}]},
        {"SamplingPercentage": 100, "f": 1e16, "g": -0.0, "h": 5e-324},
    ],
)
def test_a_nested_column_reads_back_as_written_whichever_json_writes_it(value: object) -> None:
    text = _dumps(value)
    assert _loads(text) == value
    assert json.loads(text) == value  # any reader of the file reads the same
    assert _loads(_dumps_json(value)) == value


def test_a_column_orjson_cannot_read_is_read_by_json() -> None:
    assert math.isnan(_loads('{"x": NaN}')["x"])
    assert _loads('{"x": 123456789012345678901234567890}') == {"x": 123456789012345678901234567890}
