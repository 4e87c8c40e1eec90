"""The server's feed workers: the webhook subscriptions' threads, and the retention's trims.

:class:`FeedWorkers` starts each :class:`~lifecycle.service.webhooks.WebhookSubscription`
in a thread of its own and, when the retention is bounded, a thread that
trims the feed every ``trim_seconds`` (at start, then on that interval);
:meth:`FeedWorkers.notify` tells the subscriptions a change was committed;
:meth:`FeedWorkers.stop` ends them all within a bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from lifecycle.errors import LifecycleError
from lifecycle.service._logfields import log
from lifecycle.service.feed import Retention
from lifecycle.service.service import ExperimentService
from lifecycle.service.webhooks import WebhookSubscription

__all__ = ["TRIM_SECONDS", "FeedWorkers"]

_log = logging.getLogger("lifecycle.server")

#: how often the server trims the feed to its retention
TRIM_SECONDS = 60.0


class FeedWorkers:
    """The subscriptions and the trimming of one server (see the module docstring)."""

    def __init__(
        self,
        service: ExperimentService,
        subscriptions: Sequence[WebhookSubscription] = (),
        retention: Retention | None = None,
        *,
        trim_seconds: float = TRIM_SECONDS,
    ) -> None:
        self.service = service
        self.subscriptions = tuple(subscriptions)
        self.retention = retention
        self.trim_seconds = trim_seconds
        self._stopping = threading.Event()
        self._trimmer: threading.Thread | None = None
        self.trimmed = 0

    def start(self) -> None:
        """Start every worker (again, after a :meth:`stop`)."""
        self._stopping.clear()
        self._trimmer = (
            None if self._trimmer is None or not self._trimmer.is_alive() else self._trimmer
        )
        for subscription in self.subscriptions:
            subscription.start()
        if self.retention is not None and self.retention.bounded and self._trimmer is None:
            self._trimmer = threading.Thread(
                target=self._trim_forever, name="lifecycle-feed-trim", daemon=True
            )
            self._trimmer.start()

    def notify(self) -> None:
        """A change was committed in this process (any thread)."""
        for subscription in self.subscriptions:
            subscription.wake()

    def request_stop(self) -> None:
        """Ask every worker to end after what it is doing (any thread; returns at once)."""
        self._stopping.set()
        for subscription in self.subscriptions:
            subscription.stop()

    def stop(self, timeout: float) -> None:
        """Stop every worker, each after what it is doing, waiting at most ``timeout`` in all."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for subscription in self.subscriptions:
            if not subscription.join(max(0.0, deadline - time.monotonic())):
                log(
                    _log,
                    logging.WARNING,
                    "webhook subscription still delivering at shutdown; stopping without it "
                    "(its event is delivered again on the next start)",
                    {"subscription": subscription.id},
                )
            subscription.close()
        if self._trimmer is not None:
            self._trimmer.join(max(0.0, deadline - time.monotonic()))

    def trim(self) -> int:
        """Trim the feed to the retention once; how many changes went."""
        if self.retention is None:
            return 0
        removed = self.service.trim_changes(self.retention)
        self.trimmed += removed
        if removed:
            log(
                _log,
                logging.INFO,
                "change feed trimmed to its retention",
                {
                    "removed": removed,
                    "max_age_s": self.retention.max_age,
                    "max_count": self.retention.max_count,
                },
            )
        return removed

    def _trim_forever(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                self.trim()
            except Exception as exc:  # an outage, or a bug: the server goes on, and says so
                if not failing:
                    detail = exc.message if isinstance(exc, LifecycleError) else repr(exc)
                    _log.warning("change feed trim failed; it is tried again: %s", detail)
                failing = True
            else:
                failing = False
            self._stopping.wait(self.trim_seconds)
