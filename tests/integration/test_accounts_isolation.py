"""Two accounts and a read-only key, through boto3 against ``lifecycle serve --auth sigv4``.

A hypothesis test runs sequences of the seven operations by three keys: an
admin key of each account and a read-only key of the first. After each
operation, and once everything it set moving has settled:

- nothing one account did is visible to, or changed anything of, the other
  (the other account's List and every Describe are as they were);
- every mutation by the read-only key was AccessDeniedException and changed
  nothing anywhere;
- each account's List and Describe match a reference model kept per account:
  the names it created and has not deleted, each with an ARN of its own account,
  and ResourceNotFound for every other name, the other account's included, with
  the message a name that exists nowhere gets.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIRST, SECOND = "111122223333", "444455556666"
#: section: (access key id, secret, account, allow)
KEYS = {
    "first": ("AKIDFIRST", "first-secret", FIRST, "all"),
    "second": ("AKIDSECOND", "second-secret", SECOND, "all"),
    "reader": ("AKIDREADER", "reader-secret", FIRST, "read"),
}
OPERATIONS = ("create", "describe", "list", "start", "stop", "update", "delete")
MUTATIONS = frozenset({"create", "start", "stop", "update", "delete"})
TRANSITIONAL = frozenset({"Creating", "Starting", "Stopping", "Updating"})
_examples = itertools.count()


def _credentials(tmp_path: Path) -> Path:
    path = tmp_path / "credentials"
    path.write_text(
        "".join(
            f"[{section}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
            f"account_id = {account}\nallow = {allow}\n"
            for section, (key, secret, account, allow) in KEYS.items()
        )
    )
    return path


@pytest.fixture
def clients(serve_process: Any, client_for: Any, tmp_path: Path) -> dict[str, Any]:
    served = serve_process(
        "--store",
        f"sqlite:///{tmp_path / 'lifecycle.db'}",
        "--auth",
        "sigv4",
        "--credentials",
        str(_credentials(tmp_path)),
        "--settle-seconds",
        "0",
    ).wait_started()
    return {
        section: client_for(served.url, aws_access_key_id=key, aws_secret_access_key=secret)
        for section, (key, secret, _, _) in KEYS.items()
    }


def _call(
    client: Any, operation: str, name: str, create_request: Callable[..., dict[str, Any]]
) -> tuple[str, str]:
    """Run one operation; ``("ok", "")`` or ``(error code, message)``."""
    calls: dict[str, Callable[[], Any]] = {
        "create": lambda: client.create_inference_experiment(
            # the same endpoint in both accounts: the one-live-per-endpoint rule is per account
            **create_request(name, endpoint=f"ep-{name}")
        ),
        "describe": lambda: client.describe_inference_experiment(Name=name),
        "list": lambda: client.list_inference_experiments(NameContains=name.rsplit("-", 1)[0]),
        "start": lambda: client.start_inference_experiment(Name=name),
        "stop": lambda: client.stop_inference_experiment(
            Name=name, ModelVariantActions={"prod": "Retain", "shadow": "Remove"}
        ),
        "update": lambda: client.update_inference_experiment(Name=name, Description="changed"),
        "delete": lambda: client.delete_inference_experiment(Name=name),
    }
    try:
        calls[operation]()
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["Error"]["Message"]
    return "ok", ""


def _view(client: Any, prefix: str, names: Sequence[str]) -> dict[str, Any]:
    """What one account's key sees of the example's experiments: its List, and each
    name's Describe (or the error code), once none of them is in a transitional status."""
    deadline = time.monotonic() + 20
    while True:
        listed = client.list_inference_experiments(NameContains=prefix, MaxResults=100)
        seen: dict[str, Any] = {
            "list": sorted(e["Name"] for e in listed["InferenceExperiments"]),
        }
        for name in names:
            try:
                described = dict(client.describe_inference_experiment(Name=name))
            except ClientError as exc:
                seen[name] = exc.response["Error"]["Code"]
            else:
                described.pop("ResponseMetadata")
                seen[name] = described
        settling = [
            n for n, v in seen.items() if isinstance(v, dict) and v["Status"] in TRANSITIONAL
        ]
        if not settling:
            return seen
        assert time.monotonic() < deadline, f"still moving after 20 s: {settling}"
        time.sleep(0.05)


