"""Bounded connections: a cap, a header-read deadline, and a count for the metrics.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but it waits forever for a request that never
comes, or comes a byte at a time, and it accepts connections until the
process runs out of file descriptors. :func:`guarded` wraps uvicorn's HTTP
protocol class (h11's or httptools') so that:

- a connection past ``max_connections`` is answered ``503`` with
  ``Retry-After`` and closed, before it can take the descriptors the
  server needs for its store and its other clients;
- a connection must send a complete request head within
  ``header_timeout`` seconds of opening, and of its previous answer; one
  that does not (an idle socket, a slowloris client) is closed;
- :func:`open_connections` says how many are open now;
- a response's head and body leave in one write (:class:`PairedWrites`):
  uvicorn writes them apart, two system calls (and two segments for the
  client to read) per answer.

The default cap, :func:`default_max_connections`, leaves room under the
process's descriptor limit for the store, the log and the reconciler.

Past the limit all the same, the accepts fail. uvloop (what uvicorn runs on
where it is installed) drops the waiting connections and goes on; asyncio's
own selector loop logs each failed accept of a burst and schedules a retry
of its own for each, thousands a second, every one of which fails again
(and, at shutdown, raises a traceback on the closed socket). The loop
:func:`new_event_loop` gives uvicorn when uvloop is missing,
:class:`BoundedAcceptLoop`, ends a burst at its first failed accept: one
line and one retry a second, and a retry that finds the socket closed does
nothing. uvloop says nothing at all of the connections it drops:
:class:`DescriptorWatch`, which ``lifecycle serve`` runs every second, says
so once per interval.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import sys
from typing import Any

from lifecycle.http.logs import OncePerInterval
from lifecycle.service._logfields import log

__all__ = [
    "BoundedAcceptLoop",
    "DescriptorWatch",
    "PairedWrites",
    "default_max_connections",
    "descriptors_open",
    "guarded",
    "new_event_loop",
    "open_connections",
]

#: the accept errors asyncio answers with a pause and a retry (out of descriptors, of memory)
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: descriptors kept back from connections: the store's files and sockets, logs, pipes
_RESERVED_FDS = 64
_CAP = 1024
#: how long a refused connection's request is read (and dropped) before it is closed, so
#: the client reads the 503 instead of a reset
_REFUSED_LINGER = 0.5
#: refused connections left to linger at once: each holds a descriptor, and a burst of them
#: must not eat the reserve (out of descriptors, uvloop accepts and drops connections unanswered);
#: past this many, a refused connection is closed as soon as its 503 is written
_MAX_LINGERING = _RESERVED_FDS // 2

_open = 0
_lingering = 0


def _refusal() -> bytes:
    body = json.dumps(
        {
            "__type": "ServiceUnavailable",
            "Message": "the server has as many connections open as it allows; retry",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        f"Content-Length: {len(body)}\r\n"
        "X-Amzn-ErrorType: ServiceUnavailable\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


_REFUSAL = _refusal()


def default_max_connections() -> int:
    """At most 1,024, and at least 64 descriptors fewer than the soft ``RLIMIT_NOFILE``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _CAP
    return max(8, min(_CAP, soft - _RESERVED_FDS))


def open_connections() -> int:
    """HTTP connections open now in this process (through :func:`guarded` protocols)."""
    return _open


def _refuse(loop: asyncio.AbstractEventLoop, transport: Any) -> None:
    """Answer a connection past the cap 503 and close it: after ``_REFUSED_LINGER`` while
    fewer than ``_MAX_LINGERING`` linger, else at once."""
    global _lingering
    transport.write(_REFUSAL)
    if _lingering >= _MAX_LINGERING:
        transport.close()
        return
    _lingering += 1
    loop.call_later(_REFUSED_LINGER, _close_refused, transport)


def _close_refused(transport: Any) -> None:
    global _lingering
    _lingering -= 1
    transport.close()


