"""The service model's constraints as cheap pydantic validators.

Each constraint is data (:class:`Str`, :class:`Enum`, :class:`Int`, :class:`Size`)
copied from botocore's SageMaker service model, so a test can compare every one
with the model and fail on drift. The ``*_validator`` functions turn them into
functions for pydantic's ``PlainValidator``/``WrapValidator``: a fast path that
only accepts, and a slow path that names *every* broken constraint of a value (AWS reports length and
pattern failures of one value as two errors). Failures are raised as pydantic
errors of type ``"aws"`` whose ``ctx["problems"]`` holds ``(rule, text)``
pairs; :mod:`lifecycle.wire._messages` turns them into AWS's messages (and
says how locations are written).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from lifecycle.wire._messages import cut

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "Enum",
    "Int",
    "Size",
    "Str",
    "fullmatch",
    "int_validator",
    "list_validator",
    "map_validator",
    "str_validator",
    "tag_chars_ok",
    "timestamp_validator",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: what a datetime can hold
TIMESTAMP_MIN, TIMESTAMP_MAX = -62135596800, 253402300799
_UNBOUNDED = 2**63

Problem = tuple[str, str]  # (rule, constraint text)


@dataclass(frozen=True, slots=True)
class Str:
    """A string shape: ``pattern`` verbatim from the service model (shown in messages),
    ``check`` the faithful Python test of a full match (None: any characters)."""

    shape: str
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    check: Callable[[str], object] | None = None


@dataclass(frozen=True, slots=True)
class Enum:
    shape: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Int:
    shape: str
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Size:
    """min/max items of a list or entries of a map."""

    shape: str
    min: int | None = None
    max: int | None = None


def fullmatch(regex: str) -> Callable[[str], object]:
    """The full-match test of ``regex``, compiled once."""
    return re.compile(regex).fullmatch


_TAG_ASCII = re.compile(r"[A-Za-z0-9 _.:/=+\-@]*").fullmatch


def tag_chars_ok(value: str) -> bool:
    """``([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)`` by Unicode category: letters, numbers,
    space separators (Zs) and ``_.:/=+-@``."""
    if _TAG_ASCII(value):
        return True
    for ch in value:
        if ch in "_.:/=+-@":
            continue
        cat = unicodedata.category(ch)
        if cat[0] not in "LN" and cat != "Zs":
            return False
    return True


# -- raising ---------------------------------------------------------------------------


def _error(problems: list[Problem]) -> PydanticCustomError:
    return PydanticCustomError(
        "aws", "{text}", {"problems": problems, "text": "; ".join(t for _, t in problems)}
    )


def _null() -> PydanticCustomError:
    return _error([("not-null", "Member must not be null")])


def _type(kind: str) -> PydanticCustomError:
    return _error([("type", f"Member must be of type {kind}")])


def _raise_many(
    items: list[tuple[tuple[str | int, ...], list[Problem], Any]],
    nested: ValidationError | None = None,
) -> NoReturn:
    """Raise one pydantic error holding ``items`` (at locations below the current one)
    and the errors of ``nested``."""
    details = [InitErrorDetails(type=_error(p), loc=loc, input=value) for loc, p, value in items]
    for err in nested.errors(include_url=False) if nested is not None else ():
        kind, ctx = err["type"], err.get("ctx")
        if kind == "aws":
            details.append(
                InitErrorDetails(
                    type=PydanticCustomError("aws", "{text}", ctx),
                    loc=err["loc"],
                    input=err["input"],
                )
            )
            continue
        detail = InitErrorDetails(type=kind, loc=err["loc"], input=err["input"])
        if ctx:
            detail["ctx"] = ctx
        details.append(detail)
    raise ValidationError.from_exception_data("shape", details)


def _length(value: Any, lo: int, hi: int) -> list[Problem]:
    out: list[Problem] = []
    if len(value) > hi:
        out.append(("max-length", f"Member must have length less than or equal to {hi}"))
    if len(value) < lo:
        out.append(("min-length", f"Member must have length greater than or equal to {lo}"))
    return out


def _bounds(lo: int | None, hi: int | None) -> tuple[int, int]:
    return (0 if lo is None else lo), (_UNBOUNDED if hi is None else hi)


# -- validators ------------------------------------------------------------------------


def str_validator(spec: Str | Enum) -> Callable[[Any], str]:
    if isinstance(spec, Enum):
        allowed = frozenset(spec.values)
        enum_text = f"Member must satisfy enum value set: [{', '.join(spec.values)}]"

        def enum_check(v: Any) -> str:
            if type(v) is str and v in allowed:
                return v
            text = _as_str(v)
            if text in allowed:
                return text
            raise _error([("enum", enum_text)])

        return enum_check

    lo, hi = _bounds(spec.min, spec.max)
    match = spec.check
    pattern_text = f"Member must satisfy regular expression pattern: ^{spec.pattern}"

    def check(v: Any) -> str:
        if type(v) is str and lo <= len(v) <= hi and (match is None or match(v)):
            return v
        text = _as_str(v)
        problems = _length(text, lo, hi)
        if match is not None and not match(text):
            problems.append(("pattern", pattern_text))
        if problems:
            raise _error(problems)
        return text

    return check


def _as_str(v: Any) -> str:
    if isinstance(v, str):
        return str.__str__(v)  # a plain str, also for str subclasses such as StrEnum members
    raise _null() if v is None else _type("string")


def int_validator(spec: Int) -> Callable[[Any], int]:
    lo = INT32_MIN if spec.min is None else spec.min
    hi = INT32_MAX if spec.max is None else spec.max

    def check(v: Any) -> int:
        if type(v) is int and lo <= v <= hi:
            return v
        if v is None:
            raise _null()
        if not isinstance(v, int) or isinstance(v, bool):
            raise _type("integer")
        number = int(v)
        problems: list[Problem] = []
        if number < lo:
            problems.append(("min-value", f"Member must have value greater than or equal to {lo}"))
        if number > hi:
            problems.append(("max-value", f"Member must have value less than or equal to {hi}"))
        if problems:
            raise _error(problems)
        return number

    return check


def timestamp_validator(v: Any) -> float:
    """Epoch seconds (int or float), or a datetime (naive means UTC) -> float epoch seconds."""
    t = type(v)
    if (t is float or t is int) and TIMESTAMP_MIN <= v <= TIMESTAMP_MAX:
        return float(v)
    if v is None:
        raise _null()
    if isinstance(v, datetime):
        try:
            v = (v if v.tzinfo is not None else v.replace(tzinfo=UTC)).timestamp()
        except (OverflowError, ValueError, OSError):
            raise _type("timestamp") from None
    elif (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or (isinstance(v, float) and not math.isfinite(v))
    ):
        raise _type("timestamp")
    if v < TIMESTAMP_MIN:
        raise _error(
            [("min-value", f"Member must have value greater than or equal to {TIMESTAMP_MIN}")]
        )
    if v > TIMESTAMP_MAX:
        raise _error(
            [("max-value", f"Member must have value less than or equal to {TIMESTAMP_MAX}")]
        )
    return float(v)


def list_validator(size: Size) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """A wrap validator: the list's size, then its items through pydantic (``handler``).
    A list over its maximum has only its first ``max`` items checked."""
    lo, hi = _bounds(size.min, size.max)

    def check(v: Any, handler: Callable[[Any], Any]) -> Any:
        if type(v) is list and lo <= len(v) <= hi:
            return handler(v)
        if v is None:
            raise _null()
        if not isinstance(v, list):
            raise _type("list")
        v = list(v)
        problems = _length(v, lo, hi)
        if not problems:
            return handler(v)
        try:
            handler(v[:hi])
        except ValidationError as nested:
            _raise_many([((), problems, v)], nested)
        raise _error(problems)

    return check


def map_validator(
    size: Size, key: Callable[[Any], str], value: Callable[[Any], Any]
) -> Callable[[Any], dict[str, Any]]:
    """Entries, each key and each value. A map over its maximum has only its first
    ``max`` entries checked."""
    lo, hi = _bounds(size.min, size.max)

    def check(v: Any) -> dict[str, Any]:
        if type(v) is dict and lo <= len(v) <= hi:
            try:
                return {key(k): value(x) for k, x in v.items()}
            except PydanticCustomError:
                pass
        if v is None:
            raise _null()
        if not isinstance(v, dict):
            raise _type("map")
        items: list[tuple[tuple[str | int, ...], list[Problem], Any]] = []
        problems = _length(v, lo, hi)
        if problems:
            items.append(((), problems, v))
        out: dict[str, Any] = {}
        for k, x in list(v.items())[:hi]:
            where = f"'{cut(str(k))}'"
            checked: dict[str, Any] = {}
            for part, fn, arg in (("key", key, k), ("value", value, x)):
                try:
                    checked[part] = fn(arg)
                except PydanticCustomError as err:
                    items.append(((where, part), (err.context or {})["problems"], arg))
            if len(checked) == 2:
                out[checked["key"]] = checked["value"]
        if items:
            _raise_many(items)
        return out

    return check
