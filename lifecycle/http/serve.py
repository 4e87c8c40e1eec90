"""``lifecycle serve``: the wiring of store, service, actuator, reconciler and auth, and uvicorn.

``lifecycle.cli`` hooks these into its ``serve`` subcommand::

    serve = subparsers.add_parser("serve", help=...)   # of an EnvironmentParser
    add_serve_arguments(serve)
    from_environment(serve)                             # LIFECYCLE_PORT for --port, ...
    ...
    return run_serve(args)

``python -m lifecycle.http.serve [ARGS]`` runs the same thing on its own.
:func:`serve` runs a :class:`~lifecycle.http.app.LifecycleApp` under uvicorn
and returns an exit code; SIGINT and SIGTERM stop it gracefully (requests in
flight finish, then the reconciler stops) and it returns 0. The ``--actuator``
flags pick what carries out the reconciler's steps (``options.build_actuator``:
simulated, a webhook, or a factory of the user's); it is closed on the way out.
The address is bound first, before the store opens: a taken port stops the
server before anything else happens. The ``--webhook`` flags subscribe
receivers to the change feed, and ``--events-max-age`` and
``--events-max-count`` bound what the feed keeps (with ``--workers N``, the
parent process delivers and trims, the workers serve). The flags
themselves are in ``options.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lifecycle.errors import install_hint
from lifecycle.http.app import LifecycleApp, Reconciling, ServedService
from lifecycle.http.options import (
    SERVE_DESCRIPTION,
    EnvironmentParser,
    add_serve_arguments,
    build_actuator,
    default_store_url,
    from_environment,
    read_secret,
    webhook_specs,
)
from lifecycle.http.protocol import Authenticator
from lifecycle.http.throttle import RateLimit

if TYPE_CHECKING:
    from lifecycle.actuators import Actuator
    from lifecycle.service.feed import Retention
    from lifecycle.service.reconciler import Reconciler
    from lifecycle.service.service import ExperimentService
    from lifecycle.service.webhooks import WebhookSubscription

__all__ = [
    "GC_THRESHOLDS",
    "Limits",
    "add_serve_arguments",
    "bind",
    "build_actuator",
    "build_app",
    "close_if_closable",
    "default_store_url",
    "http_protocol",
    "is_loopback",
    "main",
    "read_secret",
    "run_serve",
    "serve",
    "tune_gc",
]

_log = logging.getLogger("lifecycle.server")
#: how far (a fraction, either way) the server's retry waits vary at random
SERVE_RETRY_JITTER = 0.2


def _open_store(url: str, lock_timeout: float = 5.0) -> Any:
    open_store = getattr(importlib.import_module("lifecycle.stores"), "open_store", None)
    if open_store is None:
        if url not in ("memory://", "memory:"):
            raise ValueError(
                f"store {url!r} is not available in this build; use memory://"
            ) from None
        from lifecycle.stores.memory import MemoryStore

        return MemoryStore()
    return open_store(url, lock_timeout=lock_timeout)


class _Refused(Exception):
    """A flag or the store stops ``lifecycle serve`` before it serves: the message, the code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _auth(args: argparse.Namespace) -> Authenticator | None:
    from lifecycle.http.sigv4 import CredentialsError, SigV4Verifier

    if args.auth == "sigv4":
        if not args.credentials:
            raise _Refused("--auth sigv4 needs --credentials FILE", 2)
        try:
            return SigV4Verifier.from_file(args.credentials, account_id=args.account_id)
        except CredentialsError as exc:
            raise _Refused(str(exc), 2) from None
    if args.credentials:
        raise _Refused("--credentials is only used with --auth sigv4", 2)
    return None


def _token_secret(args: argparse.Namespace) -> bytes | None:
    if not args.token_secret_file:
        return None
    try:
        return read_secret(args.token_secret_file)
    except ValueError as exc:
        raise _Refused(f"--token-secret-file: {exc}", 2) from None


def _actuator(args: argparse.Namespace) -> Actuator:
    try:
        return build_actuator(args)
    except ValueError as exc:
        raise _Refused(str(exc), 2) from None


def _store(args: argparse.Namespace) -> Any:
    from lifecycle.errors import LifecycleError

    try:
        return _open_store(args.store, args.lock_timeout)
    except (LifecycleError, ValueError, OSError, ImportError) as exc:
        # ImportError: the store's driver is an extra that is not installed (its message
        # names the install command), one line rather than a traceback
        raise _Refused(f"cannot open store {_shown(args.store)}: {exc}", 1) from None


