"""``GET /events``: the change feed over HTTP, one page at a time, long-polled.

``GET /events?after=POS&limit=N&wait=S`` answers 200 with one JSON page::

    {"Events": [<event>, ...], "NextPosition": 1234}

each event in the shape of :func:`lifecycle.service.feed.event`, in
position order; ``NextPosition`` is the ``after`` of the next request (the
last event's position, or the ``after`` given when there was none). The
parameters, each optional, each at most once:

- ``after``: a position (a whole number, 0 or more); the page holds the
  events after it. Left out: from the oldest event kept.
- ``limit``: 1 to 1,000 events (default 100).
- ``wait``: 0 to :data:`MAX_WAIT_SECONDS` seconds (default 0). When nothing
  is new, the answer waits up to that long for an event and comes as soon
  as one is committed: at once for a commit of this process (it wakes the
  waiters), within :data:`POLL_SECONDS` for one of another process or
  replica (the waiters read the store at that interval). An empty page
  after the wait says nothing came.

Refusals, in the AWS JSON 1.1 envelope: 400 ``ValidationException``
naming the parameter (an unknown one, one given twice, a value out of
range); 403 when SigV4 is on and the request is not signed right (the
verifier of ``POST /`` checks ``GET /events`` the same way, its query
included; any listed key may read the feed, whatever its ``allow``, and
reads its own account's events only); 400
``ThrottlingException`` over the server's ``--rate-limit``; 405 for a
method other than GET; 410
``TrimmedDataAccessException`` when the retention removed events after
``after``, with ``TrimmedThrough`` (read after it to go on from the oldest
kept) and ``OldestPosition`` in the body; 503 ``ServiceUnavailable`` with
``Retry-After`` when the store is down.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Protocol, TypeVar
from urllib.parse import parse_qsl

from lifecycle.errors import (
    LifecycleError,
    MethodNotAllowedError,
    ProtocolError,
    StoreUnavailableError,
    TrimmedChangesError,
    ValidationError,
)
from lifecycle.http.access import Principal
from lifecycle.http.protocol import (
    Authenticator,
    WireResponse,
    error_response,
    json_response,
    unavailable_response,
)
from lifecycle.service._waiter import POLL_SECONDS, FeedWaiter
from lifecycle.service.feed import DEFAULT_PAGE, MAX_PAGE, MAX_POSITION, event
from lifecycle.stores.base import ChangePage

__all__ = ["MAX_WAIT_SECONDS", "OPERATION", "POLL_SECONDS", "EventsEndpoint", "parse_query"]

_log = logging.getLogger("lifecycle.server")

#: the longest a request may wait for an event
MAX_WAIT_SECONDS = 20.0
#: the operation the request's log line and metrics name
OPERATION = "Events"
_PARAMETERS = ("after", "limit", "wait")
_WHOLE = re.compile(r"[0-9]{1,20}")
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")

T = TypeVar("T")
#: runs a blocking call off the event loop (the app's read pool)
Runner = Callable[[Callable[[], T]], Awaitable[T]]


class Feed(Protocol):
    """``service.changes``: the changes after a position, at most so many, of one account
    (None: of every account)."""

    def __call__(
        self, after: int | None, limit: int, account: str | None = None, /
    ) -> ChangePage: ...


#: the changes after a position, at most so many, that one reader reads
Reader = Callable[[int | None, int], ChangePage]
#: refuses a request over its rate limit (``ThrottlingError``): given the signer (None
#: unsigned) and the client's address
Throttle = Callable[[Principal | None, str | None], None]


def parse_query(query: str) -> tuple[int | None, int, float]:
    """``after``, ``limit`` and ``wait`` of the query string; ``ValidationError`` naming the
    parameter that is unknown, repeated or out of range."""
    given: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _PARAMETERS:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise ValidationError(
                f"unknown query parameter {shown!r}; GET /events takes after, limit and wait",
                field=shown,
            )
        if key in given:
            raise ValidationError(f"query parameter {key} is given more than once", field=key)
        given[key] = value
    after = None
    if "after" in given:
        text = given["after"]
        if not _WHOLE.fullmatch(text) or int(text) > MAX_POSITION:
            raise ValidationError(
                f"after must be a position, a whole number from 0 to {MAX_POSITION}, not {text[:40]!r}",
                field="after",
            )
        after = int(text)
    limit = DEFAULT_PAGE
    if "limit" in given:
        text = given["limit"]
        if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
            raise ValidationError(
                f"limit must be a whole number from 1 to {MAX_PAGE}, not {text[:40]!r}",
                field="limit",
            )
        limit = int(text)
    wait = 0.0
    if "wait" in given:
        text = given["wait"]
        seconds = float(text) if _SECONDS.fullmatch(text) else math.nan
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            raise ValidationError(
                f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}, not {text[:40]!r}",
                field="wait",
            )
        wait = seconds
    return after, limit, wait


class EventsEndpoint:
    """Answers ``GET /events`` over ``read`` (``service.changes``), run by ``run`` off the loop.

    Unsigned (no ``auth``), a request reads every account's events; signed, its
    key's account's only (``account``, the server's own, for a key that names
    none).

    :meth:`notify` (thread-safe) wakes the waiting requests: the app calls it
    after each commit of this process. :meth:`close` answers them at once
    (the server is shutting down); :meth:`reopen` undoes it. ``throttle``, when
    given, is asked once the signature verifies.
    """

    def __init__(
        self,
        read: Feed,
        run: Runner[ChangePage],
        *,
        auth: Authenticator | None = None,
        throttle: Throttle | None = None,
        poll_seconds: float = POLL_SECONDS,
        account: str | None = None,
    ) -> None:
        self._read = read
        self._account = account
        self._run = run
        self.auth = auth
        self.throttle = throttle
        self._waiter = FeedWaiter(poll_seconds)

    def notify(self) -> None:
        """A change was committed in this process: wake the waiting requests (any thread)."""
        self._waiter.notify()

    def close(self) -> None:
        """Answer every waiting request now, and later ones without waiting."""
        self._waiter.close()

    def reopen(self) -> None:
        """Wait again after :meth:`close` (the app started again)."""
        self._waiter.reopen()

    async def answer(
        self,
        method: str,
        query: str,
        headers: Mapping[str, str],
        root_path: str = "",
        client: str | None = None,
    ) -> WireResponse:
        """The answer to one request on ``/events`` (``root_path + "/events"`` under the
        prefix a host mounted the app under, as the client signed it) from the address
        ``client``. Never raises."""
        key: str | None = None
        try:
            if method != "GET":
                raise MethodNotAllowedError(
                    f"method {method} is not allowed on {root_path}/events; use GET {root_path}/events"
                )
            principal = None
            if self.auth is not None:
                principal = self.auth.verify(
                    method=method,
                    path=f"{root_path}/events",
                    query=query,
                    headers=headers,
                    body=b"",
                )
                key = principal.access_key
            if self.throttle is not None:
                self.throttle(principal, client)
            after, limit, wait = parse_query(query)
            page = await self._page(self._reader(principal), after, limit, wait)
        except TrimmedChangesError as exc:
            answer = error_response(
                exc.code,
                exc.message,
                exc.http_status,
                operation=OPERATION,
                members={"TrimmedThrough": exc.trimmed_through, "OldestPosition": exc.oldest},
            )
        except StoreUnavailableError as exc:
            answer = unavailable_response(exc, operation=OPERATION)
        except (ProtocolError, ValidationError) as exc:
            answer = error_response(exc.code, exc.message, exc.http_status, operation=OPERATION)
        except Exception as exc:
            detail = exc.message if isinstance(exc, LifecycleError) else repr(exc)
            _log.error("GET /events failed: %s", detail, exc_info=exc)
            answer = error_response(
                "InternalFailure", "an internal error occurred", 500, operation=OPERATION
            )
        else:
            answer = json_response(
                200,
                {"Events": [event(c) for c in page.changes], "NextPosition": page.next_position},
                OPERATION,
                "OK",
            )
        answer.access_key = key
        return answer

    def _reader(self, principal: Principal | None) -> Reader:
        """What ``principal`` reads the feed through: unsigned (None), every account's
        changes; signed, those of its key's account (``principal.account_id``, or the
        server's own when the key names none)."""
        if principal is None:
            return self._read
        account = principal.account_id or self._account
        return lambda after, limit: self._read(after, limit, account)

    async def _page(self, read: Reader, after: int | None, limit: int, wait: float) -> ChangePage:
        """The page after ``after``, waited for up to ``wait`` seconds while it is empty."""
        return await self._waiter.page(lambda at: self._run(partial(read, at, limit)), after, wait)
