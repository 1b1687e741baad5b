"""The store backends the contract suite runs against, and their declared gaps.

Adding a backend is one entry in `BACKENDS`: a factory that opens a store on a fresh,
*unmigrated* database, with its clock (``store.now()``) driven by the `ManualClock`
given. The suite migrates it, and reopens it (calling the factory again with the same
directory) to check durability, so two calls with the same directory must open the
same database. The PostgreSQL factory derives a schema name from the directory (on the
test server `pg_server` finds) and passes the clock through, so that leases, due times
and deadlines are judged by it; the schemas a test made are dropped after it by
`forget_databases`.

A backend that cannot (yet) keep part of the contract says so test by test with
`gap`, which turns that test into a strict expected failure for that backend only:
nothing is skipped silently, and a gap that gets fixed fails until its mark is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pg_server import drop_made_schemas, postgres_url, schema_for
from taskwheel.clock import ManualClock
from taskwheel.stores.base import Store
from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.sqlite.store import SQLiteStore

BackendFactory = Callable[[Path, ManualClock], Store]


def open_sqlite(directory: Path, clock: ManualClock) -> Store:
    return SQLiteStore(str(directory / "contract.db"), clock=clock)


def open_postgres(directory: Path, clock: ManualClock) -> Store:
    return PostgresStore(postgres_url(), schema=schema_for(directory), clock=clock)


BACKENDS: dict[str, BackendFactory] = {
    "sqlite": open_sqlite,
    "postgres": open_postgres,
}


def forget_databases() -> None:
    """Delete what the factories made (SQLite files go with their directories)."""
    drop_made_schemas()

GAP_MARKER = "backend_gap"


def gap(backend: str, reason: str) -> pytest.MarkDecorator:
    """Mark a contract test as a known gap of ``backend``: a strict xfail there, a
    normal test everywhere else.

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
