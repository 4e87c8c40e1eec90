"""One worker process of ``lifecycle serve --workers N``.

The parent binds the address, checks the flags and opens the store once
(so its schema is migrated once), then starts N processes through
uvicorn's process supervisor, which hands each the bound socket. uvicorn
starts each worker in a fresh interpreter (``spawn``) and imports what the
config names: :func:`app`, the app factory, and :data:`Protocol`, the
guarded HTTP protocol class. Both read the parent's flags from the
environment variable ``LIFECYCLE_WORKER_ARGS`` (JSON of the parsed
flags), so every worker builds the same store, service, reconciler, auth
and actuator the one-process server builds. The reconcilers of the workers
share the due work through the store's claims, as replicas do.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
from typing import Any

__all__ = ["ARGS_VARIABLE", "app", "encode_args"]  # and Protocol, made on first use

#: where the parent leaves its parsed flags for the workers
ARGS_VARIABLE = "LIFECYCLE_WORKER_ARGS"


def encode_args(args: argparse.Namespace) -> str:
    """The flags as the workers read them back (every value is a str, number, bool or None)."""
    return json.dumps(vars(args), default=str)


def _args() -> argparse.Namespace:
    raw = os.environ.get(ARGS_VARIABLE)
    if raw is None:
        raise RuntimeError(
            f"a lifecycle worker needs {ARGS_VARIABLE}; run lifecycle serve --workers N"
        )
    return argparse.Namespace(**json.loads(raw))


def app() -> Any:
    """The worker's app: what ``lifecycle serve`` builds from the parent's flags."""
    from lifecycle.http.serve import build_app, close_if_closable, tune_gc

    built, closing = build_app(_args())
    for thing in closing:
        atexit.register(close_if_closable, thing)
    tune_gc()
    return built


def _protocol() -> type:
    from lifecycle.http.serve import Limits, http_protocol

    return http_protocol(Limits.from_args(_args()))


def __getattr__(name: str) -> Any:
    if name == "Protocol":  # made on first use: a worker's flags are known only then
        value = _protocol()
        globals()["Protocol"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
