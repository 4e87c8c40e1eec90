"""Hypothesis strategies for valid and invalid requests of each operation.

Every strategy yields :class:`RequestCase` objects: the operation, the
payload, the status the experiment ``exp`` must be in for the request
(``case.arrange()`` builds that world through real transitions), and for
an invalid request the one rule it breaks (``rule``, ``field``, ``code``,
``constraint``)::

    from hypothesis import given
    from lifecycle.testing import strategies

    @given(strategies.invalid_requests("StopInferenceExperiment"))
    def test_a_refused_stop_names_its_rule(case):
        world = case.arrange()
        with pytest.raises(LifecycleError) as refused:
            world.service.invoke(case.operation, case.payload)
        assert (refused.value.code, refused.value.rule) == (case.code, case.rule)

The shape rules come from the wire shapes (:mod:`lifecycle.wire.shapes`:
the models' fields, which are required, and each member's constraints in
``CONSTRAINTS``): one per constraint a value can break alone, per required
member, per structure (unknown members) and per JSON type. The engine's
other rules (request-alone, existence, conflict, store) each have their own
requests. :data:`RULES` is every rule these strategies break alone;
:data:`IMPLIED` the few no request can break alone, with the rules that
always come along.

Times in payloads are absolute, from ``now`` (default
:data:`~lifecycle.testing.T0`, where an arranged world's clock stands with
settle time 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lifecycle.errors import ValidationError, install_hint

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - the testing extra is not installed
    raise ImportError(
        "lifecycle.testing.strategies needs hypothesis: " + install_hint("testing")
    ) from exc

from lifecycle.domain.catalog import RULE_CATALOG
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.service.service import OPERATIONS
from lifecycle.testing._mutations import shape_implied, shape_rules
from lifecycle.testing._requests import RequestCase, success_statuses, valid_payloads
from lifecycle.testing._rule_cases import IMPLIED_RULES, NAME, REQUEST_RULE_CASES, Cases
from lifecycle.testing._stored_cases import STORED_RULE_CASES
from lifecycle.testing._values import model_payloads
from lifecycle.testing._world import T0
from lifecycle.wire import shapes

__all__ = [
    "IMPLIED",
    "OPERATIONS",
    "RULES",
    "RequestCase",
    "implied_requests",
    "invalid_requests",
    "payloads",
    "rules_of",
    "valid_requests",
]


# --- the public strategies -----------------------------------------------------------------


#: rule id -> operation -> requests of that operation that break the rule alone (beyond the shapes)
RULE_CASES: Cases = {**REQUEST_RULE_CASES, **STORED_RULE_CASES}


def rules_of(operation: str) -> frozenset[str]:
    """Every rule (by its ``constraint`` identity) a request of ``operation`` breaks alone here."""
    semantic = {rule for rule, by_operation in RULE_CASES.items() if operation in by_operation}
    return frozenset({*shape_rules(operation), *semantic})


#: every rule the invalid strategies break alone, by ``constraint`` identity
RULES: frozenset[str] = frozenset(
    {c for op in OPERATIONS for c in shape_rules(op)} | set(RULE_CASES)
)
#: rule -> the rules it always comes with (no request breaks it alone)
IMPLIED: dict[str, tuple[str, ...]] = {
    **{rule: partners for op in OPERATIONS for rule, (_, partners) in shape_implied(op).items()},
    **{rule: partners for rule, (partners, _) in IMPLIED_RULES.items()},
}


def payloads(operation: str, *, maximal: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of ``operation`` that pass every shape constraint (not necessarily the engine's rules)."""
    return model_payloads(shapes.REQUEST_MODELS[operation], maximal=maximal)


def valid_requests(
    operation: str | Iterable[str] | None = None,
    *,
    status: str | ExperimentStatus | None = None,
    now: float = T0,
) -> st.SearchStrategy[RequestCase]:
    """Requests that succeed: each on experiment ``exp`` in ``case.status`` (a status where the
    operation can succeed; ``status`` picks one), or on no experiment for Create."""
    ops = _operations(operation)
    options: list[st.SearchStrategy[RequestCase]] = []
    for op in ops:
        statuses = success_statuses(op)
        if status is not None:
            wanted = ExperimentStatus(status)
            if wanted not in statuses:
                raise ValueError(
                    f"{op} does not succeed in {wanted.value}; it does in {', '.join(str(s) for s in statuses)}"
                )
            statuses = (wanted,)
        options.extend(valid_payloads(op, s, name=NAME, now=now) for s in statuses)
    return st.one_of(options)


def invalid_requests(
    operation: str | Iterable[str] | None = None,
    *,
    rule: str | Iterable[str] | None = None,
    code: str | None = None,
    now: float = T0,
) -> st.SearchStrategy[RequestCase]:
    """Requests that break exactly one rule and say which (``case.rule``, ``case.field``,
    ``case.code``, ``case.constraint``). ``rule`` keeps those of the given constraint
    identities (see :data:`RULES`), ``code`` those of one wire code (``ConflictException``
    for the rules of the stored experiment)."""
    ops = _operations(operation)
    wanted = {rule} if isinstance(rule, str) else set(rule) if rule is not None else None
    if wanted is not None and not wanted <= RULES:
        raise ValueError(f"no strategy breaks {sorted(wanted - RULES)} alone (see IMPLIED)")
    options: list[st.SearchStrategy[RequestCase]] = []
    for op in ops if code in (None, ValidationError.code) else ():
        base = payloads(op, maximal=True)
        for constraint, mutation in shape_rules(op).items():
            if wanted is None or constraint in wanted:
                options.append(base.map(mutation.apply))
    for name, by_operation in RULE_CASES.items():
        if (wanted is None or name in wanted) and code in (None, RULE_CATALOG[name].code):
            options.extend(make(now) for op, make in by_operation.items() if op in ops)
    return st.one_of(options) if options else st.nothing()


def implied_requests(rule: str, *, now: float = T0) -> st.SearchStrategy[RequestCase]:
    """Requests that break ``rule`` (one of :data:`IMPLIED`) with the rules it always comes with.
    ``case.rule`` is the one the engine names first, ``case.constraint`` the implied one."""
    if rule in IMPLIED_RULES:
        return IMPLIED_RULES[rule][1](now)
    options = [
        payloads(op, maximal=True).map(shape_implied(op)[rule][0].apply)
        for op in OPERATIONS
        if rule in shape_implied(op)
    ]
    if not options:
        raise ValueError(f"{rule!r} is not one of IMPLIED")
    return st.one_of(options)


def _operations(operation: str | Iterable[str] | None) -> tuple[str, ...]:
    if operation is None:
        return tuple(OPERATIONS)
    ops = (operation,) if isinstance(operation, str) else tuple(operation)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise ValueError(
            f"unknown operations {unknown}; the operations are: {', '.join(OPERATIONS)}"
        )
    return ops
