"""The server's log: one line per request, per committed transition and per failed step.

Records carry their facts (``lifecycle.service._logfields.log``): the
message renders them as ``key=value`` pairs, and ``record.fields`` holds
them apart; the formatters put them on the line:

- :class:`TextFormatter`: ``2026-12-02T01:02:03.456Z INFO lifecycle.server
  request op=StopInferenceExperiment name=exp ... ms=0.42``; values with
  spaces or quotes are quoted;
- :class:`JsonFormatter`: one JSON object a line, ``time``, ``level``,
  ``logger``, ``message`` and the fields.

A line costs its formatting only when it is emitted: the fields are a dict
built once, turned into text by the handler. :class:`OncePerInterval`
keeps a storm of one error (``accept()`` failing with "Too many open
files" under a descriptor limit) to one line per interval with a count of
what it held back. :func:`log_config` is the ``logging.config`` dictionary
``lifecycle serve`` runs with, for our loggers and uvicorn's alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from asyncio import _get_running_loop
from typing import IO, Any

from lifecycle.service._logfields import KeyValues

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "LoopBatchingHandler",
    "OncePerInterval",
    "TextFormatter",
    "iso_utc",
    "log_config",
]

LOG_FORMATS = ("text", "json")
#: messages of a storm: one line per interval each
_STORM_MARKERS = ("Too many open files", "out of system resource", "EMFILE", "ENFILE")


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def iso_utc(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-02T01:02:03.456Z``."""
    seconds = int(created)
    cached = _second  # one strftime per second, not per line
    if cached[0] != seconds:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        cached[0] = seconds
    return f"{cached[1]}.{int((created - seconds) * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER MESSAGE key=value ...``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{iso_utc(record.created)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line

    def render(
        self, created: float, level: str, logger: str, event: str, fields: dict[str, Any]
    ) -> str:
        """The line :meth:`format` gives the record ``log()`` makes of these facts."""
        return f"{iso_utc(created)} {level} {logger} {event} {KeyValues(fields)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": getattr(record, "event", None) or record.getMessage(),
        }
        fields: dict[str, Any] | None = getattr(record, "fields", None)
        if fields:
            out.update((k, v) for k, v in fields.items() if v is not None)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _json_line(out)

    def render(
        self, created: float, level: str, logger: str, event: str, fields: dict[str, Any]
    ) -> str:
        """The line :meth:`format` gives the record ``log()`` makes of these facts."""
        out: dict[str, Any] = {"time": iso_utc(created), "level": level, "logger": logger}
        out["message"] = event
        out.update((k, v) for k, v in fields.items() if v is not None)
        return _json_line(out)


def _json_line(out: dict[str, Any]) -> str:
    return json.dumps(out, default=str)


class OncePerInterval(logging.Filter):
    """Let a storm's record through once per ``interval`` seconds, noting how many it held back.

    A storm is a record whose message or exception mentions running out of
    file descriptors; other records pass untouched.
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def _storm(self, record: logging.LogRecord) -> str | None:
        # the template and the exception only: formatting every line's message to look for
        # a storm would cost more than the line itself
        text = record.msg if isinstance(record.msg, str) else ""
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text} {record.exc_info[1]}"
        elif record.args and not text.startswith("%s"):
            text = f"{text} {record.args}"
        for marker in _STORM_MARKERS:
            if marker in text:
                return f"{record.name}:{marker}"
        return None

    def due(self, key: str) -> int | None:
        """Whether a line of ``key`` goes out now: None when one went out within the
        interval (this one is counted and held back), else how many were held back since
        (0 or more). For lines whose caller skips even building them while held back."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._storm(record)
        if key is None:
            return True
        held = self.due(key)
        if held is None:
            return False
        if held:
            record.msg = (
                f"{record.msg} ({held} more like it in the last {self.interval:g}s held back)"
            )
        return True


class LoopBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines an event loop's thread logs once per loop
    iteration, in one write, instead of one write (a system call) per line.

    Under load a server answers many requests in one iteration, each with its
    line: batching them is what access logs of fast servers do. A line waits at
    most until the loop's next iteration. A line from another thread (the
    reconciler's, a worker's) joins the same batch, in the order lines were
    logged, and wakes the loop that last logged here to write it; that thread
    writes the batch itself when no running loop will, or when more than
    :attr:`MAX_WAITING` lines wait. :meth:`flush` (which ``logging.shutdown()``
    calls at exit) writes what is waiting, so a line whose loop ended first is
    not lost.
    """

    #: lines a thread off the loop lets wait for it; past this, that thread writes them
    MAX_WAITING = 1024

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._queue_line(line)

    def write_fields(
        self, level: int, logger: str, event: str, fields: dict[str, Any], created: float
    ) -> bool:
        """Write the line of a ``log()`` call without making a record, when nothing but
        this handler would see it (``log()`` checks that) and the line is all a record
        would come to here: a formatter of ours, no filter but the storm filter (which
        such a line never meets). False when a record must be made after all."""
        render = getattr(self.formatter, "render", None)
        if render is None:
            return False
        if level < self.level:
            return True  # the handler writes nothing at this level: nothing to do
        for kept in self.filters:
            if type(kept) is not OncePerInterval:
                return False
        line = render(created, logging.getLevelName(level), logger, event, fields)
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it
            self._queue_line(line + self.terminator)
        return True

    def _queue_line(self, line: str) -> None:  # called holding self.lock
        waiting = self._waiting
        loop = _get_running_loop()
        if loop is not None:
            self._loop = loop
            if not waiting:
                loop.call_soon(self.flush)
            waiting.append(line)
            return
        # off the loop: wait for the loop that logs here, while it runs and the batch is short
        first = not waiting
        waiting.append(line)
        loop = self._loop
        if loop is not None and len(waiting) <= self.MAX_WAITING and loop.is_running():
            if not first:
                return  # its flush is already on the way
            try:
                loop.call_soon_threadsafe(self.flush)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._write_waiting()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it
            self._write_waiting()

    def _write_waiting(self) -> None:
        if self._waiting:
            text = "".join(self._waiting)
            self._waiting.clear()
            try:
                self.stream.write(text)
            except Exception:
                logging.Handler.handleError(self, logging.makeLogRecord({"msg": text}))
        super().flush()


def log_config(
    level: str = "info", fmt: str = "text", *, root: bool | None = None
) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``lifecycle serve``: our loggers and uvicorn's
    on standard error in ``fmt`` (``text`` or ``json``), storms held to a line per interval.

    With ``root``, every other library's records go through the same handler from the
    root logger, at ``warning`` and above (the database pool's connection errors, say),
    or at every level with ``debug``, which adds the state machines' line per
    transition (``transitions.core``): without a handler of the root's, they went to
    logging's last-resort handler, one bare line per record, in neither format nor held
    back in a storm, and ``--log-level debug`` added nothing. ``root=None`` (the
    default) configures the root logger only while it has no handler: a program that
    set up its own logging before it calls ``serve()`` keeps its root handlers, which
    get those records.

    With ``root`` it also turns off what every record would otherwise gather and no
    line of ours prints (the caller's file and line, thread and process names): the
    logging guide's advice for a process whose lines do not show them (a program's own
    formatter may show them: without ``root`` they are left on)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if root is None:
        root = not logging.getLogger().handlers
    if root:  # the process's logging is ours: a program's own lines may print these
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
    formatter = TextFormatter if fmt == "text" else JsonFormatter
    handler = {
        "class": f"{__name__}.LoopBatchingHandler",
        "formatter": "lifecycle",
        "filters": ["storms"],
        "stream": "ext://sys.stderr",
    }
    logger = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    # other libraries' info lines are theirs to chat with (a pool's every checkout): not
    # at info, only at debug, where everything is asked for
    root_level = "WARNING" if level.upper() == "INFO" else level.upper()
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lifecycle": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {"storms": {"()": f"{__name__}.OncePerInterval"}},
        "handlers": {"default": handler},
        "loggers": {
            "lifecycle": logger,
            "uvicorn": logger,
            "uvicorn.error": {"level": level.upper()},
            "asyncio": logger,
        },
    }
    if root:
        config["root"] = {"handlers": ["default"], "level": root_level}
    return config