def _engine(
    args: argparse.Namespace, store: Any, actuator: Actuator, token_secret: bytes | None
) -> tuple[ExperimentService, Reconciler]:
    """The service and the reconciler the flags describe, over ``store`` and ``actuator``."""
    from lifecycle.service.reconciler import Reconciler
    from lifecycle.service.service import ExperimentService

    service = ExperimentService(
        store,
        region=args.region,
        account_id=args.account_id,
        settle_seconds=args.settle_seconds,
        max_live_experiments=args.max_live_experiments,
        token_secret=token_secret,
    )
    # a fleet of replicas retrying one failing endpoint spreads its retries out
    return service, Reconciler(service, actuator, jitter=SERVE_RETRY_JITTER)


def _webhooks(args: argparse.Namespace) -> list[tuple[str, bytes | None]]:
    try:
        return webhook_specs(args)
    except ValueError as exc:
        raise _Refused(str(exc), 2) from None


def _retention(args: argparse.Namespace) -> Retention:
    from lifecycle.service.feed import Retention

    return Retention(max_age=args.events_max_age or None, max_count=args.events_max_count)


def _subscriptions(
    service: ExperimentService, webhooks: Sequence[tuple[str, bytes | None]]
) -> list[WebhookSubscription]:
    from lifecycle.service.webhooks import WebhookSubscription

    return [
        WebhookSubscription(service, url, secret=secret, jitter=SERVE_RETRY_JITTER)
        for url, secret in webhooks
    ]


def build_app(args: argparse.Namespace) -> tuple[LifecycleApp, list[Any]]:
    """The app the flags describe and what to close after it (the store, the actuator):
    what each worker of ``--workers N`` serves (the parent delivers the webhooks and trims
    the feed, so the workers do neither). Raises ``_Refused``."""
    auth, token_secret = _auth(args), _token_secret(args)
    actuator = _actuator(args)
    store = _store(args)
    service, reconciler = _engine(args, store, actuator, token_secret)
    limits = Limits.from_args(args)
    app = LifecycleApp(
        service,
        reconciler,
        auth=auth,
        workers=limits.threads,
        lock_timeout=limits.lock_timeout,
        shutdown_timeout=limits.shutdown_timeout,
        rate_limit=limits.rate_limit,
    )
    return app, [store, actuator]


def run_serve(args: argparse.Namespace) -> int:
    """Build the store, service, reconciler and auth from ``args`` and serve until stopped."""
    try:
        auth, token_secret = _auth(args), _token_secret(args)
        webhooks = _webhooks(args)
        if args.workers > 1 and args.store.split(":", 1)[0].lower() == "memory":
            raise _Refused(
                "--workers N needs a store the workers share (sqlite:///PATH or "
                "postgresql://...): a memory:// store is one per process",
                2,
            )
        actuator = _actuator(args)
    except _Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return refused.code
    try:
        _warn_if_open(args.host, auth)
        try:  # before the store opens and the reconciler starts: a taken port stops nothing
            sock = bind(args.host, args.port)
        except OSError as exc:
            print(f"error: {_cannot_listen(args.host, args.port, exc)}", file=sys.stderr)
            return 1
        with sock:
            if args.workers > 1:
                return _serve_workers(args, sock, webhooks)
            return _serve_with(args, actuator, auth, token_secret, sock, webhooks)
    except _Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return refused.code
    finally:
        close_if_closable(actuator)


def _serve_with(
    args: argparse.Namespace,
    actuator: Actuator,
    auth: Authenticator | None,
    token_secret: bytes | None,
    sock: socket.socket,
    webhooks: Sequence[tuple[str, bytes | None]] = (),
) -> int:
    """Open the store, build the service and the reconciler over ``actuator`` and the
    webhook subscriptions, and serve on ``sock``."""
    store = _store(args)
    subscriptions: list[WebhookSubscription] = []
    try:
        service, reconciler = _engine(args, store, actuator, token_secret)
        subscriptions = _subscriptions(service, webhooks)
        return serve(
            service,
            reconciler,
            args.host,
            args.port,
            auth=auth,
            log_level=args.log_level,
            limits=Limits.from_args(args),
            sock=sock,
            webhooks=subscriptions,
            retention=_retention(args),
        )
    finally:
        for subscription in subscriptions:
            subscription.close()
        close_if_closable(store)


def _serve_workers(
    args: argparse.Namespace,
    sock: socket.socket,
    webhooks: Sequence[tuple[str, bytes | None]] = (),
) -> int:
    """``--workers N``: N processes serving ``sock``, each building its own app from the flags
    (``_worker.py``); the store is opened here first, once, so its schema migrates once.
    This process delivers the webhooks and trims the feed while the workers serve (so each
    event goes out once, not once per worker); it reads the feed every second, as a
    replica reads another's commits."""
    from lifecycle.http.outbox import FeedWorkers
    from lifecycle.service.service import ExperimentService

    store = _store(args)
    try:
        service = ExperimentService(store)
        return _supervise(
            args, sock, FeedWorkers(service, _subscriptions(service, webhooks), _retention(args))
        )
    finally:
        close_if_closable(store)


