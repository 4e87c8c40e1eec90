"""Breaking one shape rule of a valid payload: which rules each operation's payloads can
break alone, and the change to a payload's value that breaks each one."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from lifecycle.errors import ValidationError
from lifecycle.testing._requests import RequestCase
from lifecycle.testing._rule_cases import NAME
from lifecycle.testing._values import (
    MapKey,
    Slot,
    breaking_value,
    constraint_kinds,
    location,
    nested_model,
    service_shapes,
    shape_info,
    simplest,
    slots,
)
from lifecycle.testing._world import T0
from lifecycle.wire import shapes
from lifecycle.wire._constraints import Enum, Int, Size, Str

__all__ = ["Mutation", "shape_implied", "shape_rules"]

_WRONG_TYPE = {
    "string": 5,
    "integer": "1",
    "timestamp": "soon",
    "list": "x",
    "map": "x",
    "structure": "x",
}
_BOGUS = "NotAMember"


def _pattern(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A location with map keys wild: the same slot in any payload of the same form."""
    return tuple(MapKey("*") if isinstance(seg, MapKey) else seg for seg in loc)


@dataclass(frozen=True, slots=True)
class Mutation:
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
            self.operation,
            broken,
            None,
            NAME,
            ValidationError.code,
            self.rule,
            field,
            self.constraint,
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
) -> tuple[dict[str, Mutation], dict[str, tuple[Mutation, tuple[str, ...]]]]:
    """One mutation per shape rule of ``operation`` that a value breaks alone; and for the
    rules no value breaks alone, one that breaks it with the fewest others (and which)."""
    model = shapes.REQUEST_MODELS[operation]
    skeleton = _skeleton(model)
    out: dict[str, Mutation] = {}
    implied: dict[str, tuple[Mutation, tuple[str, ...]]] = {}

    def add(
        constraint: str, rule: str, slot: Slot, change: Callable[[Slot, Any], tuple[Any, str]]
    ) -> None:
        out.setdefault(
            constraint, Mutation(operation, constraint, rule, _pattern(slot.loc), change)
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
                mutation = Mutation(operation, constraint, kinds[0], _pattern(slot.loc), change)
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
        shape, kind, spec = shape_info(shape_name)
        if kind == "structure":
            return _skeleton(nested_model(annotation, shape_name))
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

    members = service_shapes()[model.__name__]["members"]
    return {
        name: value(members[name]["shape"], f.annotation) for name, f in model.model_fields.items()
    }


@functools.cache
def shape_rules(operation: str) -> dict[str, Mutation]:
    return _mutations(operation)[0]


@functools.cache
def shape_implied(operation: str) -> dict[str, tuple[Mutation, tuple[str, ...]]]:
    return _mutations(operation)[1]
