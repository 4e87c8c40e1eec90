"""Random sequences of all seven operations and reconciler passes, against a small reference model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import botocore.parsers
import botocore.session
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lifecycle.errors import LifecycleError

from .conftest import World, create_request

#: the account of the service and the experiments here (the service's default)
ACCOUNT = "123456789012"

DAY = 86400.0
#: 9999-12-31T23:59:59Z: a StartTime here has a default EndTime no client can parse
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
_MODEL = botocore.session.get_session().get_service_model("sagemaker")
_PARSER = botocore.parsers.JSONParser()


def parsed(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """``response`` as boto3 reads it: botocore's own parser, on the operation's output shape
    (a time it cannot hold, such as one in year 10000, raises)."""
    http = {"status_code": 200, "headers": {}, "body": json.dumps(response).encode()}
    return dict(_PARSER.parse(http, _MODEL.operation_model(operation).output_shape))


NAMES = st.sampled_from(["a", "b", "c", "d"])
ENDPOINTS = st.sampled_from(["ep1", "ep2", "ep3"])
TERMINAL = {"Completed", "Cancelled"}
#: pages of 2 that hold the four names with room to spare: past it, the NextTokens never end
MAX_PAGES = 5


class Ref:
    """What SPEC §1 says one experiment does, written plainly."""

    def __init__(self, endpoint: str, start: float, end: float) -> None:
        self.endpoint, self.start, self.end = endpoint, start, end
        self.status = "Creating"
        self.origin = ""
        self.desired = "Completed"

    def settle(self, now: float) -> None:
        for _ in range(10):
            s = self.status
            if s == "Creating":
                self.status = "Created" if self.start > now else "Starting"
            elif s == "Created" and self.end <= now:
                self.status = "Completed"
            elif s == "Created" and self.start <= now:
                self.status = "Starting"
            elif s == "Starting":
                self.status = "Running"
            elif s == "Updating":
                self.status = self.origin
            elif s == "Running" and self.end <= now:
                self.status, self.desired = "Stopping", "Completed"
            elif s == "Stopping":
                self.status = self.desired
            else:
                return
        raise AssertionError(f"the reference model did not settle in 10 steps: it is {self.status}")


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.ref: dict[str, Ref] = {}
        self.versions: dict[str, int] = {}

    @property
    def now(self) -> float:
        return self.world.clock.now

    def call(self, op: str, payload: dict[str, Any]) -> str:
        try:
            parsed(op, self.world.service.invoke(op, payload))
        except LifecycleError as err:
            return err.code
        return "ok"

    @rule(name=NAMES, endpoint=ENDPOINTS, delay=st.sampled_from([None, 600.0, "last second"]))
    def create(self, name: str, endpoint: str, delay: float | str | None) -> None:
        if delay == "last second":
            delay = LAST_SECOND - self.now
        assert not isinstance(delay, str)
        extra = {"Schedule": {"StartTime": self.now + delay}} if delay else {}
        got = self.call("CreateInferenceExperiment", create_request(name, endpoint, **extra))
        live = any(r.endpoint == endpoint and r.status not in TERMINAL for r in self.ref.values())
        if self.now + (delay or 0) + 7 * DAY > LAST_SECOND:
            expected = "ValidationException"
        else:
            expected = "ResourceInUse" if name in self.ref or live else "ok"
        assert got == expected
        if got == "ok":
            start = self.now + (delay or 0)
            self.ref[name] = Ref(endpoint, start, start + 7 * DAY)

    @rule(name=NAMES)
    def start(self, name: str) -> None:
        got = self.call("StartInferenceExperiment", {"Name": name})
        r = self.ref.get(name)
        assert got == (
            "ResourceNotFound"
            if r is None
            else "ok"
            if r.status == "Created"
            else "ConflictException"
        )
        if got == "ok" and r is not None:
            r.status, r.start = "Starting", self.now
            r.end = min(r.end, self.now + 30 * DAY)

    @rule(
        name=NAMES,
        actions=st.sampled_from(
            [{"shadow": "Promote"}, {"shadow": "Remove"}, {"prod": "Promote"}, {"prod": "Remove"}]
        ),
        desired=st.sampled_from(["Completed", "Cancelled"]),
    )
    def stop(self, name: str, actions: dict[str, str], desired: str) -> None:
        got = self.call(
            "StopInferenceExperiment",
            {"Name": name, "ModelVariantActions": actions, "DesiredState": desired},
        )
        r = self.ref.get(name)
        valid_actions = "shadow" in actions
        expected = (
            "ResourceNotFound"
            if r is None
            else "ok"
            if r.status == "Running" and valid_actions
            else "ConflictException"
        )
        assert got == expected
        if got == "ok" and r is not None:
            r.status, r.desired = "Stopping", desired

    @rule(name=NAMES, text=st.sampled_from(["x", "y"]))
    def update(self, name: str, text: str) -> None:
        got = self.call("UpdateInferenceExperiment", {"Name": name, "Description": text})
        r = self.ref.get(name)
        expected = (
            "ResourceNotFound"
            if r is None
            else "ok"
            if r.status in ("Created", "Running")
            else "ConflictException"
        )
        assert got == expected
        if got == "ok" and r is not None:
            r.origin, r.status = r.status, "Updating"

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        got = self.call("DeleteInferenceExperiment", {"Name": name})
        r = self.ref.get(name)
        expected = (
            "ResourceNotFound"
            if r is None
            else "ok"
            if r.status in ("Created", "Completed", "Cancelled")
            else "ConflictException"
        )
        assert got == expected
        if got == "ok":
            del self.ref[name]
            self.versions.pop(name, None)

    @rule(advance=st.sampled_from([0.0, 300.0, 600.0, 8 * DAY]))
    def reconcile(self, advance: float) -> None:
        self.world.clock.advance(advance)
        self.world.reconciler.run_once()
        for r in self.ref.values():
            r.settle(self.now)

    @invariant()
    def describe_and_list_agree_with_the_model(self) -> None:
        for name in ["a", "b", "c", "d"]:
            r = self.ref.get(name)
            try:
                d = parsed("DescribeInferenceExperiment", self.world.describe(name))
            except LifecycleError as err:
                assert r is None and err.code == "ResourceNotFound"
                continue
            assert r is not None and d["Status"] == r.status
            version = self.world.store.get(ACCOUNT, name).version  # type: ignore[union-attr]
            assert version >= self.versions.get(name, 0), "a version went down"
            self.versions[name] = version
        listed: list[str] = []
        token = None
        for _ in range(MAX_PAGES):
            out = parsed(
                "ListInferenceExperiments",
                self.world.service.invoke(
                    "ListInferenceExperiments",
                    {"MaxResults": 2, **({"NextToken": token} if token else {})},
                ),
            )
            listed += [s["Name"] for s in out["InferenceExperiments"]]
            token = out.get("NextToken")
            if not token:
                break
        else:
            raise AssertionError(f"still a NextToken after {MAX_PAGES} pages of 2: {listed}")
        assert sorted(listed) == sorted(self.ref), "an experiment was lost or duplicated"


LifecycleMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

test_lifecycle_against_reference_model = LifecycleMachine.TestCase
