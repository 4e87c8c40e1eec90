"""The server's log lines: text and JSON, ISO 8601 UTC times, fields, storms held back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import re
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from lifecycle.http.logs import (
    JsonFormatter,
    LoopBatchingHandler,
    OncePerInterval,
    TextFormatter,
    iso_utc,
    log_config,
)
from lifecycle.service._logfields import log


def _record(message: str = "request", **fields: object) -> logging.LogRecord:
    """The record ``log(logger, INFO, message, fields)`` makes."""
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("lifecycle.server")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        if fields:
            log(logger, logging.INFO, message, dict(fields))
        else:
            logger.info(message)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    (record,) = records
    record.created = 1_796_000_000.25
    return record


def test_the_message_itself_carries_the_fields_for_a_hosts_own_formatter() -> None:
    record = _record(op="DescribeInferenceExperiment", status=400, rule=None)
    assert record.getMessage() == "request op=DescribeInferenceExperiment status=400"
    assert logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record) == (
        "INFO lifecycle.server: request op=DescribeInferenceExperiment status=400"
    )


def test_times_are_iso_8601_utc_with_milliseconds() -> None:
    assert iso_utc(1_796_000_000.25) == "2026-11-30T00:53:20.250Z"


def test_a_text_line_has_time_level_logger_message_then_its_fields() -> None:
    line = TextFormatter().format(
        _record(op="StopInferenceExperiment", name="exp", rule=None, status=400, ms=0.42)
    )
    assert line == (
        "2026-11-30T00:53:20.250Z INFO lifecycle.server request "
        "op=StopInferenceExperiment name=exp status=400 ms=0.42"
    )


def test_a_text_value_with_spaces_quotes_or_equals_is_quoted_so_the_line_parses() -> None:
    line = TextFormatter().format(_record(reason='a "b" c', key="k=v"))
    assert line.endswith(' reason="a \\"b\\" c" key="k=v"')


def test_a_json_line_is_one_object_with_the_fields() -> None:
    line = JsonFormatter().format(_record(op="ListInferenceExperiments", status=200, rule=None))
    assert json.loads(line) == {
        "time": "2026-11-30T00:53:20.250Z",
        "level": "INFO",
        "logger": "lifecycle.server",
        "message": "request",
        "op": "ListInferenceExperiments",
        "status": 200,
    }


def test_an_exception_goes_on_the_record_in_both_formats() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        info = sys.exc_info()
    record = _record()
    record.exc_info = info
    assert "RuntimeError: boom" in TextFormatter().format(record)
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_a_storm_of_descriptor_errors_is_one_line_per_interval_with_a_count() -> None:
    storm = OncePerInterval(interval=60)
    accept = logging.LogRecord(
        "asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource", (), None
    )
    assert storm.filter(accept)
    assert not any(storm.filter(accept) for _ in range(1000))
    other = _record("something else")
    assert storm.filter(other)
    storm.interval = 0
    assert storm.filter(accept)
    assert "1000 more like it" in accept.getMessage()


def test_log_config_sends_ours_and_uvicorns_through_one_formatter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(log_config("info", "json"))
    try:
        log(logging.getLogger("lifecycle.server"), logging.INFO, "request", {"status": 200})
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["logger"] for line in lines] == [
            "lifecycle.server",
            "uvicorn.error",
        ]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", json.loads(lines[0])["time"])
    finally:
        _unconfigure()


def test_log_config_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="text, json"):
        log_config("info", "xml")


class _Writes(io.StringIO):
    """A stream that counts its writes (each one a syscall on a real stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _loop_handler() -> tuple[LoopBatchingHandler, _Writes]:
    stream = _Writes()
    handler = LoopBatchingHandler(stream)
    handler.setFormatter(TextFormatter())
    return handler, stream


def test_lines_from_the_event_loop_are_written_together_once_per_iteration() -> None:
    handler, stream = _loop_handler()

    async def main() -> tuple[str, str]:
        for n in range(3):
            handler.handle(_record(f"line {n}"))
        before = stream.getvalue()
        await asyncio.sleep(0)  # one iteration: the flush scheduled by the first line runs
        return before, stream.getvalue()

    before, after = asyncio.run(main())
    assert before == ""
    assert [line.rsplit(" ", 2)[-2:] for line in after.splitlines()] == [
        ["line", "0"],
        ["line", "1"],
        ["line", "2"],
    ]
    assert stream.writes == 1


def _run_blocking_the_loop(work: Callable[[], None]) -> None:
    """``work`` on a thread of its own, waited for without letting the loop run."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_lines_from_other_threads_join_the_loops_batch_in_the_order_they_were_logged() -> None:
    handler, stream = _loop_handler()

    seen: list[str] = []

    def from_a_thread() -> None:
        for n in range(3):
            handler.handle(_record(f"from a thread {n}"))
        seen.append(stream.getvalue())

    async def main() -> tuple[str, str]:
        handler.handle(_record("from the loop"))
        _run_blocking_the_loop(from_a_thread)
        await asyncio.sleep(0)  # the loop's next iteration writes the batch
        return seen[0], stream.getvalue()

    seen_by_the_thread, written = asyncio.run(main())
    assert seen_by_the_thread == ""  # a thread's lines wait for the loop, a write for all
    assert [line.split(" ", 3)[3] for line in written.splitlines()] == [
        "from the loop",
        "from a thread 0",
        "from a thread 1",
        "from a thread 2",
    ]
    assert stream.writes == 1


def test_a_thread_writes_its_lines_itself_when_no_loop_will() -> None:
    handler, stream = _loop_handler()
    handler.handle(_record("before any loop"))  # no loop has logged through it yet
    assert stream.getvalue().endswith("before any loop\n")

    async def main() -> None:
        handler.handle(_record("on the loop"))
        await asyncio.sleep(0)

    asyncio.run(main())  # the loop that logged through the handler is closed now
    written = threading.Thread(target=handler.handle, args=(_record("after the loop"),))
    written.start()
    written.join()
    assert stream.getvalue().endswith("after the loop\n")


def test_a_thread_writes_at_once_past_a_bounded_batch() -> None:
    handler, stream = _loop_handler()
    bound = LoopBatchingHandler.MAX_WAITING

    def from_a_thread() -> None:
        for n in range(bound + 1):
            handler.handle(_record(f"line {n}"))

    async def main() -> int:
        handler.handle(_record("on the loop"))
        await asyncio.sleep(0)
        _run_blocking_the_loop(from_a_thread)  # the loop cannot write the batch meanwhile
        return stream.writes

    writes_by_then = asyncio.run(main())
    assert writes_by_then == 2  # the loop's line, then the thread's full batch at once
    handler.flush()
    assert stream.getvalue().count("\n") == bound + 2


def test_flush_writes_what_is_waiting_so_nothing_is_lost_when_the_loop_ends() -> None:
    handler, stream = _loop_handler()

    loop = asyncio.new_event_loop()
    try:
        # the line and the loop's stop in one batch: the flush the line schedules never runs
        loop.call_soon(handler.handle, _record("last words"))
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert stream.getvalue() == ""
    handler.flush()  # what logging.shutdown() does at exit
    assert stream.getvalue().endswith("last words\n")
    handler.flush()
    assert stream.getvalue().count("last words") == 1


def test_log_config_batches_the_servers_lines_per_loop_iteration() -> None:
    config = log_config("info", "text")
    assert config["handlers"]["default"]["class"] == "lifecycle.http.logs.LoopBatchingHandler"


def test_due_lets_one_line_of_a_key_out_per_interval_and_counts_the_rest() -> None:
    lines = OncePerInterval(interval=60)
    assert lines.due("throttled") == 0
    assert [lines.due("throttled") for _ in range(5)] == [None] * 5
    assert lines.due("other") == 0
    lines.interval = 0
    assert lines.due("throttled") == 5  # the next line says how many were held back


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_a_line_rendered_from_the_facts_is_the_line_of_the_record(
    formatter: logging.Formatter,
) -> None:
    facts: dict[str, object] = {"op": "StopInferenceExperiment", "name": "a b", "rule": None}
    record = _record("request", **facts)
    render = formatter.render  # type: ignore[attr-defined]  # both of ours have it
    assert render(record.created, "INFO", "lifecycle.server", "request", facts) == (
        formatter.format(record)
    )


#: the root logger's handlers (pytest's) while a test runs the server's configuration
_kept_root: list[logging.Handler] = []


def _configured(stream: io.StringIO) -> logging.Handler:
    """``log_config`` applied as in ``lifecycle serve``'s process (the root logger its own);
    :func:`_unconfigure` undoes it."""
    _kept_root[:] = logging.getLogger().handlers
    logging.config.dictConfig(log_config("info", "text", root=True))
    handler = logging.getLogger("lifecycle").handlers[0]
    assert isinstance(handler, LoopBatchingHandler)
    handler.setStream(stream)
    return handler


def _unconfigure() -> None:
    for name in ("lifecycle", "uvicorn", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, LoopBatchingHandler):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for handler in _kept_root:
        if handler not in root.handlers:
            root.addHandler(handler)
    _kept_root.clear()


@pytest.fixture
def serving_log() -> Iterator[Callable[[str, str], io.StringIO]]:
    """Apply ``log_config(level, fmt)`` as ``lifecycle serve`` does, its lines into a
    string; undone after the test."""

    def configure(level: str, fmt: str) -> io.StringIO:
        if not _kept_root:
            _kept_root[:] = logging.getLogger().handlers
        logging.config.dictConfig(log_config(level, fmt, root=True))
        stream = io.StringIO()
        handler = logging.getLogger("lifecycle").handlers[0]
        assert isinstance(handler, LoopBatchingHandler)
        handler.setStream(stream)
        return stream

    try:
        yield configure
    finally:
        _unconfigure()


def test_another_librarys_warning_gets_the_servers_format_not_the_last_resort(
    serving_log: Callable[[str, str], io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    stream = serving_log("info", "json")
    logging.getLogger("psycopg.pool").warning("error connecting in %r: %s", "pool-1", "refused")
    logging.getLogger("psycopg.pool").info("connection given by %r", "pool-1")  # below warning
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["logger"], line["level"]) == ("psycopg.pool", "WARNING")
    assert line["message"] == "error connecting in 'pool-1': refused"
    assert "refused" not in capsys.readouterr().err  # nothing beside it, unformatted


def test_a_programs_own_root_handlers_are_kept_when_it_serves() -> None:
    root = logging.getLogger()
    theirs = logging.StreamHandler(io.StringIO())
    root.addHandler(theirs)  # set up before serve(): the root logger is the program's
    threads, files = logging.logThreads, logging._srcfile
    logging.logThreads = True
    logging._srcfile = logging.__file__
    try:
        assert "root" not in log_config("info", "text")
        # and its records still say their thread and their caller, which its lines may show
        assert logging.logThreads and logging._srcfile is not None
        assert log_config("info", "text", root=True)["root"]["handlers"] == ["default"]
    finally:
        root.removeHandler(theirs)
        logging.logThreads, logging._srcfile = threads, files
    kept = list(root.handlers)  # pytest's own, while a test runs
    for handler in kept:
        root.removeHandler(handler)
    try:  # a process whose logging nobody set up: lifecycle serve's
        assert log_config("debug", "json")["root"] == {"handlers": ["default"], "level": "DEBUG"}
    finally:
        for handler in kept:
            root.addHandler(handler)


def test_log_level_debug_adds_the_machines_debug_lines(
    serving_log: Callable[[str, str], io.StringIO],
) -> None:
    from lifecycle.testing import World

    for level, expected in (("info", False), ("debug", True)):
        stream = serving_log(level, "text")
        World().running()
        written = stream.getvalue()
        assert ("DEBUG transitions.core provisioned: CREATING -> STARTING" in written) is expected
        _unconfigure()


def test_a_storm_from_another_library_is_held_to_a_line_per_interval(
    serving_log: Callable[[str, str], io.StringIO],
) -> None:
    stream = serving_log("info", "text")
    pool = logging.getLogger("psycopg.pool")
    for _ in range(500):
        pool.warning(
            "error connecting in %r: %s",
            "pool-1",
            "connection failed: could not create socket: Too many open files",
        )
    assert stream.getvalue().count("Too many open files") == 1


def test_serves_handler_writes_a_line_without_a_record_and_a_hosts_handler_gets_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lifecycle.service import _logfields

    made: list[str] = []
    real = _logfields._fast_record

    def counted(name: str, level: int, event: str, fields: dict[str, object]) -> logging.LogRecord:
        made.append(event)
        return real(name, level, event, fields)

    monkeypatch.setattr(_logfields, "_fast_record", counted)
    stream = io.StringIO()
    _configured(stream)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    server = logging.getLogger("lifecycle.server")
    try:
        log(server, logging.INFO, "request", {"op": "ListInferenceExperiments", "status": 200})
        assert stream.getvalue().endswith(
            " INFO lifecycle.server request op=ListInferenceExperiments status=200\n"
        )
        assert made == []  # no record was made for it
        keep = Keep()
        server.addHandler(keep)  # a second reader: the line must be a record for both
        log(server, logging.INFO, "request", {"op": "DescribeInferenceExperiment"})
        server.removeHandler(keep)
        assert [r.getMessage() for r in seen] == ["request op=DescribeInferenceExperiment"]
        assert made == ["request"]
        assert stream.getvalue().count("op=DescribeInferenceExperiment") == 1
    finally:
        _unconfigure()


def test_a_filter_of_the_hosts_on_serves_handler_still_sees_every_record() -> None:
    stream = io.StringIO()
    handler = _configured(stream)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    try:
        server = logging.getLogger("lifecycle.server")
        log(server, logging.INFO, "request", {"op": "secret"})
        log(server, logging.INFO, "request", {"op": "public"})
        assert "op=secret" not in stream.getvalue()
        assert "op=public" in stream.getvalue()
    finally:
        _unconfigure()
