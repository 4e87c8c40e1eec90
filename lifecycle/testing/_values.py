"""The values each shape constraint of the requests admits or breaks (needs hypothesis).

The pydantic models of :mod:`lifecycle.wire.shapes` give a payload's
structure (their fields, which are required, which hold nested structures);
botocore's SageMaker service model, whose shape names the models' classes
carry, names the shape of each member; and
:data:`lifecycle.wire.shapes.CONSTRAINTS` holds that shape's constraints as
the wire layer checks them. A :class:`Slot` is one value of one payload with
all three, and :func:`constraint_kinds` what it can break.

Valid values are drawn from each shape's constraints (its pattern through
``from_regex``, its lengths, its range). A breaking value is found among a
few candidates built from the shape's simplest valid value, and kept only
when the wire layer's own validator refuses it for that one constraint.

Rule identities (what :mod:`lifecycle.testing.strategies` says a request
breaks, and what a test compares with the engine) read:

- ``<shape>:<kind>`` for a constraint of a shape (``InferenceExperimentName:pattern``,
  ``ModelVariantConfigList:max-length``, ``Timestamp:min-value``);
- ``<Structure>.<member>:not-null`` for a required member;
- ``<Structure>:unknown-member`` for a member a structure does not have;
- ``<kind>:type`` for a value of the wrong JSON type (``integer:type``);
- the engine's own rule id for every other rule (``single-promote``).

At about 390 lines the module passes the house's ~350 on purpose: the slots a
request has and the values each admits or breaks are one idea, kept together
(their regular-expression matcher is apart, in ``_regex.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_args

from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from lifecycle.testing._regex import shortest_match
from lifecycle.testing._world import T0
from lifecycle.wire import shapes
from lifecycle.wire._constraints import (
    INT32_MAX,
    INT32_MIN,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    Enum,
    Int,
    Size,
    Str,
    int_validator,
    str_validator,
    timestamp_validator,
)

__all__ = [
    "DAY",
    "Breaking",
    "MapKey",
    "Slot",
    "breaking_value",
    "constraint_kinds",
    "location",
    "model_payloads",
    "nested_model",
    "service_shapes",
    "shape_info",
    "simplest",
    "slots",
    "structure_of",
    "text_for",
]

Spec = Str | Enum | Int | Size


@functools.cache
def service_shapes() -> dict[str, Any]:
    """The shapes of botocore's SageMaker service model, by name."""
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    return dict(model["shapes"])


@dataclass(frozen=True, slots=True)
class MapKey:
    """A map entry in a location: the entry whose key is ``key``."""

    key: str


