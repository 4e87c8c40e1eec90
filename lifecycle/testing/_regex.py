"""A short string a regular expression matches, picked by walking the parsed pattern.

Deterministic (the first alternative, the fewest repeats, the first character
of a class), for the request patterns of the wire shapes: the caller checks
the pick against the shape's own check.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["shortest_match"]

# the regex parser (``sre_parse`` before 3.11, which warns when imported now)
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")


def shortest_match(regex: str) -> str:
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
