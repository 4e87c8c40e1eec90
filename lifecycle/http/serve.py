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
server before anything else happens. The flags themselves are in ``options.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import ipaddress
import logging
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
)
from lifecycle.http.protocol import Authenticator

if TYPE_CHECKING:
    from lifecycle.actuators import Actuator

__all__ = [
    "Limits",
    "add_serve_arguments",
    "bind",
    "build_actuator",
    "default_store_url",
    "is_loopback",
    "main",
    "read_secret",
    "run_serve",
    "serve",
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


def run_serve(args: argparse.Namespace) -> int:
    """Build the store, service, reconciler and auth from ``args`` and serve until stopped."""
    from lifecycle.http.sigv4 import CredentialsError, SigV4Verifier

    auth: SigV4Verifier | None = None
    if args.auth == "sigv4":
        if not args.credentials:
            print("error: --auth sigv4 needs --credentials FILE", file=sys.stderr)
            return 2
        try:
            auth = SigV4Verifier.from_file(args.credentials)
        except CredentialsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.credentials:
        print("error: --credentials is only used with --auth sigv4", file=sys.stderr)
        return 2

    token_secret = None
    if args.token_secret_file:
        try:
            token_secret = read_secret(args.token_secret_file)
        except ValueError as exc:
            print(f"error: --token-secret-file: {exc}", file=sys.stderr)
            return 2

    try:
        actuator = build_actuator(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _warn_if_open(args.host, auth)
        try:  # before the store opens and the reconciler starts: a taken port stops nothing
            sock = bind(args.host, args.port)
        except OSError as exc:
            print(f"error: {_cannot_listen(args.host, args.port, exc)}", file=sys.stderr)
            return 1
        with sock:
            return _serve_with(args, actuator, auth, token_secret, sock)
    finally:
        _close(actuator)


def _serve_with(
    args: argparse.Namespace,
    actuator: Actuator,
    auth: Authenticator | None,
    token_secret: bytes | None,
    sock: socket.socket,
) -> int:
    """Open the store, build the service and the reconciler over ``actuator``, and serve
    on ``sock``."""
    from lifecycle.errors import LifecycleError

    try:
        store = _open_store(args.store, args.lock_timeout)
    except (LifecycleError, ValueError, OSError, ImportError) as exc:
        # ImportError: the store's driver is an extra that is not installed (its message
        # names the install command), one line rather than a traceback
        print(f"error: cannot open store {_shown(args.store)}: {exc}", file=sys.stderr)
        return 1

    from lifecycle.service.reconciler import Reconciler
    from lifecycle.service.service import ExperimentService

    try:
        service = ExperimentService(
            store,
            region=args.region,
            account_id=args.account_id,
            settle_seconds=args.settle_seconds,
            max_live_experiments=args.max_live_experiments,
            token_secret=token_secret,
        )
        # a fleet of replicas retrying one failing endpoint spreads its retries out
        reconciler = Reconciler(service, actuator, jitter=SERVE_RETRY_JITTER)
        return serve(
            service,
            reconciler,
            args.host,
            args.port,
            auth=auth,
            log_level=args.log_level,
            limits=Limits.from_args(args),
            sock=sock,
        )
    finally:
        _close(store)


def _shown(url: str) -> str:
    """``url`` as an error may print it: a password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _close(thing: object) -> None:
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
        )


def _http_protocol(limits: Limits) -> type:
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
    finish, all within ``limits.shutdown_timeout``.
    """
    try:
        import uvicorn
    except ImportError:  # the server extra is not installed
        print(
            f"error: serving needs uvicorn; install it with: {install_hint('server')}",
            file=sys.stderr,
        )
        return 1
    from lifecycle.http.logs import log_config

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
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_http_protocol(limits),
        log_level=log_level.lower(),
        log_config=log_config(log_level, limits.log_format),
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_keep_alive=max(1, round(limits.idle_timeout)),
        # requests drain within the bound less a second, kept for the reconciler's last step
        # and its claims: the whole shutdown ends within shutdown_timeout
        timeout_graceful_shutdown=max(1, int(limits.shutdown_timeout) - 1),
    )
    server = _make_server(config, app)
    with sock, _quiet_signal_exit():
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
        so its pass ends while requests in flight finish, not after them, and says where it
        listens once it does."""

        def __init__(self, config: uvicorn.Config, app: LifecycleApp) -> None:
            super().__init__(config)
            self.lifecycle_app = app

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
