"""RequestCase, and valid requests of each operation that succeed on an arranged experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from lifecycle.domain.rules import MAX_DURATION
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.domain.table import EXPERIMENT_TABLE, OPERATION_EVENTS
from lifecycle.testing._values import DAY, model_payloads, text_for
from lifecycle.testing._world import PRODUCTION_VARIANT, SHADOW_VARIANT, T0, World, create_payload
from lifecycle.wire import shapes

__all__ = ["RequestCase", "success_statuses", "valid_payloads"]

CREATE, DESCRIBE, LIST, START, STOP, UPDATE, DELETE = Operation


def success_statuses(operation: str) -> tuple[ExperimentStatus | None, ...]:
    """The statuses of the stored experiment in which ``operation`` can succeed (None: no experiment)."""
    if operation == CREATE:
        return (None,)
    if operation == DELETE:
        return tuple(s for s in EXPERIMENT_TABLE.statuses if s in EXPERIMENT_TABLE.deletable_from)  # type: ignore[misc]
    event = OPERATION_EVENTS.get(operation)
    if event is None:  # Describe, List: any
        return tuple(ExperimentStatus)
    return tuple(s for s in EXPERIMENT_TABLE.sources(event) if isinstance(s, ExperimentStatus))


@dataclass(frozen=True, slots=True)
class RequestCase:
    """One request and what the engine must answer.

    ``status`` is the status experiment ``name`` must be in when the request
    is sent (``None``: no experiment); ``world`` are options of the
    :class:`~lifecycle.testing.World` to arrange. A valid case has ``code``
    None. An invalid one breaks exactly one rule: ``rule`` is the rule id
    the engine reports (``LifecycleError.rule``), ``field`` where (as
    ``LifecycleError.field`` gives it; None: not checked), ``code`` the wire
    code, and ``constraint`` the rule's identity across operations (for a
    shape constraint ``<shape>:<kind>``; see ``lifecycle.testing._values``).
    ``arrange()`` builds the world, with the experiment reached through real
    transitions.
    """

    operation: str
    payload: Any
    status: str | None = None
    name: str = "exp"
    code: str | None = None
    rule: str | None = None
    field: str | None = None
    constraint: str | None = None
    world: tuple[tuple[str, Any], ...] = ()

    @property
    def valid(self) -> bool:
        return self.code is None

    @property
    def id(self) -> str:
        where = f" in {self.status}" if self.status else ""
        return f"{self.operation}{where}: " + (
            "valid" if self.valid else f"{self.code} {self.constraint}"
        )

    @property
    def __name__(self) -> str:  # pytest takes a parameter's id from a str ``__name__``
        return self.id

    def __str__(self) -> str:
        return self.id

    def arrange(self) -> World:
        """A world holding experiment ``name`` in ``status`` (or none), ready for the request."""
        from lifecycle.testing._arrange import experiment_in

        options = dict(self.world)
        if self.status is None:
            return World(name=self.name, **options)
        return experiment_in(self.status, name=self.name, **options)


# --- valid payloads ----------------------------------------------------------------------

_NAMES = text_for(shapes.CONSTRAINTS["InferenceExperimentName"])  # type: ignore[arg-type]
_VARIANT_NAMES = text_for(shapes.CONSTRAINTS["ModelVariantName"])  # type: ignore[arg-type]
_MODEL_NAMES = text_for(shapes.CONSTRAINTS["ModelName"])  # type: ignore[arg-type]
_INFRA = model_payloads(shapes.ModelInfrastructureConfig)
_DATA_STORAGE = model_payloads(shapes.InferenceExperimentDataStorageConfig)
_TAGS = st.lists(model_payloads(shapes.Tag), max_size=3)
_FREE_TEXT = st.text(max_size=40)


def variant_configs(name: str | st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    names = name if isinstance(name, st.SearchStrategy) else st.just(name)
    return st.fixed_dictionaries(
        {"ModelName": _MODEL_NAMES, "VariantName": names, "InfrastructureConfig": _INFRA}
    )


def _shadow_mode(source: str, shadow: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.integers(0, 100).map(
        lambda pct: {
            "SourceModelVariantName": source,
            "ShadowModelVariants": [{"ShadowModelVariantName": shadow, "SamplingPercentage": pct}],
        }
    )


def _schedule(now: float) -> st.SearchStrategy[dict[str, float]]:
    """A Schedule that passes the schedule rules at ``now``: ends in the future, after it
    starts, at most 30 days after the start."""
    start = st.integers(60, 10 * DAY).map(lambda s: now + s)
    both = start.flatmap(
        lambda s: st.integers(60, int(MAX_DURATION)).map(
            lambda d: {"StartTime": s, "EndTime": s + d}
        )
    )
    end_only = st.integers(60, int(MAX_DURATION)).map(lambda d: {"EndTime": now + d})
    return st.one_of(both, start.map(lambda s: {"StartTime": s}), end_only)


@st.composite
def _create(draw: st.DrawFn, name: str | None, now: float) -> tuple[str, dict[str, Any]]:
    exp = name if name is not None else draw(_NAMES)
    source, shadow = draw(st.lists(_VARIANT_NAMES, min_size=2, max_size=2, unique=True))
    variants = [draw(variant_configs(source)), draw(variant_configs(shadow))]
    payload: dict[str, Any] = {
        "Name": exp,
        "Type": "ShadowMode",
        "RoleArn": draw(text_for(shapes.CONSTRAINTS["RoleArn"])),  # type: ignore[arg-type]
        "EndpointName": draw(text_for(shapes.CONSTRAINTS["EndpointName"])),  # type: ignore[arg-type]
        "ModelVariants": draw(st.permutations(variants)),
        "ShadowModeConfig": draw(_shadow_mode(source, shadow)),
    }
    payload.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "Schedule": _schedule(now),
                    "Description": _FREE_TEXT,
                    "DataStorageConfig": _DATA_STORAGE,
                    "KmsKey": text_for(shapes.CONSTRAINTS["KmsKeyId"]),  # type: ignore[arg-type]
                    "Tags": _TAGS,
                },
            )
        )
    )
    return exp, payload


@st.composite
def stop_payloads(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Stops that pass every Stop rule on a Running experiment with variants prod and shadow."""
    shadow = draw(st.sampled_from(["Promote", "Remove", "Retain", None]))
    prod_choices: list[str | None] = (
        ["Remove", None]
        if shadow == "Promote"
        else ["Retain"]
        if shadow is None
        else ["Retain", None]
    )
    prod = draw(st.sampled_from(prod_choices))
    actions = {
        k: v for k, v in ((SHADOW_VARIANT, shadow), (PRODUCTION_VARIANT, prod)) if v is not None
    }
    removed = {n for n, a in actions.items() if a == "Remove"} | (
        {PRODUCTION_VARIANT} if shadow == "Promote" else set()
    )
    configurable = [n for n in (PRODUCTION_VARIANT, SHADOW_VARIANT) if n not in removed]
    payload: dict[str, Any] = {
        "Name": name,
        "ModelVariantActions": dict(draw(st.permutations(list(actions.items())))),
    }
    desired = (
        draw(st.lists(st.sampled_from(configurable), unique=True, max_size=len(configurable)))
        if configurable
        else []
    )
    if desired:
        payload["DesiredModelVariants"] = [draw(variant_configs(n)) for n in desired]
    payload.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "DesiredState": st.sampled_from(["Completed", "Cancelled"]),
                    "Reason": st.text(max_size=60),
                },
            )
        )
    )
    return payload