def _supervise(args: argparse.Namespace, sock: socket.socket, feed: Any) -> int:
    """The workers under uvicorn's process supervisor until a signal ends them, and ``feed``
    (the webhooks and the trimming) in this process meanwhile."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from lifecycle.http._worker import ARGS_VARIABLE, encode_args

    os.environ[ARGS_VARIABLE] = encode_args(args)
    limits = Limits.from_args(args)
    config = uvicorn.Config(
        "lifecycle.http._worker:app",
        factory=True,
        http="lifecycle.http._worker:Protocol",
        workers=args.workers,
        **_uvicorn_settings(args.log_level, limits),
    )
    sock.set_inheritable(True)
    sock.listen(2048)  # connections wait in the backlog until a worker takes them
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit), %d workers",
        shown,
        port,
        args.workers,
    )
    feed.start()  # after the config: its log lines go where the server's go
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        feed.stop(args.shutdown_timeout)
    return 0


#: the cyclic collector's thresholds while serving: a young generation of 100,000 objects and
#: a full collection every 1,000 of the middle one's. Python's defaults (700, 10, 10) make a
#: server holding many records in memory run a full collection every few seconds under
#: load, a pause of up to a quarter second measured on the memory store's Stop p99. Most of
#: what a request makes is freed by reference counting anyway; the collector is for cycles.
GC_THRESHOLDS = (100_000, 50, 1_000)


def tune_gc() -> tuple[int, int, int]:
    """Collect once, move what start-up made out of the collector's way (``gc.freeze``),
    and collect cycles less often while serving (:data:`GC_THRESHOLDS`); the thresholds
    it replaced."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return previous


@contextlib.contextmanager
def _tuned_gc() -> Iterator[None]:
    previous = tune_gc()
    try:
        yield
    finally:  # serve() returns to a caller that may go on (a test, an embedding program)
        gc.unfreeze()
        gc.set_threshold(*previous)


def _uvicorn_settings(log_level: str, limits: Limits) -> dict[str, Any]:
    """What ``uvicorn.Config`` gets besides the app and the protocol, in every mode."""
    import uvicorn

    from lifecycle.http.logs import log_config

    loop = {}
    if hasattr(uvicorn.Config, "get_loop_factory"):  # uvicorn 0.36 and later take a factory
        loop["loop"] = "lifecycle.http.connections:new_event_loop"
    return {
        **loop,
        "log_level": log_level.lower(),
        "log_config": log_config(log_level, limits.log_format),
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
        # uvicorn's annotation says int, but it hands the value to loop.call_later: a
        # fraction of a second (--idle-timeout 0.5) is kept, not rounded to a whole second
        "timeout_keep_alive": limits.idle_timeout,
        # requests drain within the bound less a second (less half of it, when it is under
        # two), kept for the reconciler's last step and its claims: the whole shutdown ends
        # within shutdown_timeout
        "timeout_graceful_shutdown": max(
            limits.shutdown_timeout - 1.0, limits.shutdown_timeout / 2
        ),
    }


