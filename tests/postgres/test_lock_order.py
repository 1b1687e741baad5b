"""Lock order between a worker's report and the rescue of expired leases.

A report that retries a job with a concurrency key takes its namespace's slot lock in
the middle of its statement (the slot triggers of migration 0012) and goes on to lock
the next rows of its batch. The rescue locks the expired rows up front. When a job is
in both (a worker reporting a job whose lease has just expired) and the rescue then
needs the slot lock for a keyed row, each waits for the other: PostgreSQL found the
cycle after deadlock_timeout and aborted the rescue. The rescue of keyed jobs takes
the slot lock before it locks any row, so the report never waits for it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.jobs import AttemptOutcome, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Rescue
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

from .conftest import NS, QUEUE, new_job

KEY = "tenant:7"


def keyed() -> NewJob:
    return replace(new_job(), gate_key=KEY, gate_capacity=10)


def waiting_on_a_lock(admin: psycopg.Connection[tuple[Any, ...]], url: str) -> bool:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    name = url.rsplit("application_name=", 1)[1]
    return admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND wait_event_type = 'Lock'", (name,)).fetchone() == (1,)


def test_a_report_and_the_rescue_of_a_job_in_both_never_wait_on_each_other(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    retried, expired = store.enqueue([keyed(), keyed()])
    claimed = {job.id: job for job in store.claim(
        ClaimRequest("w1", (NS,), (QUEUE,), 10, 30.0)).jobs}
    admin.execute(sql.SQL("UPDATE {}.jobs SET lease_expires_at = lease_expires_at - 60"
                          " WHERE id = %s").format(sql.Identifier(schema)), (expired.id,))
    rescued: list[Rescue] = []
    failures: list[BaseException] = []

    def rescue() -> None:
        try:
            rescued.append(store.rescue_expired_leases(NS))
        except Exception as exc:  # handed to the test's thread
            failures.append(exc)

    with store.executor("finish_attempts") as report:
        # The report's first row: a keyed job retried takes the namespace's slot lock.
        report.finish_attempts([Outcome(retried.id, claimed[retried.id].fence,
                                        JobStatus.QUEUED, AttemptOutcome.FAILED, error="x")])
        rescuer = threading.Thread(target=rescue)
        rescuer.start()
        wait_for(lambda: waiting_on_a_lock(admin, url), what="the rescue to wait for a lock")
        # Its next row: the job whose lease expired, which the rescue must not hold.
        moved, rejected = report.finish_attempts([Outcome(
            expired.id, claimed[expired.id].fence, JobStatus.SUCCEEDED,
            AttemptOutcome.SUCCEEDED, "null")])
    rescuer.join(timeout=30)

    assert failures == []
    assert rejected == []
    assert [row.id for row in moved] == [expired.id]
    assert rescued == [Rescue(requeued=[], failed=[])]  # the report came first
    jobs = {job.id: job.status for job in store.get_jobs(NS, [retried.id, expired.id])}
    assert jobs == {retried.id: JobStatus.QUEUED, expired.id: JobStatus.SUCCEEDED}
