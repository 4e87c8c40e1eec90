"""Requests that break exactly one rule of the engine beyond the shapes, each saying which.

One entry per rule id: request-alone rules (ValidationException), existence
(ResourceNotFound), the rules of the stored experiment (ConflictException)
and the store's (ResourceInUse, ResourceLimitExceeded). Entries whose rule
depends on the stored experiment say in which status it must be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hypothesis import strategies as st

from lifecycle.domain.rules.schedule import DEFAULT_DURATION, LATEST, MAX_DURATION
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.domain.table import OPERATION_EVENTS
from lifecycle.testing._graph import PRODUCTION_VARIANT as PROD
from lifecycle.testing._graph import SHADOW_VARIANT as SHADOW
from lifecycle.testing._graph import create_payload
from lifecycle.testing._requests import (
    CREATE,
    DELETE,
    DESCRIBE,
    LIST,
    START,
    STOP,
    UPDATE,
    RequestCase,
    create_with,
    success_statuses,
    variant_configs,
)
from lifecycle.testing._values import DAY, model_payloads, text_for
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Str

__all__ = ["IMPLIED_RULES", "NAME", "RULE_CASES", "RULE_CODES", "RULE_OPERATIONS"]

VALIDATION = "ValidationException"
CONFLICT = "ConflictException"
_LIVE = [s for s in ExperimentStatus if not s.terminal]

_VARIANT_NAMES = text_for(shapes.CONSTRAINTS["ModelVariantName"])  # type: ignore[arg-type]
_GHOSTS = _VARIANT_NAMES.filter(lambda n: n not in (PROD, SHADOW))
_OTHER_NAMES = text_for(shapes.CONSTRAINTS["InferenceExperimentName"]).filter(lambda n: n != "exp")  # type: ignore[arg-type]
_OTHER_ENDPOINTS = text_for(cast(Str, shapes.CONSTRAINTS["EndpointName"])).filter(
    lambda n: not n.endswith("-endpoint")
)

#: the stored experiment's name (what ``experiment_in`` calls it)
NAME = "exp"

#: ``now`` -> requests (``now``: the time of the arranged world's clock)
Make = Callable[[float], st.SearchStrategy[RequestCase]]


def _case(
    op: str, rule: str, code: str, status: str | None, *, field: str | None = None
) -> Callable[[Any], RequestCase]:
    def make(payload: Any) -> RequestCase:
        return RequestCase(op, payload, status, NAME, code, rule, field, rule)

    return make


def _stop(
    actions: st.SearchStrategy[dict[str, str]],
    desired: st.SearchStrategy[list[dict[str, Any]]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    members: dict[str, Any] = {"Name": st.just("exp"), "ModelVariantActions": actions}
    if desired is not None:
        members["DesiredModelVariants"] = desired
    return st.fixed_dictionaries(members)


def _create_schedule(
    start: st.SearchStrategy[float],
    end_from_start: Callable[[float], st.SearchStrategy[float]],
    name: str,
    now: float,
) -> st.SearchStrategy[dict[str, Any]]:
    schedule = start.flatmap(
        lambda s: end_from_start(s).map(lambda e: {"StartTime": s, "EndTime": e})
    )
    return schedule.flatmap(lambda sched: create_with(name, now, Schedule=sched))


def _from_status(
    op: str, payload: dict[str, Any], allowed: tuple[ExperimentStatus | None, ...], rule: str
) -> Make:
    others = [s for s in ExperimentStatus if s not in allowed]
    return lambda now: st.sampled_from(others).map(
        lambda s: RequestCase(
            op, {"Name": NAME, **payload}, s.value, NAME, CONFLICT, rule, "Status", rule
        )
    )


def _rules() -> dict[str, Make]:
    out: dict[str, Make] = {}
    v = VALIDATION

    # -- ValidationException: the request alone ------------------------------------------------
    out["update-changes-something"] = lambda now: st.just({"Name": NAME}).map(
        _case(UPDATE, "update-changes-something", v, "Running", field="Name")
    )
    out["schedule-end-in-future"] = lambda now: st.one_of(
        st.integers(0, DAY)
        .map(lambda k: {"Name": NAME, "Schedule": {"EndTime": now - k}})
        .map(_case(UPDATE, "schedule-end-in-future", v, "Running", field="Schedule.EndTime")),
        _create_schedule(
            st.integers(2, DAY).map(lambda k: now - k),
            lambda s: st.integers(int(s) + 1, int(now)).map(float),
            "new",
            now,
        ).map(_case(CREATE, "schedule-end-in-future", v, None, field="Schedule.EndTime")),
    )
    out["schedule-end-after-start"] = lambda now: st.one_of(
        _create_schedule(
            st.integers(120, 10 * DAY).map(lambda k: now + k),
            lambda s: st.integers(int(now) + 60, int(s)).map(float),
            "new",
            now,
        ).map(_case(CREATE, "schedule-end-after-start", v, None, field="Schedule.EndTime")),
        st.integers(120, 10 * DAY)
        .flatmap(
            lambda k: st.integers(60, k).map(
                lambda e: {"Name": NAME, "Schedule": {"StartTime": now + k, "EndTime": now + e}}
            )
        )
        .map(_case(UPDATE, "schedule-end-after-start", v, "Created", field="Schedule.EndTime")),
    )
    out["schedule-max-duration"] = lambda now: _create_schedule(
        st.integers(60, DAY).map(lambda k: now + k),
        lambda s: st.integers(1, DAY).map(lambda d: s + MAX_DURATION + d),
        "new",
        now,
    ).map(_case(CREATE, "schedule-max-duration", v, None, field="Schedule.EndTime"))
    out["schedule-in-range"] = lambda now: (
        st.integers(0, int(DEFAULT_DURATION) - 1)
        .map(lambda k: LATEST - k)
        .flatmap(lambda s: create_with("new", now, Schedule={"StartTime": s}))
        .map(_case(CREATE, "schedule-in-range", v, None, field="Schedule.EndTime"))
    )
    out["distinct-source-and-shadow"] = lambda now: st.one_of(
        _VARIANT_NAMES.flatmap(
            lambda a: variant_configs(a).flatmap(
                lambda cfg: create_with(
                    "new", now, ModelVariants=[cfg], ShadowModeConfig=_smc(a, a)
                )
            )
        ).map(_case(CREATE, "distinct-source-and-shadow", v, None, field="ShadowModeConfig")),
        st.sampled_from([PROD, SHADOW])
        .map(lambda a: {"Name": NAME, "ShadowModeConfig": _smc(a, a)})
        .map(_case(UPDATE, "distinct-source-and-shadow", v, "Created", field="ShadowModeConfig")),
    )
    out["unique-variant-names"] = lambda now: _VARIANT_NAMES.flatmap(
        lambda n: st.lists(variant_configs(n), min_size=2, max_size=2).map(
            lambda vs: {"Name": NAME, "ModelVariants": vs}
        )
    ).map(_case(UPDATE, "unique-variant-names", v, "Running", field="ModelVariants"))
    out["variants-in-model-variants"] = lambda now: (
        st.lists(_VARIANT_NAMES, min_size=2, max_size=2, unique=True)
        .flatmap(
            lambda ab: variant_configs(ab[0]).flatmap(
                lambda cfg: create_with(
                    "new", now, ModelVariants=[cfg], ShadowModeConfig=_smc(ab[0], ab[1])
                )
            )
        )
        .map(_case(CREATE, "variants-in-model-variants", v, None, field="ShadowModeConfig"))
    )
    out["single-promote"] = lambda now: (
        st.lists(_VARIANT_NAMES, min_size=2, max_size=2, unique=True)
        .map(lambda ab: {"Name": NAME, "ModelVariantActions": dict.fromkeys(ab, "Promote")})
        .map(_case(STOP, "single-promote", v, "Running", field="ModelVariantActions"))
    )
    out["unique-desired-variant"] = lambda now: _stop(
        st.just({SHADOW: "Promote"}), st.lists(variant_configs(SHADOW), min_size=2, max_size=2)
    ).map(_case(STOP, "unique-desired-variant", v, "Running", field="DesiredModelVariants"))
    out["desired-variant-removed"] = lambda now: _VARIANT_NAMES.flatmap(
        lambda n: _stop(st.just({n: "Remove"}), variant_configs(n).map(lambda c: [c]))
    ).map(_case(STOP, "desired-variant-removed", v, "Running", field="DesiredModelVariants"))
    out["next-token"] = lambda now: (
        st.text(min_size=1, max_size=80)
        .map(lambda t: {"NextToken": t})
        .map(_case(LIST, "next-token", v, None, field="nextToken"))
    )

    # -- ResourceNotFound -------------------------------------------------------------------------
    def missing(now: float) -> st.SearchStrategy[RequestCase]:
        payloads: dict[str, dict[str, Any]] = {
            DESCRIBE: {},
            START: {},
            DELETE: {},
            STOP: {"ModelVariantActions": {SHADOW: "Remove"}},
            UPDATE: {"Description": "d"},
        }
        return st.sampled_from(sorted(payloads)).flatmap(
            lambda op: _OTHER_NAMES.map(
                lambda other: RequestCase(
                    op,
                    {"Name": other, **payloads[op]},
                    "Running",
                    NAME,
                    "ResourceNotFound",
                    "experiment-exists",
                    None,
                    "experiment-exists",
                )
            )
        )

    out["experiment-exists"] = missing

    # -- ConflictException: the stored experiment -------------------------------------------------------
    c = CONFLICT
    out["known-variant"] = lambda now: (
        st.one_of(
            _GHOSTS.flatmap(
                lambda g: st.sampled_from(["Retain", "Remove", "Promote"]).map(
                    lambda a: {"Name": NAME, "ModelVariantActions": {g: a}}
                )
            ),
            _GHOSTS.flatmap(
                lambda g: _stop(
                    st.just({SHADOW: "Promote"}), variant_configs(g).map(lambda cfg: [cfg])
                )
            ),
        ).map(_case(STOP, "known-variant", c, "Running"))
        | _GHOSTS.flatmap(
            lambda g: variant_configs(g).map(lambda cfg: {"Name": NAME, "ModelVariants": [cfg]})
        ).flatmap(
            lambda p: st.sampled_from(["Created", "Running"]).map(
                lambda s: RequestCase(
                    UPDATE, p, s, NAME, c, "known-variant", "ModelVariants", "known-variant"
                )
            )
        )
    )
    out["promote-shadow-only"] = lambda now: (
        st.sampled_from([None, "Retain", "Remove"])
        .map(
            lambda a: {
                "Name": NAME,
                "ModelVariantActions": {PROD: "Promote", **({SHADOW: a} if a else {})},
            }
        )
        .map(_case(STOP, "promote-shadow-only", c, "Running", field="ModelVariantActions"))
    )
    out["promotion-replaces-production"] = lambda now: (
        st.permutations([(SHADOW, "Promote"), (PROD, "Retain")])
        .map(lambda items: {"Name": NAME, "ModelVariantActions": dict(items)})
        .map(
            _case(STOP, "promotion-replaces-production", c, "Running", field="ModelVariantActions")
        )
    )
    out["production-required"] = lambda now: (
        st.sampled_from([None, "Retain", "Remove"])
        .map(
            lambda a: {
                "Name": NAME,
                "ModelVariantActions": {PROD: "Remove", **({SHADOW: a} if a else {})},
            }
        )
        .map(_case(STOP, "production-required", c, "Running", field="ModelVariantActions"))
    )
    out["desired-variant-removed-by-promotion"] = lambda now: _stop(
        st.just({SHADOW: "Promote"}),
        st.lists(st.sampled_from([PROD, SHADOW]), min_size=1, max_size=2, unique=True)
        .filter(lambda ns: PROD in ns)
        .flatmap(lambda ns: st.tuples(*(variant_configs(n) for n in ns)).map(list)),
    ).map(
        _case(
            STOP, "desired-variant-removed-by-promotion", c, "Running", field="DesiredModelVariants"
        )
    )
    stored = create_payload()
    out["running-update-fields"] = lambda now: (
        st.one_of(
            variant_configs(SHADOW)
            .filter(lambda cfg: cfg != stored["ModelVariants"][1])
            .map(lambda cfg: {"ModelVariants": [cfg]}),
            st.integers(1, DAY).map(
                lambda k: {"Schedule": {"StartTime": now + k, "EndTime": now + 2 * DAY}}
            ),
            model_payloads(shapes.InferenceExperimentDataStorageConfig).map(
                lambda d: {"DataStorageConfig": d}
            ),
            _GHOSTS.map(lambda g: {"ShadowModeConfig": _smc(PROD, g)}),
        )
        .map(lambda p: {"Name": NAME, **p})
        .map(_case(UPDATE, "running-update-fields", c, "Running"))
    )
    out["shadow-config-consistent"] = lambda now: (
        _GHOSTS.flatmap(lambda g: st.sampled_from([_smc(PROD, g), _smc(g, SHADOW)]))
        .map(lambda smc: {"Name": NAME, "ShadowModeConfig": smc})
        .map(_case(UPDATE, "shadow-config-consistent", c, "Created", field="ShadowModeConfig"))
    )
    # an operation sent in a status with no row for its event
    payloads: dict[str, dict[str, Any]] = {
        START: {},
        STOP: {"ModelVariantActions": {SHADOW: "Remove"}},
        UPDATE: {"Description": "d"},
    }
    for op, event in OPERATION_EVENTS.items():
        out[f"{event}-from-status"] = _from_status(
            op, payloads[op], success_statuses(op), f"{event}-from-status"
        )
    out["delete-from-status"] = _from_status(
        DELETE, {}, success_statuses(DELETE), "delete-from-status"
    )

    # -- the store: names, endpoints, the live limit -------------------------------------------------
    out["unique-name"] = lambda now: st.sampled_from(list(ExperimentStatus)).flatmap(
        lambda s: _OTHER_ENDPOINTS.flatmap(lambda ep: create_with(NAME, now, EndpointName=ep)).map(
            lambda p: RequestCase(
                CREATE, p, s.value, NAME, "ResourceInUse", "unique-name", None, "unique-name"
            )
        )
    )
    out["one-live-experiment-per-endpoint"] = lambda now: st.sampled_from(_LIVE).flatmap(
        lambda s: _OTHER_NAMES.flatmap(
            lambda other: create_with(other, now, EndpointName=f"{NAME}-endpoint")
        ).map(
            lambda p: RequestCase(
                CREATE,
                p,
                s.value,
                NAME,
                "ResourceInUse",
                "one-live-experiment-per-endpoint",
                None,
                "one-live-experiment-per-endpoint",
            )
        )
    )
    out["max-live-experiments"] = lambda now: st.sampled_from(_LIVE).flatmap(
        lambda s: (
            st.tuples(_OTHER_NAMES, _OTHER_ENDPOINTS)
            .flatmap(lambda ne: create_with(ne[0], now, EndpointName=ne[1]))
            .map(
                lambda p: RequestCase(
                    CREATE,
                    p,
                    s.value,
                    NAME,
                    "ResourceLimitExceeded",
                    "max-live-experiments",
                    None,
                    "max-live-experiments",
                    (("max_live_experiments", 1),),
                )
            )
        )
    )
    return out


def _smc(source: str, shadow: str) -> dict[str, Any]:
    return {
        "SourceModelVariantName": source,
        "ShadowModelVariants": [{"ShadowModelVariantName": shadow, "SamplingPercentage": 50}],
    }


#: rule id -> requests that break that rule alone
RULE_CASES: dict[str, Make] = _rules()

#: rule id -> the operations its requests send
RULE_OPERATIONS: dict[str, frozenset[str]] = {
    "update-changes-something": frozenset({UPDATE}),
    "schedule-end-in-future": frozenset({CREATE, UPDATE}),
    "schedule-end-after-start": frozenset({CREATE, UPDATE}),
    "schedule-max-duration": frozenset({CREATE}),
    "schedule-in-range": frozenset({CREATE}),
    "distinct-source-and-shadow": frozenset({CREATE, UPDATE}),
    "unique-variant-names": frozenset({UPDATE}),
    "variants-in-model-variants": frozenset({CREATE}),
    "single-promote": frozenset({STOP}),
    "unique-desired-variant": frozenset({STOP}),
    "desired-variant-removed": frozenset({STOP}),
    "next-token": frozenset({LIST}),
    "experiment-exists": frozenset({DESCRIBE, START, STOP, UPDATE, DELETE}),
    "known-variant": frozenset({STOP, UPDATE}),
    "promote-shadow-only": frozenset({STOP}),
    "promotion-replaces-production": frozenset({STOP}),
    "production-required": frozenset({STOP}),
    "desired-variant-removed-by-promotion": frozenset({STOP}),
    "running-update-fields": frozenset({UPDATE}),
    "shadow-config-consistent": frozenset({UPDATE}),
    **{f"{event}-from-status": frozenset({op}) for op, event in OPERATION_EVENTS.items()},
    "delete-from-status": frozenset({DELETE}),
    "unique-name": frozenset({CREATE}),
    "one-live-experiment-per-endpoint": frozenset({CREATE}),
    "max-live-experiments": frozenset({CREATE}),
}

_VALIDATION_RULES = {
    "update-changes-something",
    "schedule-end-in-future",
    "schedule-end-after-start",
    "schedule-max-duration",
    "schedule-in-range",
    "distinct-source-and-shadow",
    "unique-variant-names",
    "variants-in-model-variants",
    "single-promote",
    "unique-desired-variant",
    "desired-variant-removed",
    "next-token",
}
#: rule id -> the wire code of its refusal
RULE_CODES: dict[str, str] = {
    rule: VALIDATION
    if rule in _VALIDATION_RULES
    else "ResourceNotFound"
    if rule == "experiment-exists"
    else "ResourceInUse"
    if rule in ("unique-name", "one-live-experiment-per-endpoint")
    else "ResourceLimitExceeded"
    if rule == "max-live-experiments"
    else CONFLICT
    for rule in RULE_CASES
}


def _implied_variants(now: float) -> st.SearchStrategy[RequestCase]:
    names = st.lists(_VARIANT_NAMES, min_size=3, max_size=3, unique=True)
    return names.flatmap(
        lambda abc: st.tuples(variant_configs(abc[0]), variant_configs(abc[2])).flatmap(
            lambda cfgs: create_with(
                "new", now, ModelVariants=list(cfgs), ShadowModeConfig=_smc(abc[0], abc[1])
            )
        )
    ).map(
        lambda p: RequestCase(
            CREATE,
            p,
            None,
            "new",
            VALIDATION,
            "variants-in-model-variants",
            "ShadowModeConfig",
            "variants-in-shadow-config",
        )
    )


#: rules no request breaks alone -> (the rules that always come with it, requests breaking them together)
IMPLIED_RULES: dict[str, tuple[tuple[str, ...], Make]] = {
    # at most two ModelVariants, and ShadowModeConfig names two: a variant it does not use
    # leaves one of its own out of ModelVariants
    "variants-in-shadow-config": (("variants-in-model-variants",), _implied_variants),
}
