"""Losing the database: a store whose pooled connections were killed carries on with new
ones; an operation caught by the loss fails with `StoreUnavailable` and can be retried; an
unreachable database is a clear error at once; a worker whose every session was killed is
woken by the next job all the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

import taskwheel
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.stores.postgres import PostgresStore, StoreUnavailable
from waiting import wait_for

from .conftest import NS, QUEUE, new_job, sessions_of, terminate


def application_name_of(url: str) -> str:
    return url.rsplit("application_name=", 1)[1]


def test_the_store_carries_on_when_its_pooled_connections_are_killed(
    url: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    store = PostgresStore(url + "&pool_min_size=3")
    try:
        store.migrate()
        [first] = store.enqueue([new_job(1)])
        name = application_name_of(url)

        def pool_sessions() -> set[int] | None:
            pids = sessions_of(admin, name)
            return pids if len(pids) >= 3 else None

        killed = wait_for(pool_sessions, what="the pool to open its connections")

        terminate(admin, killed)
        # Every connection in the pool is dead: each is found so and replaced, unseen.
        [second] = store.enqueue([new_job(2)])
        claimed = store.claim_jobs(NS, "w", [QUEUE], 10, 30).jobs

        assert [job.id for job in claimed] == [first.id, second.id]
        assert sessions_of(admin, name).isdisjoint(killed)
    finally:
        store.close()


def test_an_operation_cut_off_by_the_loss_fails_with_store_unavailable_and_a_retry_works(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    [job] = store.enqueue([new_job()])
    errors: list[BaseException] = []

    def cancel() -> None:
        try:
            store.cancel_job(NS, job.id)
        except BaseException as exc:
            errors.append(exc)

    with admin.transaction():  # holds the job's row: the cancel waits for it
        admin.execute(sql.SQL("SELECT 1 FROM {}.jobs WHERE id = %s FOR UPDATE")
                      .format(sql.Identifier(schema)), (job.id,))
        thread = threading.Thread(target=cancel, daemon=True)
        thread.start()

        def waiting_for_the_lock() -> tuple[Any, ...] | None:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            return admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " AND wait_event_type = 'Lock'", (application_name_of(url),)).fetchone()

        waiting = wait_for(waiting_for_the_lock, what="the cancel to wait for the row lock")
        terminate(admin, {int(waiting[0])})
        thread.join(10)

    [error] = errors
    assert isinstance(error, StoreUnavailable)
    assert error.operation == "cancel_job"
    assert "cancel_job failed" in str(error)
    assert store.get_job(NS, job.id).status is JobStatus.QUEUED  # rolled back
    assert store.cancel_job(NS, job.id).status is JobStatus.CANCELLED


def test_an_unreachable_database_is_a_clear_error_at_once() -> None:
    # Port 1 on the loopback: nothing listens there, the connection is refused.
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test?pool_timeout=30")
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.migrate()
    finally:
        store.close()

    assert time.monotonic() - started < 10  # well before the pool's timeout
    message = str(raised.value)
    assert message.startswith("PostgreSQL store: migrate failed: cannot connect to the database")
    assert "127.0.0.1" in message


@pytest.fixture
def app(url: str) -> Iterator[taskwheel.App]:
    store = PostgresStore(url)
    store.migrate()  # an app never migrates on its own
    application = taskwheel.App(url, namespace=NS, store=store)
    yield application
    application.close()


def test_a_worker_whose_sessions_were_killed_is_still_woken_by_the_next_job(
    app: taskwheel.App, url: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    @app.task
    def double(n: int) -> int:
        return 2 * n

    # Polling once a minute: only a wake-up gets the jobs below run within the test.
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(poll_interval="60s",
                                                                  grace="2s"))
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False},
                              daemon=True)
    thread.start()
    try:
        first = double.enqueue(1)
        wait_for(lambda: first.refresh().status is JobStatus.SUCCEEDED, what="the first job")
        name = application_name_of(url)
        listening = wait_for(lambda: sessions_of(admin, f"{name}:listen"), what="a LISTEN")

        terminate(admin, sessions_of(admin, name) | listening)
        wait_for(lambda: sessions_of(admin, f"{name}:listen") - listening,
                 what="the worker to LISTEN again")
        second = double.enqueue(21)

        assert wait_for(lambda: second.refresh().status in TERMINAL, timeout=20,
                        what="the second job")
        assert second.refresh().record.result == 42
    finally:
        worker.stop()
        thread.join(20)
    assert not thread.is_alive()
    assert {job.status for job in app.store.list_jobs(NS, JobFilter())} == {JobStatus.SUCCEEDED}
