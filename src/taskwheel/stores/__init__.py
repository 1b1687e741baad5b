"""Stores: where taskwheel's state lives. `open_store` picks one from a database URL."""

from __future__ import annotations

import os

from taskwheel.clock import Clock
from taskwheel.errors import InvalidInput
from taskwheel.stores.base import Store, WorkerRegistration

DEFAULT_DATABASE_URL = "sqlite:///taskwheel.db"
DATABASE_URL_ENV = "TASKWHEEL_DATABASE_URL"
POSTGRES_SCHEMES = ("postgres://", "postgresql://")

__all__ = ["DATABASE_URL_ENV", "DEFAULT_DATABASE_URL", "Store", "WorkerRegistration", "open_store"]


def resolve_database_url(url: str | None) -> str:
    """The URL given, else ``$TASKWHEEL_DATABASE_URL``, else ./taskwheel.db."""
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def open_store(url: str | None = None, *, clock: Clock | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
    ``sqlite://:memory:`` or a bare file path; or ``postgresql://user@host/db`` (also
    ``postgres://``), with ``?schema=name`` for a schema other than ``taskwheel`` (see
    `taskwheel.stores.postgres.ConnectionSettings` for the pool's options)."""
    resolved = resolve_database_url(url)
    if resolved.startswith("sqlite:"):
        from taskwheel.stores.sqlite.store import SQLiteStore

        path = resolved.removeprefix("sqlite:").removeprefix("//")
        if path in ("", "/"):
            raise InvalidInput("database_url", f"no file in {resolved!r}")
        path = path.removeprefix("/") if not path.startswith("//") else path[1:]
        return SQLiteStore(path if path != ":memory:" else ":memory:", clock=clock)
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
    from taskwheel.stores.sqlite.store import SQLiteStore

    return SQLiteStore(resolved, clock=clock)
