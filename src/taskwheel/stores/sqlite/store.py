"""The embedded SQLite store: one file shared by the processes of one host.

WAL mode with ``synchronous=NORMAL``; every write is one ``BEGIN IMMEDIATE``
transaction. Writers of all processes queue on an advisory file lock first: SQLite's
own busy handler sleeps in growing steps of milliseconds while it waits, which would
add that much latency to every contended claim, whereas a blocked ``flock`` wakes the
moment the holder lets go.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskwheel.clock import Clock, SystemClock, to_datetime
from taskwheel.errors import (
    IllegalTransition,
    InvalidInput,
    JobNotFound,
    LeaseLost,
    ScheduleNotFound,
    WorkflowRunNotFound,
)
from taskwheel.jobs import (
    Attempt,
    AttemptOutcome,
    Claim,
    Job,
    JobFilter,
    NewJob,
    Outcome,
    QueueStats,
    Rescue,
    Stats,
    epoch_datetime,
    loads_json,
)
from taskwheel.lifecycle import RUNNING_TARGETS, TERMINAL, JobStatus, check_transition
from taskwheel.notify import LocalNotifier, Notifier, NullNotifier
from taskwheel.schedules import (
    Fired,
    FirePlan,
    FireResult,
    Overlap,
    PlannedFire,
    Schedule,
    ScheduleDefinition,
    fired_status,
)
from taskwheel.stores.base import Store, WorkerRegistration
from taskwheel.stores.rows import attempt as _attempt
from taskwheel.stores.rows import created_job, fired_job_values, placement
from taskwheel.stores.rows import job as _job
from taskwheel.stores.rows import schedule as _schedule
from taskwheel.stores.rows import worker as _worker
from taskwheel.stores.rows import workflow_run as _workflow_run
from taskwheel.stores.sql_files import load_migrations, load_queries
from taskwheel.workflows import (
    FailurePolicy,
    StepEffect,
    StepOutcome,
    StepState,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
    WorkflowStep,
    effect_of_end,
    plan_retry,
    run_status,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

_Q = load_queries("taskwheel.stores.sqlite", "queries.sql")
_MIGRATIONS = load_migrations("taskwheel.stores.sqlite.migrations")


class SQLiteStore(Store):
    """`Store` on a SQLite file (or ``:memory:`` for a single process).

    Example:
        >>> store = SQLiteStore(":memory:")
        >>> store.migrate()
        ['0001_initial.sql']
    """

    def __init__(
        self, path: str, *, clock: Clock | None = None, busy_timeout: float = 60.0
    ) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._busy_ms = int(busy_timeout * 1000)
        self._local = threading.local()
        self._memory = path == ":memory:" or path.startswith("file::memory:")
        self._all_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # One connection is shared by every thread for an in-memory database (each
        # connection would otherwise see its own empty database).
        self._shared: sqlite3.Connection | None = None
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self.notifier: Notifier
        if self._memory:
            self.notifier = NullNotifier()
        else:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise InvalidInput("database_url", f"directory {directory!r} does not exist")
            self.notifier = LocalNotifier(path)
            if fcntl is not None:
                self._lock_fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o644)

    # -- connections and transactions ------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        if not self._memory:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._connections_lock:
            self._all_connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised across threads and processes."""
        with self._thread_lock:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self._thread_lock if self._memory else contextlib.nullcontext():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def now(self) -> float:
        return self.clock.now()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS taskwheel_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM taskwheel_migrations")}
            for version, name, sql in _MIGRATIONS:
                if version in done:
                    continue
                for statement in _split_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO taskwheel_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, self.now()),
                )
                applied.append(name)
        return applied

    def latest_schema_version(self) -> int:
        return _MIGRATIONS[-1][0]

    def schema_version(self) -> int:
        conn = self._conn()
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'taskwheel_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT max(version) FROM taskwheel_migrations").fetchone()
        return int(row[0] or 0)

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        insert = _Q["insert_job"]
        with self._write() as conn:
            now = self.now()
            params = [_insert_params(new, now) for new in jobs]
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
                            _Q["job_by_idempotency_key"],
                            {"namespace": new.namespace, "key": new.idempotency_key},
                        ).fetchone()
                        created.append(_job(row))
        for namespace in {job.namespace for job in created if job.status is JobStatus.QUEUED}:
            self.notifier.notify(namespace, "jobs")
        return created

    def claim_jobs(
        self,
        namespace: str,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_ttl: float,
    ) -> Claim:
        if limit <= 0:
            return Claim(jobs=[], next_due=self._next_due(self._conn(), namespace))
        wake = _Wake()
        with self._write() as conn:
            now = self.now()
            scope = {"namespace": namespace, "now": now}
            conn.execute(_Q["promote_due"], scope)
            expired = conn.execute(_Q["expire_missed"], scope).fetchall()
            self._steps_ended(conn, expired, now, wake)
            rows = conn.execute(
                _Q["claim_jobs"],
                {
                    **scope,
                    "worker_id": worker_id,
                    "queues": json.dumps(list(queues)),
                    "limit": limit,
                    "lease_ttl": lease_ttl,
                },
            ).fetchall()
            next_due = self._next_due(conn, namespace)
        self._wake(wake)
        jobs = [_job(row) for row in rows]
        jobs.sort(key=Job.dispatch_key)
        return Claim(jobs=jobs, next_due=next_due)

    def _next_due(self, conn: sqlite3.Connection, namespace: str) -> float | None:
        row = conn.execute(_Q["next_due"], {"namespace": namespace}).fetchone()
        return None if row[0] is None else float(row[0])

    def heartbeat(self, worker_id: str, lease_ttl: float) -> dict[int, bool]:
        with self._write() as conn:
            now = self.now()
            params = {"worker_id": worker_id, "now": now, "lease_ttl": lease_ttl}
            rows = conn.execute(_Q["heartbeat"], params).fetchall()
            conn.execute(_Q["touch_worker"], params)
        return {int(row[0]): bool(row[1]) for row in rows}

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                _Q["extend_lease"],
                {"id": job_id, "fence": fence, "now": self.now(), "lease_ttl": lease_ttl},
            )
            return cursor.rowcount == 1

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> list[int]:
        for outcome in outcomes:
            if outcome.status not in RUNNING_TARGETS:
                raise IllegalTransition(
                    outcome.job_id, JobStatus.RUNNING.value, outcome.status.value
                )
        rejected: list[int] = []
        finish, record = _Q["finish_attempt"], _Q["insert_attempt"]
        schedules_done: set[int] = set()
        released: list[sqlite3.Row] = []
        ended: list[sqlite3.Row] = []
        wake = _Wake()
        with self._write() as conn:
            now = self.now()
            for outcome in outcomes:
                row = conn.execute(
                    finish,
                    {
                        "id": outcome.job_id,
                        "fence": outcome.fence,
                        "status": outcome.status.value,
                        "result": outcome.result_json,
                        "error": outcome.error,
                        "retry_delay": outcome.retry_delay,
                        "now": now,
                    },
                ).fetchone()
                if row is None:
                    rejected.append(outcome.job_id)
                    continue
                # The row's status, not the outcome's: a retry of a job asked to
                # cancel ends it cancelled.
                if row["schedule_id"] is not None and JobStatus(row["status"]) in TERMINAL:
                    schedules_done.add(row["schedule_id"])
                if row["workflow_run_id"] is not None:
                    ended.append(row)
                conn.execute(
                    record,
                    _attempt_params(
                        row,
                        job_id=outcome.job_id,
                        now=now,
                        outcome=outcome.outcome,
                        result=outcome.result_json,
                        error=outcome.error,
                        traceback=outcome.traceback,
                    ),
                )
            if schedules_done:  # queue_one jobs waiting behind the ones just finished
                released = conn.execute(
                    _Q["release_waiting_of"],
                    {"schedule_ids": json.dumps(sorted(schedules_done)), "now": now},
                ).fetchall()
            # Dependents of the steps that ended become ready in this same transaction.
            self._steps_ended(conn, ended, now, wake)
        wake.jobs.update(row["namespace"] for row in released)
        self._wake(wake)
        return rejected

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[int]:
        released: list[int] = []
        wake = _Wake()
        with self._write() as conn:
            now = self.now()
            for job_id, fence in fences.items():
                row = conn.execute(
                    _Q["release_job"],
                    {"id": job_id, "fence": fence, "worker_id": worker_id, "now": now},
                ).fetchone()
                if row is None:
                    continue
                released.append(job_id)
                self._steps_ended(conn, [row], now, wake)
                conn.execute(
                    _Q["insert_attempt"],
                    _attempt_params(
                        row,
                        job_id=job_id,
                        now=now,
                        outcome=AttemptOutcome.INTERRUPTED,
                        result=None,
                        error="worker shut down before the job finished",
                        traceback=None,
                    ),
                )
        wake.jobs.update(self._namespaces_of(released))
        self._wake(wake)
        return released

    def _namespaces_of(self, job_ids: Sequence[int]) -> set[str]:
        if not job_ids:
            return set()
        rows = self._conn().execute(
            "SELECT DISTINCT namespace FROM taskwheel_jobs"
            " WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        ).fetchall()
        return {row[0] for row in rows}

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                _Q["save_checkpoint"], {"id": job_id, "fence": fence, "state": state_json}
            )
            return cursor.rowcount == 1

    def rescue_expired_leases(self, namespace: str) -> Rescue:
        with self._write() as conn:
            now = self.now()
            scope = {"namespace": namespace, "now": now}
            requeued = conn.execute(_Q["rescue_requeue"], scope).fetchall()
            failed = conn.execute(_Q["rescue_fail"], scope).fetchall()
            for row in [*requeued, *failed]:
                conn.execute(
                    _Q["insert_attempt"],
                    _attempt_params(
                        row,
                        job_id=int(row["id"]),
                        now=now,
                        outcome=AttemptOutcome.LEASE_EXPIRED,
                        result=None,
                        error="lease expired: the worker stopped heartbeating",
                        traceback=None,
                    ),
                )
            wake = _Wake()
            self._steps_ended(conn, failed, now, wake)
            conn.execute(_Q["prune_workers"], scope)
        if requeued:
            wake.jobs.add(namespace)
        self._wake(wake)
        return Rescue(
            requeued=sorted(int(r["id"]) for r in requeued),
            failed=sorted(int(r["id"]) for r in failed),
        )

    def cancel_job(self, namespace: str, job_id: int) -> Job:
        wake = _Wake()
        with self._write() as conn:
            current = self._get(conn, namespace, job_id)
            if current.status is JobStatus.RUNNING:
                conn.execute(_Q["request_cancel"], {"namespace": namespace, "id": job_id})
            else:
                check_transition(current.status, JobStatus.CANCELLED, job_id)
                now = self.now()
                cancelled = conn.execute(
                    _Q["cancel_pending"], {"namespace": namespace, "id": job_id, "now": now}
                ).fetchall()
                self._steps_ended(conn, cancelled, now, wake)
            job = self._get(conn, namespace, job_id)
        if job.status is JobStatus.RUNNING:
            wake.cancel.add(namespace)
        self._wake(wake)
        return job

    def retry_job(self, namespace: str, job_id: int) -> Job:
        with self._write() as conn:
            current = self._get(conn, namespace, job_id)
            job = self._requeue_finished(conn, namespace, current)
        self.notifier.notify(namespace, "jobs")
        return job

    def _requeue_finished(self, conn: sqlite3.Connection, namespace: str, current: Job) -> Job:
        if current.workflow_run_id is not None:
            # A step runs again the way its run's retry runs it: with the steps after it.
            self._retry_steps(conn, namespace, current.workflow_run_id, current.step)
            return self._get(conn, namespace, current.id)
        check_transition(current.status, JobStatus.QUEUED, current.id)
        if current.status in (JobStatus.WAITING, JobStatus.SCHEDULED, JobStatus.RUNNING):
            raise IllegalTransition(current.id, current.status.value, JobStatus.QUEUED.value)
        row = conn.execute(
            _Q["requeue_finished"],
            {
                "namespace": namespace,
                "id": current.id,
                "expected_status": current.status.value,
                "now": self.now(),
            },
        ).fetchone()
        return _job(row)

    def replay_dead(self, namespace: str, job_ids: Sequence[int] | None) -> list[int]:
        replayed: list[int] = []
        with self._write() as conn:
            if job_ids is None:
                ids = [int(r[0]) for r in conn.execute(_Q["dead_ids"], {"namespace": namespace})]
            else:
                ids = list(job_ids)
            for job_id in ids:
                current = self._get(conn, namespace, job_id)
                if current.status is not JobStatus.DEAD and job_ids is None:
                    continue  # a workflow step already re-run with an earlier one
                if current.status is not JobStatus.DEAD:
                    raise IllegalTransition(job_id, current.status.value, "replayed (not dead)")
                replayed.append(self._requeue_finished(conn, namespace, current).id)
        if replayed:
            self.notifier.notify(namespace, "jobs")
        return replayed

    def purge_dead(self, namespace: str) -> int:
        with self._write() as conn:
            conn.execute(_Q["delete_dead_dependencies"], {"namespace": namespace})
            conn.execute(_Q["purge_dead_attempts"], {"namespace": namespace})
            return conn.execute(_Q["purge_dead_jobs"], {"namespace": namespace}).rowcount

    def get_job(self, namespace: str, job_id: int) -> Job:
        return self._get(self._conn(), namespace, job_id)

    def _get(self, conn: sqlite3.Connection, namespace: str, job_id: int) -> Job:
        row = conn.execute(_Q["get_job"], {"namespace": namespace, "id": job_id}).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        rows = self._conn().execute(
            _Q["get_jobs"], {"namespace": namespace, "ids": json.dumps(list(job_ids))}
        ).fetchall()
        return [_job(row) for row in rows]

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        rows = self._conn().execute(
            _Q["list_jobs"],
            {
                "namespace": namespace,
                "status": where.status.value if where.status else None,
                "queue": where.queue,
                "task": where.task,
                "limit": where.limit,
            },
        ).fetchall()
        return [_job(row) for row in rows]

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        rows = self._conn().execute(
            _Q["list_attempts"], {"namespace": namespace, "job_id": job_id}
        ).fetchall()
        return [_attempt(row) for row in rows]

    # -- schedules --------------------------------------------------------------------------

    def upsert_schedule(self, definition: ScheduleDefinition) -> tuple[Schedule, bool]:
        ns, name = definition.namespace, definition.name
        with self._write() as conn:
            now = self.now()
            changed = conn.execute(
                _Q["upsert_schedule"],
                {
                    "namespace": ns, "name": name, "spec": definition.spec_json(),
                    "next_fire_at": definition.first_fire(now), "now": now,
                },
            ).rowcount == 1
            schedule = self._schedule(conn, ns, name)
        if changed:
            self.notifier.notify(ns, "schedules")
        return schedule, changed

    def _schedule(self, conn: sqlite3.Connection, namespace: str, name: str) -> Schedule:
        row = conn.execute(
            _Q["schedule_by_name"], {"namespace": namespace, "name": name}
        ).fetchone()
        if row is None:
            raise ScheduleNotFound(name)
        return _schedule(row)

    def get_schedule(self, namespace: str, name: str) -> Schedule:
        return self._schedule(self._conn(), namespace, name)

    def get_schedules(self, namespace: str, ids: Sequence[int]) -> list[Schedule]:
        rows = self._conn().execute(
            _Q["schedules_by_id"], {"namespace": namespace, "ids": json.dumps(list(ids))}
        ).fetchall()
        return [_schedule(row) for row in rows]

    def list_schedules(self, namespace: str) -> list[Schedule]:
        rows = self._conn().execute(_Q["list_schedules"], {"namespace": namespace}).fetchall()
        return [_schedule(row) for row in rows]

    def set_schedule_paused(self, namespace: str, name: str, paused: bool) -> Schedule:
        with self._write() as conn:
            conn.execute(
                _Q["pause_schedule"],
                {"namespace": namespace, "name": name, "paused": int(paused), "now": self.now()},
            )
            schedule = self._schedule(conn, namespace, name)
        self.notifier.notify(namespace, "schedules")
        return schedule

    def remove_schedule(self, namespace: str, name: str) -> None:
        with self._write() as conn:
            if not conn.execute(
                _Q["remove_schedule"], {"namespace": namespace, "name": name}
            ).rowcount:
                raise ScheduleNotFound(name)
        self.notifier.notify(namespace, "schedules")

    def schedules_due(
        self, namespace: str, until: float, after: float | None = None
    ) -> list[tuple[int, float]]:
        rows = self._conn().execute(
            _Q["schedules_due"],
            {"namespace": namespace, "until": until,
             "after": -math.inf if after is None else after},
        ).fetchall()
        return [(int(row[0]), float(row[1])) for row in rows]

    def schedules_changed(self, namespace: str, since: float) -> list[tuple[int, float | None]]:
        rows = self._conn().execute(
            _Q["schedules_changed"], {"namespace": namespace, "since": since}
        ).fetchall()
        return [(int(row[0]), None if row[1] is None else float(row[1])) for row in rows]

    def fire_schedules(
        self, namespace: str, plans: Sequence[FirePlan], lease: tuple[str, str] | None = None
    ) -> list[Fired]:
        if not plans:
            return []
        fired: list[Fired] = []
        with self._write() as conn:
            now = self.now()
            if lease is not None and conn.execute(
                _Q["lease_held"],
                {"namespace": namespace, "name": lease[0], "holder": lease[1], "now": now},
            ).fetchone() is None:
                raise LeaseLost(*lease)
            ids = [plan.schedule_id for plan in plans]
            current = {s.id: s for s in self._schedules_by_id(conn, namespace, ids)}
            for plan in plans:
                schedule = current.get(plan.schedule_id)
                advanced = schedule is not None and conn.execute(
                    _Q["advance_schedule"],
                    {
                        "id": plan.schedule_id, "namespace": namespace,
                        "next_fire_at": plan.next_fire_at, "expected": plan.expected_next,
                        "last_fire_at": plan.fires[-1].fire_at if plan.fires else None,
                        "now": now,
                    },
                ).rowcount == 1
                if not advanced or schedule is None:
                    fired.extend(
                        Fired(plan.schedule_id, f.fire_at, FireResult.STALE) for f in plan.fires
                    )
                    continue
                for fire in plan.fires:
                    fired.append(self._fire(conn, schedule, fire, plan.overlap, now))
        self._after_fires(namespace, fired)
        return fired

    def _schedules_by_id(
        self, conn: sqlite3.Connection, namespace: str, ids: Sequence[int]
    ) -> list[Schedule]:
        rows = conn.execute(
            _Q["schedules_by_id"], {"namespace": namespace, "ids": json.dumps(list(ids))}
        ).fetchall()
        return [_schedule(row) for row in rows]

    def _fire(
        self, conn: sqlite3.Connection, schedule: Schedule, fire: PlannedFire, overlap: Overlap,
        now: float,
    ) -> Fired:
        """One job of a fire, under the overlap policy and the (schedule, fire time) key."""
        if schedule.definition.workflow is not None:
            return self._fire_workflow(conn, schedule, fire, overlap, now)
        unfinished = [] if overlap is Overlap.ALLOW else [
            row[0] for row in conn.execute(_Q["schedule_unfinished"], {"schedule_id": schedule.id})
        ]
        status = fired_status(overlap, unfinished, fire.run_at, now)
        if status is None:
            return Fired(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
        cursor = conn.execute(
            _Q["insert_fired_job"], {**fired_job_values(schedule, fire, status), "now": now}
        )
        if cursor.rowcount != 1:
            return Fired(schedule.id, fire.fire_at, FireResult.DUPLICATE)
        assert cursor.lastrowid is not None
        conn.execute(_Q["set_last_job"], {"id": schedule.id, "job_id": cursor.lastrowid})
        result = FireResult.WAITING if status is JobStatus.WAITING else FireResult.CREATED
        return Fired(schedule.id, fire.fire_at, result, cursor.lastrowid, fire.run_at, now)

    def _fire_workflow(
        self, conn: sqlite3.Connection, schedule: Schedule, fire: PlannedFire, overlap: Overlap,
        now: float,
    ) -> Fired:
        """One run of a fire, under the overlap policy and the (schedule, fire time) key
        of the runs table."""
        workflow = schedule.definition.workflow
        assert workflow is not None
        if overlap is not Overlap.ALLOW and conn.execute(
            _Q["unfinished_workflow_run"], {"schedule_id": schedule.id}
        ).fetchone():
            return Fired(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
        run_id = self._insert_run(
            conn, workflow, now=now, run_at=fire.run_at, started=fire.fire_at,
            schedule_id=schedule.id, fire_at=fire.fire_at,
        )
        if run_id is None:
            return Fired(schedule.id, fire.fire_at, FireResult.DUPLICATE)
        return Fired(schedule.id, fire.fire_at, FireResult.CREATED, None, fire.run_at, now,
                     workflow_run_id=run_id)

    def _after_fires(self, namespace: str, fired: Sequence[Fired]) -> None:
        created = [f for f in fired if f.result is FireResult.CREATED]
        if any(f.run_at is not None and f.created_at is not None and f.run_at <= f.created_at
               for f in created):
            self.notifier.notify(namespace, "jobs")
        if any(f.run_at is not None and f.created_at is not None and f.run_at > f.created_at
               for f in created):
            self.notifier.notify(namespace, "due")

    def trigger_schedule(self, namespace: str, name: str) -> Fired:
        with self._write() as conn:
            now = self.now()
            schedule = self._schedule(conn, namespace, name)
            fired = self._fire(conn, schedule, PlannedFire(now, now), Overlap.ALLOW, now)
        self._after_fires(namespace, [fired])
        return fired

    # -- workflows ----------------------------------------------------------------------------

    def submit_workflow(self, spec: WorkflowSpec) -> WorkflowRun:
        with self._write() as conn:
            now = self.now()
            run_id = self._insert_run(conn, spec, now=now, run_at=now, started=now)
            assert run_id is not None  # only a fire can collide
            run = self._workflow_run(conn, spec.namespace, run_id, with_steps=True)
        self.notifier.notify(spec.namespace, "jobs")
        return run

    def _insert_run(
        self, conn: sqlite3.Connection, spec: WorkflowSpec, *, now: float, run_at: float,
        started: float, schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        """Insert a run, a job per step and the edges; None when the (schedule, fire
        time) already has a run. Deadlines count from ``started``."""
        cursor = conn.execute(
            _Q["insert_workflow_run"],
            {"namespace": spec.namespace, "name": spec.name, "on_failure": spec.on_failure.value,
             "now": now, "schedule_id": schedule_id, "fire_at": fire_at},
        )
        if cursor.rowcount != 1:
            return None
        run_id = cursor.lastrowid
        assert run_id is not None
        root = JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED
        params = []
        for step in spec.steps:
            job = step.job
            deps = set(step.after)
            params.append((
                spec.namespace, job.task, job.queue, job.args_json, job.kwargs_json,
                (JobStatus.WAITING if deps else root).value, job.priority, run_at,
                None if job.deadline_in is None else started + job.deadline_in, job.timeout,
                job.max_attempts, job.guarantee, job.deadline_policy, now, run_id, step.name,
                step.on_failure.value, len(deps),
            ))
        conn.executemany(_Q["insert_step"], params)
        # Consecutive ids: nobody else inserts inside this IMMEDIATE transaction.
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        ids = {step.name: last - len(spec.steps) + 1 + n for n, step in enumerate(spec.steps)}
        conn.executemany(_Q["insert_dependency"], [
            (spec.namespace, run_id, ids[dep], ids[step.name])
            for step in spec.steps for dep in dict.fromkeys(step.after)
        ])
        return run_id

    def get_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        with self._read() as conn:
            return self._workflow_run(conn, namespace, run_id, with_steps=True)

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        with self._read() as conn:
            rows = conn.execute(
                _Q["list_workflow_runs"],
                {"namespace": namespace, "status": where.status.value if where.status else None,
                 "name": where.name, "limit": where.limit},
            ).fetchall()
            counts = self._step_counts(conn, [row["id"] for row in rows])
        return [_workflow_run(row, counts.get(row["id"], {}), ()) for row in rows]

    def retry_workflow_run(
        self, namespace: str, run_id: int, step: str | None = None
    ) -> WorkflowRun:
        with self._write() as conn:
            self._retry_steps(conn, namespace, run_id, step)
            run = self._workflow_run(conn, namespace, run_id, with_steps=True)
        self.notifier.notify(namespace, "jobs")
        return run

    def cancel_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        wake = _Wake()
        with self._write() as conn:
            now = self.now()
            self._run_row(conn, namespace, run_id)
            conn.execute(_Q["request_cancel_workflow_run"], {"namespace": namespace, "id": run_id})
            self._stop_steps(conn, namespace, run_id, now, wake,
                             reason="cancelled with its workflow run")
            self._settle_run(conn, run_id, now)
            run = self._workflow_run(conn, namespace, run_id, with_steps=True)
        self._wake(wake)
        return run

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        rows = self._conn().execute(
            _Q["upstream_outcomes"], {"namespace": namespace, "job_id": job_id}
        ).fetchall()
        return [
            StepOutcome(step=row["step"], job_id=row["id"], status=JobStatus(row["status"]),
                        result=loads_json(row["result"]), error=row["last_error"])
            for row in rows
        ]

    def _steps_ended(
        self, conn: sqlite3.Connection, rows: Iterable[sqlite3.Row], now: float, wake: _Wake
    ) -> None:
        """What the end of workflow steps does, in the transaction that ended them: each
        step's policy releases its dependents (the last dependency makes one ready),
        blocks them (upstream_failed, transitively) or stops its whole run; then each
        touched run whose steps have all ended gets its final state. ``rows`` carry id,
        namespace, status, workflow_run_id, step and failure_policy; rows of plain jobs
        and of steps not ended (a retry) are passed over."""
        runs: set[int] = set()
        stop: list[sqlite3.Row] = []
        for row in rows:
            run_id = row["workflow_run_id"]
            status = JobStatus(row["status"])
            if run_id is None or status not in TERMINAL:
                continue
            runs.add(run_id)
            effect = effect_of_end(status, FailurePolicy(row["failure_policy"]))
            if effect is StepEffect.RELEASE:
                released = conn.execute(
                    _Q["release_dependents"], {"id": row["id"], "now": now}
                ).fetchall()
                if any(r["status"] == JobStatus.QUEUED.value for r in released):
                    wake.jobs.add(row["namespace"])
            elif effect is StepEffect.BLOCK:
                conn.execute(_Q["block_downstream"], {
                    "id": row["id"], "now": now,
                    "error": f"upstream step {row['step']!r} ended {status.value}",
                })
            else:
                stop.append(row)
        for row in stop:  # last: steps released above are stopped too
            self._stop_steps(
                conn, row["namespace"], row["workflow_run_id"], now, wake,
                reason=f"step {row['step']!r} ended {row['status']} (fail_fast)",
            )
        for run_id in runs:
            self._settle_run(conn, run_id, now)

    def _stop_steps(
        self, conn: sqlite3.Connection, namespace: str, run_id: int, now: float, wake: _Wake,
        *, reason: str,
    ) -> None:
        """Cancel a run's pending steps; ask its running ones to stop."""
        conn.execute(_Q["cancel_pending_steps"], {"run_id": run_id, "now": now, "error": reason})
        if conn.execute(_Q["request_cancel_running_steps"], {"run_id": run_id}).fetchall():
            wake.cancel.add(namespace)

    def _settle_run(self, conn: sqlite3.Connection, run_id: int, now: float) -> None:
        """Give a running run its final state once none of its steps is unfinished."""
        row = conn.execute(_Q["running_workflow_run"], {"id": run_id}).fetchone()
        if row is None or conn.execute(_Q["unfinished_step"], {"run_id": run_id}).fetchone():
            return
        counts = {
            JobStatus(status): int(count)
            for status, count in conn.execute(_Q["run_step_counts"], {"run_id": run_id})
        }
        status = run_status(counts, bool(row["cancel_requested"]))
        conn.execute(_Q["finish_workflow_run"], {"id": run_id, "status": status.value, "now": now})

    def _retry_steps(
        self, conn: sqlite3.Connection, namespace: str, run_id: int, step: str | None
    ) -> None:
        self._run_row(conn, namespace, run_id)
        rows = conn.execute(_Q["workflow_steps"], {"run_id": run_id}).fetchall()
        after = self._edges(conn, run_id, rows)
        states = [
            StepState(row["step"], row["id"], JobStatus(row["status"]),
                      FailurePolicy(row["failure_policy"]), tuple(after[row["id"]]))
            for row in rows
        ]
        now = self.now()
        current = {row["id"]: row["status"] for row in rows}
        for reset in plan_retry(states, step):
            conn.execute(_Q["reset_step"], {
                "id": reset.job_id, "status": reset.status.value,
                "waiting_on": reset.waiting_on, "expected_status": current[reset.job_id],
                "now": now,
            })
        conn.execute(_Q["reopen_workflow_run"], {"id": run_id})

    def _run_row(self, conn: sqlite3.Connection, namespace: str, run_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            _Q["workflow_run"], {"namespace": namespace, "id": run_id}
        ).fetchone()
        if row is None:
            raise WorkflowRunNotFound(run_id)
        return row

    def _edges(
        self, conn: sqlite3.Connection, run_id: int, steps: Sequence[sqlite3.Row]
    ) -> dict[int, list[str]]:
        """Each step's dependencies by name, keyed by the step's job id."""
        names = {row["id"]: row["step"] for row in steps}
        after: dict[int, list[str]] = {job_id: [] for job_id in names}
        for depends_on, job_id in conn.execute(_Q["workflow_edges"], {"run_id": run_id}):
            if depends_on in names and job_id in after:
                after[job_id].append(names[depends_on])
        return after

    def _step_counts(
        self, conn: sqlite3.Connection, run_ids: Sequence[int]
    ) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        if run_ids:
            for run_id, status, count in conn.execute(
                _Q["workflow_step_counts"], {"run_ids": json.dumps(list(run_ids))}
            ):
                counts.setdefault(run_id, {})[status] = int(count)
        return counts

    def _workflow_run(
        self, conn: sqlite3.Connection, namespace: str, run_id: int, *, with_steps: bool
    ) -> WorkflowRun:
        row = self._run_row(conn, namespace, run_id)
        steps: tuple[WorkflowStep, ...] = ()
        if with_steps:
            rows = conn.execute(_Q["workflow_steps"], {"run_id": run_id}).fetchall()
            after = self._edges(conn, run_id, rows)
            steps = tuple(
                WorkflowStep(name=r["step"], after=tuple(after[r["id"]]),
                             on_failure=FailurePolicy(r["failure_policy"]), job=_job(r))
                for r in rows
            )
        return _workflow_run(row, self._step_counts(conn, [run_id]).get(run_id, {}), steps)

    def _wake(self, wake: _Wake) -> None:
        for namespace in wake.jobs:
            self.notifier.notify(namespace, "jobs")
        for namespace in wake.cancel:
            self.notifier.notify(namespace, "cancel")

    # -- maintenance --------------------------------------------------------------------------

    def promote_due_jobs(self, namespace: str) -> tuple[int, float | None]:
        with self._write() as conn:
            scope = {"namespace": namespace, "now": self.now()}
            promoted = conn.execute(_Q["promote_due"], scope).rowcount
            next_due = self._next_due(conn, namespace)
        if promoted:
            self.notifier.notify(namespace, "jobs")
        return promoted, next_due

    def expire_missed_deadlines(self, namespace: str) -> int:
        wake = _Wake()
        with self._write() as conn:
            now = self.now()
            rows = conn.execute(
                _Q["expire_missed_any"], {"namespace": namespace, "now": now}
            ).fetchall()
            self._steps_ended(conn, rows, now, wake)
        self._wake(wake)
        return len(rows)

    def release_waiting(self, namespace: str) -> int:
        with self._write() as conn:
            rows = conn.execute(
                _Q["release_waiting"], {"namespace": namespace, "now": self.now()}
            ).fetchall()
        if rows:
            self.notifier.notify(namespace, "jobs")
        return len(rows)

    def prune_finished(self, namespace: str, before: float, limit: int = 10_000) -> int:
        with self._write() as conn:
            conn.execute(_Q["delete_lapsed_leases"], {"namespace": namespace, "before": before})
            ids = [
                row[0] for row in conn.execute(
                    _Q["prunable_jobs"], {"namespace": namespace, "before": before, "limit": limit}
                )
            ]
            if ids:
                scope = {"ids": json.dumps(ids)}
                # Edges first: a deleted job's id may be given to a new job.
                conn.execute(_Q["delete_dependencies_of"], scope)
                conn.execute(_Q["delete_attempts_of"], scope)
                pruned = conn.execute(_Q["delete_jobs"], scope).rowcount
            else:
                pruned = 0
            conn.execute(_Q["delete_emptied_workflow_runs"],
                         {"namespace": namespace, "before": before})
            return pruned

    # -- workers and leadership ------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        with self._write() as conn:
            conn.execute(
                _Q["register_worker"],
                {
                    "id": worker.id,
                    "namespace": worker.namespace,
                    "hostname": worker.hostname,
                    "pid": worker.pid,
                    "queues": json.dumps(list(worker.queues)),
                    "concurrency": worker.concurrency,
                    "pool": worker.pool,
                    "heartbeat_interval": worker.heartbeat_interval,
                    "now": self.now(),
                },
            )

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(_Q["unregister_worker"], {"worker_id": worker_id})

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        held: set[str] = set()
        with self._write() as conn:
            now = self.now()
            for name in names:
                row = conn.execute(
                    _Q["elect"],
                    {"namespace": namespace, "name": name, "holder": holder, "now": now,
                     "ttl": ttl},
                ).fetchone()
                if row is not None:
                    held.add(name)
        return held

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        rows = self._conn().execute(
            _Q["lease_holders"], {"namespace": namespace, "prefix": prefix, "now": self.now()}
        ).fetchall()
        return {str(name): str(holder) for name, holder in rows}

    def resign(self, namespace: str, name: str, holder: str) -> None:
        with self._write() as conn:
            conn.execute(_Q["resign"], {"namespace": namespace, "name": name, "holder": holder})

    def stats(self, namespace: str) -> Stats:
        with self._read() as conn:
            now = self.now()
            counts = conn.execute(_Q["count_by_state"], {"namespace": namespace}).fetchall()
            ready = conn.execute(_Q["ready_by_priority"], {"namespace": namespace}).fetchall()
            workers = conn.execute(_Q["list_workers"], {"namespace": namespace}).fetchall()
        by_queue: dict[str, dict[str, int]] = {}
        for queue, status, count in counts:
            by_queue.setdefault(queue, {})[status] = int(count)
        priorities: dict[str, dict[int, int]] = {}
        oldest: dict[str, float] = {}
        for queue, priority, count, first_due in ready:
            priorities.setdefault(queue, {})[int(priority)] = int(count)
            oldest[queue] = min(oldest.get(queue, first_due), first_due)
        queues = [
            QueueStats(
                queue=queue,
                counts=by_queue[queue],
                ready_by_priority=dict(sorted(priorities.get(queue, {}).items(), reverse=True)),
                oldest_ready_age=max(0.0, now - oldest[queue]) if queue in oldest else None,
            )
            for queue in sorted(by_queue)
        ]
        return Stats(queues=queues, workers=[_worker(row, now) for row in workers])

    def describe(self) -> dict[str, Any]:
        """``synchronous`` is per connection, so it is read off this store's own."""
        conn = self._conn()
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        return {
            "kind": "sqlite",
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level),
            "busy_timeout_ms": conn.execute("PRAGMA busy_timeout").fetchone()[0],
            "wal_autocheckpoint_pages": conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "write_serialisation": "flock on <db>-writelock, then BEGIN IMMEDIATE",
        }

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._all_connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all_connections.clear()
        self._local = threading.local()
        self._shared = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


@dataclass(slots=True)
class _Wake:
    """Who to wake once a transaction commits: workers of namespaces where jobs became
    ready, and where running jobs were asked to stop."""

    jobs: set[str] = field(default_factory=set)
    cancel: set[str] = field(default_factory=set)


# -- row mapping ---------------------------------------------------------------------------


def _split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in migration: {buffer[:80]!r}")
    return statements


_InsertRow = tuple[
    str, str, str, str, str, JobStatus, int, float, float | None, float | None, int, str, str,
    str | None, float,
]


def _insert_params(new: NewJob, now: float) -> _InsertRow:
    run_at, deadline, status = placement(new, now)
    return (
        new.namespace, new.task, new.queue, new.args_json, new.kwargs_json, status,
        new.priority, run_at, deadline, new.timeout, new.max_attempts, new.guarantee.value,
        new.deadline_policy.value, new.idempotency_key, now,
    )


def _new_job(new: NewJob, row: _InsertRow, job_id: int) -> Job:
    """The record of a job just inserted, built without reading it back."""
    return created_job(new, job_id, row[5], epoch_datetime(row[7]),
                       deadline=to_datetime(row[8]), created_at=epoch_datetime(row[14]))


def _attempt_params(
    row: sqlite3.Row,
    *,
    job_id: int,
    now: float,
    outcome: AttemptOutcome,
    result: str | None,
    error: str | None,
    traceback: str | None,
) -> dict[str, Any]:
    return {
        "namespace": row["namespace"],
        "job_id": job_id,
        "attempt": row["attempt"],
        "fence": row["fence"],
        "worker_id": row["worker_id"],
        "started_at": row["started_at"] if row["started_at"] is not None else now,
        "now": now,
        "outcome": outcome.value,
        "result": result,
        "error": error,
        "traceback": traceback,
    }
