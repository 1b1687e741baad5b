"""The store backends the contract and integration suites run against, and their
declared gaps.

Adding a backend is one entry in `BACKENDS` and one in `DATABASE_URLS`. The factory
opens a store on a fresh, *unmigrated* database for a directory (a test's
``tmp_path``); the URL names that same database, for what opens it by URL (a second
`taskwheel.App`, the command line). The contract suite passes a `ManualClock`, which
then judges leases, due times and deadlines (``store.now()``); the integration suite,
whose workers run in real time, passes None: the store's own clock, the host's for
SQLite and the database server's for PostgreSQL, as in production. The suites migrate
the store, and reopen it (calling the factory again with the same directory) to check
durability, so two calls with the same directory must open the same database. The
PostgreSQL factory derives a schema name from the directory (on the test server
`pg_server` finds); the schemas a test made are dropped after it by `forget_databases`.
`MIGRATED_BACKENDS` are the same factories for fixtures that migrate at once: a new
SQLite file is a copy of one migrated once; on PostgreSQL the schema may be one an
earlier test finished with, at the latest version and emptied
(`pg_server.migrated_schema_for`), given back to the pool afterwards.

A backend that cannot (yet) keep part of the contract says so test by test with
`gap`, which turns that test into a strict expected failure for that backend only:
nothing is skipped silently, and a gap that gets fixed fails until its mark is removed.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from pg_server import (
    drop_made_schemas,
    migrated_schema_for,
    postgres_url,
    schema_for,
    with_schema,
)
from taskwheel.clock import Clock
from taskwheel.stores.base import Store
from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.sqlite.store import SQLiteStore

BackendFactory = Callable[[Path, Clock | None], Store]
SQLITE_FILE = "taskwheel.db"


def open_sqlite(directory: Path, clock: Clock | None) -> Store:
    return SQLiteStore(str(directory / SQLITE_FILE), clock=clock)


def open_migrated_sqlite(directory: Path, clock: Clock | None) -> Store:
    """As `open_sqlite`, for a caller that migrates the store at once: a new database
    starts as a copy of one migrated once for the test process (a copy takes a
    millisecond; migrating, about 20)."""
    path = directory / SQLITE_FILE
    if not path.exists():
        shutil.copyfile(_migrated_sqlite_template(), path)
    return SQLiteStore(str(path), clock=clock)


@functools.cache
def _migrated_sqlite_template() -> Path:
    """A SQLite file at the latest version and empty, its log folded into it."""
    path = Path(tempfile.mkdtemp(prefix="taskwheel-template-")) / SQLITE_FILE
    store = SQLiteStore(str(path))
    try:
        store.migrate()
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
    return path


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / SQLITE_FILE}"


def open_postgres(directory: Path, clock: Clock | None) -> Store:
    return PostgresStore(postgres_url(), schema=schema_for(directory), clock=clock)


def open_migrated_postgres(directory: Path, clock: Clock | None) -> Store:
    """As `open_postgres`, for a caller that migrates the store at once: the schema may
    be one an earlier test finished with, emptied (`pg_server.migrated_schema_for`)."""
    return PostgresStore(postgres_url(), schema=migrated_schema_for(directory), clock=clock)


def postgres_schema_url(directory: Path) -> str:
    return with_schema(postgres_url(), schema_for(directory))


BACKENDS: dict[str, BackendFactory] = {
    "sqlite": open_sqlite,
    "postgres": open_postgres,
}

# The same, for callers that migrate the store at once (the suites' store and app
# fixtures): the database may have been another test's, at the latest version and empty.
MIGRATED_BACKENDS: dict[str, BackendFactory] = {
    "sqlite": open_migrated_sqlite,
    "postgres": open_migrated_postgres,
}

DATABASE_URLS: dict[str, Callable[[Path], str]] = {
    "sqlite": sqlite_url,
    "postgres": postgres_schema_url,
}


def forget_databases() -> None:
    """Delete what the factories made (SQLite files go with their directories)."""
    drop_made_schemas()


GAP_MARKER = "backend_gap"


def gap(backend: str, reason: str) -> pytest.MarkDecorator:
    """Mark a test parametrised over the backends (through a ``backend`` parameter) as
    a known gap of ``backend``: a strict xfail there, a normal test everywhere else.

    Example:
        >>> @gap("sqlite", "no row locks: claims serialise on the write lock")
        ... def test_claims_do_not_block_each_other(store: Store) -> None: ...
    """
    if backend not in BACKENDS:
        raise ValueError(f"gap for unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    if not reason.strip():
        raise ValueError("a backend gap needs a reason")
    return getattr(pytest.mark, GAP_MARKER)(backend, reason)


def apply_gaps(item: pytest.Item, backend: str) -> None:
    """Turn the `gap` marks of ``item`` that name ``backend`` into strict xfails."""
    for mark in item.iter_markers(GAP_MARKER):
        name, reason = mark.args
        if name == backend:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{name} gap: {reason}"))
