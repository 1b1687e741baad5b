"""Migrations: applying them all yields the reviewed schema snapshot, each is recorded once
and in order, and migrating again changes nothing.

The SQLite snapshot is ``src/taskwheel/stores/sqlite/schema.sql``: the ``sql`` of the
tables, then of the indexes, in ``sqlite_master`` after every migration, each sorted.
The PostgreSQL snapshot is ``src/taskwheel/stores/postgres/schema.sql``: the functions,
tables (columns, constraints, storage parameters), indexes and triggers of the store's
schema after every migration, as PostgreSQL's catalogs describe them, each sorted.
When a migration is added or changed on purpose, regenerate them and review the diff::

    TASKWHEEL_UPDATE_SCHEMA=1 .venv/bin/pytest tests/contract/test_migrations.py
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sqlite3
from contextlib import closing
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pg_server import fresh_schema, postgres_url
from taskwheel.clock import ManualClock
from taskwheel.jobs import JobFilter
from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.sql_files import load_migrations
from taskwheel.stores.sqlite.store import SQLiteStore

from .backends import BackendFactory
from .conftest import NS, QUEUE, T0, enqueue_one, new_job

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
        # Each store's own: a version one store needs may be nothing to the other.
        package = MIGRATIONS_PACKAGE if isinstance(store, SQLiteStore) else PG_MIGRATIONS_PACKAGE
        assert len(applied) == len(load_migrations(package))
        assert store.schema_version() == store.latest_schema_version()
        assert store.migrate() == []
        assert store.schema_version() == store.latest_schema_version()
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


def upgraded_with_stand_ins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int, rows: list[str],
    names: set[str],
) -> tuple[SQLiteStore, dict[str, str]]:
    """A SQLite store migrated to just below ``version``, given ``rows`` (INSERTs whose
    two parameters are NS and T0) and stand-ins of the triggers ``names`` (what the old
    ones were does not matter: that they go does), then migrated to today; and the
    database's triggers by name. The caller closes the store."""
    from taskwheel.stores.sqlite import store as sqlite_store

    every = sqlite_store._MIGRATIONS
    monkeypatch.setattr(sqlite_store, "_MIGRATIONS", [m for m in every if m[0] < version])
    path = tmp_path / "upgraded.db"
    store = SQLiteStore(str(path), clock=ManualClock(T0))
    try:
        store.migrate()
        with closing(sqlite3.connect(path)) as conn, conn:
            for row in rows:
                conn.execute(row, (NS, T0))
            for name in sorted(names):
                conn.execute(f"CREATE TRIGGER {name} AFTER UPDATE OF status ON taskwheel_jobs"
                             " BEGIN SELECT 1; END")
        monkeypatch.setattr(sqlite_store, "_MIGRATIONS", every)
        assert store.migrate()
        with closing(sqlite3.connect(path)) as conn:
            triggers = dict(conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())
    except BaseException:
        store.close()
        raise
    return store, triggers


A_KEY = ("INSERT INTO taskwheel_limits (namespace, key, capacity, created_at)"
         " VALUES (?, 'k', 1, ?)")
SLOT_TRIGGERS = {"taskwheel_jobs_slot_taken", "taskwheel_jobs_slot_freed"}


def test_an_upgrade_past_version_15_replaces_the_slot_triggers_of_a_database_with_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite creates its slot triggers with the first key (arm_limits), so a database
    of version 12 to 14 with keys holds that era's triggers; version 15 replaced them.
    Stand-ins of the same names must give way to today's, and a key must then keep its
    limit."""
    store, triggers = upgraded_with_stand_ins(tmp_path, monkeypatch, 15, [A_KEY],
                                              SLOT_TRIGGERS)
    try:
        assert set(triggers) >= SLOT_TRIGGERS
        assert all("SELECT 1; END" not in triggers[name] for name in SLOT_TRIGGERS), triggers

        keyed = [dataclasses.replace(new_job(), gate_key="k", gate_capacity=1)
                 for _ in range(2)]
        store.enqueue(keyed)
        taken = store.claim_jobs(NS, "w1", [QUEUE], 10, 30).jobs
        assert len(taken) == 1  # the key's one slot
    finally:
        store.close()


def test_an_upgrade_past_version_21_gives_the_gate_and_slot_triggers_probes_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 21 rewrote how the triggers SQLite creates only while they have work (the
    slot triggers with the first key, the gate triggers with the first pause) look for
    a pause: a database with a key and a paused queue must get today's in place of the
    ones it holds, and both gates must then hold."""
    names = SLOT_TRIGGERS | {"taskwheel_jobs_gate_inserted", "taskwheel_jobs_gate_ready"}
    a_pause = ("INSERT INTO taskwheel_pauses (namespace, kind, name, paused_at)"
               " VALUES (?, 'queue', 'held', ?)")
    store, triggers = upgraded_with_stand_ins(tmp_path, monkeypatch, 21, [A_KEY, a_pause],
                                              names)
    try:
        assert set(triggers) >= names
        for name in names:
            assert "SELECT 1; END" not in triggers[name], name
            assert "OR (p.kind" not in triggers[name], name
            assert "OR (kind" not in triggers[name], name

        keyed = [dataclasses.replace(new_job(), gate_key="k", gate_capacity=1)
                 for _ in range(2)]
        store.enqueue([new_job(queue="held"), *keyed])
        taken = store.claim_jobs(NS, "w1", [QUEUE, "held"], 10, 30).jobs
        assert [job.queue for job in taken] == [QUEUE]  # the key's one slot; the pause
    finally:
        store.close()


