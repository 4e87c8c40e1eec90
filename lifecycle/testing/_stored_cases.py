"""Requests that break exactly one rule of the stored experiment (ConflictException) or of
the store (ResourceInUse, ResourceLimitExceeded), each saying which, and in which status
the stored experiment must be. The rules of the request alone are in ``_rule_cases``."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import strategies as st

from lifecycle.domain.catalog import RULE_CATALOG, status_rule
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.domain.table import OPERATION_EVENTS
from lifecycle.errors import RuleId
from lifecycle.testing._requests import create_with, success_statuses, variant_configs
from lifecycle.testing._rule_cases import (
    GHOSTS,
    NAME,
    OTHER_NAMES,
    Cases,
    Make,
    refusal,
    smc,
    stop,
)
from lifecycle.testing._values import DAY, model_payloads, text_for
from lifecycle.testing._world import PRODUCTION_VARIANT as PROD
from lifecycle.testing._world import SHADOW_VARIANT as SHADOW
from lifecycle.testing._world import create_payload
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Str

__all__ = ["STORED_RULE_CASES"]

STOP, UPDATE, CREATE = Operation.STOP, Operation.UPDATE, Operation.CREATE
RUNNING, CREATED = ExperimentStatus.RUNNING, ExperimentStatus.CREATED
_LIVE = [s for s in ExperimentStatus if not s.terminal]
_OTHER_ENDPOINTS = text_for(cast(Str, shapes.CONSTRAINTS["EndpointName"])).filter(
    lambda n: not n.endswith("-endpoint")
)
#: a request each operation on a stored experiment accepts (in a status that allows it)
_ACCEPTED: dict[str, dict[str, Any]] = {
    STOP: {"ModelVariantActions": {SHADOW: "Remove"}},
    UPDATE: {"Description": "d"},
}


def _running_stop(
    rule: str, payloads: st.SearchStrategy[dict[str, Any]], field: str | None
) -> Make:
    return lambda now: payloads.map(lambda p: refusal(STOP, rule, RUNNING, p, field=field))


def _in_status(
    op: str, rule: str, statuses: list[str], payloads: st.SearchStrategy[Any], field: str | None
) -> Make:
    return lambda now: payloads.flatmap(
        lambda p: st.sampled_from(statuses).map(lambda s: refusal(op, rule, s, p, field=field))
    )


def _from_status(op: str, rule: str) -> Make:
    """``rule``: ``op`` sent in a status with no row for its event (or, for Delete, no deletion)."""
    allowed = success_statuses(op)
    others = [s.value for s in ExperimentStatus if s not in allowed]
    return _in_status(op, rule, others, st.just({"Name": NAME, **_ACCEPTED.get(op, {})}), "Status")


def _conflicts() -> Cases:
    r = RuleId
    actions = st.sampled_from([None, "Retain", "Remove"])

    def with_prod(action: str) -> st.SearchStrategy[dict[str, Any]]:
        return actions.map(
            lambda a: {
                "Name": NAME,
                "ModelVariantActions": {PROD: action, **({SHADOW: a} if a else {})},
            }
        )

    ghost_stops = st.one_of(
        GHOSTS.flatmap(
            lambda g: st.sampled_from(["Retain", "Remove", "Promote"]).map(
                lambda a: {"Name": NAME, "ModelVariantActions": {g: a}}
            )
        ),
        GHOSTS.flatmap(
            lambda g: stop(st.just({SHADOW: "Promote"}), variant_configs(g).map(lambda c: [c]))
        ),
    )
    ghost_updates = GHOSTS.flatmap(
        lambda g: variant_configs(g).map(lambda cfg: {"Name": NAME, "ModelVariants": [cfg]})
    )
    desired_prod = (
        st.lists(st.sampled_from([PROD, SHADOW]), min_size=1, max_size=2, unique=True)
        .filter(lambda ns: PROD in ns)
        .flatmap(lambda ns: st.tuples(*(variant_configs(n) for n in ns)).map(list))
    )
    stored = create_payload()["ModelVariants"]
    return {
        r.KNOWN_VARIANT: {
            STOP: _running_stop(r.KNOWN_VARIANT, ghost_stops, None),
            UPDATE: _in_status(
                UPDATE, r.KNOWN_VARIANT, [CREATED, RUNNING], ghost_updates, "ModelVariants"
            ),
        },
        r.PROMOTE_SHADOW_ONLY: {
            STOP: _running_stop(r.PROMOTE_SHADOW_ONLY, with_prod("Promote"), "ModelVariantActions")
        },
        r.PROMOTION_REPLACES_PRODUCTION: {
            STOP: _running_stop(
                r.PROMOTION_REPLACES_PRODUCTION,
                st.permutations([(SHADOW, "Promote"), (PROD, "Retain")]).map(
                    lambda items: {"Name": NAME, "ModelVariantActions": dict(items)}
                ),
                "ModelVariantActions",
            )
        },
        r.PRODUCTION_REQUIRED: {
            STOP: _running_stop(r.PRODUCTION_REQUIRED, with_prod("Remove"), "ModelVariantActions")
        },
        r.DESIRED_VARIANT_REMOVED_BY_PROMOTION: {
            STOP: _running_stop(
                r.DESIRED_VARIANT_REMOVED_BY_PROMOTION,
                stop(st.just({SHADOW: "Promote"}), desired_prod),
                "DesiredModelVariants",
            )
        },
        r.RUNNING_UPDATE_FIELDS: {
            UPDATE: lambda now: st.one_of(
                variant_configs(SHADOW)
                .filter(lambda cfg: cfg != stored[1])
                .map(lambda cfg: {"ModelVariants": [cfg]}),
                st.integers(1, DAY).map(
                    lambda k: {"Schedule": {"StartTime": now + k, "EndTime": now + 2 * DAY}}
                ),
                model_payloads(shapes.InferenceExperimentDataStorageConfig).map(
                    lambda d: {"DataStorageConfig": d}
                ),
                GHOSTS.map(lambda g: {"ShadowModeConfig": smc(PROD, g)}),
            ).map(lambda p: refusal(UPDATE, r.RUNNING_UPDATE_FIELDS, RUNNING, {"Name": NAME, **p}))
        },
        r.SHADOW_CONFIG_CONSISTENT: {
            UPDATE: lambda now: GHOSTS.flatmap(
                lambda g: st.sampled_from([smc(PROD, g), smc(g, SHADOW)])
            ).map(
                lambda c: refusal(
                    UPDATE,
                    r.SHADOW_CONFIG_CONSISTENT,
                    CREATED,
                    {"Name": NAME, "ShadowModeConfig": c},
                    field="ShadowModeConfig",
                )
            )
        },
        **{
            rule: {op: _from_status(op, rule) for op in RULE_CATALOG[rule].operations}
            for rule in [status_rule(e) for e in (*OPERATION_EVENTS.values(), "delete")]
        },
    }


def _creates(
    rule: str,
    statuses: list[ExperimentStatus],
    names: st.SearchStrategy[str],
    endpoints: st.SearchStrategy[str],
    world: tuple[tuple[str, Any], ...] = (),
) -> dict[str, Make]:
    """A Create of a name and endpoint that the store refuses with ``rule``, while the stored
    experiment is in one of ``statuses``."""
    return {
        CREATE: lambda now: st.sampled_from(statuses).flatmap(
            lambda s: (
                st.tuples(names, endpoints)
                .flatmap(lambda ne: create_with(ne[0], now, EndpointName=ne[1]))
                .map(lambda p: refusal(CREATE, rule, s.value, p, world=world))
            )
        )
    }


def _store_rules() -> Cases:
    r = RuleId
    ours, our_endpoint = st.just(NAME), st.just(f"{NAME}-endpoint")
    return {
        r.UNIQUE_NAME: _creates(r.UNIQUE_NAME, list(ExperimentStatus), ours, _OTHER_ENDPOINTS),
        r.ONE_LIVE_EXPERIMENT_PER_ENDPOINT: _creates(
            r.ONE_LIVE_EXPERIMENT_PER_ENDPOINT, _LIVE, OTHER_NAMES, our_endpoint
        ),
        r.MAX_LIVE_EXPERIMENTS: _creates(
            r.MAX_LIVE_EXPERIMENTS,
            _LIVE,
            OTHER_NAMES,
            _OTHER_ENDPOINTS,
            (("max_live_experiments", 1),),
        ),
    }


#: rule id -> operation -> requests that break that rule alone (the stored experiment, the store)
STORED_RULE_CASES: Cases = {**_conflicts(), **_store_rules()}
