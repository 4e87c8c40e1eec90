"""The only socket code: an ASGI app over one ``ExperimentService``, run by uvicorn.

- ``POST /``: AWS JSON 1.1 (``lifecycle.http.protocol.handle``). The body is
  read in chunks; past 1 MiB the rest is discarded unread into memory and
  the answer is 413 ``RequestEntityTooLarge``.
- With SigV4 (``auth``) or a rate limit (``rate_limit``) on, a request is
  admitted on the event loop before it goes to a worker
  (``protocol.admit``: the signature, the operation the key may call), then
  given the service of its key's account (:meth:`LifecycleApp._service_for`)
  and a token of its client's bucket (:mod:`lifecycle.http.throttle`: 400
  ``ThrottlingException`` when there is none, counted in the metrics and
  logged once per :data:`THROTTLE_LOG_SECONDS`); only then does it reach a
  store. With neither on, a request goes straight to ``protocol.handle``.
- Nothing blocks the event loop: a store that waits on a disk or a network
  (``store.blocking``: SQLite, PostgreSQL) is called in bounded worker
  pools, one for reads (Describe, List) and one for writes, so a read never
  queues behind a writer waiting for a lock. A store that can read without
  waiting (``store.without_waiting()``: SQLite in WAL mode, whose reads wait
  for no writer) has Describe and List read on the loop, with no hand-off
  to a thread and back; the rare read that would wait (``WouldWait``) is
  made again in the read pool. A request that waited in the
  pool's queue longer than ``lock_timeout`` is answered 503 without
  touching the store; a store outage is 503 ``ServiceUnavailable`` with
  ``Retry-After``, and nothing is written.
- ``GET /health``: liveness, 200 ``{"status": "ok"}`` while the process
  serves, without touching the store.
- ``GET /ready``: readiness, 200 ``{"status": "ready"}`` when the store can
  take a write (``store.check_writable()``, bounded), else 503 with
  ``Retry-After`` and the reason, so an orchestrator stops sending traffic.
- ``GET /metrics``: Prometheus text format (:mod:`lifecycle.http.metrics`).
- ``GET /events?after=POS&limit=N&wait=S``: the change feed, long-polled
  (:mod:`lifecycle.http.events`); each commit of this process wakes the
  waiting requests. The webhook subscriptions and the feed's retention run
  in threads of their own (:mod:`lifecycle.http.outbox`), started and
  stopped with the reconciler.
- The reconciler runs in the same process: on ASGI lifespan startup a
  background task calls ``reconciler.run_once()`` in a daemon thread every
  ``tick_seconds`` (0.1 s); on shutdown it stops between two steps, within
  ``shutdown_timeout``, and gives back its claims.
- Logs (:mod:`lifecycle.http.logs`), on ``lifecycle.server``: one line per
  request (request id, client, operation, experiment, outcome, rule, HTTP
  status, milliseconds, access key when signed) and one per committed
  transition of either machine (an experiment's, or a variant's, which names the
  variant); the reconciler logs one per failed step attempt.

Mounted in a host app (:meth:`LifecycleApp.mount_on`, or ``app.mount`` in
FastAPI or Starlette) it answers under the mount's prefix, ASGI's
``root_path``: ``POST /sagemaker`` and ``/sagemaker/``, ``GET
/sagemaker/health``, whether the host leaves the prefix in ``scope["path"]``
(Starlette 0.33 and later) or strips it (earlier); SigV4 checks the path the
client signed, prefix and all. A host does not pass lifespan events to a
mounted app, so its own lifespan enters :meth:`LifecycleApp.lifespan` to run
the reconciler (``docs/embedding.md``). The app adds no log handler of its
own: the lines go wherever the host's logging sends ``lifecycle.*``
(``lifecycle serve`` configures that itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.domain.statuses import Operation
from lifecycle.errors import (
    AccessDeniedError,
    ProtocolError,
    StoreUnavailableError,
    ThrottlingError,
    UnknownPathError,
)
from lifecycle.http.access import Principal
from lifecycle.http.events import OPERATION as EVENTS_OPERATION
from lifecycle.http.events import EventsEndpoint
from lifecycle.http.logs import OncePerInterval
from lifecycle.http.protocol import (
    MAX_BODY_BYTES,
    TARGET_PREFIX,
    Authenticator,
    Service,
    WireResponse,
    admit,
    dispatch,
    error_response,
    handle,
    json_response,
    refusal,
    unavailable_response,
)
from lifecycle.http.throttle import RateLimit, RateLimiter
from lifecycle.service._logfields import log
from lifecycle.stores.base import WouldWait

if TYPE_CHECKING:
    from lifecycle.service.feed import Retention
    from lifecycle.service.webhooks import WebhookSubscription

__all__ = ["THROTTLE_LOG_SECONDS", "LifecycleApp", "Reconciling", "ServedService"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_log = logging.getLogger("lifecycle.server")

#: a body declared (Content-Length) up to this size is drained after a 413 so
#: the client reads the answer; a bigger one is refused without reading it
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES
#: operations that only read: they run in a pool of their own
_READS = frozenset({Operation.DESCRIBE.value, Operation.LIST.value})
#: a storm of throttled requests is one log line per this many seconds, with a count
THROTTLE_LOG_SECONDS = 10.0
_T = TypeVar("_T")


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class _Probed(Protocol):
    def check_writable(self) -> None: ...


class ServedService(Service, Protocol):
    """What the server needs of ``ExperimentService``: ``invoke`` and ``store.check_writable``."""

    @property
    def store(self) -> _Probed: ...


class Reconciling(Protocol):
    """What the server needs of ``Reconciler``: ``run_once()``. When it also has ``stop()``
    (end a pass between two steps) and ``release()`` (give back its claims), shutdown
    uses them."""

    def run_once(self) -> int: ...


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _DaemonWorker:
    """One daemon thread that runs the calls handed to it, in turn: a step stuck in an
    actuator call cannot keep the process from exiting (a pool's threads are joined at
    exit), and no pass waits on the event loop's thread for a new thread to start."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None
        ] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        """``fn()`` on the worker's thread; its result (or error) on the caller's loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._calls.put((loop, future, fn))
        return future

    def close(self) -> None:
        """End the thread once the call it is in (if any) returns."""
        self._calls.put(None)

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, future, fn = call
            try:
                outcome: tuple[Any, BaseException | None] = (fn(), None)
            except BaseException as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, future, *outcome)


def _split_path(scope: Scope) -> tuple[str, str]:
    """``(root_path, path under it)``: the prefix a host mounted the app under, and the
    path the app routes on (empty for the prefix itself). ASGI puts the prefix in
    ``path`` too, but older Starlette strips it; a path that does not start with the
    prefix is taken as already under it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return root, path


