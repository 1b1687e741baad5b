"""The embedded SQLite store: one file shared by the processes of one host.

WAL mode with ``synchronous=NORMAL``; every write is one ``BEGIN IMMEDIATE``
transaction serialised across processes (see `connection`). The decisions are
`SQLStore`'s; this module is the dialect: `SQLiteExecutor` runs the statements of
``queries.sql`` (batches as loops inside the single writer's transaction, which costs
no round trips) and turns rows into records.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from taskwheel.clock import Clock, SystemClock, to_datetime
from taskwheel.errors import InvalidInput
from taskwheel.jobs import (
    Attempt,
    AttemptOutcome,
    Job,
    JobFilter,
    NewJob,
    Outcome,
    WorkerInfo,
    epoch_datetime,
)
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.notify import Notifier, NullNotifier
from taskwheel.schedules import FirePlan, PlannedFire, Schedule, ScheduleDefinition
from taskwheel.stores import rows
from taskwheel.stores.base import WorkerRegistration
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.engine import Access, SQLStore
from taskwheel.stores.executor import Executor, Moved, QueueCount, ReadyCount
from taskwheel.stores.sql_files import load_migrations
from taskwheel.stores.sqlite.connection import (
    STORE,
    Database,
    WriteTransaction,
    split_statements,
    translated,
)
from taskwheel.stores.sqlite.notifier import LocalNotifier
from taskwheel.stores.sqlite.workflow_steps import Q, WorkflowStatements

_MIGRATIONS = load_migrations("taskwheel.stores.sqlite.migrations")


class SQLiteExecutor(WorkflowStatements, Executor):
    """Statements on one connection: inside a write transaction begun on first use,
    or reads in autocommit (``write`` is None)."""

    def __init__(
        self, clock: Clock, *, write: WriteTransaction | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self._clock = clock
        self._write = write
        self._read_conn = conn
        self._now: float | None = None
        self.wakes: set[tuple[str, str]] = set()

    def _c(self) -> sqlite3.Connection:
        if self._write is not None:
            return self._write.connection()
        assert self._read_conn is not None
        return self._read_conn

    def now(self) -> float:
        if self._now is None:
            if self._write is not None:
                self._write.connection()  # judged once the write lock is held
            self._now = self._clock.now()
        return self._now

    def wake(self, namespace: str, event: str) -> None:
        self.wakes.add((namespace, event))

    def _wake_ready(self, moved: Sequence[Moved]) -> None:
        for row in moved:
            if row.status is JobStatus.QUEUED:
                self.wake(row.namespace, "jobs")

    # -- jobs ---------------------------------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        conn, now = self._c(), self.now()
        params = [_insert_params(new, now) for new in jobs]
        insert = Q["insert_jobs"]
        if not any(new.idempotency_key for new in jobs):
            # No conflicts possible: one executemany, and the ids are consecutive
            # because nobody else can insert inside this IMMEDIATE transaction.
            conn.executemany(insert, params)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            ids = range(last - len(jobs) + 1, last + 1)
            created = [_new_job(new, p, i) for new, p, i in zip(jobs, params, ids, strict=True)]
        else:
            created = []
            for new, p in zip(jobs, params, strict=True):
                cursor = conn.execute(insert, p)
                if cursor.rowcount == 1:
                    assert cursor.lastrowid is not None
                    created.append(_new_job(new, p, cursor.lastrowid))
                else:  # the key is taken: hand back the job that holds it
                    row = conn.execute(
                        Q["job_by_idempotency_key"],
                        {"namespace": new.namespace, "key": new.idempotency_key},
                    ).fetchone()
                    created.append(rows.job(row))
        for namespace in {job.namespace for job in created if job.status is JobStatus.QUEUED}:
            self.wake(namespace, "jobs")
        return created

    def promote_due(self, namespaces: Sequence[str]) -> int:
        conn, now = self._c(), self.now()
        promoted = 0
        for namespace in namespaces:
            count = conn.execute(Q["promote_due"], {"namespace": namespace, "now": now}).rowcount
            if count:
                promoted += count
                self.wake(namespace, "jobs")
        return promoted

    def expire_missed(self, namespaces: Sequence[str], *, waiting: bool) -> list[Moved]:
        conn, now = self._c(), self.now()
        query = Q["expire_missed_any" if waiting else "expire_missed"]
        return [_moved(row) for namespace in namespaces
                for row in conn.execute(query, {"namespace": namespace, "now": now})]

    def claim_jobs(self, request: ClaimRequest) -> list[Job]:
        conn, now = self._c(), self.now()
        params: dict[str, Any] = {
            "worker_id": request.worker_id, "queues": json.dumps(list(request.queues)),
            "lease_ttl": request.lease_ttl, "now": now,
        }
        jobs: list[Job] = []
        for namespace in request.namespaces:
            wanted = request.limit - len(jobs)
            if wanted <= 0:
                break
            params.update(namespace=namespace, limit=wanted)
            jobs += [rows.job(row) for row in conn.execute(Q["claim_jobs"], params)]
        return jobs

    def next_due(self, namespaces: Sequence[str]) -> float | None:
        conn = self._c()
        found = [conn.execute(Q["next_due"], {"namespace": namespace}).fetchone()[0]
                 for namespace in namespaces]
        due = [float(value) for value in found if value is not None]
        return min(due) if due else None

    def heartbeat(self, worker_id: str, lease_ttl: float) -> dict[int, bool]:
        conn = self._c()
        params = {"worker_id": worker_id, "now": self.now(), "lease_ttl": lease_ttl}
        held = conn.execute(Q["heartbeat"], params).fetchall()
        conn.execute(Q["touch_worker"], params)
        return {int(row[0]): bool(row[1]) for row in held}

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        return self._c().execute(Q["extend_lease"], {
            "id": job_id, "fence": fence, "now": self.now(), "lease_ttl": lease_ttl,
        }).rowcount == 1

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> tuple[list[Moved], list[int]]:
        conn, now = self._c(), self.now()
        finish, record = Q["finish_attempts"], Q["record_attempt"]
        moved: list[Moved] = []
        rejected: list[int] = []
        for outcome in outcomes:
            row = conn.execute(finish, {
                "id": outcome.job_id, "fence": outcome.fence, "status": outcome.status.value,
                "result": outcome.result_json, "error": outcome.error,
                "retry_delay": outcome.retry_delay, "now": now,
            }).fetchone()
            if row is None:
                rejected.append(outcome.job_id)
                continue
            moved.append(_moved(row))
            conn.execute(record, _attempt_params(
                row, now=now, outcome=outcome.outcome, result=outcome.result_json,
                error=outcome.error, traceback=outcome.traceback,
            ))
        self._wake_ready(moved)
        return moved, rejected

    def release_queue_one(self, moved: Sequence[Moved]) -> None:
        schedules = sorted({row.schedule_id for row in moved
                            if row.schedule_id is not None and row.status in TERMINAL})
        if schedules:
            for row in self._c().execute(Q["release_queue_one"], {
                "schedule_ids": json.dumps(schedules), "now": self.now(),
            }):
                self.wake(row["namespace"], "jobs")

    def release_waiting(self, namespaces: Sequence[str]) -> int:
        conn, now = self._c(), self.now()
        released = 0
        for namespace in namespaces:
            count = len(conn.execute(Q["release_waiting"],
                                     {"namespace": namespace, "now": now}).fetchall())
            if count:
                released += count
                self.wake(namespace, "jobs")
        return released

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[Moved]:
        conn, now = self._c(), self.now()
        moved: list[Moved] = []
        for job_id, fence in fences.items():
            row = conn.execute(Q["release_jobs"], {
                "id": job_id, "fence": fence, "worker_id": worker_id, "now": now,
            }).fetchone()
            if row is None:
                continue
            moved.append(_moved(row))
            conn.execute(Q["record_attempt"], _attempt_params(
                row, now=now, outcome=AttemptOutcome.INTERRUPTED, result=None,
                error="worker shut down before the job finished", traceback=None,
            ))
        self._wake_ready(moved)
        return moved

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        return self._c().execute(
            Q["save_checkpoint"], {"id": job_id, "fence": fence, "state": state_json}
        ).rowcount == 1

    def rescue_expired(self, namespaces: Sequence[str]) -> list[Moved]:
        conn, now = self._c(), self.now()
        moved: list[Moved] = []
        for namespace in namespaces:
            scope = {"namespace": namespace, "now": now}
            requeued = conn.execute(Q["rescue_requeue"], scope).fetchall()
            failed = conn.execute(Q["rescue_fail"], scope).fetchall()
            for row in [*requeued, *failed]:
                conn.execute(Q["record_attempt"], _attempt_params(
                    row, now=now, outcome=AttemptOutcome.LEASE_EXPIRED, result=None,
                    error="lease expired: the worker stopped heartbeating", traceback=None,
                ))
            moved += [Moved(int(row["id"]), row["namespace"], JobStatus.QUEUED)
                      for row in requeued]
            moved += [_moved(row) for row in failed]
            conn.execute(Q["prune_workers"], scope)
        self._wake_ready(moved)
        return moved

    def lock_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        # The write lock is held: nobody else changes them until this transaction ends.
        return self.get_jobs(namespace, job_ids)

    def request_cancel(self, namespace: str, job_id: int) -> None:
        self._c().execute(Q["request_cancel"], {"namespace": namespace, "id": job_id})

    def cancel_pending(self, namespace: str, job_id: int) -> list[Moved]:
        return [_moved(row) for row in self._c().execute(
            Q["cancel_pending"], {"namespace": namespace, "id": job_id, "now": self.now()})]

    def requeue_finished(self, namespace: str, job_id: int, expected: JobStatus) -> Job | None:
        row = self._c().execute(Q["requeue_finished"], {
            "namespace": namespace, "id": job_id, "expected_status": expected.value,
            "now": self.now(),
        }).fetchone()
        if row is None:
            return None
        self.wake(namespace, "jobs")
        return rows.job(row)

    def dead_ids(self, namespace: str) -> list[int]:
        return [int(row[0]) for row in self._c().execute(Q["dead_ids"], {"namespace": namespace})]

    def purge_dead(self, namespace: str) -> int:
        conn = self._c()
        scope = {"namespace": namespace}
        conn.execute(Q["delete_dead_dependencies"], scope)
        conn.execute(Q["purge_dead_attempts"], scope)
        return conn.execute(Q["purge_dead"], scope).rowcount

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        return [rows.job(row) for row in self._c().execute(
            Q["get_jobs"], {"namespace": namespace, "ids": json.dumps(list(job_ids))})]

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        return [rows.job(row) for row in self._c().execute(Q["list_jobs"], {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "queue": where.queue, "task": where.task, "limit": where.limit,
        })]

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        return [rows.attempt(row) for row in self._c().execute(
            Q["list_attempts"], {"namespace": namespace, "job_id": job_id})]

    # -- schedules ------------------------------------------------------------------------------

    def upsert_schedule(self, definition: ScheduleDefinition, next_fire_at: float | None) -> bool:
        return self._c().execute(Q["upsert_schedule"], {
            "namespace": definition.namespace, "name": definition.name,
            "spec": definition.spec_json(), "next_fire_at": next_fire_at, "now": self.now(),
        }).rowcount == 1

    def schedule_by_name(self, namespace: str, name: str) -> Schedule | None:
        row = self._c().execute(Q["schedule_by_name"], {"namespace": namespace, "name": name}
                                ).fetchone()
        return None if row is None else rows.schedule(row)

    def schedules_by_id(self, namespace: str, ids: Sequence[int]) -> list[Schedule]:
        return [rows.schedule(row) for row in self._c().execute(
            Q["schedules_by_id"], {"namespace": namespace, "ids": json.dumps(list(ids))})]

    def list_schedules(self, namespace: str) -> list[Schedule]:
        return [rows.schedule(row) for row in self._c().execute(
            Q["list_schedules"], {"namespace": namespace})]

    def pause_schedule(self, namespace: str, name: str, paused: bool) -> None:
        self._c().execute(Q["pause_schedule"], {
            "namespace": namespace, "name": name, "paused": int(paused), "now": self.now()})

    def remove_schedule(self, namespace: str, name: str) -> bool:
        return self._c().execute(
            Q["remove_schedule"], {"namespace": namespace, "name": name}).rowcount > 0

    def schedules_due(
        self, namespace: str, until: float, after: float | None
    ) -> list[tuple[int, float]]:
        return [(int(row[0]), float(row[1])) for row in self._c().execute(Q["schedules_due"], {
            "namespace": namespace, "until": until,
            "after": -math.inf if after is None else after,
        })]

    def schedules_changed(self, namespace: str, since: float) -> list[tuple[int, float | None]]:
        return [(int(row[0]), None if row[1] is None else float(row[1]))
                for row in self._c().execute(
                    Q["schedules_changed"], {"namespace": namespace, "since": since})]

    def lease_held(self, namespace: str, name: str, holder: str) -> bool:
        return self._c().execute(Q["lease_held"], {
            "namespace": namespace, "name": name, "holder": holder, "now": self.now(),
        }).fetchone() is not None

    def advance_schedules(self, namespace: str, plans: Sequence[FirePlan]) -> list[bool]:
        conn, now = self._c(), self.now()
        return [conn.execute(Q["advance_schedules"], {
            "id": plan.schedule_id, "namespace": namespace, "next_fire_at": plan.next_fire_at,
            "expected": plan.expected_next,
            "last_fire_at": plan.fires[-1].fire_at if plan.fires else None, "now": now,
        }).rowcount == 1 for plan in plans]

    def unfinished_of_schedule(self, schedule_id: int) -> list[JobStatus]:
        return [JobStatus(row[0]) for row in self._c().execute(
            Q["unfinished_of_schedule"], {"schedule_id": schedule_id})]

    def insert_fired_job(
        self, schedule: Schedule, fire: PlannedFire, status: JobStatus
    ) -> int | None:
        conn, now = self._c(), self.now()
        cursor = conn.execute(
            Q["insert_fired_job"], {**rows.fired_job_values(schedule, fire, status), "now": now}
        )
        if cursor.rowcount != 1:
            return None
        assert cursor.lastrowid is not None
        conn.execute(Q["set_last_job"], {"id": schedule.id, "job_id": cursor.lastrowid})
        if status is JobStatus.QUEUED:
            self.wake(schedule.definition.namespace, "jobs")
        return cursor.lastrowid

    def unfinished_workflow_run(self, schedule_id: int) -> bool:
        return self._c().execute(
            Q["unfinished_workflow_run"], {"schedule_id": schedule_id}).fetchone() is not None

    # -- maintenance ------------------------------------------------------------------------------

    def prune(self, namespace: str, before: float, limit: int) -> int:
        conn = self._c()
        conn.execute(Q["delete_lapsed_leases"], {"namespace": namespace, "before": before})
        ids = [row[0] for row in conn.execute(
            Q["prunable_jobs"], {"namespace": namespace, "before": before, "limit": limit})]
        pruned = 0
        if ids:
            scope = {"ids": json.dumps(ids)}
            # Edges first: a deleted job's id may be given to a new job.
            conn.execute(Q["delete_dependencies_of"], scope)
            conn.execute(Q["delete_attempts_of"], scope)
            pruned = conn.execute(Q["delete_jobs"], scope).rowcount
        conn.execute(Q["delete_emptied_workflow_runs"], {"namespace": namespace,
                                                         "before": before})
        return pruned

    # -- workers and leases -----------------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        self._c().execute(Q["register_worker"], {
            "id": worker.id, "namespace": worker.namespace, "hostname": worker.hostname,
            "pid": worker.pid, "queues": json.dumps(list(worker.queues)),
            "concurrency": worker.concurrency, "pool": worker.pool,
            "heartbeat_interval": worker.heartbeat_interval, "now": self.now(),
        })

    def unregister_worker(self, worker_id: str) -> None:
        self._c().execute(Q["unregister_worker"], {"worker_id": worker_id})

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        conn, now = self._c(), self.now()
        return {name for name in names if conn.execute(Q["elect_many"], {
            "namespace": namespace, "name": name, "holder": holder, "now": now, "ttl": ttl,
        }).fetchone() is not None}

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        return {str(name): str(holder) for name, holder in self._c().execute(
            Q["lease_holders"], {"namespace": namespace, "prefix": prefix, "now": self.now()})}

    def resign(self, namespace: str, name: str, holder: str) -> None:
        self._c().execute(Q["resign"], {"namespace": namespace, "name": name, "holder": holder})

    # -- stats ------------------------------------------------------------------------------------

    def count_by_state(self, namespace: str) -> list[QueueCount]:
        return [QueueCount(queue, status, int(count)) for queue, status, count in
                self._c().execute(Q["count_by_state"], {"namespace": namespace})]

    def ready_by_priority(self, namespace: str) -> list[ReadyCount]:
        return [ReadyCount(queue, int(priority), int(count), float(first_due))
                for queue, priority, count, first_due in
                self._c().execute(Q["ready_by_priority"], {"namespace": namespace})]

    def list_workers(self, namespace: str, now: float) -> list[WorkerInfo]:
        return [rows.worker(row, now) for row in
                self._c().execute(Q["list_workers"], {"namespace": namespace})]


class SQLiteStore(SQLStore):
    """`Store` on a SQLite file (or ``:memory:`` for a single process).

    Example:
        >>> store = SQLiteStore(":memory:")
        >>> store.migrate()
        ['0001_initial.sql', '0002_schedules.sql', '0003_workflows.sql']
    """

    kind = "sqlite"

    def __init__(
        self, path: str, *, clock: Clock | None = None, busy_timeout: float = 60.0
    ) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        memory = path == ":memory:" or path.startswith("file::memory:")
        self.notifier: Notifier
        if memory:
            self.notifier = NullNotifier()
        else:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise InvalidInput("database_url", f"directory {directory!r} does not exist")
            self.notifier = LocalNotifier(path)
        self._db = Database(path, busy_timeout)

    def now(self) -> float:
        return self.clock.now()

    @contextlib.contextmanager
    def executor(
        self, operation: str, access: Access = "transaction", *, pipeline: bool = False
    ) -> Iterator[Executor]:
        with translated(operation):
            if access in ("read", "snapshot"):
                with self._db.reading(snapshot=access == "snapshot") as conn:
                    yield SQLiteExecutor(self.clock, conn=conn)
                return
            # One statement or many: SQLite has one writer either way.
            write = self._db.write()
            executor = SQLiteExecutor(self.clock, write=write)
            try:
                yield executor
            except BaseException:
                write.finish(commit=False)
                raise
            write.finish(commit=True)
        for namespace, event in executor.wakes:
            self.notifier.notify(namespace, event)

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with translated("migrate"):
            write = self._db.write()
            try:
                conn = write.connection()
                conn.execute(Q["create_migrations_table"])
                done = {row[0] for row in conn.execute(Q["applied_migrations"])}
                for version, name, sql in _MIGRATIONS:
                    if version in done:
                        continue
                    for statement in split_statements(sql):
                        conn.execute(statement)
                    conn.execute(Q["record_migration"],
                                 {"version": version, "name": name, "now": self.now()})
                    applied.append(name)
            except BaseException:
                write.finish(commit=False)
                raise
            write.finish(commit=True)
        return applied

    def latest_schema_version(self) -> int:
        return _MIGRATIONS[-1][0]

    def schema_version(self) -> int:
        if not self._db.exists():  # reading would create the file
            return 0
        with translated("schema_version"), self._db.reading(snapshot=False) as conn:
            if not conn.execute(Q["migrations_table_exists"]).fetchone()[0]:
                return 0
            return int(conn.execute(Q["schema_version"]).fetchone()[0])

    def describe(self) -> dict[str, Any]:
        """``synchronous`` is per connection, so it is read off this store's own."""
        with translated("describe"), self._db.reading(snapshot=False) as conn:
            level = conn.execute("PRAGMA synchronous").fetchone()[0]
            return {
                "kind": "sqlite",
                "sqlite_version": sqlite3.sqlite_version,
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level),
                "busy_timeout_ms": conn.execute("PRAGMA busy_timeout").fetchone()[0],
                "wal_autocheckpoint_pages": conn.execute(
                    "PRAGMA wal_autocheckpoint").fetchone()[0],
                "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
                "write_serialisation": "flock on <db>-writelock, then BEGIN IMMEDIATE",
            }

    def close(self) -> None:
        self._db.close()
        if isinstance(self.notifier, LocalNotifier):
            self.notifier.close()


