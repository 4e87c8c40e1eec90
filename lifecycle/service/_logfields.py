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
import time
from typing import Any

__all__ = ["KeyValues", "log", "text_value"]


def _bare(text: str) -> bool:
    """Whether ``text`` can stand unquoted after ``key=``: no space, quote, equals sign or
    control character (str methods, not a regex: this runs for every field of every line)."""
    return (
        bool(text)
        and text.isprintable()
        and " " not in text
        and '"' not in text
        and "=" not in text
    )


def text_value(value: object) -> str:
    """``value`` as it stands after ``key=`` in a text line: bare when it can be, else quoted."""
    kind = type(value)
    if kind is int or kind is float:
        return str(value)
    text = str(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if _bare(text) else json.dumps(text)


class KeyValues:
    """``key=value`` pairs, turned into text only when a line is written."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join([f"{k}={text_value(v)}" for k, v in self.fields.items() if v is not None])


#: what a record of ours holds before its own facts, per (logger, level): copied per line
_templates: dict[tuple[str, int], dict[str, Any]] = {}
_LogRecord = logging.LogRecord
_new_record = _LogRecord.__new__


def _fast_record(name: str, level: int, event: str, fields: dict[str, Any]) -> logging.LogRecord:
    """The record ``Logger.log`` would make, without its per-call work.

    A line of ours has no caller (it is always this module) and, where this
    path is taken, no thread, process or task names (``log_config`` turns
    them off): what is left is the time, the level and the facts. Every
    attribute a ``LogRecord`` has is there, taken from one made the normal
    way, so any formatter or filter of the host's reads the same record.
    """
    template = _templates.get((name, level))
    if template is None:
        made = _LogRecord(name, level, __file__, 0, "%s %s", ("", None), None, "log")
        template = _templates[(name, level)] = dict(made.__dict__)
    record = _new_record(_LogRecord)
    attrs = record.__dict__
    attrs.update(template)
    now = time.time()
    attrs["created"] = now
    attrs["msecs"] = int((now - int(now)) * 1000) + 0.0
    # from the template's own: the same either way logging counts its start
    attrs["relativeCreated"] = template["relativeCreated"] + (now - template["created"]) * 1000
    attrs["args"] = (event, KeyValues(fields))
    attrs["fields"] = fields
    attrs["event"] = event
    return record


def _plain_records() -> bool:
    """Whether a record needs nothing from the call's context: the default record factory,
    and no thread, process or task names asked for."""
    return (
        logging.getLogRecordFactory() is _LogRecord
        and logging._srcfile is None
        and not logging.logThreads
        and not logging.logProcesses
        and not logging.logMultiprocessing
        and not getattr(logging, "logAsyncioTasks", False)
    )


def _only_handler(logger: logging.Logger) -> logging.Handler | None:
    """The one handler a record of ``logger`` would reach, when there is exactly one and
    no logger filter on the way; else None."""
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        handlers = current.handlers
        if handlers:
            return handlers[0] if len(handlers) == 1 and not current.propagate else None
        if not current.propagate:
            return None
        current = current.parent
    return None


def log(logger: logging.Logger, level: int, event: str, fields: dict[str, Any]) -> None:
    """One line: ``event`` then its fields (nothing is built when the level is off).

    Where the line can reach one handler only and that handler writes such lines
    itself (``write_fields``: ``lifecycle serve``'s), no record is made: the
    handler renders the facts as its formatter would the record."""
    if not logger.isEnabledFor(level):
        return
    write = getattr(_only_handler(logger), "write_fields", None)
    if write is not None and write(level, logger.name, event, fields, time.time()):
        return
    if _plain_records():
        logger.handle(_fast_record(logger.name, level, event, fields))
    else:
        logger.log(
            level, "%s %s", event, KeyValues(fields), extra={"fields": fields, "event": event}
        )
