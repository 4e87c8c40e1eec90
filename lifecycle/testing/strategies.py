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

import copy
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - the testing extra is not installed
    raise ImportError(
        "lifecycle.testing.strategies needs hypothesis: pip install 'lifecycle[testing]'"
    ) from exc

from pydantic import BaseModel

from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.service.service import OPERATIONS
from lifecycle.testing._requests import RequestCase, success_statuses, valid_payloads
from lifecycle.testing._rule_cases import (
    IMPLIED_RULES,
    NAME,
    RULE_CASES,
    RULE_CODES,
    RULE_OPERATIONS,
)
from lifecycle.testing._slots import (
    MapKey,
    Slot,
    _service_shapes,
    constraint_kinds,
    location,
    slots,
    structure_of,
)
from lifecycle.testing._values import breaking_value, model_payloads, simplest
from lifecycle.testing._world import T0
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Enum, Int, Size, Str

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

VALIDATION = "ValidationException"
_WRONG_TYPE = {
    "string": 5,
    "integer": "1",
    "timestamp": "soon",
    "list": "x",
    "map": "x",
    "structure": "x",
}
_BOGUS = "NotAMember"


# --- breaking one shape rule -------------------------------------------------------------


def _pattern(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A location with map keys wild: the same slot in any payload of the same form."""
    return tuple(MapKey("*") if isinstance(seg, MapKey) else seg for seg in loc)


@dataclass(frozen=True, slots=True)
class _Mutation:
    """Break ``constraint`` at the slot of ``where`` (a location pattern) of a valid payload."""

    operation: str
    constraint: str
    rule: str
    where: tuple[Any, ...]
    change: Callable[
        [Slot, Any], tuple[Any, str]
    ]  # (slot, its value) -> (new value or _DELETE, field)

    def apply(self, payload: dict[str, Any]) -> RequestCase:
        model = shapes.REQUEST_MODELS[self.operation]
        slot = next(s for s in slots(model, payload) if _pattern(s.loc) == self.where)
        broken = copy.deepcopy(payload)
        new, field = self.change(slot, _get(broken, slot.loc))
        if slot.loc:
            _set(broken, slot.loc, new)
        else:
            broken = new
        return RequestCase(
            self.operation, broken, None, NAME, VALIDATION, self.rule, field, self.constraint
        )


_DELETE = object()


def _get(payload: Any, loc: tuple[Any, ...]) -> Any:
    node = payload
    for seg in loc:
        if isinstance(seg, MapKey):
            node = node[seg.key]
            return node
        node = node[seg]
    return node


def _set(payload: Any, loc: tuple[Any, ...], value: Any) -> None:
    *head, last = loc
    if head and isinstance(head[-1], MapKey):  # a map entry: ("Map", MapKey(k), "key"|"value")
        container = _get(payload, tuple(head[:-1]))
        key = head[-1].key
        if last == "key":
            container[value] = container.pop(key)
        else:
            container[key] = value
        return
    container = _get(payload, tuple(head))
    if value is _DELETE:
        del container[last]
    else:
        container[last] = value


def _mutations(
    operation: str,
) -> tuple[dict[str, _Mutation], dict[str, tuple[_Mutation, tuple[str, ...]]]]:
    """One mutation per shape rule of ``operation`` that a value breaks alone; and for the
    rules no value breaks alone, one that breaks it with the fewest others (and which)."""
    model = shapes.REQUEST_MODELS[operation]
    skeleton = _skeleton(model)
    out: dict[str, _Mutation] = {}
    implied: dict[str, tuple[_Mutation, tuple[str, ...]]] = {}

    def add(
        constraint: str, rule: str, slot: Slot, change: Callable[[Slot, Any], tuple[Any, str]]
    ) -> None:
        out.setdefault(
            constraint, _Mutation(operation, constraint, rule, _pattern(slot.loc), change)
        )

    for slot in slots(model, skeleton):
        if slot.kind == "structure":
            add(
                f"{slot.model.__name__ if slot.model else slot.shape}:unknown-member",
                "unknown-member",
                slot,
                _add_unknown,
            )
        if slot.member is not None and slot.required:
            add(
                f"{slot.owner}.{slot.member}:not-null",
                "not-null",
                slot,
                lambda s, v: (_DELETE, location(s.loc)),
            )
        if slot.member is not None:
            add(
                f"{slot.kind}:type",
                "type",
                slot,
                lambda s, v: (_WRONG_TYPE[s.kind], location(s.loc)),
            )
        for kind in constraint_kinds(slot):
            change, kinds = _breaker(slot, kind)
            constraint = f"{slot.shape}:{kind}"
            if kinds == (kind,):
                add(constraint, kind, slot, change)
            elif kinds:
                mutation = _Mutation(operation, constraint, kinds[0], _pattern(slot.loc), change)
                implied.setdefault(
                    constraint, (mutation, tuple(f"{slot.shape}:{k}" for k in kinds if k != kind))
                )
    return out, implied


def _add_unknown(slot: Slot, value: Any) -> tuple[Any, str]:
    return {**value, _BOGUS: 1}, location(slot.loc, unknown=_BOGUS)


Change = Callable[[Slot, Any], tuple[Any, str]]


def _breaker(slot: Slot, kind: str) -> tuple[Change, tuple[str, ...]]:
    """How to break ``kind`` at ``slot``, and the kinds that breaks (empty: no way)."""
    if isinstance(slot.spec, Size):
        return _size_breaker(slot, kind), (kind,)
    found = breaking_value(slot.shape, kind)
    if found is None:
        return (lambda s, v: (v, "")), ()
    value = found.value
    if slot.loc and slot.loc[-1] == "key":  # a map key: the entry's location names the new key
        return (lambda s, v: (value, location((*s.loc[:-2], MapKey(value), "key")))), found.kinds
    return (lambda s, v: (value, location(s.loc))), found.kinds


def _size_breaker(slot: Slot, kind: str) -> Change:
    spec = slot.spec
    assert isinstance(spec, Size)
    if kind == "min-length":
        empty: Any = {} if slot.kind == "map" else []
        return lambda s, v: (empty, location(s.loc))
    hi = spec.max or 0
    if slot.kind == "list":
        return lambda s, v: ([copy.deepcopy(v[0]) for _ in range(hi + 1)], location(s.loc))

    def grow(s: Slot, v: Any) -> tuple[Any, str]:
        first_key, first_value = next(iter(v.items()))
        keys = [f"{first_key[:60]}{i}" for i in range(hi + 1)]
        return dict.fromkeys(keys, first_value), location(s.loc)

    return grow


def _skeleton(model: type[BaseModel]) -> dict[str, Any]:
    """A fixed, maximal payload of ``model`` (every member, one item per list and map)."""

    def value(shape_name: str, annotation: Any) -> Any:
        shape = _service_shapes()[shape_name]
        spec = shapes.CONSTRAINTS.get(shape_name)
        kind = shape["type"]
        if kind == "structure":
            nested = structure_of(annotation)
            assert nested is not None
            return _skeleton(nested)
        if kind == "list":
            return [value(shape["member"]["shape"], annotation)]
        if kind == "map":
            return {value(shape["key"]["shape"], None): value(shape["value"]["shape"], None)}
        if kind == "timestamp":
            return T0
        if isinstance(spec, Enum):
            return spec.values[0]
        if isinstance(spec, Int):
            return max(spec.min or 0, 1)
        assert isinstance(spec, Str), shape_name
        return simplest(spec)

    members = _service_shapes()[model.__name__]["members"]
    return {
        name: value(members[name]["shape"], f.annotation) for name, f in model.model_fields.items()
    }


@functools.cache
def _shape_rules(operation: str) -> dict[str, _Mutation]:
    return _mutations(operation)[0]


@functools.cache
def _shape_implied(operation: str) -> dict[str, tuple[_Mutation, tuple[str, ...]]]:
    return _mutations(operation)[1]


def _body_object(operation: str) -> st.SearchStrategy[RequestCase]:
    return st.sampled_from([[], "body", 1, None]).map(
        lambda body: RequestCase(
            operation, body, None, NAME, VALIDATION, "body-object", "", "body-object"
        )
    )


# --- the public strategies -----------------------------------------------------------------


def rules_of(operation: str) -> frozenset[str]:
    """Every rule (by its ``constraint`` identity) a request of ``operation`` breaks alone here."""
    semantic = {rule for rule, ops in RULE_OPERATIONS.items() if operation in ops}
    return frozenset({*_shape_rules(operation), "body-object", *semantic})


#: every rule the invalid strategies break alone, by ``constraint`` identity
RULES: frozenset[str] = frozenset(
    {c for op in OPERATIONS for c in _shape_rules(op)} | {"body-object"} | set(RULE_CASES)
)
#: rule -> the rules it always comes with (no request breaks it alone)
IMPLIED: dict[str, tuple[str, ...]] = {
    **{rule: partners for op in OPERATIONS for rule, (_, partners) in _shape_implied(op).items()},
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
    for op in ops if code in (None, VALIDATION) else ():
        base = payloads(op, maximal=True)
        for constraint, mutation in _shape_rules(op).items():
            if wanted is None or constraint in wanted:
                options.append(base.map(mutation.apply))
        if wanted is None or "body-object" in wanted:
            options.append(_body_object(op))
    for name, make in RULE_CASES.items():
        if (
            (wanted is None or name in wanted)
            and code in (None, RULE_CODES[name])
            and RULE_OPERATIONS[name] & set(ops)
        ):
            cases = make(now)
            options.append(
                cases
                if RULE_OPERATIONS[name] <= set(ops)
                else cases.filter(lambda c: c.operation in ops)
            )
    return st.one_of(options) if options else st.nothing()


def implied_requests(rule: str, *, now: float = T0) -> st.SearchStrategy[RequestCase]:
    """Requests that break ``rule`` (one of :data:`IMPLIED`) with the rules it always comes with.
    ``case.rule`` is the one the engine names first, ``case.constraint`` the implied one."""
    if rule in IMPLIED_RULES:
        return IMPLIED_RULES[rule][1](now)
    options = [
        payloads(op, maximal=True).map(_shape_implied(op)[rule][0].apply)
        for op in OPERATIONS
        if rule in _shape_implied(op)
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
