"""Experiments belong to accounts: ``ExperimentService.for_account``, one store, many accounts.

Each account sees its own experiments only: names, the endpoint rule and the
live limit count per account; another account's experiment answers every
operation as a name that does not exist; List's NextToken is the issuing
account's alone; the change feed carries each change's account and reads one
account's; the reconciler moves every account's experiments on.
"""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.errors import (
    EndpointInUseError,
    LifecycleError,
    LiveLimitError,
    NameInUseError,
    NotFoundError,
    ValidationError,
)
from lifecycle.service.feed import event
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

from .conftest import World, create_request

MINE = "123456789012"
THEIRS = "210987654321"
NOBODYS = "999999999999"
STOP = {"ModelVariantActions": {"prod": "Retain", "shadow": "Remove"}}


@pytest.fixture
def two() -> tuple[World, ExperimentService]:
    """A world (account MINE) and the service of account THEIRS on its store, each with a
    Running ``exp`` on endpoint ``ep``."""
    world = World()
    theirs = world.service.for_account(THEIRS)
    world.service.invoke("CreateInferenceExperiment", create_request("exp", "ep"))
    theirs.invoke("CreateInferenceExperiment", create_request("exp", "ep", Description="theirs"))
    world.reconciler.run_once()
    return world, theirs


def refusal(service: ExperimentService, operation: str, payload: dict[str, Any]) -> LifecycleError:
    with pytest.raises(LifecycleError) as caught:
        service.invoke(operation, payload)
    return caught.value


def test_two_accounts_each_create_exp_on_ep_and_the_arns_differ_only_in_the_account() -> None:
    world = World()
    theirs = world.service.for_account(THEIRS)
    mine_arn = world.create("exp", endpoint="ep")["InferenceExperimentArn"]
    theirs_arn = theirs.invoke("CreateInferenceExperiment", create_request("exp", "ep"))[
        "InferenceExperimentArn"
    ]
    assert mine_arn == f"arn:aws:sagemaker:us-east-1:{MINE}:inference-experiment/exp"
    assert theirs_arn == mine_arn.replace(f":{MINE}:", f":{THEIRS}:")
    assert theirs.invoke("DescribeInferenceExperiment", {"Name": "exp"})["Arn"] == theirs_arn
    assert world.describe("exp")["Arn"] == mine_arn


def test_names_and_the_endpoint_rule_still_hold_within_an_account(
    two: tuple[World, ExperimentService],
) -> None:
    _, theirs = two
    with pytest.raises(NameInUseError):
        theirs.invoke("CreateInferenceExperiment", create_request("exp", "other"))
    with pytest.raises(EndpointInUseError):
        theirs.invoke("CreateInferenceExperiment", create_request("second", "ep"))


@pytest.mark.parametrize(
    ("operation", "payload"),
    [
        ("DescribeInferenceExperiment", {}),
        ("StartInferenceExperiment", {}),
        ("StopInferenceExperiment", STOP),
        ("UpdateInferenceExperiment", {"Description": "mine now"}),
        ("DeleteInferenceExperiment", {}),
    ],
)
def test_another_accounts_experiment_answers_as_a_name_that_does_not_exist(
    operation: str, payload: dict[str, Any]
) -> None:
    world = World()
    world.create("exp")  # Creating: every operation but Describe would conflict if it were seen
    before = world.snapshot()
    theirs = world.service.for_account(THEIRS)
    cross = refusal(theirs, operation, {"Name": "exp", **payload})
    # the answer for a name that is not there at all, in this account or any other
    missing = refusal(world.service, operation, {"Name": "nope", **payload})
    assert isinstance(cross, NotFoundError)
    assert (cross.code, cross.rule) == (missing.code, missing.rule)
    assert cross.message == missing.message.replace("'nope'", "'exp'")
    assert [e.message for e in theirs.explain(operation, {"Name": "exp", **payload})] == [
        cross.message
    ]
    assert world.snapshot() == before


def test_list_shows_only_the_callers_experiments() -> None:
    world = World()
    theirs = world.service.for_account(THEIRS)
    for name in ("a", "b", "c"):
        world.create(name)
    for name in ("b", "z"):
        theirs.invoke("CreateInferenceExperiment", create_request(name))

    def listed(service: ExperimentService, **kw: Any) -> list[str]:
        out = service.invoke("ListInferenceExperiments", {"SortBy": "Name", **kw})
        return [s["Name"] for s in out["InferenceExperiments"]]

    assert listed(world.service) == ["c", "b", "a"]
    assert listed(theirs) == ["z", "b"]
    assert listed(theirs, NameContains="a") == []
    assert listed(world.service.for_account(NOBODYS)) == []


