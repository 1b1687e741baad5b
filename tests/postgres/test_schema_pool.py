"""The pool of migrated schemas the suites' fixtures borrow (`pg_server`): a schema goes
back only as the migrations make it, emptied; one a test changed is dropped."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import pg_server
from pg_server import drop_made_schemas, migrated_schema_for, postgres_url
from taskwheel.stores.postgres import PostgresStore

from .conftest import new_job


def used(directory: Path, change: str | None = None) -> tuple[str, int]:
    """A schema lent to ``directory``, migrated, given a job, then changed by
    ``change`` (SQL with ``{schema}``) if given, and handed back; its name and the
    job's id."""
    name = migrated_schema_for(directory)
    store = PostgresStore(postgres_url(), schema=name)
    try:
        store.migrate()
        (job,) = store.enqueue([new_job()])
    finally:
        store.close()
    if change is not None:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(sql.SQL(change).format(schema=sql.Identifier(name)))
    drop_made_schemas()
    return name, job.id


def exists(name: str) -> bool:
    with psycopg.connect(postgres_url()) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


@pytest.fixture(autouse=True)
def _own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty pool of this test's own, whatever the others left."""
    monkeypatch.setattr(pg_server, "_pool", [])


def test_a_schema_comes_back_empty_and_at_the_latest_version(tmp_path: Path) -> None:
    first, first_job = used(tmp_path / "a")
    assert pg_server._pool == [first]

    again, job = used(tmp_path / "b")

    assert (again, job) == (first, first_job)  # the same schema, emptied: ids from 1
    assert pg_server._pool == [first]
    drop_made_schemas()


@pytest.mark.parametrize("change", [
    "ALTER TABLE {schema}.jobs DISABLE TRIGGER jobs_became_ready",
    "CREATE INDEX ON {schema}.jobs (task)",
    "ALTER TABLE {schema}.jobs ADD COLUMN extra int",
    "ALTER TABLE {schema}.jobs SET (fillfactor = 50)",
    "CREATE OR REPLACE FUNCTION {schema}.clock_now(given double precision)"
    " RETURNS double precision LANGUAGE sql AS 'SELECT 0::double precision'",
])
def test_a_schema_a_test_changed_is_dropped_not_lent_again(
    tmp_path: Path, change: str
) -> None:
    clean, _ = used(tmp_path / "a")  # known to the pool by its whole definition
    changed, _ = used(tmp_path / "b", change)

    assert changed == clean
    assert pg_server._pool == []
    assert not exists(changed)
