"""ListInferenceExperiments: filters, sorts, pages and tokens (SPEC §4)."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.errors import ValidationError

from .conftest import T0, World


def list_names(world: World, **kw: Any) -> list[str]:
    return [
        s["Name"]
        for s in world.service.invoke("ListInferenceExperiments", kw)["InferenceExperiments"]
    ]


#: more pages than any walk here needs: past it, the NextTokens never end
MAX_PAGES = 100


def walk(world: World, **kw: Any) -> list[str]:
    names: list[str] = []
    token = None
    for _ in range(MAX_PAGES):
        out = world.service.invoke(
            "ListInferenceExperiments", {**kw, **({"NextToken": token} if token else {})}
        )
        names += [s["Name"] for s in out["InferenceExperiments"]]
        token = out.get("NextToken")
        if not token:
            return names
    raise AssertionError(f"still a NextToken after {MAX_PAGES} pages; the last names: {names[-5:]}")


@pytest.fixture
def three(world: World) -> World:
    for i, name in enumerate(["beta", "alpha", "gamma"]):
        world.clock.now = T0 + i
        world.create(name)
    world.reconciler.run_once()  # all Running
    world.clock.advance(10)
    world.service.invoke(
        "StopInferenceExperiment", {"Name": "gamma", "ModelVariantActions": {"shadow": "Remove"}}
    )
    return world


def test_default_sort_is_creation_time_descending(three: World) -> None:
    assert list_names(three) == ["gamma", "alpha", "beta"]


def test_sort_by_name_ascending(three: World) -> None:
    assert list_names(three, SortBy="Name", SortOrder="Ascending") == ["alpha", "beta", "gamma"]


def test_status_sorts_alphabetically_with_name_breaking_ties_in_the_same_direction(
    three: World,
) -> None:
    assert list_names(three, SortBy="Status", SortOrder="Ascending") == ["alpha", "beta", "gamma"]
    assert list_names(three, SortBy="Status", SortOrder="Descending") == ["gamma", "beta", "alpha"]


def test_filters_narrow_the_list(three: World) -> None:
    assert list_names(three, NameContains="al") == ["alpha"]
    assert list_names(three, StatusEquals="Stopping") == ["gamma"]
    assert list_names(three, Type="ShadowMode", SortBy="Name", SortOrder="Ascending") == [
        "alpha",
        "beta",
        "gamma",
    ]
    assert list_names(three, CreationTimeAfter=T0, CreationTimeBefore=T0 + 2) == ["alpha"]
    assert list_names(three, LastModifiedTimeAfter=T0 + 5) == ["gamma"]
    assert list_names(three, LastModifiedTimeBefore=T0 + 5, SortBy="Name") == ["beta", "alpha"]


def test_summaries_carry_only_summary_members(three: World) -> None:
    [summary] = three.service.invoke("ListInferenceExperiments", {"NameContains": "alpha"})[
        "InferenceExperiments"
    ]
    assert "Arn" not in summary
    assert set(summary) <= {
        "Name",
        "Type",
        "Schedule",
        "Status",
        "StatusReason",
        "Description",
        "CreationTime",
        "CompletionTime",
        "LastModifiedTime",
        "RoleArn",
    }


def test_max_results_defaults_to_10(world: World) -> None:
    for i in range(12):
        world.create(f"e{i:02d}")
    out = world.service.invoke("ListInferenceExperiments", {})
    assert len(out["InferenceExperiments"]) == 10 and "NextToken" in out


def test_pages_neither_skip_nor_repeat_while_others_are_created(world: World) -> None:
    for i in range(25):
        world.clock.now = T0 + i
        world.create(f"e{i:02d}")
    seen: list[str] = []
    token = None
    for _ in range(MAX_PAGES):
        out = world.service.invoke(
            "ListInferenceExperiments",
            {
                "MaxResults": 4,
                "SortBy": "Name",
                "SortOrder": "Ascending",
                **({"NextToken": token} if token else {}),
            },
        )
        seen += [s["Name"] for s in out["InferenceExperiments"]]
        world.create(f"new{len(seen):03d}")  # sorts after every e.. name
        token = out.get("NextToken")
        if not token:
            break
    else:
        raise AssertionError(f"still a NextToken after {MAX_PAGES} pages; the last: {seen[-5:]}")
    originals = [n for n in seen if n.startswith("e")]
    assert originals == [f"e{i:02d}" for i in range(25)]
    assert len(seen) == len(set(seen))


def test_a_tampered_token_is_a_validation_error(three: World) -> None:
    token = three.service.invoke("ListInferenceExperiments", {"MaxResults": 1})["NextToken"]
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ValidationError, match="NextToken"):
        three.service.invoke("ListInferenceExperiments", {"MaxResults": 1, "NextToken": bad})


def test_a_token_used_with_other_filters_is_a_validation_error(three: World) -> None:
    token = three.service.invoke("ListInferenceExperiments", {"MaxResults": 1})["NextToken"]
    with pytest.raises(ValidationError, match="NextToken"):
        three.service.invoke(
            "ListInferenceExperiments", {"MaxResults": 1, "NextToken": token, "SortBy": "Name"}
        )


def test_a_walk_of_every_page_lists_each_experiment_once(world: World) -> None:
    for i in range(23):
        world.create(f"e{i:02d}")
    assert sorted(walk(world, MaxResults=5, SortBy="CreationTime")) == [
        f"e{i:02d}" for i in range(23)
    ]


@pytest.mark.parametrize("n", [0, 101])
def test_max_results_is_1_to_100(world: World, n: int) -> None:
    with pytest.raises(ValidationError, match="maxResults"):
        world.service.invoke("ListInferenceExperiments", {"MaxResults": n})
