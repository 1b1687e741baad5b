"""Stores: where taskwheel's state lives. `open_store` picks one from a database URL."""

from __future__ import annotations

import os

from taskwheel.clock import Clock
from taskwheel.errors import InvalidInput
from taskwheel.stores.base import Store, WorkerRegistration

DEFAULT_DATABASE_URL = "sqlite:///taskwheel.db"
DATABASE_URL_ENV = "TASKWHEEL_DATABASE_URL"
POSTGRES_SCHEMES = ("postgres://", "postgresql://")

__all__ = [
    "DATABASE_URL_ENV", "DEFAULT_DATABASE_URL", "Store", "WorkerRegistration", "open_store",
    "sqlite_path",
]


def resolve_database_url(url: str | None) -> str:
    """The URL given, else ``$TASKWHEEL_DATABASE_URL``, else ./taskwheel.db."""
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def open_store(url: str | None = None, *, clock: Clock | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``
    or ``sqlite://:memory:``; or ``postgresql://user@host/db`` (also ``postgres://``),
    with ``?schema=name`` for a schema other than ``taskwheel`` (see
    `taskwheel.stores.postgres.ConnectionSettings` for the pool's options).

    Opening creates nothing. A URL without a scheme (a bare ``foo``, which would have
    meant a new file ``./foo``), a SQLite URL with parameters (``?mode=ro`` is not part
    of a file name) and a PostgreSQL URL with a parameter libpq does not know or an
    empty schema are refused with `InvalidInput` naming the part.

    Example:
        >>> store = open_store("sqlite:///jobs.db")
        >>> open_store("jobs.db")
        Traceback (most recent call last):
          ...
        InvalidInput: database_url: no scheme in 'jobs.db' (use sqlite:///jobs.db, ...)
    """
    resolved = resolve_database_url(url)
    if resolved.startswith("sqlite:"):
        from taskwheel.stores.sqlite.store import SQLiteStore

        return SQLiteStore(sqlite_path(resolved), clock=clock)
    if resolved.startswith(POSTGRES_SCHEMES):
        try:
            from taskwheel.stores.postgres.store import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name not in ("psycopg", "psycopg_pool"):
                raise
            raise InvalidInput(
                "database_url",
                f"the PostgreSQL store needs {exc.name}: pip install 'taskwheel[postgres]'",
            ) from None
        return PostgresStore(resolved, clock=clock)
    if "://" in resolved:
        scheme = resolved.split("://", 1)[0]
        raise InvalidInput(
            "database_url", f"unknown database scheme {scheme!r} (use sqlite or postgresql)"
        )
    raise InvalidInput(
        "database_url",
        f"no scheme in {resolved!r} (use sqlite:///{resolved.lstrip('/') or 'path.db'} for "
        "a SQLite file, or postgresql://user@host/db)",
    )


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:`` URL names (``:memory:`` for an in-memory database).

    Example:
        >>> sqlite_path("sqlite:///jobs.db"), sqlite_path("sqlite:////srv/jobs.db")
        ('jobs.db', '/srv/jobs.db')
    """
    path = url.removeprefix("sqlite:").removeprefix("//")
    for mark, part in (("?", "parameters"), ("#", "a fragment")):
        if mark in path:
            raise InvalidInput(
                "database_url", f"a SQLite URL takes no {part}: {url!r} would name the file "
                f"{path.removeprefix('/')!r} (write the path alone, e.g. sqlite:///jobs.db)"
            )
    if path in ("", "/"):
        raise InvalidInput("database_url", f"no file in {url!r}")
    path = path.removeprefix("/") if not path.startswith("//") else path[1:]
    return path
