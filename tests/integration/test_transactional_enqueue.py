"""Transactional enqueue: jobs, workflow runs and schedules created in the
application's own transaction, on its own connection (a psycopg connection to the
PostgreSQL database, a ``sqlite3`` connection to the SQLite file).

What must hold, on both stores: a commit makes the job exist and wakes the workers
after it (within milliseconds); a rollback leaves no job and no wake-up; an enqueue in
a transaction that fails later for another reason leaves nothing behind.

Wake-ups are observed on a listener of the store's notifier; that one did *not* come is
shown with a marker sent last (`waiting.notifications_until`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import orm

import taskwheel
from contract.backends import SQLITE_FILE
from pg_server import postgres_url
from taskwheel.errors import (
    InvalidInput,
    JobNotFound,
    QuotaExceeded,
    ScheduleNotFound,
    StoreError,
)
from taskwheel.lifecycle import JobStatus
from waiting import Listener, notifications_until, wait_for

from .conftest import running_worker

MARKER = ("marker", "jobs")


def connect(backend: str, directory: Path, *, autocommit: bool = False) -> Any:
    """The application's own connection to the test's database, not in autocommit
    mode unless asked (both drivers then open a transaction at the first statement)."""
    if backend == "sqlite":
        return sqlite3.connect(directory / SQLITE_FILE,
                               isolation_level=None if autocommit else "")
    return psycopg.connect(postgres_url(), autocommit=autocommit)


@pytest.fixture
def conn(backend: str, tmp_path: Path, app: taskwheel.App) -> Iterator[Any]:
    connection = connect(backend, tmp_path)
    # The application's own table, beside taskwheel's. On PostgreSQL a temporary one
    # named like taskwheel's jobs table: the store's statements must not see it.
    own_table = "jobs" if backend == "postgres" else "orders"
    connection.execute(f"CREATE TEMP TABLE {own_table} (id integer PRIMARY KEY)")
    connection.commit()
    yield connection
    with contextlib.suppress(Exception):
        connection.rollback()
    connection.close()


def own_table(backend: str) -> str:
    return "jobs" if backend == "postgres" else "orders"


def insert_own(conn: Any, backend: str, row_id: int) -> None:
    mark = "%s" if backend == "postgres" else "?"
    conn.execute(f"INSERT INTO {own_table(backend)} (id) VALUES ({mark})", [row_id])


@pytest.fixture
def listener(app: taskwheel.App) -> Iterator[Listener]:
    opened = app.store.notifier.listen()
    assert opened is not None
    yield opened
    opened.close()


@pytest.fixture
def send(app: taskwheel.App) -> taskwheel.Task[..., Any]:
    @app.task
    def send(to: str) -> str:
        return f"sent to {to}"

    return send


def settled(app: taskwheel.App) -> None:
    """Wait until the SQLite store's commit watcher has judged every transaction it
    watched (PostgreSQL has none: its NOTIFY is part of the transaction)."""
    watcher = getattr(app.store, "_commits", None)
    if watcher is not None:
        wait_for(lambda: not watcher._pending, what="the commit watcher to settle")


def wakes_before_marker(app: taskwheel.App, listener: Listener) -> list[tuple[str, str]]:
    settled(app)
    app.store.notifier.notify(*MARKER)
    return notifications_until(listener, MARKER)


def test_a_committed_enqueue_exists_only_after_the_commit_and_wakes_workers(
    app: taskwheel.App, conn: Any, backend: str, listener: Listener,
    send: taskwheel.Task[..., Any],
) -> None:
    insert_own(conn, backend, 1)
    handle = send.enqueue("a@b.c", using=conn)
    assert handle.status is JobStatus.QUEUED
    with pytest.raises(JobNotFound):  # not yet committed: others do not see it
        app.job(handle.id)
    conn.commit()
    assert app.job(handle.id).status is JobStatus.QUEUED
    assert handle.refresh().status is JobStatus.QUEUED  # handles read through the store
    assert (app.namespace, "jobs") in wakes_before_marker(app, listener)


def test_a_rolled_back_enqueue_leaves_no_job_and_no_wake_up(
    app: taskwheel.App, conn: Any, backend: str, listener: Listener,
    send: taskwheel.Task[..., Any],
) -> None:
    insert_own(conn, backend, 1)
    handle = app.enqueue("send", ["a@b.c"], connection=conn)
    delayed = send.enqueue("later@b.c", delay="1h", using=conn)
    conn.rollback()
    assert app.client.get_jobs([handle.id, delayed.id]) == []
    assert app.list_jobs() == []
    assert wakes_before_marker(app, listener) == []


def test_an_enqueue_in_a_transaction_that_fails_later_leaves_nothing(
    app: taskwheel.App, conn: Any, backend: str, listener: Listener,
    send: taskwheel.Task[..., Any],
) -> None:
    error = psycopg.errors.UniqueViolation if backend == "postgres" else sqlite3.IntegrityError

    def checkout() -> None:
        with conn.transaction() if backend == "postgres" else conn:
            insert_own(conn, backend, 1)
            app.enqueue_many([send.prepare(f"{n}@b.c") for n in range(3)], connection=conn)
            insert_own(conn, backend, 1)  # the application's own statement fails

    with pytest.raises(error):
        checkout()
    if backend == "postgres":
        conn.rollback()
    assert app.list_jobs() == []
    assert conn.execute(f"SELECT count(*) FROM {own_table(backend)}").fetchone()[0] == 0
    assert wakes_before_marker(app, listener) == []


def test_the_applications_row_and_its_job_are_committed_together(
    app: taskwheel.App, conn: Any, backend: str, send: taskwheel.Task[..., Any]
) -> None:
    insert_own(conn, backend, 7)
    handle = send.enqueue("a@b.c", using=conn)
    conn.commit()
    assert conn.execute(f"SELECT id FROM {own_table(backend)}").fetchall() == [(7,)]
    assert app.job(handle.id).record.args == ["a@b.c"]


def test_commit_wakes_a_waiting_worker_within_milliseconds(
    app: taskwheel.App, backend: str, tmp_path: Path
) -> None:
    started = threading.Event()
    seen: list[float] = []

    @app.task
    def mark() -> None:
        seen.append(time.perf_counter())
        started.set()

    warmed = threading.Event()

    @app.task
    def warm() -> None:
        warmed.set()

    # A poll interval of a minute: only a wake-up gets the job to the worker quickly.
    with running_worker(app, poll_interval="60s", concurrency=1):
        warm.enqueue()
        assert warmed.wait(10), "the worker runs a plain job"
        wait_for(lambda: app.list_jobs()[0].status is JobStatus.SUCCEEDED,
                 what="the warm-up job to end")
        latencies = []
        for _ in range(3):
            started.clear()
            seen.clear()
            conn = connect(backend, tmp_path)
            try:
                mark.enqueue(using=conn)
                committed = time.perf_counter()
                conn.commit()
                assert started.wait(5), "the committed job ran"
                latencies.append(seen[0] - committed)
            finally:
                conn.close()
    # Milliseconds where a poll would take a minute; a loaded CI machine gets a margin.
    print(f"commit to start on {backend}: {[f'{x * 1000:.1f} ms' for x in latencies]}")
    assert sorted(latencies)[1] < 0.5, latencies


def test_a_workflow_run_and_a_schedule_follow_the_transaction(
    app: taskwheel.App, conn: Any, backend: str, send: taskwheel.Task[..., Any]
) -> None:
    flow = taskwheel.Workflow("notify")
    first = flow.step(send, ["a@b.c"])
    flow.step(send, ["d@e.f"], after=[first], name="second")
    run = app.submit(flow, connection=conn)
    app.add_schedule("hourly", "send", every="1h", args=["h@b.c"], connection=conn)
    conn.rollback()
    assert app.list_workflow_runs() == []
    assert app.list_jobs() == []
    with pytest.raises(ScheduleNotFound):
        app.get_schedule("hourly")

    run = app.submit(flow, connection=conn)
    schedule = app.add_schedule("hourly", "send", every="1h", args=["h@b.c"],
                                connection=conn)
    conn.commit()
    assert run.refresh().record.step("second").job.status is JobStatus.WAITING
    assert app.get_schedule("hourly").id == schedule.id


def test_an_autocommit_connection_commits_the_enqueue_at_once(
    app: taskwheel.App, backend: str, tmp_path: Path, send: taskwheel.Task[..., Any],
    listener: Listener,
) -> None:
    conn = connect(backend, tmp_path, autocommit=True)
    try:
        handle = send.enqueue("a@b.c", using=conn)
    finally:
        conn.close()
    assert app.job(handle.id).status is JobStatus.QUEUED
    assert (app.namespace, "jobs") in wakes_before_marker(app, listener)


def test_a_connection_the_store_cannot_use_is_refused_and_nothing_is_written(
    app: taskwheel.App, backend: str, tmp_path: Path, send: taskwheel.Task[..., Any]
) -> None:
    other = (psycopg.connect(postgres_url()) if backend == "sqlite"
             else sqlite3.connect(tmp_path / "other.db"))
    try:
        with pytest.raises(InvalidInput, match="connection"):
            send.enqueue("a@b.c", using=other)
    finally:
        other.close()
    with pytest.raises(InvalidInput, match="connection"):
        send.enqueue("a@b.c", using="not a connection")
    assert app.list_jobs() == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_a_connection_to_another_file_is_refused(
    app: taskwheel.App, tmp_path: Path, send: taskwheel.Task[..., Any]
) -> None:
    other = sqlite3.connect(tmp_path / "other.db")
    try:
        with pytest.raises(InvalidInput, match="not to the store's file"):
            send.enqueue("a@b.c", using=other)
    finally:
        other.close()
    assert app.list_jobs() == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_a_failed_operation_leaves_the_callers_transaction_going(
    app: taskwheel.App, conn: Any, send: taskwheel.Task[..., Any]
) -> None:
    app.client.set_quota(max_queued=1)
    insert_own(conn, "sqlite", 1)
    with pytest.raises(QuotaExceeded):
        app.enqueue_many([send.prepare("a@b.c"), send.prepare("d@e.f")], connection=conn)
    send.enqueue("g@h.i", using=conn)
    conn.commit()
    assert [job.args for job in app.list_jobs()] == [["g@h.i"]]
    assert conn.execute("SELECT id FROM orders").fetchall() == [(1,)]


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_the_callers_search_path_and_row_factory_are_left_as_they_were(
    app: taskwheel.App, conn: Any, send: taskwheel.Task[..., Any]
) -> None:
    before = conn.execute("SHOW search_path").fetchone()
    conn.row_factory = psycopg.rows.namedtuple_row
    send.enqueue("a@b.c", using=conn)
    after = conn.execute("SHOW search_path").fetchone()
    assert after.search_path == before[0]
    # The temporary table named jobs is the application's, untouched by the enqueue.
    assert conn.execute("SELECT count(*) AS n FROM jobs").fetchone().n == 0
    conn.commit()
    assert len(app.list_jobs()) == 1


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_enqueue_into_a_failed_transaction_says_to_roll_back(
    app: taskwheel.App, conn: Any, send: taskwheel.Task[..., Any]
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1/0")
    with pytest.raises(StoreError, match="roll it back"):
        send.enqueue("a@b.c", using=conn)
    conn.rollback()
    send.enqueue("a@b.c", using=conn)
    conn.commit()
    assert len(app.list_jobs()) == 1


def sqlalchemy_url(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{directory / SQLITE_FILE}"
    return "postgresql+psycopg://" + postgres_url().split("://", 1)[1]


def test_a_sqlalchemy_session_is_the_transaction_it_runs(
    app: taskwheel.App, backend: str, tmp_path: Path, send: taskwheel.Task[..., Any],
    listener: Listener,
) -> None:
    engine = sqlalchemy.create_engine(sqlalchemy_url(backend, tmp_path))
    try:
        with orm.Session(engine) as session:
            session.execute(sqlalchemy.text("SELECT 1"))
            dropped = send.enqueue("a@b.c", using=session)
            session.rollback()
            assert app.client.get_jobs([dropped.id]) == []
            assert wakes_before_marker(app, listener) == []
            kept = send.enqueue("d@e.f", using=session.connection())
            session.commit()
        assert app.job(kept.id).record.args == ["d@e.f"]
        assert (app.namespace, "jobs") in wakes_before_marker(app, listener)
    finally:
        engine.dispose()


async def async_connection(**options: Any) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(postgres_url(), **options)
    # The application's own table named like taskwheel's (see the `conn` fixture).
    await conn.execute("CREATE TEMP TABLE jobs (id integer PRIMARY KEY)")
    await conn.commit()
    return conn


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_awaited_enqueue_on_an_async_connection_follows_its_commit(
    app: taskwheel.App, send: taskwheel.Task[..., Any], listener: Listener,
) -> None:
    async def scenario() -> tuple[int, int]:
        conn = await async_connection()
        try:
            await conn.execute("INSERT INTO jobs (id) VALUES (1)")
            path = await (await conn.execute("SHOW search_path")).fetchone()
            handle = await send.enqueue_async("a@b.c", using=conn)
            other = await app.enqueue_async("send", ["d@e.f"], connection=conn)
            assert await (await conn.execute("SHOW search_path")).fetchone() == path
            assert app.client.get_jobs([handle.id, other.id]) == []  # not committed yet
            assert wakes_before_marker(app, listener) == []
            await conn.commit()
            assert await (await conn.execute("SELECT id FROM jobs")).fetchall() == [(1,)]
            return handle.id, other.id
        finally:
            await conn.close()

    first, second = asyncio.run(scenario())
    assert [job.args for job in app.client.get_jobs([first, second])] == [["a@b.c"],
                                                                           ["d@e.f"]]
    assert (app.namespace, "jobs") in wakes_before_marker(app, listener)


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_awaited_workflow_run_and_schedule_follow_the_async_transaction(
    app: taskwheel.App, send: taskwheel.Task[..., Any],
) -> None:
    flow = taskwheel.Workflow("notify")
    first = flow.step(send, ["a@b.c"])
    flow.step(send, ["d@e.f"], after=[first], name="second")

    async def scenario(commit: bool) -> int:
        conn = await async_connection()
        try:
            run = await app.submit_async(flow, connection=conn)
            await app.add_schedule_async("hourly", "send", every="1h", args=["h@b.c"],
                                         connection=conn)
            assert app.list_workflow_runs() == []  # not committed yet
            await (conn.commit() if commit else conn.rollback())
            return run.id
        finally:
            await conn.close()

    asyncio.run(scenario(commit=False))
    assert app.list_workflow_runs() == []
    assert app.list_jobs() == []
    with pytest.raises(ScheduleNotFound):
        app.get_schedule("hourly")

    run_id = asyncio.run(scenario(commit=True))
    assert app.workflow_run(run_id).record.step("second").job.status is JobStatus.WAITING
    assert app.get_schedule("hourly").definition.name == "hourly"


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_awaited_enqueue_rolled_back_leaves_no_job_and_no_wake_up(
    app: taskwheel.App, send: taskwheel.Task[..., Any], listener: Listener,
) -> None:
    async def scenario() -> None:
        conn = await async_connection()
        try:
            await send.enqueue_async("a@b.c", using=conn)
            await app.enqueue_many_async([send.prepare(f"{n}@b.c") for n in range(300)],
                                         connection=conn)
            await conn.rollback()
        finally:
            await conn.close()

    asyncio.run(scenario())
    assert app.list_jobs() == []
    assert wakes_before_marker(app, listener) == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_awaited_batch_is_written_whole_in_the_callers_transaction(
    app: taskwheel.App, send: taskwheel.Task[..., Any],
) -> None:
    async def scenario() -> list[int]:
        conn = await async_connection()
        try:
            handles = await app.enqueue_many_async(
                [send.prepare(f"{n}@b.c") for n in range(300)], connection=conn)
            await conn.commit()
            return [handle.id for handle in handles]
        finally:
            await conn.close()

    ids = asyncio.run(scenario())
    assert len(set(ids)) == 300
    assert sorted(job.args[0] for job in app.client.get_jobs(ids)) == sorted(
        f"{n}@b.c" for n in range(300))


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_awaited_enqueue_on_an_autocommit_connection_commits_at_once(
    app: taskwheel.App, send: taskwheel.Task[..., Any], listener: Listener,
) -> None:
    async def scenario() -> int:
        conn = await async_connection(autocommit=True)
        try:
            handle = await send.enqueue_async("a@b.c", using=conn)
            assert conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
            return handle.id
        finally:
            await conn.close()

    job_id = asyncio.run(scenario())
    assert app.job(job_id).status is JobStatus.QUEUED
    assert (app.namespace, "jobs") in wakes_before_marker(app, listener)


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_the_event_loop_runs_while_an_awaited_enqueue_is_on_its_way(
    app: taskwheel.App, send: taskwheel.Task[..., Any],
) -> None:
    """The operation runs in a thread and only its statements on the loop: another
    coroutine gets the loop between them."""
    async def scenario() -> int:
        conn = await async_connection()
        ticks = 0
        going = True

        async def tick() -> None:
            nonlocal ticks
            while going:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        try:
            await app.enqueue_many_async([send.prepare(f"{n}@b.c") for n in range(20)],
                                         connection=conn)
            await conn.commit()
        finally:
            going = False
            await ticker
            await conn.close()
        return ticks

    assert asyncio.run(scenario()) > 1
    assert len(app.list_jobs()) == 20


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_an_async_connection_given_to_a_sync_enqueue_is_refused_with_the_way(
    app: taskwheel.App, send: taskwheel.Task[..., Any]
) -> None:
    async def attempt() -> None:
        conn = await psycopg.AsyncConnection.connect(postgres_url())
        try:
            with pytest.raises(InvalidInput, match="enqueue_async"):
                send.enqueue("a@b.c", using=conn)
        finally:
            await conn.close()

    asyncio.run(attempt())
    assert app.list_jobs() == []


def test_an_awaited_enqueue_takes_a_sync_connection_and_none_too(
    app: taskwheel.App, conn: Any, backend: str, send: taskwheel.Task[..., Any],
) -> None:
    async def scenario() -> tuple[int, int]:
        alone = await send.enqueue_async("d@e.f")  # first: SQLite has one writer at a time
        inside = await send.enqueue_async("a@b.c", using=conn)
        return inside.id, alone.id

    inside, alone = asyncio.run(scenario())
    assert [job.id for job in app.list_jobs()] == [alone]  # the caller has not committed
    conn.commit()
    assert sorted(job.id for job in app.list_jobs()) == sorted([inside, alone])


def test_waiting_for_room_in_a_full_queue_is_refused_inside_the_caller_s_transaction(
    tmp_path: Path,
) -> None:
    """A refusal inside the caller's transaction is the caller's to roll back, so an
    enqueue there cannot try again until the queue has room: `wait` is refused, and
    nothing is written."""
    path = tmp_path / "app.db"
    app = taskwheel.App(f"sqlite:///{path}", migrate=True)
    app.task(name="ping")(lambda: None)
    app.store.namespaces()
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(InvalidInput, match="wait"):
            app.enqueue("ping", connection=conn, wait=5)
        conn.commit()
    finally:
        conn.close()
    assert app.client.list_jobs() == []
    app.close()