def _shown(url: str) -> str:
    """``url`` as an error may print it: a password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def close_if_closable(thing: object) -> None:
    """Call ``thing.close()`` when it has one (a store, an actuator)."""
    close = getattr(thing, "close", None)
    if callable(close):
        close()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Limits:
    """The bounds ``lifecycle serve`` runs with (each has its flag; see ``options.py``)."""

    lock_timeout: float = 5.0
    threads: int = 8
    max_connections: int | None = None  # None: default_max_connections()
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    log_format: str = "text"
    rate_limit: RateLimit | None = None  # None: no limit

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Limits:
        return cls(
            lock_timeout=args.lock_timeout,
            threads=args.threads,
            max_connections=args.max_connections,
            header_timeout=args.header_timeout,
            idle_timeout=args.idle_timeout,
            shutdown_timeout=args.shutdown_timeout,
            log_format=args.log_format,
            # a worker of --workers N reads the flags back from JSON: the limit as its text
            rate_limit=RateLimit.of(args.rate_limit),
        )


def http_protocol(limits: Limits) -> type:
    """uvicorn's fastest HTTP/1.1 protocol here (httptools when installed, else h11),
    with the connection cap and the header deadline (``connections.guarded``)."""
    from lifecycle.http.connections import default_max_connections, guarded

    base: type
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - uvicorn without the [standard] extra
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    cap = limits.max_connections or default_max_connections()
    return guarded(base, max_connections=cap, header_timeout=limits.header_timeout)


@contextlib.contextmanager
def _quiet_signal_exit() -> Iterator[None]:
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown; make that a no-op.

    Without this a SIGTERM would end the process by the default handler
    (exit status -15) and a SIGINT would surface as KeyboardInterrupt, after
    everything had already shut down cleanly.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (``port=0`` picks a free one), not yet
    listening; OSError when the address cannot be bound (the port is taken, the address
    is not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port}: {reason[:1].lower()}{reason[1:]}"


def _warn_if_open(host: str, auth: Authenticator | None) -> None:
    if auth is None and not is_loopback(host):
        print(
            f"warning: serving on {host}, which is not a loopback address, without "
            "authentication: anyone who can reach it can change experiments; "
            "use --auth sigv4 --credentials FILE",
            file=sys.stderr,
        )


def serve(
    service: ServedService,
    reconciler: Reconciling | None,
    host: str = "127.0.0.1",
    port: int = 8080,
    auth: Authenticator | None = None,
    log_level: str = "info",
    *,
    offload: bool | None = None,
    tick_seconds: float = 0.1,
    limits: Limits | None = None,
    sock: socket.socket | None = None,
    webhooks: Sequence[Any] = (),
    retention: Retention | None = None,
) -> int:
    """Serve ``service`` over HTTP until SIGINT/SIGTERM; return the exit code.

    0 after a signal-driven shutdown; 1 when the server cannot start (the
    port is taken, the address cannot be bound, the app fails to start).
    ``port=0`` picks a free port; uvicorn logs the one it bound. The address
    is bound before the app starts, so a taken port stops the server before
    its reconciler makes a pass. ``sock`` is a socket already bound to
    ``host``:``port`` (:func:`bind`; ``run_serve`` binds it before it opens
    the store), which the server then listens on and closes. A signal first
    asks the reconciler to stop between steps, then lets requests in flight
    finish, all within ``limits.shutdown_timeout``. ``webhooks``
    (:class:`~lifecycle.service.webhooks.WebhookSubscription`) and ``retention`` go to the
    app (:class:`~lifecycle.http.app.LifecycleApp`).
    """
    try:
        import uvicorn
    except ImportError:  # the server extra is not installed
        print(
            f"error: serving needs uvicorn; install it with: {install_hint('server')}",
            file=sys.stderr,
        )
        return 1
    limits = limits or Limits()
    if sock is None:
        _warn_if_open(host, auth)
        try:
            sock = bind(host, port)
        except OSError as exc:
            print(f"error: {_cannot_listen(host, port, exc)}", file=sys.stderr)
            return 1
    app = LifecycleApp(
        service,
        reconciler,
        auth=auth,
        offload=offload,
        tick_seconds=tick_seconds,
        workers=limits.threads,
        lock_timeout=limits.lock_timeout,
        shutdown_timeout=limits.shutdown_timeout,
        webhooks=webhooks,
        retention=retention,
        rate_limit=limits.rate_limit,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(limits),
        **_uvicorn_settings(log_level, limits),
    )
    server = _make_server(config, app)
    with sock, _quiet_signal_exit(), _tuned_gc():
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits when the app fails to start
            _log.debug("uvicorn exited with %r", exc.code)
            return 1
    return 0 if server.started else 1


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, which also asks the reconciler to stop the moment a signal comes,
        so its pass ends while requests in flight finish, not after them, says where it
        listens once it does, and says when the process runs out of descriptors."""

        def __init__(self, config: uvicorn.Config, app: LifecycleApp) -> None:
            from lifecycle.http.connections import DescriptorWatch

            super().__init__(config)
            self.lifecycle_app = app
            self.descriptors: DescriptorWatch | None = DescriptorWatch()

        async def on_tick(self, counter: int) -> bool:
            if counter % 10 == 0 and self.descriptors is not None:
                # once a second: uvloop drops what it cannot accept unsaid (asyncio's own
                # loops log their failed accepts themselves)
                if isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
                    self.descriptors = None
                else:
                    self.descriptors.check()
            return await super().on_tick(counter)

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.lifecycle_app.request_stop()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn says where it listens only for an address it binds itself, and here
            # the address is bound before the app starts
            await super().startup(sockets)
            if self.started and sockets:
                host, port = sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                logging.getLogger("uvicorn.error").info(
                    "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
                )

    return Server


def _make_server(config: Any, app: LifecycleApp) -> Any:
    return _server_class()(config, app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = EnvironmentParser(prog="lifecycle serve", description=SERVE_DESCRIPTION)
    add_serve_arguments(parser)
    from_environment(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
