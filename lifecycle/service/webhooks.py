"""Webhook subscriptions: every change of the feed POSTed, in order, to a URL that wants it.

A :class:`WebhookSubscription` delivers the change feed to one URL, one
event at a time in position order (so each experiment's events arrive in
its history's order), over the signed sender the webhook actuator uses
(:class:`~lifecycle.actuators._http.SignedSender`):

- the body is :func:`~lifecycle.service.feed.event_bytes` (EventBridge's
  shape), with ``Content-Type: application/json``, ``X-Lifecycle-Event-Id``
  (the event's stable id) and, with a secret, ``X-Lifecycle-Signature:
  sha256=<hex HMAC-SHA256 of the body>``;
- a 2xx answer delivers the event and moves the cursor past it; anything
  else (another status, no answer) is a failed delivery: one log line,
  counted, and the same event again after a backoff (``retry_seconds``
  doubling to ``max_retry_seconds``, with jitter) until it is taken. Later
  events wait behind it;
- the cursor (the position delivered up to) is kept in the store under
  the subscription's id (:func:`subscription_id`, from the URL), written
  after each page of events and before each wait, so a restart, on this
  replica or another, resumes where delivery stopped. Delivery is at least
  once: what was delivered after the last write of the cursor is delivered
  again after a crash;
- a new subscription starts at the oldest change kept; one that fell
  behind the retention logs what it missed and goes on from the oldest kept.

Replicas that each run the same subscription each deliver (a receiver sees
repeats, never a gap); the cursor in the store only moves forward.
"""

from __future__ import annotations

import hashlib
import logging
import random
import ssl
import threading
import time
from typing import Protocol
from urllib.parse import urlsplit

from lifecycle.actuators._http import SendError, SignedSender
from lifecycle.errors import StoreError, TrimmedChangesError
from lifecycle.service._logfields import log
from lifecycle.service.feed import DEFAULT_PAGE, event_bytes, event_id
from lifecycle.service.service import ExperimentService
from lifecycle.stores.base import Change

__all__ = ["EVENT_ID_HEADER", "DeliveryObserver", "WebhookSubscription", "subscription_id"]

_log = logging.getLogger("lifecycle.webhooks")

#: the header that carries the event's stable id
EVENT_ID_HEADER = "X-Lifecycle-Event-Id"