JOB_ROWS = [
    # A queued job, a running one with its lease, a blocked keyed one, a waiting rated
    # one, a finished fire with its result: every column that a later version added set.
    "INSERT INTO taskwheel_jobs (id, namespace, task, queue, args, kwargs, status, priority,"
    " run_at, max_attempts, guarantee, deadline_policy, created_at)"
    " VALUES (1, ?, 'contract.noop', 'default', '[1]', '{}', 'queued', 3, ?, 3,"
    " 'at_least_once', 'expire', 0)",
    "INSERT INTO taskwheel_jobs (id, namespace, task, queue, args, kwargs, status, priority,"
    " run_at, deadline, timeout, max_attempts, attempt, fence, guarantee, deadline_policy,"
    " idempotency_key, worker_id, lease_expires_at, started_at, created_at, checkpoint,"
    " trace_parent) VALUES (2, ?, 'contract.noop', 'default', '[]', '{\"a\": 1}',"
    " 'running', -2, ?, 9e9, 1.5, 5, 1, 4, 'at_most_once', 'run_late', 'idem', 'w9',"
    " 8e9, 1, 0, '{\"step\": 2}', '00-ab-cd-01')",
    "INSERT INTO taskwheel_jobs (id, namespace, task, queue, args, kwargs, status, priority,"
    " run_at, max_attempts, guarantee, deadline_policy, created_at, gate_key, blocked,"
    " fairness_key, rank_offset, fair_pass) VALUES (3, ?, 'contract.noop', 'default',"
    " '[]', '{}', 'queued', 0, ?, 3, 'at_least_once', 'expire', 0, 'k', 1, 'f', 2, 0.5)",
    "INSERT INTO taskwheel_jobs (id, namespace, task, queue, args, kwargs, status, priority,"
    " run_at, max_attempts, guarantee, deadline_policy, created_at, rate_key, rate_cost,"
    " rate_fence) VALUES (4, ?, 'contract.noop', 'default', '[]', '{}', 'waiting', 0, ?, 3,"
    " 'at_least_once', 'expire', 0, 'r', 2, 0)",
    "INSERT INTO taskwheel_jobs (id, namespace, task, queue, args, kwargs, status, priority,"
    " run_at, max_attempts, guarantee, deadline_policy, created_at, finished_at, result,"
    " last_error, schedule_id, fire_at, workflow_run_id, step, failure_policy, waiting_on)"
    " VALUES (5, ?, 'contract.noop', 'default', '[]', '{}', 'succeeded', 0, ?, 3,"
    " 'at_least_once', 'expire', 0, 2, '7', 'boom', 11, 12, 13, 'load', 'continue', 0)",
]