steps = st.lists(
    st.tuples(st.sampled_from(sorted(KEYS)), st.sampled_from(OPERATIONS), st.integers(0, 1)),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=25,
    deadline=None,
    # one server for every example: each example has names of its own
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=steps)
def test_accounts_see_and_change_only_their_own_and_a_reader_changes_nothing(
    clients: dict[str, Any], create_request: Callable[..., dict[str, Any]], steps: Any
) -> None:
    prefix = f"iso{next(_examples)}-"
    names = [f"{prefix}{i}" for i in range(2)]
    model: dict[str, set[str]] = {FIRST: set(), SECOND: set()}
    owner = {"first": FIRST, "second": SECOND, "reader": FIRST}
    admin_of = {FIRST: clients["first"], SECOND: clients["second"]}
    nowhere = _call(clients["first"], "describe", f"{prefix}nowhere", create_request)
    assert nowhere[0] == "ResourceNotFound"

    for section, operation, index in steps:
        name = names[index]
        account = owner[section]
        other = SECOND if account == FIRST else FIRST
        before = {a: _view(admin_of[a], prefix, names) for a in (FIRST, SECOND)}
        code, message = _call(clients[section], operation, name, create_request)
        after = {a: _view(admin_of[a], prefix, names) for a in (FIRST, SECOND)}

        if section == "reader" and operation in MUTATIONS:
            assert code == "AccessDeniedException", (operation, code, message)
            assert after == before  # nothing anywhere changed
            continue
        assert code != "AccessDeniedException", (section, operation, message)
        # the other account saw nothing of it
        assert after[other] == before[other], (section, operation, name)
        if name not in model[account]:
            if operation == "create":
                assert code == "ok", message  # the other account's name is no obstacle
            elif operation == "list":
                assert code == "ok"
            else:  # exactly what a name that exists nowhere gets
                assert (code, message.replace(name, "?")) == (
                    nowhere[0],
                    nowhere[1].replace(f"{prefix}nowhere", "?"),
                ), (section, operation)
        if operation == "create" and code == "ok":
            model[account].add(name)
        if operation == "delete" and code == "ok":
            model[account].discard(name)

        for checked in (FIRST, SECOND):
            seen = after[checked]
            assert seen["list"] == sorted(model[checked])
            for n in names:
                if n in model[checked]:
                    assert seen[n]["Arn"] == (
                        f"arn:aws:sagemaker:us-east-1:{checked}:inference-experiment/{n}"
                    )
                else:
                    assert seen[n] == "ResourceNotFound"
        # the reader is of the first account: it sees what the first account's admin sees
        assert _view(clients["reader"], prefix, names) == after[FIRST]


def test_two_accounts_each_create_exp_on_ep_and_the_arns_differ_only_in_the_account(
    clients: dict[str, Any], create_request: Callable[..., dict[str, Any]]
) -> None:
    arns = [
        clients[section].create_inference_experiment(**create_request("exp", endpoint="ep"))[
            "InferenceExperimentArn"
        ]
        for section in ("first", "second")
    ]
    assert arns == [
        f"arn:aws:sagemaker:us-east-1:{account}:inference-experiment/exp"
        for account in (FIRST, SECOND)
    ]
    for section, arn in zip(("first", "second"), arns, strict=True):
        described = clients[section].describe_inference_experiment(Name="exp")
        assert (described["Arn"], described["EndpointMetadata"]["EndpointName"]) == (arn, "ep")
    # and within one account, the endpoint's one live experiment is still the rule
    with pytest.raises(ClientError) as caught:
        clients["first"].create_inference_experiment(**create_request("exp-2", endpoint="ep"))
    assert "one live experiment per endpoint" in caught.value.response["Error"]["Message"]