def subscription_id(url: str) -> str:
    """The subscription's id: the first 12 hex digits of the URL's SHA-256 (its cursor's key in
    the store, and its metrics label), the same on every start and every replica."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


class DeliveryObserver(Protocol):
    """What hears of deliveries (the server's metrics implement it)."""

    def delivered(self, subscription: str) -> None:
        """An event was taken (2xx) by ``subscription``'s receiver."""

    def delivery_failed(self, subscription: str, status: str) -> None:
        """A delivery failed: ``status`` is the HTTP status, ``no_answer`` or ``trimmed``."""


class WebhookSubscription:
    """Delivers the feed of ``service``'s store to ``url`` (see the module docstring).

    :meth:`run` delivers until :meth:`stop`; :meth:`start` runs it in a daemon
    thread. :meth:`wake` says a change was committed (a read at once instead
    of after ``poll_seconds``). ``ValueError`` for a URL the sender refuses.
    """

    def __init__(
        self,
        service: ExperimentService,
        url: str,
        *,
        secret: bytes | None = None,
        timeout: float = 10.0,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        jitter: float = 0.2,
        poll_seconds: float = 1.0,
        batch: int = DEFAULT_PAGE,
        observer: DeliveryObserver | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self.sender = SignedSender(url, secret=secret, timeout=timeout, context=context)
        self.id = subscription_id(url)
        parts = urlsplit(url)
        #: where events go, for logs: scheme, host and port only (a path may hold a token)
        self.receiver = f"{parts.scheme}://{parts.netloc}"
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.jitter = jitter
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.observer = observer
        self._random = random.Random()
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor: int | None = None
        self._loaded = False
        self._saved: int | None = None
        self._failures = 0
        self._store_down = False
        #: the time of the change being delivered (None: caught up), for the lag
        self._pending_since: float | None = None

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread of its own (again, after a :meth:`stop`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"lifecycle-webhook-{self.id}", daemon=True
        )
        self._thread.start()

    def run(self) -> None:
        """Deliver until :meth:`stop`; the cursor is saved on the way out."""
        self._log(logging.INFO, "webhook subscription started")
        while not self._stopping.is_set():
            wait, wakeable = self.run_once()
            if wait > 0:
                (self._woken if wakeable else self._stopping).wait(wait)
        self._save_cursor()

    def stop(self) -> None:
        """Ask :meth:`run` to end after the delivery in flight (thread-safe)."""
        self._stopping.set()
        self._woken.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the thread :meth:`start` began; whether it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wake(self) -> None:
        """A change was committed: read the feed now (thread-safe)."""
        self._woken.set()

    def close(self) -> None:
        self.sender.close()

    def lag_seconds(self) -> float:
        """How long ago the change being delivered was committed; 0 when caught up."""
        pending = self._pending_since
        return 0.0 if pending is None else max(0.0, time.time() - pending)

    # -- one page -----------------------------------------------------------------------

    def run_once(self) -> tuple[float, bool]:
        """Read one page and deliver it; how long to wait before the next, and whether a
        commit (:meth:`wake`) may cut the wait short (when caught up, not in a backoff)."""
        self._woken.clear()  # a commit from here on is read after this page
        try:
            if not self._loaded:
                self._cursor = self.service.store.feed_cursor(self.id)
                self._saved, self._loaded = self._cursor, True
            page = self.service.changes(self._cursor, self.batch)
        except TrimmedChangesError as err:
            self._behind_retention(err)
            return 0.0, False
        except StoreError as err:
            return self._store_failed(err), False
        if self._store_down:
            self._store_down, self._failures = False, 0
            self._log(logging.INFO, "webhook subscription reads the feed again")
        if not page.changes:
            self._pending_since = None
            self._save_cursor()
            return self.poll_seconds, True
        for change in page.changes:
            if self._stopping.is_set():
                break
            self._pending_since = change.time
            if not self._deliver(change):
                self._save_cursor()
                return self._backoff(), False
            self._cursor = change.position
        self._save_cursor()
        return 0.0, False

    def _deliver(self, change: Change) -> bool:
        """POST one event; True when the receiver took it (2xx)."""
        try:
            reply = self.sender.post(event_bytes(change), {EVENT_ID_HEADER: event_id(change)})
        except SendError as exc:
            self._failed(change, "no_answer", str(exc))
            return False
        if 200 <= reply.status < 300:
            self._failures = 0
            if self.observer is not None:
                self.observer.delivered(self.id)
            return True
        text = reply.text()
        error = f"answered {reply.status} {reply.reason}".rstrip() + (f": {text}" if text else "")
        self._failed(change, str(reply.status), error)
        return False

    def _failed(self, change: Change, status: str, error: str) -> None:
        """One log line and one count per failed delivery."""
        self._failures += 1
        if self.observer is not None:
            self.observer.delivery_failed(self.id, status)
        self._log(
            logging.WARNING,
            "webhook delivery failed; it will be retried",
            event_id=event_id(change),
            position=change.position,
            experiment=change.name,
            status=status,
            error=error,
            attempt=self._failures,
            retry_in_s=round(self._delay(), 3),
        )

    def _backoff(self) -> float:
        return self._delay() * (1 + self._random.uniform(-self.jitter, self.jitter))

    def _delay(self) -> float:
        """The wait after the latest failure, before jitter: doubling, capped."""
        exponent = max(0, self._failures - 1)
        return min(self.retry_seconds * 2.0 ** min(exponent, 32), self.max_retry_seconds)

    def _behind_retention(self, err: TrimmedChangesError) -> None:
        if self.observer is not None:
            self.observer.delivery_failed(self.id, "trimmed")
        self._log(
            logging.ERROR,
            "webhook subscription fell behind the feed's retention; it goes on from the "
            "oldest change kept, and the changes between were not delivered",
            after=err.after,
            trimmed_through=err.trimmed_through,
            oldest=err.oldest,
        )
        self._cursor = err.trimmed_through
        self._save_cursor()

    def _store_failed(self, err: StoreError) -> float:
        self._failures += 1
        if not self._store_down:  # once per outage, not once per retry
            self._store_down = True
            self._log(
                logging.WARNING,
                "webhook subscription cannot read the feed; it will retry",
                error=err.message,
            )
        return self._backoff()

    def _save_cursor(self) -> None:
        """Write the cursor to the store when it moved; a failure is retried at the next write."""
        cursor = self._cursor
        if cursor is None or cursor == self._saved:
            return
        try:
            self.service.store.save_feed_cursor(self.id, cursor)
        except StoreError as err:
            self._log(
                logging.WARNING,
                "webhook subscription could not save its cursor; it will try again",
                position=cursor,
                error=err.message,
            )
            return
        self._saved = cursor

    def _log(self, level: int, event: str, **fields: object) -> None:
        """One line: ``event``, the subscription and its receiver, then ``fields``."""
        log(_log, level, event, {"subscription": self.id, "receiver": self.receiver, **fields})
