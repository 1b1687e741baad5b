"""Rows of the PostgreSQL store as taskwheel's records, and requests as rows.

Times are stored as epoch seconds, as in the SQLite store, and become the same aware
UTC datetimes; ``json`` columns arrive already decoded by psycopg.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskwheel.clock import to_datetime
from taskwheel.jobs import (
    Attempt,
    AttemptOutcome,
    Job,
    NewJob,
    WorkerInfo,
    epoch_datetime,
    job_from_row,
)
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import Schedule, definition_from_spec
from taskwheel.workflows import FailurePolicy, RunStatus, WorkflowRun, WorkflowStep

Row = dict[str, Any]

# A new job's row in the column order of the copy_jobs query.
JobValues = tuple[
    int, str, str, str, str, str, str, int, float, float | None, float | None, int, str, str,
    str | None, float,
]


def job_values(new: NewJob, job_id: int, now: float) -> JobValues:
    """The row of a job requested at ``now`` (the store's clock): its due time and
    deadline made absolute, and whether it is ready or waits for its time. For COPY,
    which computes nothing; the insert_jobs query computes the same in SQL (the
    contract suite enqueues both ways)."""
    run_at = new.run_at if new.run_at is not None else now + new.delay
    deadline = new.deadline if new.deadline is not None else (
        now + new.deadline_in if new.deadline_in is not None else None
    )
    status = JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED
    return (
        job_id, new.namespace, new.task, new.queue, new.args_json, new.kwargs_json,
        status.value, new.priority, run_at, deadline, new.timeout, new.max_attempts,
        new.guarantee.value, new.deadline_policy.value, new.idempotency_key, now,
    )


def new_job(new: NewJob, values: JobValues, now: datetime) -> Job:
    """The record of a job just written, built without reading it back. ``now`` is the
    batch's instant (``values[15]``) as a datetime, made once for the whole batch: most
    jobs are due then too, and making datetimes is a good part of the cost."""
    run_at = values[8]
    return Job(
        id=values[0],
        namespace=new.namespace,
        task=new.task,
        queue=new.queue,
        args=new.args,
        kwargs=new.kwargs,
        status=JobStatus(values[6]),
        priority=new.priority,
        run_at=now if run_at == values[15] else epoch_datetime(run_at),
        deadline=to_datetime(values[9]),
        timeout=new.timeout,
        max_attempts=new.max_attempts,
        attempt=0,
        fence=0,
        guarantee=new.guarantee,
        deadline_policy=new.deadline_policy,
        idempotency_key=new.idempotency_key,
        worker_id=None,
        lease_expires_at=None,
        started_at=None,
        created_at=now,
        finished_at=None,
        cancel_requested=False,
        result=None,
        last_error=None,
        checkpoint=None,
    )


def job(row: Row) -> Job:
    return job_from_row(row, _as_stored)


def _as_stored(value: Any) -> Any:
    """jsonb columns come back decoded."""
    return value


def attempt(row: Row) -> Attempt:
    return Attempt(
        job_id=row["job_id"],
        attempt=row["attempt"],
        fence=row["fence"],
        worker_id=row["worker_id"],
        started_at=epoch_datetime(row["started_at"]),
        ended_at=epoch_datetime(row["ended_at"]),
        outcome=AttemptOutcome(row["outcome"]),
        result=row["result"],
        error=row["error"],
        traceback=row["traceback"],
    )


def schedule(row: Row) -> Schedule:
    return Schedule(
        id=row["id"],
        definition=definition_from_spec(row["name"], row["namespace"], row["spec"]),
        paused=row["paused"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        last_job_id=row["last_job_id"],
        last_job_status=row["last_job_status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def worker(row: Row, now: float) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        namespace=row["namespace"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=list(row["queues"]),
        concurrency=row["concurrency"],
        pool=row["pool"],
        started_at=epoch_datetime(row["started_at"]),
        last_seen_at=epoch_datetime(row["last_seen_at"]),
        # Alive while it has heartbeated within three of its intervals.
        alive=row["last_seen_at"] >= now - 3 * row["heartbeat_interval"],
    )


def workflow_run(
    row: Row, counts: dict[str, int], steps: tuple[WorkflowStep, ...]
) -> WorkflowRun:
    return WorkflowRun(
        id=row["id"],
        namespace=row["namespace"],
        name=row["name"],
        status=RunStatus(row["status"]),
        on_failure=FailurePolicy(row["on_failure"]),
        cancel_requested=row["cancel_requested"],
        created_at=epoch_datetime(row["created_at"]),
        finished_at=to_datetime(row["finished_at"]),
        schedule_id=row["schedule_id"],
        fire_at=to_datetime(row["fire_at"]),
        step_counts=counts,
        steps=steps,
    )
