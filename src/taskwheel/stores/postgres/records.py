"""Rows of the PostgreSQL store as taskwheel's records, and requests as rows: the shared
readers of `taskwheel.stores.rows` with ``json`` columns already decoded by psycopg,
and the row layout COPY takes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskwheel.clock import to_datetime
from taskwheel.jobs import Attempt, Job, NewJob, WorkerInfo, epoch_datetime
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import Schedule
from taskwheel.stores import rows
from taskwheel.workflows import WorkflowRun, WorkflowStep

Row = dict[str, Any]

# A new job's row in the column order of the copy_jobs query.
JobValues = tuple[
    int, str, str, str, str, str, str, int, float, float | None, float | None, int, str, str,
    str | None, float,
]


def job_values(new: NewJob, job_id: int, now: float) -> JobValues:
    """The row of a job requested at ``now`` (the store's clock). For COPY, which
    computes nothing; the insert_jobs query computes the same in SQL (the contract
    suite enqueues both ways)."""
    run_at, deadline, status = rows.placement(new, now)
    return (
        job_id, new.namespace, new.task, new.queue, new.args_json, new.kwargs_json,
        status.value, new.priority, run_at, deadline, new.timeout, new.max_attempts,
        new.guarantee.value, new.deadline_policy.value, new.idempotency_key, now,
    )


def new_job(new: NewJob, values: JobValues, now: datetime) -> Job:
    """The record of a job just written. ``now`` is the batch's instant (``values[15]``)
    as a datetime, made once for the whole batch: most jobs are due then too, and
    making datetimes is a good part of the cost."""
    run_at = values[8]
    return rows.created_job(
        new, values[0], JobStatus(values[6]),
        now if run_at == values[15] else epoch_datetime(run_at),
        deadline=to_datetime(values[9]), created_at=now,
    )


def job(row: Row) -> Job:
    return rows.job(row, rows.as_stored)


def attempt(row: Row) -> Attempt:
    return rows.attempt(row, rows.as_stored)


def schedule(row: Row) -> Schedule:
    return rows.schedule(row)


def worker(row: Row, now: float) -> WorkerInfo:
    return rows.worker(row, now, rows.as_stored)


def workflow_run(
    row: Row, counts: dict[str, int], steps: tuple[WorkflowStep, ...]
) -> WorkflowRun:
    return rows.workflow_run(row, counts, steps)
