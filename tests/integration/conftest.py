"""Fixtures of the integration tests: an app on a fresh, migrated database of each store
backend (its test id says which), judged by the store's own clock (the host's for
SQLite, the server's for PostgreSQL) because real workers run in real time; and a
worker running on a thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

import taskwheel
from contract.backends import (
    DATABASE_URLS,
    MIGRATED_BACKENDS,
    SQLITE_FILE,
    forget_databases,
)
from pg_server import postgres_url, schema_for
from taskwheel.clock import Clock
from taskwheel.lifecycle import TERMINAL


@pytest.fixture(autouse=True)
def _forget_databases() -> Iterator[None]:
    """Each test's databases are its own: dropped after it (apps closed first)."""
    yield
    forget_databases()


@contextmanager
def migrated_app(
    backend: str, directory: Path, clock: Clock | None = None
) -> Iterator[taskwheel.App]:
    """An app on the backend's database for ``directory``, migrated before it is used
    (an app never migrates on its own); closed on exit. ``clock`` judges time in the
    store (None: the store's own clock)."""
    store = MIGRATED_BACKENDS[backend](directory, clock)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    application = taskwheel.App(DATABASE_URLS[backend](directory), store=store)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def app(backend: str, tmp_path: Path) -> Iterator[taskwheel.App]:
    with migrated_app(backend, tmp_path) as application:
        yield application


class RawDatabase:
    """SQL run on a test's database behind the store's back, as an operator, a restore
    or a bug might. A statement names tables in braces (``{jobs}``: each backend's name
    for it) and stands ``?`` for a parameter, on both backends.

    Example:
        >>> raw_database.execute("SELECT name FROM {leases}")  # doctest: +SKIP
    """

    def __init__(self, backend: str, directory: Path) -> None:
        if backend not in ("sqlite", "postgres"):
            raise ValueError(f"no raw SQL for backend {backend!r}")
        self.backend = backend
        self.directory = directory

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in a transaction of its own; the rows it returns."""
        if self.backend == "sqlite":
            text = statement.format_map(_TableNames("taskwheel_{}"))
            with closing(sqlite3.connect(self.directory / SQLITE_FILE)) as db, db:
                return db.execute(text, params).fetchall()
        schema = schema_for(self.directory)
        text = statement.format_map(_TableNames(f'"{schema}".{{}}')).replace("?", "%s")
        with psycopg.connect(postgres_url()) as conn:
            cursor = conn.execute(text.encode(), params)
            return cursor.fetchall() if cursor.description else []


class _TableNames(dict[str, str]):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern

    def __missing__(self, table: str) -> str:
        return self.pattern.format(table)


@pytest.fixture
def raw_database(backend: str, tmp_path: Path) -> RawDatabase:
    return RawDatabase(backend, tmp_path)


@contextmanager
def running_worker(app: taskwheel.App, **settings: Any) -> Iterator[taskwheel.Worker]:
    """A worker on a background thread, stopped (gracefully, then hard) on exit."""
    settings.setdefault("grace", "2s")
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(**settings))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(install_signal_handlers=False)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
        if thread.is_alive():
            worker.stop(hard=True)
            thread.join(5)
        assert not thread.is_alive(), "worker did not stop"
        assert not errors, f"worker crashed: {errors!r}"


def finished(handle: taskwheel.JobHandle) -> bool:
    return handle.refresh().status in TERMINAL