class _AtPrefix:
    """The app answering at exactly its prefix, as a host's route: the route sets no
    ``root_path`` of its own, so this adds the prefix to it."""

    def __init__(self, app: LifecycleApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "").rstrip("/") + self.prefix
        await self.app({**scope, "root_path": root}, receive, send)


def _log_value(value: str | None) -> str:
    if value is None:
        return "-"
    if value.isprintable() and " " not in value and value:
        return value
    return repr(value)


class LifecycleApp:
    """ASGI 3 application: the wire protocol, health, readiness, metrics, the reconciler loop."""

    def __init__(
        self,
        service: ServedService,
        reconciler: Reconciling | None = None,
        *,
        auth: Authenticator | None = None,
        tick_seconds: float = 0.1,
        offload: bool | None = None,
        workers: int = 8,
        lock_timeout: float = 5.0,
        shutdown_timeout: float = 10.0,
        metrics: Any = True,
        webhooks: Sequence[WebhookSubscription] = (),
        retention: Retention | None = None,
        rate_limit: RateLimit | None = None,
        loop_reads: bool | None = None,
    ) -> None:
        """``offload`` runs each request in the worker pools instead of on the event loop;
        None (the default) decides by ``service.store.blocking`` (True unless the store says
        it never waits). ``workers`` threads serve reads and as many serve writes.
        ``lock_timeout`` bounds a request's wait for a worker, and the readiness probe.
        ``metrics``: True for a :class:`~lifecycle.http.metrics.Metrics` of the app's own,
        a ``Metrics`` to share, or None for no ``/metrics``. ``webhooks`` are the
        subscriptions to deliver the change feed to, ``retention`` what the feed keeps
        (None: the app trims nothing). ``rate_limit`` throttles each client (its access
        key with ``auth``, else its address) past that many requests a second
        (:mod:`lifecycle.http.throttle`). ``loop_reads``: whether Describe and List are
        read on the event loop when the store can read without waiting (None, the
        default: when it can; False: always in the read pool)."""
        self.service = service
        self.reconciler = reconciler
        self.auth = auth
        self.limiter = None if rate_limit is None else RateLimiter(rate_limit)
        #: whether a request passes the checks between admit and dispatch (off: handle())
        self._gated = auth is not None or self.limiter is not None
        self._throttle_lines = OncePerInterval(THROTTLE_LOG_SECONDS)
        self._account_id: str | None = getattr(service, "account_id", None)
        self._for_account: Callable[[str], ServedService] | None = getattr(
            service, "for_account", None
        )
        self._accounts: dict[str, ServedService] = {}
        self.tick_seconds = tick_seconds
        store = service.store
        self.offload = getattr(store, "blocking", True) if offload is None else offload
        #: the store's ``without_waiting``, when reads are made on the loop with it
        self._loop_reads: Callable[[], AbstractContextManager[None]] | None = None
        if self.offload and loop_reads is not False:
            self._loop_reads = getattr(store, "without_waiting", None)
        self.workers = workers
        self.lock_timeout = lock_timeout
        self.shutdown_timeout = shutdown_timeout
        self._stopping: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()
        self._probe: asyncio.Future[None] | None = None
        self._stop_deadline: float | None = None
        self.reconciler_passes = 0
        self.metrics = self._make_metrics(metrics)
        self.events: EventsEndpoint | None = None
        changes = getattr(service, "changes", None)
        if changes is not None:
            throttle = None
            if self.limiter is not None:
                throttle = partial(self._throttle, operation=EVENTS_OPERATION)
            self.events = EventsEndpoint(
                changes, self._run_read, auth=auth, throttle=throttle, account=self._account_id
            )
        self.feed = self._feed_workers(webhooks, retention)
        add_listener = getattr(service, "add_listener", None)
        if add_listener is not None:
            add_listener(self._committed, variants=True)
        if self.metrics is not None and getattr(reconciler, "observer", False) is None:
            reconciler.observer = self.metrics  # type: ignore[union-attr]

    def _feed_workers(
        self, webhooks: Sequence[WebhookSubscription], retention: Retention | None
    ) -> Any:
        """The webhook subscriptions' and the retention's threads, when there are any."""
        if not webhooks and (retention is None or not retention.bounded):
            return None
        from lifecycle.http.outbox import FeedWorkers

        for subscription in webhooks:
            if self.metrics is not None and subscription.observer is None:
                subscription.observer = self.metrics
                self.metrics.watch_lag(subscription.id, subscription.lag_seconds)
        return FeedWorkers(self.service, webhooks, retention)  # type: ignore[arg-type]

    def _make_metrics(self, metrics: Any) -> Any:
        if metrics is not True:
            return metrics
        try:
            from lifecycle.http.connections import open_connections
            from lifecycle.http.metrics import Metrics
        except ImportError:  # pragma: no cover - prometheus_client comes with the server extra
            return None
        count = getattr(self.service.store, "count_by_status", None)
        return Metrics(count_by_status=count, open_connections=open_connections)

    def _committed(self, entry: HistoryEntry) -> None:
        """The service's listener: a log line and a count per committed transition of
        either machine (each a change of the feed), and a wake-up for the feed's readers."""
        if self.events is not None:
            self.events.notify()
        if self.feed is not None:
            self.feed.notify()
        if self.metrics is not None:
            self.metrics.transition(entry)
        log(
            _log,
            logging.INFO,
            "transition",
            {
                "experiment": entry.name,
                "machine": entry.machine,
                "variant": entry.variant,
                "event": entry.event,
                "from": None if entry.from_status is None else str(entry.from_status),
                "to": str(entry.to_status),
                "reason": entry.reason,
                "request_id": entry.request_id,
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # -- lifespan: the reconciler loop ------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start_reconciler()
                if self.feed is not None:
                    self._stop_deadline = None
                    self.feed.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop_reconciler()
                await self.stop_feed()
                self.close_pools()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def mount_on(self, host: Any, prefix: str) -> None:
        """Mount this app on a Starlette or FastAPI app ``host`` under ``prefix``.

        ``host.mount(prefix, self)`` answers ``prefix/`` and everything below it;
        Starlette answers the bare ``prefix`` (where boto3 posts when its
        ``endpoint_url`` is ``.../prefix``) with a redirect that boto3 does not
        follow, so this adds a route for it too. Then enter :meth:`lifespan` in
        the host's lifespan.
        """
        prefix = "/" + prefix.strip("/")
        host.mount(prefix, self)
        host.add_route(prefix, _AtPrefix(self, prefix), include_in_schema=False)

    @contextlib.asynccontextmanager
    async def lifespan(self, host: object = None) -> AsyncIterator[None]:
        """The reconciler loop (and the webhook subscriptions and the feed's retention) for
        as long as the ``async with`` lasts: what a host's own
        lifespan enters when it mounts this app (a host does not forward lifespan events
        to mounted apps)::

            @contextlib.asynccontextmanager
            async def lifespan(app: FastAPI):
                async with lifecycle_app.lifespan():
                    yield

        ``host`` is ignored, so ``FastAPI(lifespan=lifecycle_app.lifespan)`` works too.
        A loop already running (started by ASGI lifespan events) is left to whoever
        started it.
        """
        started = self._loop_task is None
        self.start_reconciler()
        if started and self.feed is not None:
            self._stop_deadline = None
            self.feed.start()
        try:
            yield
        finally:
            if started:
                await self.stop_reconciler()
                await self.stop_feed()

    def start_reconciler(self) -> None:
        """Start the background reconciler loop (on the running event loop)."""
        if self.reconciler is None or self._loop_task is not None:
            return
        resume = getattr(self.reconciler, "resume", None)
        if resume is not None:  # a loop started again after a stop
            resume()
        self._stop_deadline = None
        if self.events is not None:
            self.events.reopen()
        self._stopping = asyncio.Event()
        self._loop_task = asyncio.get_running_loop().create_task(
            self._reconcile_forever(self.reconciler, self._stopping)
        )
        _log.info("reconciler started (a pass every %.2fs)", self.tick_seconds)

    def request_stop(self) -> None:
        """Ask the reconciler to end its pass between two steps, and the requests waiting on
        ``/events`` to answer now (safe from a signal handler); the first call starts the
        shutdown's one bound, ``shutdown_timeout``."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.shutdown_timeout
        if self.events is not None:
            self.events.close()
        if self.feed is not None:
            self.feed.request_stop()
        stop = getattr(self.reconciler, "stop", None)
        if stop is not None:
            stop()

    async def stop_feed(self) -> None:
        """Stop the webhook subscriptions and the trimming, within what is left of the
        shutdown's bound; a subscription saves its cursor on the way out."""
        self.request_stop()
        if self.feed is None:
            return
        assert self._stop_deadline is not None
        left = max(0.1, self._stop_deadline - time.monotonic())
        await asyncio.to_thread(self.feed.stop, left)

    async def stop_reconciler(self) -> None:
        """Stop the loop between two steps, waiting at most ``shutdown_timeout``; give back
        the reconciler's claims so another replica (or the next start) takes them at once."""
        if self._loop_task is None or self._stopping is None:
            return
        self.request_stop()
        self._stopping.set()
        assert self._stop_deadline is not None
        # what is left of the bound that began with the signal (requests drained meanwhile)
        left = max(0.1, self._stop_deadline - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.shield(self._loop_task), left)
        except TimeoutError:
            _log.warning(
                "reconciler: a step was still running after %.0fs; stopping without it (its "
                "experiment stays claimed until the lease ends, then it is retried)",
                self.shutdown_timeout,
            )
        else:
            release = getattr(self.reconciler, "release", None)
            if release is not None:
                left = max(0.5, self._stop_deadline - time.monotonic())
                try:
                    await asyncio.wait_for(asyncio.to_thread(release), min(left, self.lock_timeout))
                except Exception as exc:
                    _log.warning("reconciler: could not give back its claims: %s", exc)
        self._loop_task = None
        _log.info("reconciler stopped after %d passes", self.reconciler_passes)

    async def _reconcile_forever(self, reconciler: Reconciling, stopping: asyncio.Event) -> None:
        worker = _DaemonWorker("lifecycle-reconciler")
        try:
            await self._passes(reconciler, stopping, worker)
        finally:
            worker.close()

    async def _passes(
        self, reconciler: Reconciling, stopping: asyncio.Event, worker: _DaemonWorker
    ) -> None:
        last_error: str | None = None
        while not stopping.is_set():
            try:
                await worker.submit(reconciler.run_once)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:  # once per distinct error, not ten times a second
                    if isinstance(exc, StoreUnavailableError):
                        _log.warning("reconciler pass failed: %s", exc.message)
                    else:
                        _log.exception("reconciler pass failed")
                last_error = error
            else:
                if last_error is not None:
                    _log.info("reconciler passes succeed again")
                last_error = None
            self.reconciler_passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.tick_seconds)

    # -- worker pools -------------------------------------------------------------------

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        pool = self._pools.get(kind)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(kind)
                if pool is None:
                    size = 1 if kind == "probe" else self.workers
                    pool = ThreadPoolExecutor(size, thread_name_prefix=f"lifecycle-{kind}")
                    self._pools[kind] = pool
        return pool

    def close_pools(self) -> None:
        """Let the worker threads end once their calls return (each is bounded)."""
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _run_read(self, call: Callable[[], _T]) -> _T:
        """``call()`` in the read pool (on the loop when the store never blocks)."""
        if not self.offload:
            return call()
        return await asyncio.get_running_loop().run_in_executor(self._pool("read"), call)

    async def _offloaded_request(
        self, operation: str, call: Callable[[], WireResponse]
    ) -> WireResponse:
        """An operation's ``call()``: a read (Describe, List) in the read pool, or on the
        loop when the store can read without waiting; anything else in the write pool."""
        if operation in _READS:
            return await self._offloaded("read", call, on_loop=True)
        return await self._offloaded("write", call)

    async def _offloaded(
        self, kind: str, call: Callable[[], WireResponse], *, on_loop: bool = False
    ) -> WireResponse:
        """``call()`` in the ``kind`` pool; 503 when it waited for a worker past the bound.
        With ``on_loop`` (a Describe, a List: the request's answer is all that a
        ``WouldWait`` stops) it is made on the loop first when the store can read
        without waiting."""
        loop_reads = self._loop_reads
        if on_loop and loop_reads is not None:
            try:
                with loop_reads():
                    return call()
            except WouldWait:
                pass  # it read nothing: the pool's thread may wait, within the bound
        queued = time.monotonic()
        bound = self.lock_timeout

        def run() -> WireResponse:
            waited = time.monotonic() - queued
            if waited > bound:
                return unavailable_response(
                    StoreUnavailableError(
                        f"the server is busy: the request waited {waited:.1f}s for a worker "
                        f"(the bound is {bound:g}s); nothing was written",
                        kind="busy",
                    )
                )
            return call()

        return await asyncio.get_running_loop().run_in_executor(self._pool(kind), run)

    # -- HTTP -----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        quiet = False  # a throttled request has no line of its own (see _throttle)
        method: str = scope["method"]
        root_path, path = _split_path(scope)
        raw_headers = scope["headers"]
        headers = {n.lower().decode("latin-1"): v.decode("latin-1") for n, v in raw_headers}
        if len(headers) != len(raw_headers):  # a repeated name: its values joined, in order
            headers = {}
            for raw_name, raw_value in raw_headers:
                name = raw_name.lower().decode("latin-1")
                value = raw_value.decode("latin-1")
                headers[name] = f"{headers[name]},{value}" if name in headers else value

        if path == "/events":
            query = scope.get("query_string", b"").decode("latin-1")
            if self.events is None:
                response = error_response(
                    UnknownPathError.code,
                    "this server's service has no change feed",
                    UnknownPathError.http_status,
                    operation=EVENTS_OPERATION,
                )
            else:
                client = scope.get("client")
                response = await self.events.answer(
                    method, query, headers, root_path, client[0] if client else None
                )
                quiet = response.outcome == ThrottlingError.code
        elif method in ("GET", "HEAD") and path in ("/health", "/ready", "/metrics"):
            if path == "/health":
                response = json_response(200, {"status": "ok"}, "Health", "OK")
            elif path == "/ready":
                response = await self._ready()
            else:
                response = await self._metrics()
        else:
            try:
                body = await self._read_body(headers, receive)
            except _ClientGone:
                _log.info("%s %s: the client went away before sending its body", method, path[:100])
                return
            target = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
            if body is None:
                response = error_response(
                    "RequestEntityTooLarge",
                    f"the request body is over {MAX_BODY_BYTES} bytes",
                    413,
                    operation=target[:100] or None,
                )
            elif self._gated:
                response, quiet = await self._gated_answer(
                    scope, method, path, root_path, headers, body
                )
            else:
                call = partial(
                    handle,
                    self.service,
                    method=method,
                    path=path,
                    headers=headers,
                    body=body,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    root_path=root_path,
                )
                if self.offload:
                    response = await self._offloaded_request(target, call)
                else:
                    response = call()

        elapsed = time.perf_counter() - started
        self._account(scope, method, path, response, elapsed, quiet)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if method == "HEAD" else response.body}
        )

    async def _gated_answer(
        self,
        scope: Scope,
        method: str,
        path: str,
        root_path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[WireResponse, bool]:
        """``POST /`` with SigV4 or a rate limit on: the signature, what the signer may do,
        the service of its account and its rate, all on the event loop and before any
        store work (a refused request neither waits for a worker nor writes anything);
        then the request as :func:`handle` would answer it. The answer, and whether it was
        throttled (its line is :meth:`_throttle`'s)."""
        admitted = admit(
            self.service.OPERATIONS,
            method=method,
            path=path,
            headers=headers,
            body=body,
            query=scope.get("query_string", b"").decode("latin-1"),
            auth=self.auth,
            root_path=root_path,
        )
        if isinstance(admitted, WireResponse):
            return admitted, False
        principal, operation = admitted.principal, admitted.operation
        try:
            service = self._service_for(principal, operation)
            if self.limiter is not None:
                client = scope.get("client")
                self._throttle(principal, client[0] if client else None, operation)
        except ProtocolError as exc:
            key = None if principal is None else principal.access_key
            return refusal(exc, admitted.request_id, operation, key=key), isinstance(
                exc, ThrottlingError
            )
        call = partial(dispatch, service, admitted, headers=headers, body=body)
        if self.offload:
            return await self._offloaded_request(operation, call), False
        return call(), False

    def _service_for(self, principal: Principal | None, operation: str) -> ServedService:
        """The service that answers ``principal``: the app's own for a request of the
        server's account (unsigned, or a key of no other account); for a key of another
        account, the service's view of that account (``service.for_account(account)``,
        made once per account) when the service serves several, else
        ``AccessDeniedError``."""
        if principal is None:
            return self.service
        account = principal.account_id
        if account is None or account == self._account_id:
            return self.service
        view = self._accounts.get(account)
        if view is None:
            if self._for_account is None:
                raise AccessDeniedError(
                    operation,
                    principal.access_key,
                    f"the key is of account {account}, and this server serves only its own, "
                    f"{self._account_id}: accounts other than the server's are not served",
                )
            view = self._accounts[account] = self._for_account(account)
        return view

    def _throttle(self, principal: Principal | None, client: str | None, operation: str) -> None:
        """Take a token of the client's bucket (its access key's, or its address's when
        unsigned), or raise ``ThrottlingError``: counted in the metrics by operation, and
        logged once per :data:`THROTTLE_LOG_SECONDS` with how many were held back."""
        limiter = self.limiter
        assert limiter is not None
        who = principal.access_key if principal is not None else (client or "unknown")
        if limiter.take(who):
            return
        if self.metrics is not None:
            self.metrics.throttled(operation)
        held = self._throttle_lines.due("throttled")
        if held is not None:
            log(
                _log,
                logging.WARNING,
                "throttled",
                {
                    "op": operation,
                    "key" if principal is not None else "client": who,
                    "limit": str(limiter.limit),
                    "held_back": held,
                },
            )
        whose = f"access key {who}" if principal is not None else f"client address {who}"
        raise ThrottlingError(
            f"Rate exceeded: {whose} is limited to {limiter.limit.describe()} by this "
            "server process; retry with backoff"
        )

    def _account(
        self,
        scope: Scope,
        method: str,
        path: str,
        response: WireResponse,
        elapsed: float,
        quiet: bool = False,
    ) -> None:
        """The request's metrics and its log line, handed to logging before the answer goes
        out (``lifecycle serve``'s handler writes the lines of one loop iteration together,
        at the end of that iteration); a ``quiet`` one (throttled: a storm of them is logged
        once per interval) has no line."""
        metrics = self.metrics
        if metrics is not None:
            metrics.request(response.operation, response.outcome, elapsed)
            if response.store_error is not None:
                metrics.store_error(response.store_error)
        if quiet or not _log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        log(
            _log,
            logging.INFO,
            "request",
            {
                "op": response.operation or f"{method} {path[:100]}",
                "name": _log_value(response.name) if response.name is not None else None,
                "outcome": response.outcome,
                "rule": response.rule,
                "status": response.status,
                "ms": round(elapsed * 1000.0, 2),
                "id": response.request_id,
                "client": f"{client[0]}:{client[1]}" if client else None,
                "key": response.access_key,
            },
        )

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None once it passes MAX_BODY_BYTES."""
        declared = headers.get("content-length")
        declared_size = int(declared) if declared and declared.isdigit() else None
        if declared_size is not None and declared_size > _DRAIN_LIMIT:
            return None
        chunks: list[bytes] = []
        size = 0
        too_big = declared_size is not None and declared_size > MAX_BODY_BYTES
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: never act on half a body
                raise _ClientGone
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                too_big = True
                chunks.clear()
                if size > _DRAIN_LIMIT:
                    return None
            elif not too_big:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if too_big:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _ready(self) -> WireResponse:
        """200 when the store can take a write within the bound, else 503 with the reason.

        One probe at a time: a probe still waiting on the store answers the next
        check 503 at once instead of stacking threads up behind it.
        """
        if self._probe is not None and not self._probe.done():
            return _unready("the previous readiness probe is still waiting on the store")
        check = self.service.store.check_writable
        loop = asyncio.get_running_loop()
        self._probe = probe = loop.run_in_executor(self._pool("probe"), check)
        try:
            await asyncio.wait_for(asyncio.shield(probe), self.lock_timeout + 1.0)
        except TimeoutError:
            return _unready(f"the store did not take a write within {self.lock_timeout + 1:g}s")
        except StoreUnavailableError as exc:
            if self.metrics is not None:
                self.metrics.store_error(exc.kind)
            return _unready(exc.message, exc.retry_after)
        except Exception as exc:
            return _unready(str(exc))
        return json_response(200, {"status": "ready"}, "Ready", "OK")

    async def _metrics(self) -> WireResponse:
        if self.metrics is None:
            return json_response(
                404, {"status": "absent", "message": "metrics are off"}, "Metrics", "NotFound"
            )
        from lifecycle.http.metrics import CONTENT_TYPE

        raw = await self._offloaded("read", lambda: _raw_response(self.metrics.render()))
        raw.headers[0] = ("Content-Type", CONTENT_TYPE)
        return raw


def _raw_response(body: bytes) -> WireResponse:
    return WireResponse(
        200,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        body,
        "Metrics",
        None,
        "OK",
    )


def _unready(message: str, retry_after: int = 1) -> WireResponse:
    return json_response(
        503, {"status": "unavailable", "message": message}, "Ready", "Unavailable", retry_after
    )
