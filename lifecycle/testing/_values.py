"""Values for the request shapes, valid and each breaking one constraint (needs hypothesis).

Valid values are drawn from each shape's constraints in
:data:`lifecycle.wire.shapes.CONSTRAINTS` (its pattern through
``from_regex``, its lengths, its range). A breaking value is found among a
few candidates built from the shape's simplest valid value, and kept only
when the wire layer's own validator refuses it for that one constraint.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from lifecycle.testing._slots import Slot, _service_shapes, structure_of
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

__all__ = ["Breaking", "breaking_value", "model_payloads", "slot_values", "text_for"]

DAY = 86400
# the regex parser (``sre_parse`` before 3.11, which warns when imported now)
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")


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


def _simplest(regex: str) -> str:
    """A short string that fully matches ``regex`` (a deterministic pick, verified by the caller)."""

    def walk(items: Any) -> str:
        out: list[str] = []
        for op, arg in items:
            if op is _c.LITERAL:
                out.append(chr(arg))
            elif op is _c.NOT_LITERAL:
                out.append("a" if chr(arg) != "a" else "b")
            elif op is _c.ANY:
                out.append("a")
            elif op is _c.IN:
                out.append(_first_in(arg))
            elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
                lo, _, sub = arg
                out.append(walk(sub) * lo)
            elif op is _c.SUBPATTERN:
                out.append(walk(arg[-1]))
            elif op is _c.BRANCH:
                out.append(walk(arg[1][0]))
            elif op is not _c.AT:  # pragma: no cover - no request pattern uses anything else
                raise ValueError(f"cannot pick a match of {regex!r} ({op})")
        return "".join(out)

    return walk(_parser.parse(regex))


def _first_in(items: Any) -> str:
    if items and items[0][0] is _c.NEGATE:
        return next(c for c in "a0_" if not any(_in_item(op, arg, c) for op, arg in items[1:]))
    for op, arg in items:
        if op is _c.LITERAL:
            return chr(arg)
        if op is _c.RANGE:
            return chr(arg[0])
        if op is _c.CATEGORY:
            return "0" if arg is _c.CATEGORY_DIGIT else " " if arg is _c.CATEGORY_SPACE else "a"
    raise ValueError(f"cannot pick from {items}")  # pragma: no cover


def _in_item(op: Any, arg: Any, c: str) -> bool:
    if op is _c.LITERAL:
        return bool(chr(arg) == c)
    if op is _c.RANGE:
        return bool(arg[0] <= ord(c) <= arg[1])
    return False  # pragma: no cover


@functools.cache
def simplest(spec: Str) -> str:
    """The shape's simplest valid string."""
    regex = _regex_of(spec)
    value = _simplest(regex) if regex is not None else ""
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


def slot_values(slot: Slot) -> st.SearchStrategy[Any]:
    """Valid values for a slot's shape (structures and lists through :func:`model_payloads`)."""
    return _shape_values(slot.shape, None)


def _shape_values(
    shape_name: str, annotation: Any, *, maximal: bool = False
) -> st.SearchStrategy[Any]:
    shape = _service_shapes()[shape_name]
    kind = shape["type"]
    spec = shapes.CONSTRAINTS.get(shape_name)
    if kind == "structure":
        model = structure_of(annotation)
        assert model is not None, shape_name
        return model_payloads(model, maximal=maximal)
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
    members = _service_shapes()[model.__name__]["members"]
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        values = _shape_values(members[name]["shape"], field.annotation, maximal=maximal)
        (required if field.is_required() or maximal else optional)[name] = values
    return st.fixed_dictionaries(required, optional=optional)
