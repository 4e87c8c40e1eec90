"""Waiting for the change feed on an event loop: a read again on each commit, and on a poll.

A :class:`FeedWaiter` serves the long polls of ``GET /events`` and of
:meth:`AsyncExperimentService.changes`: :meth:`FeedWaiter.page` reads a page
and, while it is empty, waits for :meth:`FeedWaiter.notify` (a commit of
this process, from any thread) or for ``poll_seconds`` (a commit of another
process or replica, which nobody here hears of), then reads again, until
``wait`` has passed. :meth:`FeedWaiter.close` answers every wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from lifecycle.stores.base import ChangePage

__all__ = ["POLL_SECONDS", "FeedWaiter"]

#: how often a waiting read reads the store again for another process's commits
POLL_SECONDS = 0.2


class FeedWaiter:
    """The long poll of one event loop's readers of the feed (see the module docstring)."""

    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False

    def notify(self) -> None:
        """A change was committed in this process: wake the waiting reads (any thread)."""
        loop = self._loop
        if loop is not None and self._changed is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(self._wake)

    def close(self) -> None:
        """Answer every waiting read now, and later ones without waiting."""
        self._closing = True
        self.notify()

    def reopen(self) -> None:
        """Wait again after :meth:`close`."""
        self._closing = False

    def _wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def page(
        self, read: Callable[[int | None], Awaitable[ChangePage]], after: int | None, wait: float
    ) -> ChangePage:
        """``await read(after)``; while its page is empty, read again on each :meth:`notify`
        and every ``poll_seconds``, until a page is not or ``wait`` seconds have passed."""
        self._loop = loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if self._changed is None:  # taken before the read, so no commit after it is missed
                self._changed = asyncio.Event()
            changed = self._changed
            page = await read(after)
            remaining = deadline - loop.time()
            if page.changes or remaining <= 0 or self._closing:
                return page
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(self.poll_seconds, remaining))
            after = page.next_position