Loc = tuple[str | int | MapKey, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """One value in a payload: where it is, its service-model shape and what constrains it.

    ``kind`` is the service model's type (``string``, ``integer``,
    ``timestamp``, ``list``, ``map``, ``structure``); ``part`` is ``key`` or
    ``value`` for the two sides of a map entry.
    """

    loc: Loc
    shape: str
    kind: str
    spec: Spec | None
    required: bool
    model: type[BaseModel] | None = None
    owner: str | None = None  # the structure holding the member
    member: str | None = None


def structure_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds, directly or as list items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = structure_of(arg)
        if found is not None:
            return found
    return None


def slots(model: type[BaseModel], payload: Any, loc: Loc = ()) -> Iterator[Slot]:
    """Every value in ``payload`` (a request or a structure of ``model``), outermost first."""
    yield Slot(loc, model.__name__, "structure", None, True, model)
    if not isinstance(payload, dict):
        return
    members = service_shapes()[model.__name__]["members"]
    if set(members) != set(model.model_fields):  # the wire shapes follow the service model
        raise AssertionError(
            f"{model.__name__}: fields {sorted(model.model_fields)} are not the service model's {sorted(members)}"
        )
    for name, field in model.model_fields.items():
        if name not in payload:
            continue
        shape_name = members[name]["shape"]
        yield from _member(
            shape_name,
            payload[name],
            (*loc, name),
            field.is_required(),
            field.annotation,
            model.__name__,
            name,
        )


def shape_info(shape_name: str) -> tuple[dict[str, Any], str, Spec | None]:
    """A shape of the service model, its type, and the wire layer's constraints on it."""
    shape = service_shapes()[shape_name]
    return shape, shape["type"], shapes.CONSTRAINTS.get(shape_name)


def nested_model(annotation: Any, shape_name: str) -> type[BaseModel]:
    """The pydantic model of a structure shape, from the field that holds it."""
    model = structure_of(annotation)
    assert model is not None, shape_name
    return model


def _leaf(loc: Loc, shape_name: str) -> Slot:
    _, kind, spec = shape_info(shape_name)
    return Slot(loc, shape_name, kind, spec, True)


def _member(
    shape_name: str, value: Any, loc: Loc, required: bool, annotation: Any, owner: str, member: str
) -> Iterator[Slot]:
    shape, kind, spec = shape_info(shape_name)
    if kind == "structure":
        nested = nested_model(annotation, shape_name)
        _, *rest = slots(nested, value, loc)
        yield Slot(loc, shape_name, kind, None, required, nested, owner, member)
        yield from rest
        return
    yield Slot(loc, shape_name, kind, spec, required, None, owner, member)
    if kind == "list" and isinstance(value, list):
        items = structure_of(annotation)
        for i, item in enumerate(value):
            if items is not None:
                yield from slots(items, item, (*loc, i))
            else:
                yield _leaf((*loc, i), shape["member"]["shape"])
    elif kind == "map" and isinstance(value, dict):
        for key in value:
            yield _leaf((*loc, MapKey(key), "key"), shape["key"]["shape"])
            yield _leaf((*loc, MapKey(key), "value"), shape["value"]["shape"])


def constraint_kinds(slot: Slot) -> tuple[str, ...]:
    """The constraint kinds a value of ``slot`` can break (the wire layer's rule ids)."""
    spec = slot.spec
    if slot.kind == "timestamp":
        return ("min-value", "max-value")
    if isinstance(spec, Enum):
        return ("enum",)
    if isinstance(spec, Int):
        return ("min-value", "max-value")
    out: list[str] = []
    if isinstance(spec, Str | Size):
        if (spec.min or 0) > 0:
            out.append("min-length")
        if spec.max is not None:
            out.append("max-length")
    if isinstance(spec, Str) and spec.check is not None:
        out.append("pattern")
    return tuple(out)


def location(loc: Loc, *, unknown: str | None = None) -> str:
    """A location as the engine's messages and ``ValidationError.field`` give it:
    members in lowerCamelCase, list items ``<n>.member`` (1-based), map entries
    ``'<key>'.key`` / ``'<key>'.value``; an unknown member keeps its own spelling."""
    parts: list[str] = []
    for seg in loc:
        if isinstance(seg, int):
            parts += [str(seg + 1), "member"]
        elif isinstance(seg, MapKey):
            parts.append(f"'{seg.key}'")
        else:
            parts.append(seg[:1].lower() + seg[1:])
    if unknown is not None:
        parts.append(unknown)
    return ".".join(parts)


# --- strings ----------------------------------------------------------------------------

DAY = 86400


def _regex_of(spec: Str) -> str | None:
    owner = getattr(spec.check, "__self__", None)
    return owner.pattern if isinstance(owner, re.Pattern) else None


_TAG_ALPHABET = st.characters(categories=("L", "N", "Zs"), include_characters="_.:/=+-@")


def text_for(spec: Str, *, max_size: int = 30) -> st.SearchStrategy[str]:
    """Valid strings of a string shape."""
    lo = spec.min or 0
    hi = spec.max if spec.max is not None else 10**9
    check = spec.check
    regex = _regex_of(spec)
    if check is None:
        base = st.text(min_size=lo, max_size=min(hi, max(lo, max_size)))
    elif regex is not None:
        base = st.from_regex(regex, fullmatch=True)
    else:  # a check by Unicode category (Tag keys and values)
        base = st.text(_TAG_ALPHABET, min_size=lo, max_size=min(hi, max(lo, max_size)))
    return base.filter(lambda s: lo <= len(s) <= hi and (check is None or bool(check(s))))


@functools.cache
def simplest(spec: Str) -> str:
    """The shape's simplest valid string."""
    regex = _regex_of(spec)
    value = shortest_match(regex) if regex is not None else ""
    lo = spec.min or 0
    if len(value) < lo:
        value += "a" * (lo - len(value))
    check = spec.check
    if check is not None and not check(value):  # pragma: no cover - a pattern _simplest misreads
        raise ValueError(f"no simple value for {spec.shape}")
    return value


# --- breaking one constraint ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breaking:
    """A value that breaks ``kinds`` of its shape (one kind: it breaks that one alone)."""

    value: Any
    kinds: tuple[str, ...]


def _kinds_refused(spec: Str | Enum | Int, value: Any) -> tuple[str, ...]:
    validate: Callable[[Any], Any] = (
        int_validator(spec) if isinstance(spec, Int) else str_validator(spec)
    )
    try:
        validate(value)
    except PydanticCustomError as err:
        return tuple(rule for rule, _ in (err.context or {})["problems"])
    return ()


def _string_candidates(spec: Str, kind: str) -> list[str]:
    ok = simplest(spec)
    lo, hi = spec.min or 0, spec.max or 0
    if kind == "max-length":
        pad = max(hi + 1 - len(ok), 1)
        return [
            "a" * (hi + 1),
            "a" + "-" * (hi - 1) + "a",
            ok + "a" * pad,
            "a" * pad + ok,
            ok[:1] + "-" * pad + ok[1:],
        ]
    if kind == "min-length":
        return ["a" * (lo - 1), ok[: lo - 1], ""]
    return ["!" * max(lo, 1), "-" * max(lo, 1), ok + "\n", "\n" + ok, ok + "!", "!" + ok[1:]]


@functools.cache
def breaking_value(slot_shape: str, kind: str) -> Breaking | None:
    """A value of shape ``slot_shape`` that breaks constraint ``kind``: alone when one exists,
    else together with the fewest others; ``None`` when the shape has no such constraint."""
    if slot_shape == "Timestamp":
        value = {"min-value": TIMESTAMP_MIN - 1, "max-value": TIMESTAMP_MAX + 1}[kind]
        _check_timestamp(value)
        return Breaking(value, (kind,))
    spec = shapes.CONSTRAINTS.get(slot_shape)
    if isinstance(spec, Enum):
        return Breaking("NotOneOfThem", ("enum",))
    if isinstance(spec, Int):
        lo = INT32_MIN if spec.min is None else spec.min
        hi = INT32_MAX if spec.max is None else spec.max
        value = lo - 1 if kind == "min-value" else hi + 1
        return Breaking(value, _kinds_refused(spec, value))
    if isinstance(spec, Str):
        found: list[Breaking] = []
        for candidate in _string_candidates(spec, kind):
            kinds = _kinds_refused(spec, candidate)
            if kinds == (kind,):
                return Breaking(candidate, kinds)
            if kind in kinds:
                found.append(Breaking(candidate, kinds))
        return min(found, key=lambda b: len(b.kinds)) if found else None
    return None  # sizes are broken by the caller, which holds the items


def _check_timestamp(value: Any) -> None:
    try:
        timestamp_validator(value)
    except PydanticCustomError:
        return
    raise AssertionError(f"{value} is a valid timestamp")  # pragma: no cover


# --- valid values -----------------------------------------------------------------------


def _shape_values(
    shape_name: str, annotation: Any, *, maximal: bool = False
) -> st.SearchStrategy[Any]:
    shape, kind, spec = shape_info(shape_name)
    if kind == "structure":
        return model_payloads(nested_model(annotation, shape_name), maximal=maximal)
    if kind == "timestamp":
        return st.integers(int(T0), int(T0) + 10 * DAY).map(float)
    if isinstance(spec, Enum):
        return st.sampled_from(spec.values)
    if isinstance(spec, Int):
        lo = 0 if spec.min is None else spec.min
        return st.integers(lo, min(lo + 10, INT32_MAX if spec.max is None else spec.max))
    if isinstance(spec, Str):
        return text_for(spec)
    if kind == "list":
        size = spec if isinstance(spec, Size) else Size(shape_name)
        low = max(size.min or 0, 1)
        item = _shape_values(shape["member"]["shape"], annotation, maximal=maximal)
        return st.lists(item, min_size=low, max_size=low)
    if kind == "map":
        key = _shape_values(shape["key"]["shape"], None)
        value = _shape_values(shape["value"]["shape"], None)
        return st.dictionaries(key, value, min_size=1, max_size=1)
    raise AssertionError(f"no values for {shape_name} ({kind})")  # pragma: no cover


def model_payloads(
    model: type[BaseModel], *, maximal: bool = False, skip: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of a request or structure that pass every shape constraint (not the
    engine's rules); ``maximal`` has every optional member too, ``skip`` none of those named."""
    members = service_shapes()[model.__name__]["members"]
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        values = _shape_values(members[name]["shape"], field.annotation, maximal=maximal)
        (required if field.is_required() or maximal else optional)[name] = values
    return st.fixed_dictionaries(required, optional=optional)
