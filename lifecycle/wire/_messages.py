"""AWS-style validation messages, made from the pydantic errors of a request.

The validators of :mod:`lifecycle.wire._constraints` fail with pydantic errors of
type ``"aws"`` whose ``ctx["problems"]`` holds ``(rule, text)`` pairs; pydantic's
own errors (missing and unknown members, wrong types) come as pydantic makes them.
:func:`entries` turns both into AWS's ``Value 'x' at 'a.b' failed to satisfy
constraint: ...`` entries, and :func:`validation_error` into the one
:class:`lifecycle.errors.ValidationError` a request gets.

Locations: members in lowerCamelCase joined by dots, list items as
``<list>.<1-based index>.member``, map entries as ``<map>.'<key>'.key`` (the
key broke a rule) and ``<map>.'<key>'.value`` (the value did), after the
``key``/``value`` members of the service model's map shapes.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic_core import ValidationError as PydanticValidationError

from lifecycle.errors import RuleId, ValidationError

__all__ = [
    "MAX_MESSAGE_ENTRIES",
    "MAX_VALUE_CHARS",
    "Entry",
    "cut",
    "entries",
    "validation_error",
]

#: a validation message lists at most this many errors (its count says how many there were)
MAX_MESSAGE_ENTRIES = 50
#: values longer than this are cut in messages (then '...')
MAX_VALUE_CHARS = 100

Entry = tuple[str, str, str]  # (location, entry text, rule)
#: the name and members of the structure holding a location (None: not known)
_Owner = Callable[[Sequence[str | int]], tuple[str, Iterable[str]] | None]

_TYPE_OF_PYDANTIC_ERROR = {
    "model_type": "structure",
    "model_attributes_type": "structure",
    "dict_type": "map",
    "list_type": "list",
    "string_type": "string",
    "int_type": "integer",
    "float_type": "timestamp",
}


def cut(text: str) -> str:
    """``text`` cut to :data:`MAX_VALUE_CHARS` characters (then '...')."""
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def _show(value: Any) -> str:
    """A value as messages quote it: strings as they are, others as compact JSON; cut to
    :data:`MAX_VALUE_CHARS` characters."""
    if isinstance(value, str):
        return cut(value)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        text = reprlib.repr(value)
    return cut(text)


def _location(loc: Sequence[str | int], *, last_raw: bool = False) -> str:
    """('ModelVariants', 0, 'ModelName') -> 'modelVariants.1.member.modelName'."""
    parts: list[str] = []
    for seg in loc[:-1] if last_raw else loc:
        if isinstance(seg, int):
            parts += (str(seg + 1), "member")
        else:
            parts.append(seg[:1].lower() + seg[1:])
    if last_raw and loc:
        parts.append(str(loc[-1]))
    return ".".join(parts)


def _entry(where: str, value: Any, text: str) -> str:
    quoted = "null" if value is None else f"'{_show(value)}'"
    return f"Value {quoted} at '{where}' failed to satisfy constraint: {text}"


def entries(exc: PydanticValidationError, owner: _Owner) -> list[Entry]:
    """One (location, entry text, rule) per broken constraint; ``owner(loc)`` names the
    shape and members of the structure holding ``loc`` (for unknown members)."""
    out: list[Entry] = []
    for err in exc.errors(include_url=False):
        kind, loc, value = err["type"], err["loc"], err["input"]
        if kind == "aws":
            where = _location(loc)
            out.extend(
                (where, _entry(where, value, text), rule) for rule, text in err["ctx"]["problems"]
            )
        elif kind == "extra_forbidden":
            where = _location(loc, last_raw=True)
            known = owner(loc[:-1])
            about = f" of {known[0]} (members: {', '.join(known[1])})" if known else ""
            out.append((where, f"Value at '{where}' is not a member{about}", "unknown-member"))
        elif kind == "missing" or value is None:
            where = _location(loc)
            out.append((where, _entry(where, None, "Member must not be null"), "not-null"))
        elif kind in _TYPE_OF_PYDANTIC_ERROR:
            where = _location(loc)
            out.append(
                (
                    where,
                    _entry(where, value, f"Member must be of type {_TYPE_OF_PYDANTIC_ERROR[kind]}"),
                    "type",
                )
            )
        else:
            where = _location(loc)
            out.append((where, _entry(where, value, f"Member is not valid ({err['msg']})"), kind))
    return out


def validation_error(exc: PydanticValidationError, owner: _Owner) -> ValidationError:
    """The error of a request that failed validation: a count and the first
    :data:`MAX_MESSAGE_ENTRIES` entries; ``field`` and ``rule`` of the first."""
    found = entries(exc, owner) or [("", "The request does not match its shape", RuleId.SHAPE)]
    n = len(found)
    text = f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(
        e[1] for e in found[:MAX_MESSAGE_ENTRIES]
    )
    if n > MAX_MESSAGE_ENTRIES:
        text += f"; ... ({n - MAX_MESSAGE_ENTRIES} more)"
    return ValidationError(
        text,
        field=found[0][0],
        rule=found[0][2],
        errors=[(where, entry) for where, entry, _ in found],
    )