# -- rows ---------------------------------------------------------------------------------------


def _moved(row: sqlite3.Row) -> Moved:
    """A row returned by a statement that moved a job (id, namespace, status, and its
    run, step, policy and schedule where the statement returns them)."""
    keys = row.keys()
    return Moved(
        id=int(row["id"]), namespace=row["namespace"], status=JobStatus(row["status"]),
        workflow_run_id=row["workflow_run_id"] if "workflow_run_id" in keys else None,
        step=row["step"] if "step" in keys else None,
        failure_policy=row["failure_policy"] if "failure_policy" in keys else None,
        schedule_id=row["schedule_id"] if "schedule_id" in keys else None,
    )


_InsertRow = tuple[
    str, str, str, str, str, JobStatus, int, float, float | None, float | None, int, str, str,
    str | None, float,
]


def _insert_params(new: NewJob, now: float) -> _InsertRow:
    run_at, deadline, status = rows.placement(new, now)
    return (
        new.namespace, new.task, new.queue, new.args_json, new.kwargs_json, status,
        new.priority, run_at, deadline, new.timeout, new.max_attempts, new.guarantee.value,
        new.deadline_policy.value, new.idempotency_key, now,
    )


def _new_job(new: NewJob, row: _InsertRow, job_id: int) -> Job:
    """The record of a job just inserted, built without reading it back."""
    return rows.created_job(new, job_id, row[5], epoch_datetime(row[7]),
                            deadline=to_datetime(row[8]), created_at=epoch_datetime(row[14]))


def _attempt_params(
    row: sqlite3.Row, *, now: float, outcome: AttemptOutcome, result: str | None,
    error: str | None, traceback: str | None,
) -> dict[str, Any]:
    return {
        "namespace": row["namespace"], "job_id": row["id"], "attempt": row["attempt"],
        "fence": row["fence"], "worker_id": row["worker_id"],
        "started_at": row["started_at"] if row["started_at"] is not None else now,
        "now": now, "outcome": outcome.value, "result": result, "error": error,
        "traceback": traceback,
    }


__all__ = ["STORE", "SQLiteExecutor", "SQLiteStore"]
