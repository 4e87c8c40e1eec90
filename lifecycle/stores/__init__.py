"""Where experiments live: the Store protocol, its three stores, and ``open_store(url)``.

=================================  =================================================
URL                                store
=================================  =================================================
``memory://``                      :class:`MemoryStore` (gone when the process ends)
``sqlite:///relative/path.db``     :class:`SqliteStore` on ``relative/path.db``
``sqlite:////absolute/path.db``    :class:`SqliteStore` on ``/absolute/path.db``
``postgresql://user@host/db``      :class:`PostgresStore` (also ``postgres://``);
                                   ``?schema=name`` picks the schema (default
                                   ``lifecycle``)
=================================  =================================================

The SQL stores migrate their schema to this build's version as they open
(``?migrate=false`` refuses an older one instead); :func:`migrate_store`
does only that, for ``lifecycle migrate``.

:class:`PostgresStore` needs the ``postgres`` extra (``pip install
'inference-lifecycle[postgres]'``); it is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lifecycle.errors import StoreError
from lifecycle.stores._migrations import MigrationReport
from lifecycle.stores.base import (
    Change,
    ChangePage,
    ExperimentKey,
    ListPage,
    ListQuery,
    Store,
    WouldWait,
)
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from lifecycle.stores.postgres import PostgresStore

__all__ = [
    "Change",
    "ChangePage",
    "ExperimentKey",
    "ListPage",
    "ListQuery",
    "MemoryStore",
    "MigrationReport",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "WouldWait",
    "migrate_store",
    "open_store",
]

_SCHEMES = "memory://, sqlite:///relative/path or sqlite:////absolute/path, postgresql://..."


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # imported on first use: it needs the postgres extra
        from lifecycle.stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'lifecycle.stores' has no attribute {name!r}")


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _migrate_option(value: str | None) -> bool:
    if value is None or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    # not the URL itself: a PostgreSQL one may hold a password
    raise StoreError(f"store URL option migrate={value!r} must be true or false")


def _parse(url: str) -> tuple[str, dict[str, Any]]:
    """The kind of store a URL names (memory, sqlite, postgres) and its constructor's arguments."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        if url.lower() == "memory:":
            return "memory", {}
        raise StoreError(f"store URL {url!r} has no scheme; use one of {_SCHEMES}")
    if scheme == "memory":
        if rest.strip("/"):
            raise StoreError(f"memory:// takes no path, got {url!r}")
        return "memory", {}
    if scheme == "sqlite":
        path, _, qs = rest.partition("?")
        if not path.startswith("/") or path == "/":
            raise StoreError(
                f"SQLite URL {url!r} needs a path: sqlite:///relative/path or sqlite:////absolute/path"
            )
        options = dict(parse_qsl(qs))
        unknown = set(options) - {"synchronous", "timeout", "migrate"}
        if unknown:
            raise StoreError(
                f"unknown SQLite URL option(s) {', '.join(sorted(unknown))}; known: synchronous, timeout, migrate"
            )
        return "sqlite", {
            "path": path[1:],
            "synchronous": options.get("synchronous", "FULL"),
            "timeout": float(options["timeout"]) if "timeout" in options else None,
            "migrate": _migrate_option(options.get("migrate")),
        }
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        ours = {k: v for k, v in reversed(query) if k in ("schema", "migrate")}  # the first wins
        rest_query = urlencode([(k, v) for k, v in query if k not in ours])
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest_query, parts.fragment))
        return "postgres", {
            "dsn": dsn,
            "schema": ours.get("schema", "lifecycle"),
            "migrate": _migrate_option(ours.get("migrate")),
        }
    raise StoreError(
        f"unknown store URL scheme {scheme + '://'!r} in {url!r}; use one of {_SCHEMES}"
    )


def open_store(url: str, *, lock_timeout: float | None = None) -> Store:
    """The store a URL names: ``memory://``, ``sqlite:///path`` or ``postgresql://...``.

    ``sqlite:///x.db`` is ``x.db`` relative to the working directory and
    ``sqlite:////var/lib/x.db`` the absolute path; ``?synchronous=NORMAL``
    trades durability on power loss for speed. A SQL store brings its
    schema to this build's version as it opens; ``?migrate=false`` (either
    SQL store) refuses a schema that is older instead, for deployments that
    migrate with ``lifecycle migrate`` before they start. Raises
    :class:`~lifecycle.errors.StoreError` for an unknown scheme or a store
    that cannot be opened, :class:`~lifecycle.errors.SchemaTooNewError`
    for a schema a later build migrated. ``lock_timeout`` (seconds, default
    5) bounds a write's wait for a lock; SQLite's ``?timeout=`` wins over it.
    """
    kind, args = _parse(url)
    bound = 5.0 if lock_timeout is None else lock_timeout
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        if args["timeout"] is None:
            args["timeout"] = bound
        return SqliteStore(**args)
    from lifecycle.stores.postgres import PostgresStore

    return PostgresStore(**args, lock_timeout=bound)


def migrate_store(url: str, *, dry_run: bool = False) -> MigrationReport:
    """Bring the schema of the SQL store a URL names to this build's version; what was done.

    With ``dry_run`` nothing is written and the report lists the steps that
    would run. The URL's ``migrate`` option is ignored. Raises
    :class:`~lifecycle.errors.StoreError` for ``memory://`` (it keeps no
    schema) and for a store that cannot be opened,
    :class:`~lifecycle.errors.SchemaTooNewError` for a newer schema.
    """
    kind, args = _parse(url)
    if kind == "memory":
        raise StoreError("memory:// keeps nothing between runs: it has no schema to migrate")
    args.pop("migrate")
    if kind == "sqlite":
        if args["timeout"] is None:
            args["timeout"] = 5.0
        if dry_run:
            return SqliteStore.plan(args["path"])
        store: SqliteStore | PostgresStore = SqliteStore(**args)
    else:
        from lifecycle.stores.postgres import PostgresStore

        if dry_run:
            return PostgresStore.plan(args["dsn"], schema=args["schema"])
        store = PostgresStore(**args, pool_size=1)
    store.close()
    return store.migration
