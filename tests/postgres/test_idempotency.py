"""Idempotency keys under concurrency: an enqueue that races another transaction for
the same key answers with the job that transaction created, never with a second one."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.jobs import Job, JobFilter
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

from .conftest import NS, QUEUE, new_job


def test_an_enqueue_waiting_on_a_key_another_transaction_takes_answers_with_its_job(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    request = new_job()
    request.idempotency_key = "order:42"
    answers: list[Job] = []
    with admin.transaction():
        # Another client takes the key and has not committed yet.
        [(theirs,)] = admin.execute(
            sql.SQL(
                "INSERT INTO {}.jobs (namespace, task, queue, args, kwargs, status, priority,"
                " run_at, max_attempts, guarantee, deadline_policy, idempotency_key,"
                " created_at) VALUES (%s, 'pg.noop', %s, '[]', '{{}}', 'queued', 0, 0, 1,"
                " 'at_least_once', 'expire', %s, 0) RETURNING id"
            ).format(sql.Identifier(schema)),
            (NS, QUEUE, request.idempotency_key),
        ).fetchall()
        racer = threading.Thread(target=lambda: answers.extend(store.enqueue([request])),
                                 daemon=True)
        racer.start()

        def waiting_for_the_key() -> bool:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            return bool(admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
                " AND wait_event_type = 'Lock'", (url.rsplit("application_name=", 1)[1],)
            ).fetchone())

        wait_for(waiting_for_the_key, what="the enqueue to wait for the key")
    racer.join(10)

    [answer] = answers
    assert answer.id == theirs
    assert [job.id for job in store.list_jobs(NS, JobFilter())] == [theirs]
