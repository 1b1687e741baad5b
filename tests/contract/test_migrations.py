"""Migrations: applying them all yields the reviewed schema snapshot, each is recorded once
and in order, and migrating again changes nothing.

The SQLite snapshot is ``src/taskwheel/stores/sqlite/schema.sql``: the ``sql`` of the
tables, then of the indexes, in ``sqlite_master`` after every migration, each sorted.
When a migration is added or changed on purpose, regenerate it and review the diff::

    TASKWHEEL_UPDATE_SCHEMA=1 .venv/bin/pytest tests/contract/test_migrations.py
"""

from __future__ import annotations

import difflib
import os
import sqlite3
from contextlib import closing
from importlib import resources
from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.jobs import JobFilter
from taskwheel.stores.sql_files import load_migrations
from taskwheel.stores.sqlite.store import SQLiteStore

from .backends import BackendFactory
from .conftest import NS, T0, enqueue_one

UPDATE_ENV = "TASKWHEEL_UPDATE_SCHEMA"
SNAPSHOT = Path(str(resources.files("taskwheel.stores.sqlite").joinpath("schema.sql")))
MIGRATIONS_PACKAGE = "taskwheel.stores.sqlite.migrations"
HEADER = f"""\
-- The SQLite schema that applying every migration in migrations/ yields: the `sql` of
-- the tables, then of the indexes, in sqlite_master, sorted. Generated for review; the
-- migrations are the source of truth. After changing them, regenerate with
--     {UPDATE_ENV}=1 .venv/bin/pytest tests/contract/test_migrations.py

"""


def schema_of(database: Path) -> str:
    """The normalised schema of a SQLite file, in the snapshot's format."""
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE type IN ('table', 'index') AND sql IS NOT NULL"
        ).fetchall()
    # Tables first, so that the snapshot loads as a script; each kind sorted by its sql.
    statements = sorted(
        (kind != "table", "\n".join(line.rstrip() for line in sql.strip().splitlines()) + ";")
        for kind, name, sql in rows
        if not name.startswith("sqlite_")
    )
    return HEADER + "\n\n".join(sql for _, sql in statements) + "\n"


def migrated_sqlite(directory: Path) -> Path:
    database = directory / "migrated.db"
    store = SQLiteStore(str(database), clock=ManualClock(T0))
    try:
        store.migrate()
    finally:
        store.close()
    return database


# -- every backend --------------------------------------------------------------------------


def test_migrating_a_fresh_database_applies_every_migration_once(
    open_backend: BackendFactory, tmp_path: Path, clock: ManualClock
) -> None:
    store = open_backend(tmp_path, clock)
    try:
        assert store.schema_version() == 0

        applied = store.migrate()

        assert applied, "a fresh database needs every migration"
        assert store.schema_version() == len(applied)
        assert store.migrate() == []
        assert store.schema_version() == len(applied)
    finally:
        store.close()


def test_migrating_an_up_to_date_database_keeps_its_data(
    open_backend: BackendFactory, tmp_path: Path, clock: ManualClock
) -> None:
    store = open_backend(tmp_path, clock)
    store.migrate()
    job = enqueue_one(store)
    version = store.schema_version()
    store.close()

    reopened = open_backend(tmp_path, clock)
    try:
        assert reopened.migrate() == []
        assert reopened.schema_version() == version
        assert reopened.list_jobs(NS, JobFilter()) == [job]
    finally:
        reopened.close()


# -- SQLite ---------------------------------------------------------------------------------------


def test_sqlite_migrations_yield_the_schema_snapshot(tmp_path: Path) -> None:
    actual = schema_of(migrated_sqlite(tmp_path))
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(actual, encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""

    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT} (snapshot)",
                tofile="schema after applying every migration",
            )
        )
        pytest.fail(
            "The migrations no longer yield the schema snapshot. If the change is intended, "
            f"regenerate it with `{UPDATE_ENV}=1 .venv/bin/pytest "
            "tests/contract/test_migrations.py` and review the diff.\n" + diff,
            pytrace=False,
        )


def test_sqlite_schema_snapshot_is_a_loadable_schema(tmp_path: Path) -> None:
    snapshot = SNAPSHOT.read_text(encoding="utf-8")
    loaded = tmp_path / "loaded.db"
    with closing(sqlite3.connect(loaded)) as conn:
        conn.executescript(snapshot)

    assert schema_of(loaded) == snapshot


def test_sqlite_migrations_table_records_every_migration_file_in_order(tmp_path: Path) -> None:
    files = [(version, name) for version, name, _ in load_migrations(MIGRATIONS_PACKAGE)]
    assert files, "no migration files found"

    with closing(sqlite3.connect(migrated_sqlite(tmp_path))) as conn:
        recorded = conn.execute(
            "SELECT version, name, applied_at FROM taskwheel_migrations ORDER BY rowid"
        ).fetchall()

    assert [(version, name) for version, name, _ in recorded] == files
    assert {applied_at for _, _, applied_at in recorded} == {T0}
