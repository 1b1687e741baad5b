"""Lock orders that keep two transactions from waiting on each other in a cycle.

A worker's report and the rescue of expired leases:

A report that retries a job with a concurrency key takes its namespace's slot lock in
the middle of its statement (the slot triggers of migration 0012) and goes on to lock
the next rows of its batch. The rescue locks the expired rows up front. When a job is
in both (a worker reporting a job whose lease has just expired) and the rescue then
needs the slot lock for a keyed row, each waits for the other: PostgreSQL found the
cycle after deadlock_timeout and aborted the rescue. The rescue of keyed jobs takes
the slot lock before it locks any row, so the report never waits for it.

A scheduler's firing and an election: a firing checks the leases of every partition
its piece has (rows held FOR SHARE until it commits), an election takes the rows of the
partitions it (re)takes (FOR UPDATE, by its upsert). Both lock in name order, so a firing
waiting for a row the election holds holds none the election has still to take.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.jobs import AttemptOutcome, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import FireResult, Firing, ScheduleDefinition, build_trigger
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


def test_a_firing_waiting_for_an_election_holds_no_lease_the_election_takes_next(
    store: PostgresStore, url: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    start = datetime.fromtimestamp(time.time(), UTC)
    schedule, _ = store.upsert_schedule(ScheduleDefinition.build(
        "every-minute", new_job(), build_trigger(every=60.0, start=start)))
    names = ["partition/01", "partition/02"]
    assert store.elect_many(NS, names, "s1", 60) == set(names)
    fired: list[list[Firing]] = []
    failures: list[BaseException] = []

    def fire() -> None:
        try:  # the leases given out of name order: the store takes them in it
            fired.append(store.fire_due(NS, [schedule.id], time.time() + 61,  # due
                                        leases=[(name, "s1") for name in reversed(names)]))
        except Exception as exc:  # handed to the test's thread
            failures.append(exc)

    with store.executor("elect_many") as election:
        # The election (the same holder renewing) has taken its first row...
        assert election.elect_many(NS, names[:1], "s1", 60.0) == {names[0]}
        firing = threading.Thread(target=fire)
        firing.start()
        wait_for(lambda: waiting_on_a_lock(admin, url), what="the firing to wait for a lock")
        # ...and takes its next one: the firing, waiting for the first, holds no other.
        assert election.elect_many(NS, names[1:], "s1", 60.0) == {names[1]}
    firing.join(timeout=30)

    assert failures == []
    ((firing_done,),) = fired
    assert firing_done.fired
    assert {f.result for f in firing_done.fired} == {FireResult.CREATED}
