"""Log lines that carry facts: ``log(logger, level, "request", {"op": ..., "status": 200})``.

The record's message renders as ``request op=... status=200`` for any
formatter (a host's own logging shows the facts too), rendered only when a
handler formats it; ``record.fields`` (the dict) and ``record.event``
(``"request"``) are there for formatters that want them apart
(:class:`lifecycle.http.logs.JsonFormatter`). A None value is left out.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

__all__ = ["KeyValues", "log", "text_value"]

#: a value written bare: no space, quote, equals sign or control character
_BARE = re.compile(r'[^\s"=\x00-\x1f\x7f]+')


def text_value(value: object) -> str:
    """``value`` as it stands after ``key=`` in a text line: bare when it can be, else quoted."""
    if type(value) is int or type(value) is float:
        return str(value)
    text = str(value) if isinstance(value, str) else json.dumps(value, default=str)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text)


class KeyValues:
    """``key=value`` pairs, turned into text only when a line is written."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(f"{k}={text_value(v)}" for k, v in self.fields.items() if v is not None)


def log(logger: logging.Logger, level: int, event: str, fields: dict[str, Any]) -> None:
    """One line: ``event`` then its fields (nothing is built when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(
            level, "%s %s", event, KeyValues(fields), extra={"fields": fields, "event": event}
        )
