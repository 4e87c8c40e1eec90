"""List NextTokens: signed with a secret of the deployment, and checked member by member (SPEC §4, §5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from lifecycle.errors import ValidationError
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.sqlite import SqliteStore

from .conftest import World, create_request


def forge(secret: bytes, body: bytes) -> str:
    """A token as the codec signs one, for a body of the forger's choosing."""
    sig = base64.urlsafe_b64encode(hmac.digest(secret, body, hashlib.sha256)[:18]).decode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + sig


SCOPE = {
    "CreationTimeAfter": None,
    "CreationTimeBefore": None,
    "LastModifiedTimeAfter": None,
    "LastModifiedTimeBefore": None,
    "NameContains": None,
    "SortBy": None,
    "SortOrder": None,
    "StatusEquals": None,
    "Type": None,
}


def signed(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


FORGED_BODIES = {
    "not JSON": b"x",
    "three members": signed([["a", "b"], SCOPE, 1]),
    "a number for a CreationTime sort is a string": signed([["abc", "e1"], SCOPE]),
    "the name is a number": signed([[1.0, 5], SCOPE]),
    "the position is not a list": signed(["abc", SCOPE]),
    "the position has one member": signed([[1.0], SCOPE]),
    "a boolean for a time": signed([[True, "e1"], SCOPE]),
    "the scope is a list": signed([[1.0, "e1"], []]),
    "an object": signed({"position": [1.0, "e1"]}),
    "an infinite time": b'[[1e999,"e1"],' + signed(SCOPE) + b"]",
}


def paged(world: World, n: int = 3) -> str:
    for i in range(n):
        world.create(f"e{i}")
    out = world.service.invoke("ListInferenceExperiments", {"MaxResults": 1})
    return str(out["NextToken"])


@pytest.mark.parametrize("body", FORGED_BODIES.values(), ids=FORGED_BODIES.keys())
def test_a_well_signed_token_whose_content_the_server_did_not_issue_is_a_validation_error(
    world: World, body: bytes
) -> None:
    paged(world)
    token = forge(world.service.tokens.secret, body)
    with pytest.raises(ValidationError) as refused:
        world.service.invoke("ListInferenceExperiments", {"NextToken": token})
    assert refused.value.rule == "next-token"
    assert [
        e.rule for e in world.service.explain("ListInferenceExperiments", {"NextToken": token})
    ] == ["next-token"]


def test_a_name_sorted_token_carries_a_name_and_a_time_sorted_one_a_time(world: World) -> None:
    paged(world)
    by_name = forge(world.service.tokens.secret, signed([[5.0, "e1"], {**SCOPE, "SortBy": "Name"}]))
    with pytest.raises(ValidationError):
        world.service.invoke("ListInferenceExperiments", {"NextToken": by_name, "SortBy": "Name"})


def test_the_secret_is_random_per_memory_store() -> None:
    a, b = ExperimentService(MemoryStore()), ExperimentService(MemoryStore())
    assert a.tokens.secret != b.tokens.secret
    assert len(a.tokens.secret) >= 32


def test_replicas_of_one_sqlite_file_share_one_secret_and_each_others_tokens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    first, second = SqliteStore(path), SqliteStore(path)
    try:
        one, other = ExperimentService(first), ExperimentService(second)
        assert one.tokens.secret == other.tokens.secret
        for i in range(3):
            one.invoke("CreateInferenceExperiment", create_request(f"e{i}"))
        token = one.invoke("ListInferenceExperiments", {"MaxResults": 1})["NextToken"]
        page = other.invoke("ListInferenceExperiments", {"MaxResults": 1, "NextToken": token})
        assert [s["Name"] for s in page["InferenceExperiments"]] == ["e1"]
    finally:
        first.close()
        second.close()
    reopened = SqliteStore(path)
    try:
        assert ExperimentService(reopened).tokens.secret == one.tokens.secret
    finally:
        reopened.close()


def test_a_secret_given_is_used_instead_of_the_stores() -> None:
    service = ExperimentService(MemoryStore(), token_secret=b"k" * 32)
    assert service.tokens.secret == b"k" * 32


def test_a_token_signed_by_another_deployment_is_a_validation_error(world: World) -> None:
    token = paged(world)
    other = World()
    paged(other)
    with pytest.raises(ValidationError):
        other.service.invoke("ListInferenceExperiments", {"NextToken": token})


@pytest.mark.parametrize("token", [".\x80", "e30.\u00e9t\u00e9", "\u00e9.abc"])
def test_a_token_with_characters_outside_ascii_is_a_validation_error(
    world: World, token: str
) -> None:
    with pytest.raises(ValidationError) as info:
        world.service.invoke("ListInferenceExperiments", {"NextToken": token})
    assert info.value.field == "nextToken"
