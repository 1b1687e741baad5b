"""The store backends the contract suite runs against, and their declared gaps.

Adding a backend is one entry in `BACKENDS`: a factory that opens a store on a fresh,
*unmigrated* database, with its clock (``store.now()``) driven by the `ManualClock`
given. The suite migrates it, and reopens it (calling the factory again with the same
directory) to check durability, so two calls with the same directory must open the
same database. A PostgreSQL factory, for example, would derive a schema or database
name from the directory and pass the clock through so that leases, due times and
deadlines are judged by it::

    BACKENDS["postgres"] = lambda directory, clock: PostgresStore(
        os.environ["TASKWHEEL_TEST_POSTGRES_URL"], schema=schema_for(directory), clock=clock
    )

A backend that cannot (yet) keep part of the contract says so test by test with
`gap`, which turns that test into a strict expected failure for that backend only:
nothing is skipped silently, and a gap that gets fixed fails until its mark is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.stores.base import Store
from taskwheel.stores.sqlite.store import SQLiteStore

BackendFactory = Callable[[Path, ManualClock], Store]


def open_sqlite(directory: Path, clock: ManualClock) -> Store:
    return SQLiteStore(str(directory / "contract.db"), clock=clock)


BACKENDS: dict[str, BackendFactory] = {
    "sqlite": open_sqlite,
}

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