@st.composite
def _update(draw: st.DrawFn, name: str, status: ExperimentStatus, now: float) -> dict[str, Any]:
    if status is ExperimentStatus.CREATED:
        start = st.integers(60, 10 * DAY).map(lambda s: now + s)
        members: dict[str, st.SearchStrategy[Any]] = {
            "Schedule": start.flatmap(
                lambda s: st.integers(60, int(MAX_DURATION)).map(
                    lambda d: {"StartTime": s, "EndTime": s + d}
                )
            ),
            "Description": _FREE_TEXT,
            "ModelVariants": st.lists(
                st.sampled_from([PRODUCTION_VARIANT, SHADOW_VARIANT]),
                min_size=1,
                max_size=2,
                unique=True,
            ).flatmap(lambda ns: st.tuples(*(variant_configs(n) for n in ns)).map(list)),
            "DataStorageConfig": _DATA_STORAGE,
            "ShadowModeConfig": st.sampled_from(
                [(PRODUCTION_VARIANT, SHADOW_VARIANT), (SHADOW_VARIANT, PRODUCTION_VARIANT)]
            ).flatmap(lambda roles: _shadow_mode(*roles)),
        }
    else:  # Running: only Description, Schedule.EndTime and SamplingPercentage change; the rest may be sent unchanged
        stored: list[dict[str, Any]] = create_payload()["ModelVariants"]
        members = {
            "Description": _FREE_TEXT,
            "Schedule": st.integers(60, int(MAX_DURATION) - 60).map(lambda d: {"EndTime": now + d}),
            "ShadowModeConfig": _shadow_mode(PRODUCTION_VARIANT, SHADOW_VARIANT),
            "ModelVariants": st.lists(
                st.sampled_from(stored),
                min_size=1,
                max_size=2,
                unique_by=lambda v: str(v["VariantName"]),
            ),
        }
    chosen = draw(st.lists(st.sampled_from(sorted(members)), min_size=1, unique=True))
    return {"Name": name, **{m: draw(members[m]) for m in chosen}}


def valid_payloads(
    operation: str, status: ExperimentStatus | None, *, name: str, now: float = T0
) -> st.SearchStrategy[RequestCase]:
    """Requests of ``operation`` that succeed on experiment ``name`` in ``status``."""

    def case(payload: dict[str, Any], exp: str = name) -> RequestCase:
        return RequestCase(operation, payload, status.value if status else None, exp)

    if operation == CREATE:
        return _create(None, now).map(lambda pair: case(pair[1], pair[0]))
    if operation == LIST:
        return model_payloads(shapes.ListInferenceExperimentsRequest, skip=("NextToken",)).map(case)
    if operation == STOP:
        return stop_payloads(name).map(case)
    if operation == UPDATE:
        assert status is not None
        return _update(name, status, now).map(case)
    return st.just({"Name": name}).map(case)


def create_with(name: str, now: float = T0, **members: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Valid Create payloads named ``name``, with ``members`` on top."""
    return _create(name, now).map(lambda pair: {**pair[1], **members})