class PairedWrites:
    """A transport whose writes go to the socket two at a time: a response's head with
    its body, in one system call.

    A write with nothing held is held; the next write sends both. What is
    still held when the loop comes round (a ``100 Continue``, the last chunk
    of a streamed answer) is sent then, and :meth:`close` sends it first.
    Everything else is the transport's own.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self._send_held)
        else:
            self._held = None
            self._transport.write(held + data)

    def _send_held(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded(base: type[asyncio.Protocol], *, max_connections: int, header_timeout: float) -> type:
    """``base`` (uvicorn's ``H11Protocol`` or ``HttpToolsProtocol``) with a cap and a deadline."""

    class Guarded(base):  # type: ignore[valid-type,misc]
        _deadline: asyncio.TimerHandle | None = None
        _refused = False
        _counted = False

        def connection_made(self, transport: Any) -> None:
            global _open
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self._refused = True
                _refuse(self.loop, transport)
                return
            _open += 1
            self._counted = True
            self.transport = PairedWrites(transport, self.loop)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # read and dropped: the answer is already on its way
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            global _open
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if self._counted:
                _open -= 1
                self._counted = False
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._head_overdue)

        def _head_overdue(self) -> None:
            """No request head came in time: close, unless a request is being answered."""
            self._deadline = None
            cycle = getattr(self, "cycle", None)
            busy = cycle is not None and not cycle.response_complete
            if not busy and not self.transport.is_closing():
                self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


class _BurstSocket:
    """A listening socket as one of asyncio's accept bursts sees it: once an accept fails
    for want of resources, the rest of the burst finds nothing waiting."""

    __slots__ = ("_failed", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._failed = False

    def accept(self) -> Any:
        if self._failed:
            raise BlockingIOError(errno.EAGAIN, "the burst ended at a failed accept")
        try:
            return self.sock.accept()
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._failed = True
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class BoundedAcceptLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, whose accepts stop at the first that runs out of descriptors.

    asyncio accepts up to a backlog's worth of connections per readiness, and
    for each accept that fails with EMFILE (ENFILE, ENOBUFS, ENOMEM) logs the
    error and schedules a retry a second later, without leaving the burst: a
    burst of 2,048 failures is 2,048 lines and 2,048 retries, each of which
    does the same. Here the burst ends at its first failure: one line, one
    retry. A retry that comes after the server closed its socket does nothing
    (asyncio's raises ``ValueError`` on the closed socket).
    """

    def _accept_connection(self, protocol_factory: Any, sock: Any, *args: Any) -> None:
        if isinstance(sock, _BurstSocket):
            sock = sock.sock
        super()._accept_connection(protocol_factory, _BurstSocket(sock), *args)  # type: ignore[misc]

    def _start_serving(self, protocol_factory: Any, sock: Any, *args: Any) -> None:
        if isinstance(sock, _BurstSocket):
            sock = sock.sock
        if sock.fileno() < 0:
            return  # the server closed it while the retry waited
        super()._start_serving(protocol_factory, sock, *args)  # type: ignore[misc]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop uvicorn runs ``lifecycle serve`` on (its ``loop`` setting): uvloop's
    where it is installed, as uvicorn's own choice would be, else a
    :class:`BoundedAcceptLoop` (on Windows, asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        if sys.platform == "win32":
            return asyncio.new_event_loop()
        return BoundedAcceptLoop()
    return uvloop.new_event_loop()


_log = logging.getLogger("lifecycle.server")
#: descriptors short of the limit that count as out of them (libuv keeps one in reserve)
_OUT_MARGIN = 2


def descriptors_open(limit: int) -> int | None:
    """How many file descriptors this process has open, where the system says (Linux's
    ``/proc/self/fd``); ``limit`` when there is none left even to read that with; None
    where it cannot be read."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
    except OSError as exc:
        return limit if exc.errno in (errno.EMFILE, errno.ENFILE) else None


class DescriptorWatch:
    """Says when the process is out of file descriptors, once per ``interval`` seconds.

    Out of them, uvloop drops the connections it cannot accept and logs nothing;
    :meth:`check` (called every second) logs a warning, with how many are open,
    the limit and how many of them are HTTP connections, while the process is
    within two of its ``RLIMIT_NOFILE``.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self._lines = OncePerInterval(interval)

    def check(self) -> bool:
        """Whether the process is out of descriptors now (and, once per interval, log it)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return False
        used = descriptors_open(soft)
        if used is None or used < soft - _OUT_MARGIN:
            return False
        held = self._lines.due("descriptors")
        if held is not None:
            log(
                _log,
                logging.WARNING,
                "out of file descriptors (Too many open files): connections are dropped "
                "unanswered until some close; lower --max-connections or raise the limit",
                {
                    "open": used,
                    "limit": soft,
                    "connections": _open,
                    "held_back": held or None,
                },
            )
        return True
