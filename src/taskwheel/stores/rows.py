"""Records from database rows, and rows from requests, for every store.

Stores keep the same columns with times as epoch seconds; they differ in how JSON
comes back (text in SQLite, decoded by the driver for PostgreSQL's jsonb), which
each reader takes as ``decode``: `loads_json` (the default) or `as_stored`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from taskwheel.clock import to_datetime
from taskwheel.jobs import (
    Attempt,
    AttemptOutcome,
    DeadlinePolicy,
    Guarantee,
    Job,
    NewJob,
    Outcome,
    WorkerInfo,
    epoch_datetime,
    loads_json,
)
from taskwheel.keys import ApiKey, NewApiKey, Role
from taskwheel.lifecycle import JobStatus
from taskwheel.quotas import Quota, QuotaUsage
from taskwheel.schedules import PlannedFire, Schedule, definition_from_spec
from taskwheel.stores.executor import RunSettlement
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import FailurePolicy, RunStatus, WorkflowRun, WorkflowStep

Decode = Callable[[Any], Any]
T = TypeVar("T")


def rounds(items: Sequence[T], key: Callable[[T], int]) -> list[list[T]]:
    """``items`` split so that no key appears twice in one round, in their order: the
    items of one key apply one after the other (one set-based statement per round), as
    they would one call each."""
    split: list[list[T]] = []
    seen: dict[int, int] = {}
    for item in items:
        index = seen.get(key(item), 0)
        seen[key(item)] = index + 1
        if index == len(split):
            split.append([])
        split[index].append(item)
    return split


def outcome_rounds(outcomes: Sequence[Outcome]) -> list[list[Outcome]]:
    """Outcomes in rounds of one per job (a job claimed again by the worker that ran
    it reports both attempts in one batch: they apply in the order given)."""
    return rounds(outcomes, key=_job_id)


def _job_id(outcome: Outcome) -> int:
    return outcome.job_id


def rejected(outcomes: Sequence[Outcome], applied: Sequence[set[int]]) -> list[int]:
    """The jobs of the ``outcomes`` that their round (`outcome_rounds`) did not apply,
    ``applied`` holding each round's applied ids: in the order given, as one call per
    outcome would have answered."""
    refused: list[int] = []
    occurrence: dict[int, int] = {}
    for outcome in outcomes:
        n = occurrence.get(outcome.job_id, 0)
        occurrence[outcome.job_id] = n + 1
        if outcome.job_id not in applied[n]:
            refused.append(outcome.job_id)
    return refused


class Columns(Protocol):
    """A database row read by column name (sqlite3.Row, a psycopg dict row)."""

    def __getitem__(self, name: str, /) -> Any: ...


def as_stored(value: Any) -> Any:
    """For a driver that hands JSON columns back decoded."""
    return value


# Stored values to members: a lookup costs less than calling the enum, per job.
_STATUS_OF = {status.value: status for status in JobStatus}
_GUARANTEE_OF = {guarantee.value: guarantee for guarantee in Guarantee}
_DEADLINE_POLICY_OF = {policy.value: policy for policy in DeadlinePolicy}


# -- requests to rows -----------------------------------------------------------------------


def placement(new: NewJob, now: float) -> tuple[float, float | None, JobStatus]:
    """Where a job requested at ``now`` (the store's clock) goes: its due time and
    deadline made absolute, and whether it is ready or waits for its time."""
    run_at = new.run_at if new.run_at is not None else now + new.delay
    deadline = new.deadline if new.deadline is not None else (
        now + new.deadline_in if new.deadline_in is not None else None
    )
    return run_at, deadline, JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED


def created_job(
    new: NewJob, job_id: int, status: JobStatus, run_at: datetime, *,
    deadline: datetime | None, created_at: datetime,
) -> Job:
    """The record of a job just written, built without reading it back (positional,
    as in `job`)."""
    return Job(
        job_id,
        new.namespace,
        new.task,
        new.queue,
        new.args,
        new.kwargs,
        status,
        new.priority,
        run_at,
        deadline,
        new.timeout,
        new.max_attempts,
        0,  # attempt
        0,  # fence
        new.guarantee,
        new.deadline_policy,
        new.idempotency_key,
        None,  # worker_id
        None,  # lease_expires_at
        None,  # started_at
        created_at,
        None,  # finished_at
        False,  # cancel_requested
        None,  # result
        None,  # last_error
        None,  # checkpoint
        None,  # schedule_id
        None,  # fire_at
        None,  # workflow_run_id
        None,  # step
        new.trace_parent,
        new.fairness_key,
        new.rank_offset,
        new.fair_pass,
    )


# A new job's row, in the column order of PostgreSQL's copy_jobs query: id, namespace,
# task, queue, args, kwargs, status, priority, run_at, deadline, timeout, max_attempts,
# guarantee, deadline_policy, idempotency_key, created_at, trace_parent, fairness_key,
# rank_offset, fair_pass. A plain tuple: a
# batch makes one per job, and anything richer costs more than the rest of the row.
JobValues = tuple[
    int, str, str, str, str, str, str, int, float, float | None, float | None, int, str, str,
    str | None, float, str | None, str | None, int, float,
]


def job_values(new: NewJob, job_id: int, now: float) -> JobValues:
    """The row of a job requested at ``now`` (the store's clock) that gets ``job_id``,
    computed here for a statement that computes nothing (PostgreSQL's COPY). A
    statement that computes the same in SQL must agree (the contract suite enqueues
    both ways)."""
    run_at, deadline, status = placement(new, now)
    return (
        job_id, new.namespace, new.task, new.queue, new.args_json, new.kwargs_json,
        status.value, new.priority, run_at, deadline, new.timeout, new.max_attempts,
        new.guarantee.value, new.deadline_policy.value, new.idempotency_key, now,
        new.trace_parent, new.fairness_key, new.rank_offset, new.fair_pass,
    )




def new_job(new: NewJob, values: JobValues, now: datetime) -> Job:
    """The record of a job just written as ``values``. ``now`` is the batch's instant
    (``values[15]``) as a datetime, made once for the whole batch: most jobs are due
    then too, and making datetimes is a good part of the cost."""
    run_at = values[8]
    return created_job(
        new, values[0], _STATUS_OF[values[6]],
        now if run_at == values[15] else epoch_datetime(run_at),
        deadline=to_datetime(values[9]), created_at=now,
    )


def inserted_jobs(requests: Sequence[NewJob], found: Sequence[Columns]) -> list[Job | None]:
    """Each request's job, in the order of the requests, from the rows of PostgreSQL's
    insert_jobs. A request without a key has the row without a key of the same rank (ids
    ascend in the order of the requests); a request with a key, the row of its key. A
    row written carries only its id, status and times: its record is made from the
    first request of it (the one written), as `new_job` does; a held row carries its
    stored row whole (``stored``, decoded JSON). None for a request whose key is in no
    row (taken by a transaction that committed while the statement ran)."""
    keyless: list[Columns] = []
    keyed: dict[tuple[str, str], Columns] = {}
    for each in found:
        if (key := each["idempotency_key"]) is None:
            keyless.append(each)
        else:
            keyed.setdefault((each["namespace"], key), each)
    fresh = iter(sorted(keyless, key=lambda each: each["id"]))
    made: dict[int, Job] = {}  # a key named twice in the batch answers one record
    moments: dict[float, datetime] = {}  # a statement's rows share their instant
    answers: list[Job | None] = []
    for new in requests:
        row: Columns | None = next(fresh) if new.idempotency_key is None else keyed.get(
            (new.namespace, new.idempotency_key))
        if row is None:
            answers.append(None)
            continue
        record = made.get(row["id"])
        if record is None and row["held"]:
            record = made[row["id"]] = job(row["stored"], as_stored)
        elif record is None:
            run_at, created_at = row["run_at"], row["created_at"]
            if (when := moments.get(run_at)) is None:
                when = moments[run_at] = epoch_datetime(run_at)
            if (at := moments.get(created_at)) is None:
                at = moments[created_at] = epoch_datetime(created_at)
            record = made[row["id"]] = created_job(
                new, row["id"], _STATUS_OF[row["status"]], when,
                deadline=to_datetime(row["deadline"]), created_at=at)
        answers.append(record)
    return answers


def fired_job_values(
    schedule: Schedule, fire: PlannedFire, status: JobStatus
) -> dict[str, Any]:
    """The columns of the job a schedule's fire creates (the insert_fired_jobs query)."""
    job = schedule.definition.job
    assert job is not None
    return {
        "namespace": schedule.definition.namespace, "task": job.task,
        "queue": job.queue, "args": job.args_json, "kwargs": job.kwargs_json,
        "status": status.value, "priority": job.priority, "run_at": fire.run_at,
        "deadline": None if job.deadline_in is None else fire.fire_at + job.deadline_in,
        "timeout": job.timeout, "max_attempts": job.max_attempts,
        "guarantee": job.guarantee, "deadline_policy": job.deadline_policy,
        "schedule_id": schedule.id, "fire_at": fire.fire_at,
    }


# -- rows to records ------------------------------------------------------------------------


def job(row: Columns, decode: Decode = loads_json) -> Job:
    # Positional, in the order of `Job`'s fields (tests/unit/test_rows.py checks it): a
    # call naming 34 keywords costs CPython several microseconds more than one passing
    # them in order, and every claimed job is made here.
    return Job(
        row["id"],
        row["namespace"],
        row["task"],
        row["queue"],
        decode(row["args"]),
        decode(row["kwargs"]),
        _STATUS_OF[row["status"]],
        row["priority"],
        epoch_datetime(row["run_at"]),
        to_datetime(row["deadline"]),
        row["timeout"],
        row["max_attempts"],
        row["attempt"],
        row["fence"],
        _GUARANTEE_OF[row["guarantee"]],
        _DEADLINE_POLICY_OF[row["deadline_policy"]],
        row["idempotency_key"],
        row["worker_id"],
        to_datetime(row["lease_expires_at"]),
        to_datetime(row["started_at"]),
        epoch_datetime(row["created_at"]),
        to_datetime(row["finished_at"]),
        bool(row["cancel_requested"]),
        decode(row["result"]),
        row["last_error"],
        decode(row["checkpoint"]),
        row["schedule_id"],
        to_datetime(row["fire_at"]),
        row["workflow_run_id"],
        row["step"],
        row["trace_parent"],
        row["fairness_key"],
        row["rank_offset"],
        row["fair_pass"],
    )


def attempt(row: Columns, decode: Decode = loads_json) -> Attempt:
    return Attempt(
        job_id=row["job_id"],
        attempt=row["attempt"],
        fence=row["fence"],
        worker_id=row["worker_id"],
        started_at=epoch_datetime(row["started_at"]),
        ended_at=epoch_datetime(row["ended_at"]),
        outcome=AttemptOutcome(row["outcome"]),
        result=decode(row["result"]),
        error=row["error"],
        traceback=row["traceback"],
    )


def schedule(row: Columns) -> Schedule:
    return Schedule(
        id=row["id"],
        definition=definition_from_spec(row["name"], row["namespace"], row["spec"]),
        paused=bool(row["paused"]),
        next_fire_epoch=row["next_fire_at"],
        last_fire_at=to_datetime(row["last_fire_at"]),
        last_job_id=row["last_job_id"],
        last_job_status=row["last_job_status"],
        created_at=epoch_datetime(row["created_at"]),
        updated_at=epoch_datetime(row["updated_at"]),
        declared_by=row["declared_by"],
    )


def worker(row: Columns, now: float, decode: Decode = loads_json) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        namespace=row["namespace"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=list(decode(row["queues"])),
        concurrency=row["concurrency"],
        pool=row["pool"],
        started_at=epoch_datetime(row["started_at"]),
        last_seen_at=epoch_datetime(row["last_seen_at"]),
        # Alive while it has heartbeated within three of its intervals.
        alive=row["last_seen_at"] >= now - 3 * row["heartbeat_interval"],
    )


def workflow_run(
    row: Columns, counts: dict[str, int], steps: tuple[WorkflowStep, ...]
) -> WorkflowRun:
    return WorkflowRun(
        id=row["id"],
        namespace=row["namespace"],
        name=row["name"],
        status=RunStatus(row["status"]),
        on_failure=FailurePolicy(row["on_failure"]),
        cancel_requested=bool(row["cancel_requested"]),
        created_at=epoch_datetime(row["created_at"]),
        finished_at=to_datetime(row["finished_at"]),
        schedule_id=row["schedule_id"],
        fire_at=to_datetime(row["fire_at"]),
        step_counts=counts,
        steps=steps,
    )


def settlement(found: Sequence[Columns]) -> RunSettlement | None:
    """A run's steps by state (rows of the settlement query), or None when the query
    found none (a step is unfinished, or the run is not running)."""
    if not found:
        return None
    return RunSettlement(
        cancel_requested=bool(found[0]["cancel_requested"]),
        counts={JobStatus(row["status"]): int(row["count"]) for row in found},
    )


def api_key(row: Columns) -> ApiKey:
    return ApiKey(
        prefix=row["prefix"], digest=row["digest"], namespace=row["namespace"],
        role=Role(row["role"]), name=row["name"],
        created_at=epoch_datetime(row["created_at"]),
        revoked_at=to_datetime(row["revoked_at"]),
    )


def quota(row: Columns) -> Quota:
    rate = row["max_enqueue_rate"]
    return Quota(
        namespace=row["namespace"], max_queued=row["max_queued"],
        max_enqueue_rate=None if rate is None else float(rate),
        max_active_schedules=row["max_active_schedules"],
    )


def quota_usage(row: Columns) -> QuotaUsage:
    return QuotaUsage(quota(row), queued=int(row["queued"]), tokens=float(row["tokens"]),
                      tokens_at=float(row["tokens_at"]))


def quota_values(quota: Quota) -> dict[str, Any]:
    return {"namespace": quota.namespace, "max_queued": quota.max_queued,
            "max_enqueue_rate": quota.max_enqueue_rate,
            "max_active_schedules": quota.max_active_schedules}


def webhook(row: Columns) -> Webhook:
    return Webhook(
        namespace=row["namespace"], name=row["name"], task=row["task"], queue=row["queue"],
        secret=row["secret"], idempotency_header=row["idempotency_header"],
        idempotency_pointer=row["idempotency_pointer"],
        created_at=epoch_datetime(row["created_at"]))


def webhook_values(hook: NewWebhook) -> dict[str, Any]:
    return {"namespace": hook.namespace, "name": hook.name, "task": hook.task,
            "queue": hook.queue, "secret": hook.secret,
            "idempotency_header": hook.idempotency_header,
            "idempotency_pointer": hook.idempotency_pointer}


def api_key_values(key: NewApiKey) -> dict[str, Any]:
    return {"prefix": key.prefix, "digest": key.digest, "namespace": key.namespace,
            "role": key.role.value, "name": key.name}
