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
- :func:`open_connections` says how many are open now.

The default cap, :func:`default_max_connections`, leaves room under the
process's descriptor limit for the store, the log and the reconciler.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

__all__ = ["default_max_connections", "guarded", "open_connections"]

#: descriptors kept back from connections: the store's files and sockets, logs, pipes
_RESERVED_FDS = 64
_CAP = 1024
#: how long a refused connection's request is read (and dropped) before it is closed, so
#: the client reads the 503 instead of a reset
_REFUSED_LINGER = 0.5

_open = 0


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
                transport.write(_REFUSAL)
                self.loop.call_later(_REFUSED_LINGER, transport.close)
                return
            _open += 1
            self._counted = True
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
