"""Requests that break exactly one rule of the engine beyond the shapes, each saying which:
the rules of the request alone (ValidationException) and of existence (ResourceNotFound).

One entry per rule id, by the operation its requests send (the rules of
the stored experiment and the store's are in ``_stored_cases``). Each
case's code is the rule's in :data:`~lifecycle.domain.catalog.RULE_CATALOG`;
entries whose rule depends on the stored experiment say in which status it
must be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hypothesis import strategies as st

from lifecycle.domain.catalog import RULE_CATALOG
from lifecycle.domain.rules import DEFAULT_DURATION, MAX_DURATION
from lifecycle.domain.rules.schedule import LATEST
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.errors import RuleId
from lifecycle.testing._requests import RequestCase, create_with, variant_configs
from lifecycle.testing._values import DAY, text_for
from lifecycle.testing._world import PRODUCTION_VARIANT as PROD
from lifecycle.testing._world import SHADOW_VARIANT as SHADOW
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Str

__all__ = ["IMPLIED_RULES", "NAME", "REQUEST_RULE_CASES", "Cases", "Make", "refusal", "smc"]

CREATE, LIST, STOP, UPDATE = Operation.CREATE, Operation.LIST, Operation.STOP, Operation.UPDATE
RUNNING, CREATED = ExperimentStatus.RUNNING, ExperimentStatus.CREATED

VARIANT_NAMES = text_for(cast(Str, shapes.CONSTRAINTS["ModelVariantName"]))
GHOSTS = VARIANT_NAMES.filter(lambda n: n not in (PROD, SHADOW))
OTHER_NAMES = text_for(cast(Str, shapes.CONSTRAINTS["InferenceExperimentName"])).filter(
    lambda n: n != NAME
)

#: the stored experiment's name (what ``experiment_in`` calls it)
NAME = "exp"

#: ``now`` -> requests (``now``: the time of the arranged world's clock)
Make = Callable[[float], st.SearchStrategy[RequestCase]]
#: rule id -> operation -> the requests of that operation that break the rule alone
Cases = dict[str, dict[str, Make]]


def refusal(
    op: str,
    rule: str,
    status: str | None,
    payload: Any,
    *,
    field: str | None = None,
    world: tuple[tuple[str, Any], ...] = (),
) -> RequestCase:
    """A request that ``rule`` refuses, with the rule's code from the catalogue."""
    code = RULE_CATALOG[rule].code
    return RequestCase(op, payload, status, NAME, code, rule, field, rule, world)


def _case(
    op: str, rule: str, status: str | None, *, field: str | None = None
) -> Callable[[Any], RequestCase]:
    return lambda payload: refusal(op, rule, status, payload, field=field)


