"""The only socket code: an ASGI app over one ``ExperimentService``, run by uvicorn.

- ``POST /``: AWS JSON 1.1 (``lifecycle.http.protocol.handle``). The body is
  read in chunks; past 1 MiB the rest is discarded unread into memory and
  the answer is 413 ``RequestEntityTooLarge``.
- ``GET /health``: 200 ``{"status": "ok"}`` when ``service.store.ping()``
  works, else 503 ``{"status": "unavailable", "message": ...}``.
- The reconciler runs in the same process: on ASGI lifespan startup a
  background task calls ``reconciler.run_once()`` in a dedicated worker
  thread every ``tick_seconds`` (0.1 s), so requests are never blocked by it;
  on shutdown the loop finishes the pass in progress and stops.
- One log line per request on the ``lifecycle.server`` logger (INFO):
  operation, experiment name, outcome code, HTTP status, milliseconds. The
  app adds no handler of its own: the lines go wherever the host's logging
  sends ``lifecycle.*`` (``lifecycle serve`` configures that itself).

Mounted in a host app (:meth:`LifecycleApp.mount_on`, or ``app.mount`` in
FastAPI or Starlette) it answers under the mount's prefix, ASGI's
``root_path``: ``POST /sagemaker`` and ``/sagemaker/``, ``GET
/sagemaker/health``, whether the host leaves the prefix in ``scope["path"]``
(Starlette 0.33 and later) or strips it (earlier); SigV4 checks the path the
client signed, prefix and all. A host does not pass lifespan events to a
mounted app, so its own lifespan enters :meth:`LifecycleApp.lifespan` to run
the reconciler (``docs/embedding.md``).

:func:`serve` runs the app under uvicorn and returns an exit code; SIGINT
and SIGTERM stop it gracefully (requests in flight finish, then the
reconciler stops) and it returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

from lifecycle.http.protocol import (
    MAX_BODY_BYTES,
    TARGET_PREFIX,
    Authenticator,
    Service,
    WireResponse,
    error_response,
    handle,
)

__all__ = ["LifecycleApp", "Reconciling", "ServedService"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_log = logging.getLogger("lifecycle.server")

#: a body declared (Content-Length) up to this size is drained after a 413 so
#: the client reads the answer; a bigger one is refused without reading it
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES
_HEALTH_TIMEOUT_SECONDS = 5.0


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class _Pingable(Protocol):
    def ping(self) -> None: ...


class ServedService(Service, Protocol):
    """What the server needs of ``ExperimentService``: ``invoke`` and ``store.ping``."""

    @property
    def store(self) -> _Pingable: ...


class Reconciling(Protocol):
    """What the server needs of ``Reconciler``."""

    def run_once(self) -> int: ...


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
    """ASGI 3 application: the wire protocol, health, and the reconciler loop."""

    def __init__(
        self,
        service: ServedService,
        reconciler: Reconciling | None = None,
        *,
        auth: Authenticator | None = None,
        tick_seconds: float = 0.1,
        offload: bool = False,
    ) -> None:
        """``offload=True`` runs each request in a worker thread instead of the
        event loop (for stores that wait on a network, such as PostgreSQL)."""
        self.service = service
        self.reconciler = reconciler
        self.auth = auth
        self.tick_seconds = tick_seconds
        self.offload = offload
        self._stopping: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.reconciler_passes = 0

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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop_reconciler()
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
        """The reconciler loop for as long as the ``async with`` lasts: what a host's own
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
        try:
            yield
        finally:
            if started:
                await self.stop_reconciler()

    def start_reconciler(self) -> None:
        """Start the background reconciler loop (on the running event loop)."""
        if self.reconciler is None or self._loop_task is not None:
            return
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lifecycle-reconciler")
        self._loop_task = asyncio.get_running_loop().create_task(
            self._reconcile_forever(self.reconciler, self._stopping, self._executor)
        )
        _log.info("reconciler started (a pass every %.2fs)", self.tick_seconds)

    async def stop_reconciler(self) -> None:
        """Stop the loop after the pass in progress, and wait for it."""
        if self._loop_task is None or self._stopping is None:
            return
        self._stopping.set()
        await self._loop_task
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._loop_task = None
        self._executor = None
        _log.info("reconciler stopped after %d passes", self.reconciler_passes)

    async def _reconcile_forever(
        self, reconciler: Reconciling, stopping: asyncio.Event, executor: ThreadPoolExecutor
    ) -> None:
        loop = asyncio.get_running_loop()
        last_error: str | None = None
        while not stopping.is_set():
            try:
                await loop.run_in_executor(executor, reconciler.run_once)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:  # once per distinct error, not ten times a second
                    _log.exception("reconciler pass failed")
                last_error = error
            else:
                if last_error is not None:
                    _log.info("reconciler passes succeed again")
                last_error = None
            self.reconciler_passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.tick_seconds)

    # -- HTTP -----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        root_path, path = _split_path(scope)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value

        if path == "/health" and method in ("GET", "HEAD"):
            response = await self._health()
        else:
            try:
                body = await self._read_body(headers, receive)
            except _ClientGone:
                _log.info("%s %s: the client went away before sending its body", method, path[:100])
                return
            if body is None:
                target = headers.get("x-amz-target", "")
                response = error_response(
                    "RequestEntityTooLarge",
                    f"the request body is over {MAX_BODY_BYTES} bytes",
                    413,
                    operation=target.removeprefix(TARGET_PREFIX)[:100] or None,
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
                    auth=self.auth,
                    root_path=root_path,
                )
                if self.offload:
                    response = await asyncio.get_running_loop().run_in_executor(None, call)
                else:
                    response = call()

        # Logged before the answer goes out, so a client that has its answer can
        # rely on the line being written (tests, anyone tailing the log).
        _log.info(
            "%s name=%s outcome=%s status=%d ms=%.2f",
            response.operation or f"{method} {path[:100]}",
            _log_value(response.name),
            response.outcome,
            response.status,
            (time.perf_counter() - started) * 1000.0,
        )
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

    async def _health(self) -> WireResponse:
        ping = self.service.store.ping
        try:
            await asyncio.wait_for(asyncio.to_thread(ping), _HEALTH_TIMEOUT_SECONDS)
        except Exception as exc:
            reason = "store did not answer in time" if isinstance(exc, TimeoutError) else str(exc)
            status, body = 503, {"status": "unavailable", "message": reason}
            outcome = "Unavailable"
        else:
            status, body, outcome = 200, {"status": "ok"}, "OK"
        raw = json.dumps(body).encode()
        return WireResponse(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(raw))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
            raw,
            "Health",
            None,
            outcome,
        )
