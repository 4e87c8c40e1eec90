"""Signed HTTP POSTs to one URL over kept-alive connections, with the standard library only.

:class:`SignedSender` is the sending half of every webhook: it POSTs a body
to one ``http://`` or ``https://`` URL, signs it (``X-Lifecycle-Signature:
sha256=<hex HMAC-SHA256 of the body>``) when it has a secret, and hands back
the receiver's :class:`Reply`, whatever its status; what a status means is
the caller's business. When no answer comes back (refused, reset, timed
out, a broken reply) it raises :class:`SendError`.

Each thread keeps one persistent HTTP/1.1 connection (``http.client``); a
request that finds its kept-alive connection closed by the receiver is sent
again, once, on a fresh one. Every connect and every read has the timeout.
:meth:`SignedSender.close` closes every connection the sender opened.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import math
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

__all__ = ["SIGNATURE_HEADER", "Reply", "SendError", "SignedSender", "sign"]

#: the header that carries the body's signature
SIGNATURE_HEADER = "X-Lifecycle-Signature"
#: how much of a reply's body is kept (the rest is not read, and its connection not reused)
MAX_REPLY_BYTES = 64 * 1024
_USER_AGENT = "lifecycle-webhook/1"
#: what a kept-alive connection the receiver has closed meanwhile fails with
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Reply:
    """The receiver's answer: its status, reason phrase and (at most 64 KiB of) body."""

    status: int
    reason: str
    body: bytes

    def text(self, limit: int = 300) -> str:
        """The body as one line of text, cut to ``limit`` characters."""
        text = " ".join(self.body.decode("utf-8", "replace").split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


class SendError(Exception):
    """No answer came back: the connection was refused or reset, the receiver did not
    answer within the timeout, or its answer was not HTTP."""


class SignedSender:
    """POSTs bodies to ``url``, signed with ``secret`` when there is one.

    ``timeout`` (seconds) bounds the connect and every read; ``context`` is the
    TLS context of an ``https`` URL (the default verifies the receiver's
    certificate against the system's CAs). ``ValueError`` for a URL that is
    not ``http(s)://host[:port][/path]`` or a timeout that is not positive.
    Safe to share between threads: each has its own connection.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        timeout: float = 10.0,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{url!r} has a user name or password; sign with a secret instead")
        try:
            port = parts.port
        except ValueError as exc:  # not a number, or past 65535
            raise ValueError(f"{url!r}: {exc}") from None
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"the timeout must be a positive number of seconds, not {timeout}")
        if secret is not None and not secret:
            raise ValueError("the secret is empty")
        self.url = url
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._where = parts.netloc
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._context = context
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, http.client.HTTPConnection] = {}

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
        """POST ``body`` (JSON unless ``headers`` say otherwise); the reply, whatever its
        status. :class:`SendError` when none comes back."""
        sent = {"Content-Type": "application/json", "User-Agent": _USER_AGENT, **(headers or {})}
        if self._secret is not None:
            sent[SIGNATURE_HEADER] = sign(self._secret, body)
        for retry_if_stale in (True, False):
            connection = self._connection()
            reused = connection.sock is not None
            try:
                return self._exchange(connection, body, sent)
            except (OSError, http.client.HTTPException) as exc:
                self._discard(connection)
                if retry_if_stale and reused and isinstance(exc, _STALE):
                    continue  # the receiver closed the idle connection: once more, afresh
                raise SendError(self._describe(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection this sender opened (a later ``post`` opens a new one)."""
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections ------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection (opened on its first request, kept alive after)."""
        me = threading.current_thread()
        with self._lock:
            connection = self._connections.get(me)
            if connection is not None:
                return connection
            for gone in [t for t in self._connections if not t.is_alive()]:
                self._connections.pop(gone).close()
            connection = self._open()
            self._connections[me] = connection
            return connection

    def _open(self) -> http.client.HTTPConnection:
        if self._https:
            if self._context is None:  # made once (it reads the system's CAs), under the lock
                self._context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        """Close a connection that cannot carry another request, and forget it."""
        connection.close()
        with self._lock:
            me = threading.current_thread()
            if self._connections.get(me) is connection:
                del self._connections[me]

    def _exchange(
        self, connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
    ) -> Reply:
        connection.request("POST", self._path, body=body, headers=headers)
        with connection.getresponse() as response:
            data = response.read(MAX_REPLY_BYTES)
            complete = response.isclosed()
            reply = Reply(response.status, response.reason, data)
        if not complete:  # a body past the limit: the connection cannot be reused
            self._discard(connection)
        return reply

    def _describe(self, exc: BaseException) -> str:
        where = self._where
        if isinstance(exc, TimeoutError):
            return f"no answer from {where} within {self.timeout:g}s"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection to {where} refused"
        if isinstance(exc, http.client.RemoteDisconnected):
            return f"{where} closed the connection without answering"
        if isinstance(exc, ConnectionResetError):
            return f"connection to {where} reset"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {self._host}: {exc.strerror}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"the TLS certificate of {where} is not trusted: {exc.verify_message}"
        return f"POST to {where} failed: {type(exc).__name__}: {exc}"