def stop(
    actions: st.SearchStrategy[dict[str, str]],
    desired: st.SearchStrategy[list[dict[str, Any]]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    members: dict[str, Any] = {"Name": st.just(NAME), "ModelVariantActions": actions}
    if desired is not None:
        members["DesiredModelVariants"] = desired
    return st.fixed_dictionaries(members)


def smc(source: str, shadow: str) -> dict[str, Any]:
    """A ShadowModeConfig of ``source`` and ``shadow``."""
    return {
        "SourceModelVariantName": source,
        "ShadowModelVariants": [{"ShadowModelVariantName": shadow, "SamplingPercentage": 50}],
    }


def _create_schedule(
    start: st.SearchStrategy[float],
    end_from_start: Callable[[float], st.SearchStrategy[float]],
    now: float,
) -> st.SearchStrategy[dict[str, Any]]:
    schedule = start.flatmap(
        lambda s: end_from_start(s).map(lambda e: {"StartTime": s, "EndTime": e})
    )
    return schedule.flatmap(lambda sched: create_with("new", now, Schedule=sched))


def _update_schedule(
    start: st.SearchStrategy[int],
    end_from_start: Callable[[int], st.SearchStrategy[int]],
    now: float,
) -> st.SearchStrategy[dict[str, Any]]:
    return start.flatmap(
        lambda k: end_from_start(k).map(
            lambda e: {"Name": NAME, "Schedule": {"StartTime": now + k, "EndTime": now + e}}
        )
    )


def _not_an_object(op: str) -> Make:
    cases = st.sampled_from([[], "body", 1, None]).map(_case(op, RuleId.BODY_OBJECT, None))
    return lambda now: cases


def _request_alone() -> Cases:
    """ValidationException: the request alone."""
    r = RuleId
    future = st.integers(120, 10 * DAY)
    return {
        r.UPDATE_CHANGES_SOMETHING: {
            UPDATE: lambda now: st.just({"Name": NAME}).map(
                _case(UPDATE, r.UPDATE_CHANGES_SOMETHING, RUNNING, field="Name")
            )
        },
        r.SCHEDULE_END_IN_FUTURE: {
            UPDATE: lambda now: (
                st.integers(0, DAY)
                .map(lambda k: {"Name": NAME, "Schedule": {"EndTime": now - k}})
                .map(_case(UPDATE, r.SCHEDULE_END_IN_FUTURE, RUNNING, field="Schedule.EndTime"))
            ),
            CREATE: lambda now: _create_schedule(
                st.integers(2, DAY).map(lambda k: now - k),
                lambda s: st.integers(int(s) + 1, int(now)).map(float),
                now,
            ).map(_case(CREATE, r.SCHEDULE_END_IN_FUTURE, None, field="Schedule.EndTime")),
        },
        r.SCHEDULE_END_AFTER_START: {
            CREATE: lambda now: _create_schedule(
                future.map(lambda k: now + k),
                lambda s: st.integers(int(now) + 60, int(s)).map(float),
                now,
            ).map(_case(CREATE, r.SCHEDULE_END_AFTER_START, None, field="Schedule.EndTime")),
            UPDATE: lambda now: _update_schedule(future, lambda k: st.integers(60, k), now).map(
                _case(UPDATE, r.SCHEDULE_END_AFTER_START, CREATED, field="Schedule.EndTime")
            ),
        },
        r.SCHEDULE_MAX_DURATION: {
            CREATE: lambda now: _create_schedule(
                st.integers(60, DAY).map(lambda k: now + k),
                lambda s: st.integers(1, DAY).map(lambda d: s + MAX_DURATION + d),
                now,
            ).map(_case(CREATE, r.SCHEDULE_MAX_DURATION, None, field="Schedule.EndTime")),
            UPDATE: lambda now: _update_schedule(
                future, lambda k: st.integers(1, DAY).map(lambda d: k + int(MAX_DURATION) + d), now
            ).map(_case(UPDATE, r.SCHEDULE_MAX_DURATION, CREATED, field="Schedule.EndTime")),
        },
        r.DISTINCT_SOURCE_AND_SHADOW: {
            CREATE: lambda now: VARIANT_NAMES.flatmap(
                lambda a: variant_configs(a).flatmap(
                    lambda cfg: create_with(
                        "new", now, ModelVariants=[cfg], ShadowModeConfig=smc(a, a)
                    )
                )
            ).map(_case(CREATE, r.DISTINCT_SOURCE_AND_SHADOW, None, field="ShadowModeConfig")),
            UPDATE: lambda now: (
                st.sampled_from([PROD, SHADOW])
                .map(lambda a: {"Name": NAME, "ShadowModeConfig": smc(a, a)})
                .map(_case(UPDATE, r.DISTINCT_SOURCE_AND_SHADOW, CREATED, field="ShadowModeConfig"))
            ),
        },
        r.UNIQUE_VARIANT_NAMES: {  # a Create of two same-named variants leaves one of its pair out too
            UPDATE: lambda now: VARIANT_NAMES.flatmap(
                lambda n: st.lists(variant_configs(n), min_size=2, max_size=2).map(
                    lambda vs: {"Name": NAME, "ModelVariants": vs}
                )
            ).map(_case(UPDATE, r.UNIQUE_VARIANT_NAMES, RUNNING, field="ModelVariants"))
        },
        r.VARIANTS_IN_MODEL_VARIANTS: {
            CREATE: lambda now: (
                st.lists(VARIANT_NAMES, min_size=2, max_size=2, unique=True)
                .flatmap(
                    lambda ab: variant_configs(ab[0]).flatmap(
                        lambda cfg: create_with(
                            "new", now, ModelVariants=[cfg], ShadowModeConfig=smc(ab[0], ab[1])
                        )
                    )
                )
                .map(_case(CREATE, r.VARIANTS_IN_MODEL_VARIANTS, None, field="ShadowModeConfig"))
            )
        },
        r.SINGLE_PROMOTE: {
            STOP: lambda now: (
                st.lists(VARIANT_NAMES, min_size=2, max_size=2, unique=True)
                .map(lambda ab: {"Name": NAME, "ModelVariantActions": dict.fromkeys(ab, "Promote")})
                .map(_case(STOP, r.SINGLE_PROMOTE, RUNNING, field="ModelVariantActions"))
            )
        },
        r.UNIQUE_DESIRED_VARIANT: {
            STOP: lambda now: stop(
                st.just({SHADOW: "Promote"}),
                st.lists(variant_configs(SHADOW), min_size=2, max_size=2),
            ).map(_case(STOP, r.UNIQUE_DESIRED_VARIANT, RUNNING, field="DesiredModelVariants"))
        },
        r.DESIRED_VARIANT_REMOVED: {
            STOP: lambda now: VARIANT_NAMES.flatmap(
                lambda n: stop(st.just({n: "Remove"}), variant_configs(n).map(lambda c: [c]))
            ).map(_case(STOP, r.DESIRED_VARIANT_REMOVED, RUNNING, field="DesiredModelVariants"))
        },
        r.SCHEDULE_IN_RANGE: {  # the default EndTime, 7 days on, falls after the year 9999
            CREATE: lambda now: (
                st.integers(60, int(DEFAULT_DURATION) - 60)
                .flatmap(lambda k: create_with("new", now, Schedule={"StartTime": LATEST - k}))
                .map(_case(CREATE, r.SCHEDULE_IN_RANGE, None, field="Schedule.EndTime"))
            )
        },
        r.BODY_OBJECT: {op: _not_an_object(op) for op in RULE_CATALOG[r.BODY_OBJECT].operations},
        r.NEXT_TOKEN: {
            LIST: lambda now: (
                st.text(min_size=1, max_size=80)
                .map(lambda t: {"NextToken": t})
                .map(_case(LIST, r.NEXT_TOKEN, None, field="nextToken"))
            )
        },
    }


_EXISTING: dict[str, dict[str, Any]] = {  # a request each operation on a stored experiment accepts
    Operation.STOP: {"ModelVariantActions": {SHADOW: "Remove"}},
    Operation.UPDATE: {"Description": "d"},
}


def _missing(op: str) -> Make:
    """ResourceNotFound: ``op`` naming an experiment that is not there."""
    payload = _EXISTING.get(op, {})
    return lambda now: OTHER_NAMES.map(
        lambda other: refusal(op, RuleId.EXPERIMENT_EXISTS, RUNNING, {"Name": other, **payload})
    )


#: rule id -> operation -> requests that break that rule alone (the request alone, existence)
REQUEST_RULE_CASES: Cases = {
    **_request_alone(),
    RuleId.EXPERIMENT_EXISTS: {
        op: _missing(op) for op in RULE_CATALOG[RuleId.EXPERIMENT_EXISTS].operations
    },
}


def _implied_variants(now: float) -> st.SearchStrategy[RequestCase]:
    names = st.lists(VARIANT_NAMES, min_size=3, max_size=3, unique=True)
    return names.flatmap(
        lambda abc: st.tuples(variant_configs(abc[0]), variant_configs(abc[2])).flatmap(
            lambda cfgs: create_with(
                "new", now, ModelVariants=list(cfgs), ShadowModeConfig=smc(abc[0], abc[1])
            )
        )
    ).map(
        lambda p: RequestCase(
            CREATE,
            p,
            None,
            "new",
            RULE_CATALOG[RuleId.VARIANTS_IN_MODEL_VARIANTS].code,
            RuleId.VARIANTS_IN_MODEL_VARIANTS,
            "ShadowModeConfig",
            RuleId.VARIANTS_IN_SHADOW_CONFIG,
        )
    )


#: rules no request breaks alone -> (the rules that always come with it, requests breaking them together)
IMPLIED_RULES: dict[str, tuple[tuple[str, ...], Make]] = {
    # at most two ModelVariants, and ShadowModeConfig names two: a variant it does not use
    # leaves one of its own out of ModelVariants
    RuleId.VARIANTS_IN_SHADOW_CONFIG: ((RuleId.VARIANTS_IN_MODEL_VARIANTS,), _implied_variants),
}
