"""The asyncio API: :class:`AsyncExperimentService` and :class:`AsyncReconciler`.

The stores are blocking (SQLite waits on fsync and on other writers, PostgreSQL
on the network), so every call runs :class:`ExperimentService` in a worker
thread of a bounded pool and the event loop only waits for its answer: the
same operations, the same wire shapes, the same errors, raised from ``await``.
``benchmarks/bench_async.py`` measures the pool against calling the store on
the loop and against more workers.

A call cancelled before a worker takes it never runs; one cancelled while it
runs finishes in its thread (a save is not interrupted half-way) and its
answer is dropped, as a request whose client hung up.

:meth:`AsyncExperimentService.changes` reads the change feed (all accounts',
or one account's), and with ``wait`` waits for a change when nothing is
new: woken at once by a commit of this service, within 0.2 s by another
process's. :meth:`AsyncExperimentService.for_account` is the service of
another account, on the same pool.

:class:`AsyncReconciler` runs a :class:`Reconciler`'s passes as an asyncio
task, each pass in a thread of its own; stopped or cancelled, it ends after
the step in progress, waiting at most ``stop_timeout`` for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import re
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Self, TypeVar

from lifecycle.domain.statuses import OPERATIONS, Operation
from lifecycle.errors import LifecycleError, ValidationError
from lifecycle.service._waiter import FeedWaiter
from lifecycle.service.feed import DEFAULT_PAGE, check_account, check_read
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import ExperimentService, Listener
from lifecycle.stores.base import ChangePage, Store

__all__ = ["AsyncExperimentService", "AsyncReconciler"]

_log = logging.getLogger("lifecycle.reconciler")

_T = TypeVar("_T")

#: worker threads when the caller does not say: the PostgreSQL store's default pool size
DEFAULT_WORKERS = 8


def _operation(
    operation: Operation,
) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    """The boto3-style method of ``operation``: keyword arguments in, the response out."""

    async def method(self: AsyncExperimentService, **kw: Any) -> dict[str, Any]:
        return await self.invoke(operation, kw)

    name = re.sub(r"(?<!^)(?=[A-Z])", "_", operation.value).lower()  # boto3's method name
    method.__name__, method.__qualname__ = name, f"AsyncExperimentService.{name}"
    method.__doc__ = f"{operation.value}: ``await service.{name}(**request)``, boto3's response."
    return method


class AsyncExperimentService:
    """The seven operations of :class:`ExperimentService`, awaited, over a bounded pool.

    ``service`` is an :class:`ExperimentService` (share it with a :class:`Reconciler`)
    or a store to build one over with the defaults. At most ``max_workers`` calls
    run at once; the others wait their turn without holding a thread or the loop.
    Close it (``await service.aclose()``, or ``async with``) to stop its threads;
    that leaves the store open, as whoever opened it closes it.
    """

    OPERATIONS = OPERATIONS

    def __init__(
        self, service: ExperimentService | Store, *, max_workers: int = DEFAULT_WORKERS
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        #: the blocking service every call runs in a worker thread
        self.service = (
            service if isinstance(service, ExperimentService) else ExperimentService(service)
        )
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="lifecycle-async")
        self._closed = False
        self._waiter = FeedWaiter()
        self.service.add_listener(lambda entry: self._waiter.notify())
        #: the one whose pool this is: views of other accounts answer to its state
        self._root = self
        self._accounts: dict[str, AsyncExperimentService] = {self.service.account_id: self}

    def for_account(self, account_id: str) -> AsyncExperimentService:
        """The service of ``account_id`` (:meth:`ExperimentService.for_account`), awaited
        on this one's pool and feed waiter: one per account, made once. Closing any of
        them closes them all (they share the threads). ``ValueError`` for an account id
        that is not 12 digits."""
        view = self._accounts.get(account_id)
        if view is None:
            service = self.service.for_account(account_id)
            view = self._accounts.setdefault(account_id, copy.copy(self))
            view.service = service
        return view

    @property
    def store(self) -> Store:
        return self.service.store

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._root._closed:
            raise RuntimeError("AsyncExperimentService is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    # -- the one entry point ----------------------------------------------------

    async def invoke(
        self, operation: str, payload: object, *, request_id: str | None = None
    ) -> dict[str, Any]:
        """:meth:`ExperimentService.invoke` in a worker: the same response, the same errors."""
        return await self._call(self.service.invoke, operation, payload, request_id=request_id)

    async def explain(self, operation: str, payload: object) -> list[LifecycleError]:
        """:meth:`ExperimentService.explain` in a worker: every rule ``payload`` would break."""
        return await self._call(self.service.explain, operation, payload)

    async def changes(
        self,
        after: int | None = None,
        limit: int = DEFAULT_PAGE,
        account: str | None = None,
        *,
        wait: float = 0.0,
    ) -> ChangePage:
        """:meth:`ExperimentService.changes` in a worker: up to ``limit`` committed
        transitions after position ``after``, in position order (with ``account``, only
        that account's).

        ``wait`` (seconds): when nothing is new, wait up to that long for a change
        and answer as soon as one is committed (by this service: at once; by another
        process: within 0.2 s); an empty page after the wait says none came.
        """
        check_read(after, limit)
        if account is not None:
            check_account(account)
        if type(wait) not in (int, float) or not (math.isfinite(wait) and wait >= 0):
            raise ValidationError(
                f"wait must be a number of seconds, 0 or more, not {wait!r}", field="wait"
            )
        return await self._waiter.page(
            lambda at: self._call(self.service.changes, at, limit, account), after, float(wait)
        )

    def add_listener(self, listener: Listener, *, variants: bool = False) -> None:
        """Call ``listener(entry)`` after each committed transition, the variant machine's
        too with ``variants=True`` (:meth:`ExperimentService.add_listener`), in the worker
        thread that committed it: hand it to the loop with ``loop.call_soon_threadsafe``."""
        self.service.add_listener(listener, variants=variants)

    def arn(self, name: str) -> str:
        return self.service.arn(name)

    # boto3-style methods: same names, same keyword arguments, same dicts back, awaited
    create_inference_experiment = _operation(Operation.CREATE)
    describe_inference_experiment = _operation(Operation.DESCRIBE)
    list_inference_experiments = _operation(Operation.LIST)
    start_inference_experiment = _operation(Operation.START)
    stop_inference_experiment = _operation(Operation.STOP)
    update_inference_experiment = _operation(Operation.UPDATE)
    delete_inference_experiment = _operation(Operation.DELETE)

    # -- closing -----------------------------------------------------------------

    async def aclose(self) -> None:
        """Refuse new calls, answer the waiting reads of the feed, wait for the calls running
        (off the loop), and stop the threads."""
        root = self._root
        root._closed = True
        root._waiter.close()
        await asyncio.get_running_loop().run_in_executor(None, root._pool.shutdown)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncReconciler:
    """A :class:`Reconciler`'s passes as an asyncio task: one pass every ``tick_seconds``.

    Either ``async with AsyncReconciler(reconciler):`` (the passes run while the block
    does), or ``task = asyncio.create_task(AsyncReconciler(reconciler).run())`` and
    ``task.cancel()``. Each pass runs in a thread of its own, so the loop never waits
    on it. A failed pass is logged (once per distinct error) and the next one runs.

    Stopped (:meth:`stop`) it ends after the step in progress: ``run_once`` is told
    to stop. Cancelled (and at the end of the ``async with``) it does the same, but
    waits for that step at most ``stop_timeout`` seconds: past that the step finishes
    in its thread, unwaited, and a warning says so. Stopped is for good: to run again,
    make a new one.
    """

    def __init__(
        self, reconciler: Reconciler, *, tick_seconds: float = 0.1, stop_timeout: float = 10.0
    ) -> None:
        self.reconciler = reconciler
        self.tick_seconds = tick_seconds
        self.stop_timeout = stop_timeout
        #: passes finished (failed ones included)
        self.passes = 0
        self._stop = threading.Event()  # read by the pass, in its thread
        self._wake = asyncio.Event()  # ends the wait between passes
        self._task: asyncio.Task[None] | None = None
        self._running = False

    def stop(self) -> None:
        """Ask the loop to end after the step in progress (call it on the event loop)."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Run passes until stopped or cancelled."""
        if self._running:
            raise RuntimeError("this AsyncReconciler is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        worker = ThreadPoolExecutor(1, thread_name_prefix="lifecycle-reconciler")
        last_error: str | None = None
        try:
            while not self._stop.is_set():
                work = loop.run_in_executor(
                    worker, partial(self.reconciler.run_once, stop=self._stop)
                )
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    await self._finish(work)
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    if error != last_error:  # once per distinct error, not ten times a second
                        _log.exception("reconciler pass failed")
                    last_error = error
                else:
                    if last_error is not None:
                        _log.info("reconciler passes succeed again")
                    last_error = None
                self.passes += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
        finally:
            self._stop.set()
            worker.shutdown(wait=False)

    async def _finish(self, work: asyncio.Future[int]) -> None:
        """Cancelled mid-pass: tell the pass to stop and wait (bounded) for its step."""
        self._stop.set()
        done, _ = await asyncio.wait({work}, timeout=self.stop_timeout)
        if not done:
            _log.warning(
                "reconciler step still running after %.1fs; it finishes in its thread",
                self.stop_timeout,
            )
            work.add_done_callback(_retrieve)
        else:
            _retrieve(work)

    async def __aenter__(self) -> Self:
        if self._running or self._task is not None:
            raise RuntimeError("this AsyncReconciler is already running")
        self._task = asyncio.get_running_loop().create_task(self.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Cancel the task (bounded by ``stop_timeout``) and wait for it."""
        task, self._task = self._task, None
        assert task is not None, "__aexit__ without __aenter__"
        self.stop()
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.result()  # what run() raised, if it raised


def _retrieve(work: asyncio.Future[Any]) -> None:
    """Log how the last pass ended, so its error is neither lost nor reported as never retrieved."""
    error = None if work.cancelled() else work.exception()
    if error is not None:
        _log.error("reconciler pass failed", exc_info=error)
