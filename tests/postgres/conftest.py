"""PostgreSQL-only tests: a store on a schema of its own (made by the test, dropped after
it), judged by the database's own clock as in production; an admin connection to look
at and act on the server's sessions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pg_server import fresh_schema, postgres_url, with_schema
from taskwheel.jobs import NewJob
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

NS = "pg"
QUEUE = "default"


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


@pytest.fixture
def url(schema: str) -> str:
    """The store's URL; its own application_name tells its sessions from everyone else's
    on the shared server."""
    return with_schema(postgres_url(), schema) + f"&application_name=tw-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        yield conn


def new_job(*args: Any, namespace: str = NS, delay: float = 0.0) -> NewJob:
    return NewJob(
        task="pg.noop", args=list(args), kwargs={}, args_json=json.dumps(list(args)),
        kwargs_json="{}", queue=QUEUE, priority=0, namespace=namespace, max_attempts=3,
        delay=delay,
    )


def sessions_of(admin: psycopg.Connection[tuple[Any, ...]], application_name: str) -> set[int]:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchall()
    return {int(row[0]) for row in rows}


def terminate(admin: psycopg.Connection[tuple[Any, ...]], pids: set[int]) -> None:
    """Kill server sessions and wait until they are gone (as a server restart would)."""
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_for(lambda: not pids & sessions(admin), what=f"sessions {pids} to end")


def sessions(admin: psycopg.Connection[tuple[Any, ...]]) -> set[int]:
    # Inside a transaction pg_stat_activity is a snapshot taken once: take a new one.
    admin.execute("SELECT pg_stat_clear_snapshot()")
    return {int(row[0]) for row in admin.execute("SELECT pid FROM pg_stat_activity")}