def test_a_next_token_of_one_account_is_refused_by_another() -> None:
    world = World()
    theirs = world.service.for_account(THEIRS)
    for name in ("a", "b"):
        world.create(name)
        theirs.invoke("CreateInferenceExperiment", create_request(name))
    request = {"MaxResults": 1}
    token = world.service.invoke("ListInferenceExperiments", request)["NextToken"]
    with pytest.raises(ValidationError) as refused:
        theirs.invoke("ListInferenceExperiments", {**request, "NextToken": token})
    assert refused.value.rule == "next-token"
    # in its own account it pages on
    page = world.service.invoke("ListInferenceExperiments", {**request, "NextToken": token})
    assert [s["Name"] for s in page["InferenceExperiments"]] == ["a"]


def test_the_live_limit_counts_per_account() -> None:
    world = World(max_live_experiments=1)
    theirs = world.service.for_account(THEIRS)
    world.create("a")
    theirs.invoke("CreateInferenceExperiment", create_request("a"))  # their first: allowed
    for service in (world.service, theirs):
        with pytest.raises(LiveLimitError):
            service.invoke("CreateInferenceExperiment", create_request("b"))
        assert [
            e.rule for e in service.explain("CreateInferenceExperiment", create_request("b"))
        ] == ["max-live-experiments"]
    # explaining another account's create counts that account's experiments only
    assert (
        world.service.for_account(NOBODYS).explain("CreateInferenceExperiment", create_request("a"))
        == []
    )


def test_each_account_runs_its_own_operations_through_to_the_end(
    two: tuple[World, ExperimentService],
) -> None:
    world, theirs = two
    theirs.invoke("StopInferenceExperiment", {"Name": "exp", **STOP})
    assert world.status("exp") == "Running"
    world.reconciler.run_once()  # one reconciler over every account
    assert theirs.invoke("DescribeInferenceExperiment", {"Name": "exp"})["Status"] == "Completed"
    assert world.status("exp") == "Running"
    theirs.invoke("DeleteInferenceExperiment", {"Name": "exp"})
    assert world.status("exp") == "Running"
    assert world.store.get(THEIRS, "exp") is None


def test_for_account_is_one_view_per_account_sharing_the_services_parts() -> None:
    service = ExperimentService(MemoryStore(), region="eu-west-1", settle_seconds=5)
    theirs = service.for_account(THEIRS)
    assert service.for_account(THEIRS) is theirs
    assert theirs.for_account(MINE) is service and service.for_account(MINE) is service
    assert theirs.for_account(NOBODYS) is service.for_account(NOBODYS)
    assert theirs.account_id == THEIRS and service.account_id == MINE
    for part in ("store", "clock", "region", "tokens", "settle_seconds", "max_live_experiments"):
        assert getattr(theirs, part) is getattr(service, part), part
    heard: list[str] = []
    theirs.add_listener(lambda entry: heard.append(entry.name))  # one list of listeners
    service.invoke("CreateInferenceExperiment", create_request("a"))
    theirs.invoke("CreateInferenceExperiment", create_request("b"))
    assert heard == ["a", "b"]
    ids = [service.new_request_id(), theirs.new_request_id(), service.new_request_id()]
    assert len(set(ids)) == 3 and len({i.rsplit("-", 1)[0] for i in ids}) == 1


@pytest.mark.parametrize("bad", ["12345678901", "1234567890123", "12345678901x", "", 123456789012])
def test_an_account_id_that_is_not_12_digits_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="account_id must be a 12-digit AWS account id"):
        ExperimentService(MemoryStore(), account_id=bad)
    with pytest.raises(ValueError, match="account_id must be a 12-digit AWS account id"):
        ExperimentService(MemoryStore()).for_account(bad)
    with pytest.raises(ValidationError) as refused:
        ExperimentService(MemoryStore()).changes(None, 10, bad)
    assert refused.value.field == "account"


def test_the_feed_carries_each_changes_account_and_reads_one_accounts(
    two: tuple[World, ExperimentService],
) -> None:
    world, theirs = two
    every = world.service.changes()
    assert {c.account for c in every.changes} == {MINE, THEIRS}
    assert theirs.changes().changes == every.changes  # no account given: all of them
    mine = world.service.changes(account=MINE)
    assert mine.changes == [c for c in every.changes if c.account == MINE]
    assert mine.next_position == every.next_position
    for change in every.changes:
        sent = event(change)
        assert sent["account"] == change.account
        assert sent["resources"] == [
            f"arn:aws:sagemaker:us-east-1:{change.account}:inference-experiment/exp"
        ]