def test_an_upgrade_past_version_22_keeps_every_job_and_arms_the_triggers_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 22 writes the jobs table anew (its CHECKs as comparisons): every row must
    come through unchanged, column by column, with its indexes; the triggers the store
    creates only while they have work (a key's, a pause's, a bucket's), which went with
    the old table, must be there again; and the CHECKs must still refuse what the old
    ones refused."""
    a_pause = ("INSERT INTO taskwheel_pauses (namespace, kind, name, paused_at)"
               " VALUES (?, 'queue', 'held', ?)")
    a_bucket = ("INSERT INTO taskwheel_rates (namespace, key, rate, burst, created_at,"
                " tokens, refilled_at) VALUES (?, 'r', 1, 1, ?, 1, 0)")
    armed = SLOT_TRIGGERS | {"taskwheel_jobs_gate_inserted", "taskwheel_jobs_gate_ready",
                             "taskwheel_jobs_rate_wait"}
    store, triggers = upgraded_with_stand_ins(
        tmp_path, monkeypatch, 22, [*JOB_ROWS, A_KEY, a_pause, a_bucket], armed)
    path = tmp_path / "upgraded.db"
    try:
        assert set(triggers) == armed
        assert all("SELECT 1; END" not in sql for sql in triggers.values()), triggers
        with closing(sqlite3.connect(path)) as conn:
            conn.row_factory = sqlite3.Row
            found = [dict(row) for row in conn.execute(
                "SELECT * FROM taskwheel_jobs ORDER BY id")]
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            for bad in ("status = 'queue'", "guarantee = 'once'",
                        "deadline_policy = 'late'", "max_attempts = 0"):
                with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint"):
                    conn.execute(f"UPDATE taskwheel_jobs SET {bad} WHERE id = 1")
            # The indexes the claim and the gates read were built over the copied rows.
            ready = conn.execute("SELECT id FROM taskwheel_jobs INDEXED BY"
                                 " taskwheel_jobs_ready WHERE status = 'queued'"
                                 " AND blocked = 0 AND namespace = ?", (NS,)).fetchall()
            assert [row[0] for row in ready] == [1]
        assert [row["id"] for row in found] == [1, 2, 3, 4, 5]
        assert found[1] | {"run_at": None} == {
            "id": 2, "namespace": NS, "task": "contract.noop", "queue": "default",
            "args": "[]", "kwargs": '{"a": 1}', "status": "running", "priority": -2,
            "run_at": None, "deadline": 9e9, "timeout": 1.5, "max_attempts": 5,
            "attempt": 1, "fence": 4, "guarantee": "at_most_once",
            "deadline_policy": "run_late", "idempotency_key": "idem", "worker_id": "w9",
            "lease_expires_at": 8e9, "started_at": 1.0, "created_at": 0.0,
            "finished_at": None, "cancel_requested": 0, "result": None, "last_error": None,
            "checkpoint": '{"step": 2}', "schedule_id": None, "fire_at": None,
            "workflow_run_id": None, "step": None, "failure_policy": None,
            "waiting_on": 0, "blocked": 0, "trace_parent": "00-ab-cd-01", "gate_key": None,
            "fairness_key": None, "rank_offset": 0, "fair_pass": 0.0, "rate_key": None,
            "rate_cost": 1, "rate_fence": None}
        assert (found[2]["gate_key"], found[2]["blocked"], found[2]["fairness_key"],
                found[2]["rank_offset"], found[2]["fair_pass"]) == ("k", 1, "f", 2, 0.5)
        assert (found[3]["status"], found[3]["rate_key"], found[3]["rate_cost"],
                found[3]["rate_fence"]) == ("waiting", "r", 2, 0)
        assert (found[4]["result"], found[4]["schedule_id"], found[4]["fire_at"],
                found[4]["workflow_run_id"], found[4]["step"],
                found[4]["failure_policy"]) == ("7", 11, 12.0, 13, "load", "continue")

        # The gates still hold: the paused queue's job and the key's second job wait.
        keyed = [dataclasses.replace(new_job(), gate_key="k", gate_capacity=1)
                 for _ in range(2)]
        store.enqueue([new_job(queue="held"), *keyed])
        taken = store.claim_jobs(NS, "w1", [QUEUE, "held"], 10, 30).jobs
        assert sorted((job.id, job.queue) for job in taken) == [(1, QUEUE), (7, QUEUE)]
    finally:
        store.close()


# -- PostgreSQL -----------------------------------------------------------------------------

PG_SNAPSHOT = Path(str(resources.files("taskwheel.stores.postgres").joinpath("schema.sql")))
PG_MIGRATIONS_PACKAGE = "taskwheel.stores.postgres.migrations"
PG_HEADER = f"""\
-- The PostgreSQL schema that applying every migration in migrations/ yields, as the
-- catalogs describe it: functions, tables (columns, constraints, storage parameters),
-- views, indexes, triggers; each kind sorted by name. Generated for review; the migrations are
-- the source of truth (and say why). After changing them, regenerate with
--     {UPDATE_ENV}=1 .venv/bin/pytest tests/contract/test_migrations.py

"""


def pg_schema_of(schema: str) -> str:
    """The schema's definition in the snapshot's format, unqualified (as if created with
    ``search_path`` set to it), so that it can be loaded into any schema."""
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        functions = [
            row[0].strip() + ";"
            for row in conn.execute(
                "SELECT pg_get_functiondef(p.oid) FROM pg_proc AS p"
                " WHERE p.pronamespace = %s::regnamespace ORDER BY p.proname", (schema,))
        ]
        tables = [
            _pg_table(conn, oid, name)
            for oid, name in conn.execute(
                "SELECT oid, relname FROM pg_class"
                " WHERE relnamespace = %s::regnamespace AND relkind = 'r' ORDER BY relname",
                (schema,))
        ]
        views = [
            f"CREATE VIEW {name} AS\n{definition.rstrip(';')};"
            for name, definition in conn.execute(
                "SELECT relname, pg_get_viewdef(oid, true) FROM pg_class"
                " WHERE relnamespace = %s::regnamespace AND relkind = 'v' ORDER BY relname",
                (schema,))
        ]
        indexes = [
            row[0] + ";"
            for row in conn.execute(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
                " JOIN pg_class AS c ON c.oid = i.indexrelid"
                " WHERE c.relnamespace = %s::regnamespace AND NOT EXISTS ("
                "   SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)"
                " ORDER BY c.relname", (schema,))
        ]
        triggers = [
            row[0] + ";"
            for row in conn.execute(
                "SELECT pg_get_triggerdef(t.oid, true) FROM pg_trigger AS t"
                " JOIN pg_class AS c ON c.oid = t.tgrelid"
                " WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal"
                " ORDER BY t.tgname", (schema,))
        ]
    # Some definitions name the schema whatever the search_path (a random test name).
    text = "\n\n".join([*functions, *tables, *views, *indexes, *triggers]).replace(f"{schema}.", "")
    return PG_HEADER + text + "\n"


def _pg_table(conn: psycopg.Connection[tuple[object, ...]], oid: int, name: str) -> str:
    identity = {"a": " GENERATED ALWAYS AS IDENTITY", "d": " GENERATED BY DEFAULT AS IDENTITY"}
    lines = [
        f"    {column} {kind}{identity.get(str(ident), '')}"
        + (f" DEFAULT {default}" if default is not None else "")
        + (" NOT NULL" if not_null else "")
        for column, kind, ident, default, not_null in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity,"
            " pg_get_expr(d.adbin, d.adrelid), a.attnotnull"
            " FROM pg_attribute AS a"
            " LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", (oid,))
    ]
    lines += [
        f"    CONSTRAINT {constraint} {definition}"
        for constraint, definition in conn.execute(
            # PostgreSQL 18 lists NOT NULL as constraints too: those are on the columns.
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s AND contype <> 'n' ORDER BY conname", (oid,))
    ]
    row = conn.execute("SELECT reloptions FROM pg_class WHERE oid = %s", (oid,)).fetchone()
    options = f" WITH ({', '.join(row[0])})" if row and row[0] else ""
    return f"CREATE TABLE {name} (\n" + ",\n".join(lines) + f"\n){options};"


def test_postgres_migrations_yield_the_schema_snapshot() -> None:
    with fresh_schema() as schema:
        store = PostgresStore(postgres_url(), schema=schema, clock=ManualClock(T0))
        try:
            store.migrate()
        finally:
            store.close()
        actual = pg_schema_of(schema)
    if os.environ.get(UPDATE_ENV) == "1":
        PG_SNAPSHOT.write_text(actual, encoding="utf-8")
    expected = PG_SNAPSHOT.read_text(encoding="utf-8") if PG_SNAPSHOT.exists() else ""

    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{PG_SNAPSHOT} (snapshot)",
                tofile="schema after applying every migration",
            )
        )
        pytest.fail(
            "The PostgreSQL migrations no longer yield the schema snapshot. If the change is "
            f"intended, regenerate it with `{UPDATE_ENV}=1 .venv/bin/pytest "
            "tests/contract/test_migrations.py` and review the diff.\n" + diff,
            pytrace=False,
        )


def test_postgres_schema_snapshot_is_a_loadable_schema() -> None:
    snapshot = PG_SNAPSHOT.read_text(encoding="utf-8")
    with fresh_schema() as schema:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(snapshot.encode())

        assert pg_schema_of(schema) == snapshot


def test_postgres_migrations_table_records_every_migration_file_in_order() -> None:
    files = [(version, name) for version, name, _ in load_migrations(PG_MIGRATIONS_PACKAGE)]
    assert files, "no migration files found"

    with fresh_schema() as schema:
        store = PostgresStore(postgres_url(), schema=schema, clock=ManualClock(T0))
        try:
            assert store.migrate() == [name for _, name in files]
        finally:
            store.close()
        with psycopg.connect(postgres_url()) as conn:
            recorded = conn.execute(
                sql.SQL("SELECT version, name, applied_at FROM {}.migrations ORDER BY version")
                .format(sql.Identifier(schema))
            ).fetchall()

    assert [(version, name) for version, name, _ in recorded] == files
    assert {applied_at for _, _, applied_at in recorded} == {T0}


def test_postgres_migrations_go_in_the_schema_the_url_names() -> None:
    with fresh_schema() as schema:
        store = PostgresStore(f"{postgres_url()}?schema={schema}")
        try:
            store.migrate()
            assert store.schema_version() == load_migrations(PG_MIGRATIONS_PACKAGE)[-1][0]
        finally:
            store.close()
        with psycopg.connect(postgres_url()) as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT relname FROM pg_class"
                " WHERE relnamespace = %s::regnamespace AND relkind = 'r'", (schema,))}

    assert {"jobs", "attempts", "workers", "leases", "schedules", "migrations"} <= tables
