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

:class:`PostgresStore` needs the ``postgres`` extra (``pip install
'inference-lifecycle[postgres]'``); it is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lifecycle.errors import StoreError
from lifecycle.stores.base import ListPage, ListQuery, Store
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from lifecycle.stores.postgres import PostgresStore

__all__ = [
    "ListPage",
    "ListQuery",
    "MemoryStore",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "open_store",
]

_SCHEMES = "memory://, sqlite:///relative/path or sqlite:////absolute/path, postgresql://..."


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # imported on first use: it needs the postgres extra
        from lifecycle.stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'lifecycle.stores' has no attribute {name!r}")


def open_store(url: str) -> Store:
    """The store a URL names: ``memory://``, ``sqlite:///path`` or ``postgresql://...``.

    ``sqlite:///x.db`` is ``x.db`` relative to the working directory and
    ``sqlite:////var/lib/x.db`` the absolute path; ``?synchronous=NORMAL``
    trades durability on power loss for speed. Raises
    :class:`~lifecycle.errors.StoreError` for an unknown scheme or a store
    that cannot be opened.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        if url.lower() == "memory:":
            return MemoryStore()
        raise StoreError(f"store URL {url!r} has no scheme; use one of {_SCHEMES}")
    if scheme == "memory":
        if rest.strip("/"):
            raise StoreError(f"memory:// takes no path, got {url!r}")
        return MemoryStore()
    if scheme == "sqlite":
        path, _, qs = rest.partition("?")
        if not path.startswith("/") or path == "/":
            raise StoreError(
                f"SQLite URL {url!r} needs a path: sqlite:///relative/path or sqlite:////absolute/path"
            )
        options = dict(parse_qsl(qs))
        unknown = set(options) - {"synchronous", "timeout"}
        if unknown:
            raise StoreError(
                f"unknown SQLite URL option(s) {', '.join(sorted(unknown))}; known: synchronous, timeout"
            )
        return SqliteStore(
            path[1:],
            synchronous=options.get("synchronous", "FULL"),
            timeout=float(options.get("timeout", 30.0)),
        )
    if scheme in ("postgresql", "postgres"):
        from lifecycle.stores.postgres import PostgresStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        schema = next((v for k, v in query if k == "schema"), "lifecycle")
        rest_query = urlencode([(k, v) for k, v in query if k != "schema"])
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest_query, parts.fragment))
        return PostgresStore(dsn, schema=schema)
    raise StoreError(
        f"unknown store URL scheme {scheme + '://'!r} in {url!r}; use one of {_SCHEMES}"
    )
