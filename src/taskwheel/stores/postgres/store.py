"""The PostgreSQL store: the distributed engine, shared by every process of a deployment.

`PostgresStore` is `SQLStore` (every decision, written once for both dialects) over
`PostgresExecutor`, the statements of ``queries.sql`` run on a psycopg connection.
Claims take ready jobs with ``FOR UPDATE SKIP LOCKED``, so any number of workers claim
at once without waiting on each other or taking the same job; wake-ups travel by
LISTEN/NOTIFY (`PostgresNotifier`); leadership is a lease row judged by the database's
clock. The schema is in numbered ``migrations/``; everything lives in one PostgreSQL
schema (``taskwheel`` unless told otherwise), so that several deployments can share a
database.

What the hot paths cost, in round trips to the server: a claim of ready jobs and of
delayed jobs just fallen due, one (`claim_at_once`, on the claim connection in
autocommit mode; a due job with a concurrency key or under a pause makes it a claim in
steps, one transaction; a worker whose alarm has not rung reads only the ready jobs,
``claim_ready``); a batch of outcomes of jobs whose end moves nothing else, one
(BEGIN, the outcomes and COMMIT: the report leaves whole, so the worker's death no
longer loses it), and otherwise two (BEGIN and the outcomes, whose answer the store
needs before it goes on; then what that answer calls for, with COMMIT); a heartbeat,
one; an enqueue, one statement, or for a big batch without idempotency keys a COPY (see
`_COPY_FROM`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import Cursor, sql
from psycopg.rows import DictRow

from taskwheel.clock import Clock
from taskwheel.errors import StoreError
from taskwheel.jobs import (
    Attempt,
    Claim,
    Enqueued,
    Job,
    JobFilter,
    NewJob,
    Outcome,
    StartWaits,
    epoch_datetime,
)
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.schedules import FirePlan, PlannedFire, Schedule, ScheduleDefinition
from taskwheel.stores import rows
from taskwheel.stores.alerting import AlertStatements
from taskwheel.stores.base import WorkerRegistration
from taskwheel.stores.caller import CallerConnection
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.dispatch import DispatchStatements
from taskwheel.stores.engine import SQLStore
from taskwheel.stores.executor import (
    Access,
    AttemptEnd,
    BandCount,
    Executor,
    Moved,
    QueueCount,
    StatsRows,
)
from taskwheel.stores.observation import ObservationStatements
from taskwheel.stores.postgres.connection import (
    Connection,
    ConnectionSettings,
    Database,
    DatabaseClock,
    advisory_key,
)
from taskwheel.stores.postgres.notifier import FINISHED_TAIL, PostgresNotifier, payload_of
from taskwheel.stores.postgres.workflow_steps import WorkflowStatements
from taskwheel.stores.rating import RateStatements
from taskwheel.stores.sql_files import load_migrations, load_queries
from taskwheel.stores.tenancy import TenancyStatements

_Q = load_queries("taskwheel.stores.postgres", "queries.sql")
_C = load_queries("taskwheel.stores.postgres", "connection.sql")
_TERMINAL = sorted(status.value for status in TERMINAL)  # finish_attempts' jobs that ended
_MIGRATIONS = load_migrations("taskwheel.stores.postgres.migrations")
log = logging.getLogger(__name__)

# A batch of at least this many jobs without idempotency keys is written with COPY: it
# costs two round trips more than the one INSERT statement, and saves the per-value
# cost of sending arrays, which wins from a few dozen rows on.
_COPY_FROM = 64
# Every this many jobs a store enqueues, it looks at the jobs table's statistics, and
# analyses the table when it never was or has grown this many times over since it was
# (`PostgresStore._keep_statistics`).
_LOOK_EVERY = 1_000
_GROWTH = 10

Params = dict[str, Any]
T = TypeVar("T")


class PostgresExecutor(
    WorkflowStatements, TenancyStatements, ObservationStatements, AlertStatements,
    DispatchStatements, RateStatements, Executor,
):
    """The statements of ``queries.sql`` on one connection: in autocommit mode (each
    statement its own transaction) or inside the transaction the store began.

    ``now`` is the injected clock's time for the whole operation, or None: the
    statements then judge time by the database's ``now()`` (see queries.sql).

    In a pipelined transaction, statements travel without waiting for each other until
    a result is read: methods whose answer is None read nothing.
    """

    def __init__(
        self, conn: Connection, *, now: float | None, channel: str, autocommit: bool,
        generic: bool = False,
    ) -> None:
        self._conn = conn
        self._given_now = now
        self._now = now
        self._channel = channel
        self._autocommit = autocommit
        self._generic_plans = generic  # the connection plans every statement generically
        self._claimed = 0  # rows claimed in this transaction (see claim_ahead)

    def _execute(self, name: str, params: Params) -> Cursor[DictRow]:
        return self._conn.execute(_Q[name], {"now": self._given_now, **params})

    def _stamped(self, params: Params) -> Params:
        return params  # the statements read the time themselves (clock_now)

    def _decode(self, value: Any) -> Any:
        return rows.as_stored(value)

    # -- the transaction ------------------------------------------------------------------

    def now(self) -> float:
        if self._now is None:
            row = self._conn.execute(_C["transaction_now"], {"now": None}).fetchone()
            assert row is not None
            self._now = float(row["now"])
        return self._now

    def commit_unflushed(self) -> None:
        self._conn.execute(_C["commit_unflushed"])

    def wake(self, namespace: str, event: str) -> None:
        if event == "jobs":
            # Nothing to send: the jobs table's triggers wake the workers of a namespace
            # for every job that becomes ready there, whoever made it so, when its
            # transaction commits (migrations/0001_initial.sql).
            return
        self._conn.execute(
            _C["notify"], {"channel": self._channel, "payload": payload_of(namespace, event)}
        )

    def arm_gates(self) -> None:
        pass  # the gate triggers are permanent (queries.sql: arm_gates)

    def arm_limits(self) -> None:
        pass  # the slot triggers are permanent (migration 0012)

    def arm_rates(self) -> None:
        pass  # the rate trigger is permanent (migration 0014)

    def defer_slot_release(self) -> None:
        self._execute("defer_slot_release", {})

    def release_slots(self, moved: Sequence[Moved]) -> None:
        freed = [(row.namespace, row.gate_key) for row in moved if row.gate_key is not None]
        self._execute("release_slots", {"namespace": [namespace for namespace, _ in freed],
                                        "key": [key for _, key in freed]})

    def _admit(self, namespace: str, keys: Sequence[str]) -> int:
        return self._count("admit_waiting", {"namespace": namespace, "keys": list(keys)},
                           "admitted")

    def _admit_rated(self, ids: str) -> int:
        return self._count("admit_rated", {"ids": ids}, "admitted")

    def _rate_waiting_rows(
        self, namespace: str, limits: Mapping[str, int]
    ) -> list[tuple[str, Any]]:
        keys = json.dumps([{"key": key, "limit": limit} for key, limit in limits.items()])
        found = self._execute("rate_waiting_jobs", {"namespace": namespace, "keys": keys})
        return [(str(row["key"]), row) for row in found.fetchall()]

    def disarm_gates(self) -> None:
        pass

    def _name_list(self, namespaces: Sequence[str]) -> Any:
        return list(namespaces)

    def claim_shares(
        self, request: ClaimRequest, shares: Sequence[tuple[str, float, float]]
    ) -> Claim:
        params = {**_claim_params(request), "namespaces": [s[0] for s in shares],
                  "namespace_count": len(shares), "starts": [s[1] for s in shares],
                  "weights": [s[2] for s in shares]}
        claimed = self._execute("claim_shares", params)
        due = self._execute("next_due", _namespaces(request.namespaces))
        jobs = self._claimed_jobs(claimed.fetchall())
        row = due.fetchone()
        assert row is not None
        return Claim(jobs=jobs, next_due=_optional_float(row["next_due"]))

    def _announce_ready(self, namespace: str) -> None:
        # Jobs a gate releases stay queued: no trigger sees them become ready.
        self._conn.execute(
            _C["notify"], {"channel": self._channel, "payload": payload_of(namespace, "jobs")}
        )

    # -- jobs -------------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        return [str(row["namespace"]) for row in self._execute("namespaces", {}).fetchall()]

    def insert_jobs(self, jobs: Sequence[NewJob]) -> Enqueued:
        written = self._insert(jobs, unless_limited=False)
        assert written is not None
        return written

    def insert_unlimited_jobs(self, jobs: Sequence[NewJob]) -> Enqueued | None:
        return self._insert(jobs, unless_limited=True)

    def _insert(self, jobs: Sequence[NewJob], *, unless_limited: bool) -> Enqueued | None:
        if not jobs:
            return Enqueued()
        if (self._autocommit and len(jobs) >= _COPY_FROM
                and all(new.idempotency_key is None for new in jobs)):
            copied = self._copy(jobs, unless_limited=unless_limited)
            return None if copied is None else Enqueued(copied)
        alone = _job_columns(jobs[0]) if len(jobs) == 1 else None
        if alone is not None:
            found = self._execute("insert_job", {**alone,
                                                 "unless_limited": unless_limited}).fetchall()
            if not found:  # limited: see insert_job
                return None
        else:
            found = self._execute("insert_jobs", {**_request_columns(jobs),
                                                  "unless_limited": unless_limited}).fetchall()
            if found and found[-1]["limited"]:
                return None
        answers = rows.inserted_jobs(jobs, found)
        held = {row["id"] for row in found if row["held"]}
        lost = [new for new, job in zip(jobs, answers, strict=True) if job is None]
        if lost:
            # Their keys were taken by transactions that committed while the statement
            # ran: the next statement sees them (or, if they were deleted meanwhile, takes
            # the keys). Their namespaces' quotas were looked for already.
            retried = self._insert(lost, unless_limited=False)
            assert retried is not None
            held |= {job.id for job, was in zip(retried, retried.existing, strict=True) if was}
            again = iter(retried)
            answers = [job if job is not None else next(again) for job in answers]
        # A request created nothing when its key was held before, or by an earlier
        # request of the batch (which then has the same answer).
        seen: set[int] = set()
        existing = []
        for job in answers:
            assert job is not None
            existing.append(job.id in held or job.id in seen)
            seen.add(job.id)
        return Enqueued([job for job in answers if job is not None], existing)

    def _copy(self, jobs: Sequence[NewJob], *, unless_limited: bool) -> list[Job] | None:
        """A big batch without keys: the instant and the ids first, then the rows by
        COPY, which is one transaction by itself (ids taken from a sequence are never
        given again, whatever becomes of the COPY)."""
        namespaces = sorted({new.namespace for new in jobs})
        row = self._execute("reserve_jobs", {"count": len(jobs),
                                             "namespaces": namespaces}).fetchone()
        assert row is not None
        if unless_limited and row["limited"]:
            return None
        now = float(row["now"])
        values = [rows.job_values(new, job_id, now)
                  for new, job_id in zip(jobs, row["ids"], strict=True)]
        with self._conn.cursor().copy(_Q["copy_jobs"]) as copy:
            for value in values:
                copy.write_row(value)
        moment = epoch_datetime(now)
        return [rows.new_job(new, value, moment) for new, value in zip(jobs, values, strict=True)]

    def place_jobs(self, placed: Sequence[tuple[int, str | None, int, float]]) -> None:
        if placed:
            self._conn.cursor().executemany(_Q["place_job"], [
                {"id": job_id, "fairness_key": key, "rank_offset": offset,
                 "fair_pass": fair_pass} for job_id, key, offset, fair_pass in placed])

    def _generic(self, name: str, params: Params) -> Cursor[DictRow]:
        """Run a claim statement with the server's generic plan. A statement run again
        on a connection is prepared (psycopg does it at the fifth run), and the server
        then chooses at each run between its generic plan and a new custom one; once
        the jobs table has statistics it re-plans the claim every time (the generic
        plan looks costlier on paper): 4 ms of planning for a 1.5 ms claim, in every
        job's wait to start. The generic plans of the claim statements read the same
        indexes (tests/postgres/test_claim_plan.py); the other statements are left to
        choose (some would scan the jobs table with a generic plan). A claim statement
        is prepared at its first run on a connection, not its fifth: each of the first
        four would be planned anew, and a pool's every connection has its own four. On
        the claim connection (`Database.claiming`), which plans every statement
        generically from its start, the statement goes alone; on a connection of the
        pool, a SET before it and a RESET after it travel with it."""
        conn = self._conn
        if self._generic_plans:  # the claim connection (`Database.claiming`)
            return conn.execute(_Q[name], {"now": self._given_now, **params}, prepare=True)
        try:
            with conn.pipeline():  # the three in one round trip
                conn.execute(_Q["generic_plans"])
                cursor = conn.execute(_Q[name], {"now": self._given_now, **params},
                                      prepare=True)
                conn.execute(_Q["chosen_plans"])
        except psycopg.Error:
            # The failed claim skipped the reset (in a transaction, its rollback undoes
            # the setting): nothing else on this connection runs with generic plans.
            with contextlib.suppress(psycopg.Error):
                conn.execute(_Q["chosen_plans"])
            raise
        return cursor

    def claim_at_once(self, request: ClaimRequest) -> Claim | None:
        # A claimer whose alarm has not rung knows of no due job: only ready ones.
        name = "claim_ready" if request.alarm and not request.due else "claim_at_once"
        found = self._generic(name, _claim_params(request)).fetchall()
        first = found[0]
        if first["slow"]:
            return None
        jobs = self._claimed_jobs([row for row in found if row["id"] is not None])
        return Claim(jobs=jobs, next_due=_optional_float(first["next_due"]),
                     at=float(first["claimed_at"]))

    def promote_due(self, namespaces: Sequence[str]) -> int:
        return self._count("promote_due", _namespaces(namespaces), "promoted")

    def expire_missed(self, namespaces: Sequence[str], *, waiting: bool) -> list[Moved]:
        params = {**_namespaces(namespaces), "waiting": waiting}
        return [_moved(row) for row in self._execute("expire_missed", params).fetchall()]

    def promote_and_expire(self, namespaces: Sequence[str]) -> list[Moved]:
        scope = _namespaces(namespaces)
        self._execute("promote_due", scope)  # its count unread: it travels with the next
        expired = self._execute("expire_missed", {**scope, "waiting": False}).fetchall()
        return [_moved(row) for row in expired]

    def claim_jobs(self, request: ClaimRequest) -> Claim:
        claimed = self._generic("claim_jobs", _claim_params(request))
        due = self._execute("next_due", _namespaces(request.namespaces))
        jobs = self._claimed_jobs(claimed.fetchall())
        row = due.fetchone()
        assert row is not None
        return Claim(jobs=jobs, next_due=_optional_float(row["next_due"]))

    def claim_ahead(self, request: ClaimRequest) -> Claim | None:
        room = request.limit - self._claimed
        if room <= 0 or not request.ahead:
            return None
        found = self._execute("claim_ahead", {**_claim_params(request), "limit": room}).fetchall()
        if not found:
            return None
        jobs = self._claimed_jobs(found)
        due = self._execute("next_due", _namespaces(request.namespaces)).fetchone()
        assert due is not None
        return Claim(jobs=jobs, next_due=_optional_float(due["next_due"]),
                     at=float(found[0]["claimed_at"]))

    def _claimed_jobs(self, found: list[DictRow]) -> list[Job]:
        """The records of rows a claim statement took, counted for `claim_ahead`."""
        self._claimed += len(found)
        return [rows.job(row, rows.as_stored) for row in found]

    def claim_reserved(self, request: ClaimRequest, namespace: str, queue: str,
                       rank_below: int) -> tuple[int, list[Job]]:
        found = self._execute("claim_reserved", {
            **_claim_params(request), "namespace": namespace, "queue": queue,
            "rank_below": rank_below})
        jobs = self._claimed_jobs(found.fetchall())
        return len(jobs), jobs

    def next_due(
        self, namespaces: Sequence[str], queues: Sequence[str] | None = None
    ) -> float | None:
        if queues is None:
            row = self._execute("next_due", _namespaces(namespaces)).fetchone()
        else:
            params = {**_namespaces(namespaces), "queues": list(queues)}
            row = self._execute("next_due_in_queues", params).fetchone()
        assert row is not None
        return _optional_float(row["next_due"])

    def heartbeat(
        self, worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        params = {"worker_id": worker_id, "lease_ttl": float(lease_ttl),
                  "id": list(leases), "fence": list(leases.values())}
        found = self._execute("heartbeat", params).fetchall()
        return {int(row["id"]): bool(row["cancel_requested"]) for row in found}

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        params = {"id": job_id, "fence": fence, "lease_ttl": float(lease_ttl)}
        return self._execute("extend_lease", params).fetchone() is not None

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> tuple[list[Moved], list[int]]:
        # All rounds are sent before any answer is read: one round trip in a pipeline.
        cursors = self._finish(outcomes, alone=False)
        moved_by_round = [[_moved(row) for row in cursor.fetchall()] for cursor in cursors]
        applied = [{row.id for row in moved} for moved in moved_by_round]
        return ([row for moved in moved_by_round for row in moved],
                rows.rejected(outcomes, applied))

    def finish_alone(self, outcomes: Sequence[Outcome]) -> Callable[[], list[int]]:
        # Nothing is read here: in a pipelined transaction the statements go with the
        # COMMIT, and the answer is read once it is back.
        cursors = self._finish(outcomes, alone=True)

        def left() -> list[int]:
            return rows.rejected(outcomes, [{row["id"] for row in cursor.fetchall()}
                                            for cursor in cursors])

        return left

    def _finish(self, outcomes: Sequence[Outcome], *, alone: bool) -> list[Cursor[DictRow]]:
        return [self._execute("finish_attempts", {
            **_outcome_columns(batch), "alone": alone, "channel": self._channel,
            "finished_tail": FINISHED_TAIL, "terminal": _TERMINAL,
        }) for batch in rows.outcome_rounds(outcomes)]

    def release_queue_one(self, moved: Sequence[Moved]) -> None:
        schedule_ids = sorted({row.schedule_id for row in moved
                               if row.schedule_id is not None and row.status in TERMINAL})
        if schedule_ids:  # most ended jobs were fired by no schedule: no statement at all
            self._execute("release_queue_one", {"schedule_ids": schedule_ids})

    def release_waiting(self, namespaces: Sequence[str]) -> int:
        return self._count("release_waiting", _namespaces(namespaces), "released")

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[Moved]:
        params = {"worker_id": worker_id, "id": list(fences), "fence": list(fences.values())}
        return [_moved(row) for row in self._execute("release_jobs", params).fetchall()]

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        params = {"id": job_id, "fence": fence, "state": state_json}
        return self._execute("save_checkpoint", params).fetchone() is not None

    def rescue_expired(self, namespaces: Sequence[str], *, slotted: bool) -> list[Moved]:
        found = self._execute("rescue_expired",
                              {**_namespaces(namespaces), "slotted": slotted}).fetchall()
        return [_moved(row) for row in found]

    def expired_slotted_namespaces(self, namespaces: Sequence[str]) -> list[str]:
        found = self._execute("expired_slotted_namespaces", _namespaces(namespaces))
        return [row["namespace"] for row in found.fetchall()]

    def lock_running_of_worker(self, worker_id: str) -> list[Job]:
        found = self._execute("lock_running_of_worker", {"worker_id": worker_id}).fetchall()
        return [rows.job(row, rows.as_stored) for row in found]

    def end_attempts_of_worker(
        self, worker_id: str, error: str, ends: Sequence[AttemptEnd]
    ) -> list[Moved]:
        params = {"worker_id": worker_id, "error": error,
                  "id": [end.job_id for end in ends], "fence": [end.fence for end in ends],
                  "retry_delay": [float(end.retry_delay) for end in ends]}
        return [_moved(row) for row in self._execute("end_attempts_of_worker", params)
                .fetchall()]

    def forget_worker(self, worker_id: str) -> None:
        self._execute("forget_worker", {"worker_id": worker_id})

    def lock_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        params = {"namespace": namespace, "ids": list(job_ids)}
        return [rows.job(row, rows.as_stored)
                for row in self._execute("lock_jobs", params).fetchall()]

    def request_cancel(self, namespace: str, job_id: int) -> None:
        self._execute("request_cancel", {"namespace": namespace, "id": job_id})

    def cancel_pending(self, namespace: str, job_id: int) -> list[Moved]:
        params = {"namespace": namespace, "id": job_id}
        return [_moved(row) for row in self._execute("cancel_pending", params).fetchall()]

    def requeue_finished(self, namespace: str, job_id: int, expected: JobStatus) -> Job | None:
        params = {"namespace": namespace, "id": job_id, "expected": expected.value}
        row = self._execute("requeue_finished", params).fetchone()
        return None if row is None else rows.job(row, rows.as_stored)

    def dead_ids(self, namespace: str) -> list[int]:
        found = self._execute("dead_ids", {"namespace": namespace}).fetchall()
        return [int(row["id"]) for row in found]

    def purge_dead(self, namespace: str, job_ids: list[int] | None) -> int:
        return self._count("purge_dead", {"namespace": namespace, "ids": job_ids}, "purged")

    def delete_jobs(self, namespace: str, job_ids: list[int]) -> int:
        return self._count("delete_jobs", {"namespace": namespace, "ids": job_ids}, "deleted")

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        params = {"namespace": namespace, "ids": list(job_ids)}
        return [rows.job(row, rows.as_stored)
                for row in self._execute("get_jobs", params).fetchall()]

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        params = {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "queue": where.queue, "task": where.task, "limit": where.limit,
            "before_id": where.before_id,
        }
        return [rows.job(row, rows.as_stored)
                for row in self._execute("list_jobs", params).fetchall()]

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        params = {"namespace": namespace, "job_id": job_id}
        return [rows.attempt(row, rows.as_stored)
                for row in self._execute("list_attempts", params).fetchall()]

    def finished_per_minute(self, namespace: str, since: float) -> list[tuple[float, str, int]]:
        found = self._execute("finished_per_minute", {"namespace": namespace, "since": since})
        return [(float(row["minute"]), str(row["outcome"]), int(row["count"]))
                for row in found.fetchall()]

    # -- schedules --------------------------------------------------------------------------

    def upsert_schedule(
        self, definition: ScheduleDefinition, next_fire_at: float | None,
        declared_by: str | None,
    ) -> bool:
        params = {"namespace": definition.namespace, "name": definition.name,
                  "spec": definition.spec_json(), "next_fire_at": next_fire_at,
                  "declared_by": declared_by}
        return self._execute("upsert_schedule", params).fetchone() is not None

    def upsert_schedules(
        self, items: Sequence[tuple[ScheduleDefinition, float | None]],
        declared_by: str | None,
    ) -> list[bool]:
        # The statements travel together (psycopg's pipeline): one round trip for many.
        cursor = self._conn.cursor()
        cursor.executemany(_Q["upsert_schedule"], [
            {"now": self._given_now, "namespace": d.namespace, "name": d.name,
             "spec": d.spec_json(), "next_fire_at": at, "declared_by": declared_by}
            for d, at in items], returning=True)
        changed = []
        for _ in items:
            changed.append(cursor.fetchone() is not None)
            cursor.nextset()
        return changed

    def schedule_by_name(self, namespace: str, name: str) -> Schedule | None:
        row = self._execute("schedule_by_name", {"namespace": namespace, "name": name}).fetchone()
        return None if row is None else rows.schedule(row)

    def schedules_by_id(self, namespaces: Sequence[str], ids: Sequence[int]) -> list[Schedule]:
        params = {**_namespaces(namespaces), "ids": list(ids)}
        return [rows.schedule(row) for row in self._execute("schedules_by_id", params).fetchall()]

    def list_schedules(self, namespace: str, declared_by: str | None) -> list[Schedule]:
        found = self._execute("list_schedules", {"namespace": namespace,
                                                  "declared_by": declared_by}).fetchall()
        return [rows.schedule(row) for row in found]

    def pause_schedule(self, namespace: str, name: str, paused: bool) -> None:
        self._execute("pause_schedule", {"namespace": namespace, "name": name, "paused": paused})

    def remove_schedule(self, namespace: str, name: str) -> bool:
        params = {"namespace": namespace, "name": name}
        return self._execute("remove_schedule", params).fetchone() is not None

    def schedules_due(
        self, namespaces: Sequence[str], until: float, after: float | None,
        partitions: tuple[int, Collection[int]] | None = None,
    ) -> list[tuple[int, float]]:
        count, wanted = (0, ()) if partitions is None else partitions
        params = {**_namespaces(namespaces), "until": float(until),
                  "after": float("-inf") if after is None else float(after),
                  "partition_count": count, "partitions": sorted(wanted)}
        found = self._execute("schedules_due", params).fetchall()
        return [(int(row["id"]), float(row["next_fire_at"])) for row in found]

    def schedules_changed(
        self, namespaces: Sequence[str], since: float
    ) -> list[tuple[int, float | None]]:
        params = {**_namespaces(namespaces), "since": float(since)}
        found = self._execute("schedules_changed", params).fetchall()
        return [(int(row["id"]), _optional_float(row["next_fire_at"])) for row in found]

    def holders_of(self, namespace: str, names: Sequence[str]) -> dict[str, str]:
        found = self._execute("holders_of", {"namespace": namespace, "names": list(names)})
        return {row["name"]: row["holder"] for row in found}

    def advance_schedules(
        self, namespaces: Sequence[str], plans: Sequence[FirePlan]
    ) -> list[bool]:
        numbered = list(enumerate(plans))
        rounds = rows.rounds(numbered, key=lambda item: item[1].schedule_id)
        cursors = [self._execute("advance_schedules", {
            **_namespaces(namespaces),
            "id": [plan.schedule_id for _, plan in batch],
            "next_fire_at": [plan.next_fire_at for _, plan in batch],
            "expected": [plan.expected_next for _, plan in batch],
            "last_fire_at": [plan.fires[-1].fire_at if plan.fires else None
                             for _, plan in batch],
        }) for batch in rounds]
        advanced = [False] * len(plans)
        for batch, cursor in zip(rounds, cursors, strict=True):
            ids = {int(row["id"]) for row in cursor.fetchall()}
            for index, plan in batch:
                advanced[index] = plan.schedule_id in ids
        return advanced

    def unfinished_of_schedule(self, schedule_id: int) -> list[JobStatus]:
        found = self._execute("unfinished_of_schedule", {"schedule_id": schedule_id}).fetchall()
        return [JobStatus(row["status"]) for row in found]

    def insert_fired_jobs(
        self, fires: Sequence[tuple[Schedule, PlannedFire, JobStatus]]
    ) -> list[int | None]:
        if not fires:
            return []
        found = self._execute("insert_fired_jobs", {"fires": json.dumps(
            [rows.fired_job_values(schedule, fire, status) for schedule, fire, status in fires],
            allow_nan=False)}).fetchall()
        written = {(int(row["schedule_id"]), float(row["fire_at"])): int(row["id"])
                   for row in found}
        return [written.get((schedule.id, fire.fire_at)) for schedule, fire, _ in fires]

    def trace_jobs(self, namespace: str, job_ids: Sequence[int], trace_parent: str) -> None:
        self._execute("trace_jobs", {"namespace": namespace, "ids": list(job_ids),
                                     "trace_parent": trace_parent})

    def unfinished_workflow_run(self, schedule_id: int) -> bool:
        params = {"schedule_id": schedule_id}
        return self._execute("unfinished_workflow_run", params).fetchone() is not None

    # -- maintenance -------------------------------------------------------------------------

    def prune(self, namespace: str, before: float, limit: int) -> int:
        params = {"namespace": namespace, "before": float(before), "limit": limit}
        return self._count("prune", params, "pruned")

    # -- workers and leases ------------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        self._execute("register_worker", {
            "id": worker.id, "namespace": worker.namespace, "hostname": worker.hostname,
            "pid": worker.pid, "queues": list(worker.queues), "concurrency": worker.concurrency,
            "pool": worker.pool, "heartbeat_interval": float(worker.heartbeat_interval),
        })

    def unregister_worker(self, worker_id: str) -> None:
        self._execute("unregister_worker", {"worker_id": worker_id})

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        params = {"namespace": namespace, "names": list(names), "holder": holder,
                  "ttl": float(ttl)}
        return {str(row["name"]) for row in self._execute("elect_many", params).fetchall()}

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        found = self._execute("lease_holders", {"namespace": namespace, "prefix": prefix})
        return {str(row["name"]): str(row["holder"]) for row in found.fetchall()}

    def resign(self, namespace: str, name: str, holder: str) -> None:
        self._execute("resign", {"namespace": namespace, "name": name, "holder": holder})

    # -- stats -----------------------------------------------------------------------------

    def start_waits(self, namespace: str, since: float) -> list[StartWaits]:
        found = self._execute("start_waits", {"namespace": namespace, "since": since})
        return [StartWaits(row["queue"], int(row["priority"]), int(row["count"]),
                           float(row["mean"]), float(row["longest"]))
                for row in found.fetchall()]

    def stats_rows(self, namespace: str) -> StatsRows:
        scope = {"namespace": namespace}
        clock = (self._conn.execute(_C["transaction_now"], {"now": None})
                 if self._now is None else None)
        counts = self._execute("count_by_state", scope)
        bands = self._execute("depth_by_priority", scope)
        workers = self._execute("list_workers", scope)
        if clock is not None:  # every result arrives with the first one read
            row = clock.fetchone()
            assert row is not None
            self._now = float(row["now"])
        now = self.now()
        return StatsRows(
            now=now,
            counts=[QueueCount(row["queue"], row["status"], int(row["count"]))
                    for row in counts.fetchall()],
            bands=[BandCount(row["queue"], row["status"], int(row["priority"]),
                             int(row["count"]), None if row["first_ready"] is None
                             else float(row["first_ready"])) for row in bands.fetchall()],
            workers=[rows.worker(row, now, rows.as_stored) for row in workers.fetchall()],
        )

    # -- API keys and quotas -----------------------------------------------------------------

    def count_active_schedules(self, namespace: str) -> int:
        return self._count("count_active_schedules", {"namespace": namespace}, "active")

    # -- helpers ----------------------------------------------------------------------------

    def _count(self, name: str, params: Params, column: str) -> int:
        """The count a statement answers with, in its one row's ``column``."""
        row = self._execute(name, params).fetchone()
        assert row is not None
        return int(row[column])


class PostgresStore(SQLStore):
    """`Store` on a PostgreSQL database, in one schema of it.

    Args:
        url: a libpq URL (``postgresql://user@host/db``), optionally with
            ``?schema=name`` and the pool's ``pool_min_size``, ``pool_max_size`` and
            ``pool_timeout`` (see `ConnectionSettings`); or a libpq connection string.
        schema: the PostgreSQL schema of taskwheel's tables (overrides the URL's);
            `migrate` creates it.
        clock: for tests: judge every time by this clock instead of the database's.

    Example:
        >>> store = PostgresStore("postgresql://localhost/app?schema=jobs")  # doctest: +SKIP
        >>> store.migrate()  # doctest: +SKIP
        ['0001_initial.sql', '0002_schedules.sql', '0003_workflows.sql',
         '0004_due_wakeups.sql', '0005_schedule_owner.sql', '0006_api_keys_and_quotas.sql',
         '0007_webhooks.sql', '0008_dispatch_control.sql', '0009_observability.sql',
         '0010_prunable.sql', '0011_prune_by_status.sql', '0012_key_gates.sql',
         '0013_fair_shares.sql', '0014_rate_limits.sql', '0015_key_room.sql',
         '0016_namespace_shares.sql', '0017_caps_reserves_failure_rates.sql',
         '0018_slots_released_by_report.sql',
         '0019_ready_jobs_whatever_the_statistics.sql', '0020_admission_by_statement.sql',
         '0021_pauses_probed_by_key.sql']
    """

    kind = "postgres"
    claims_due_at_once = True  # see claim_at_once in queries.sql

    def __init__(self, url: str, *, schema: str | None = None, clock: Clock | None = None) -> None:
        self.settings = ConnectionSettings.from_url(url, schema=schema)
        self.schema = self.settings.schema
        self._db = Database(self.settings)
        self._given_clock = clock
        self.clock: Clock = clock or DatabaseClock(self._db, _C["database_clock"])
        self.notifier: PostgresNotifier = PostgresNotifier(self._db)
        self._enqueued = 0  # jobs enqueued since the statistics were last looked at
        self._enqueued_lock = threading.Lock()

    def enqueue(self, jobs: Sequence[NewJob]) -> Enqueued:
        written = super().enqueue(jobs)
        with self._enqueued_lock:
            self._enqueued += len(jobs)
            look = self._enqueued >= _LOOK_EVERY
            if look:
                self._enqueued = 0
        if look:
            self._keep_statistics()
        return written

    def _keep_statistics(self) -> None:
        """Analyse the jobs table when it never was, or has grown `_GROWTH` times over
        since it was: taskwheel does not count on autovacuum for its plans. To the
        planner a table without statistics looks nearly empty: a claim then read every
        queued job of its namespace through jobs_status and sorted them (a claim of 100
        of 20,000 ready jobs took 2-3 times as long). And a connection keeps the plans
        it made while the table was small until an ANALYZE invalidates them: a plan
        made on a new table that scans it stays a scan as the table grows. The look is
        one read of the catalogue every `_LOOK_EVERY` jobs this store enqueues; an
        ANALYZE follows at each tenfold growth at most. The enqueue has committed when
        this runs: a failure is logged, never raised to its caller (who would enqueue
        again), and an ANALYZE that would wait for a lock (a VACUUM at work, another
        process analysing) is left undone rather than holding the enqueue back."""
        try:
            with self._db.connection("analyse_jobs") as conn:
                row = conn.execute(_C["jobs_statistics_behind"],
                                   {"growth": _GROWTH}).fetchone()
                if row is not None and row["behind"]:
                    with conn.transaction():
                        conn.execute(_C["analyse_lock_timeout"])
                        conn.execute(_C["analyse_jobs"])
        except StoreError as exc:
            log.warning("left the jobs table's statistics as they are: %s", exc)

    @contextlib.contextmanager
    def executor(
        self, operation: str, access: Access = "transaction", *, pipeline: bool = False
    ) -> Iterator[PostgresExecutor]:
        """``statement`` and ``read``: a pooled connection in autocommit mode. ``claim``:
        the same, on the connection kept for claims when it is free
        (`Database.claiming`). ``snapshot``: a read-only repeatable-read transaction.
        ``transaction``: BEGIN … COMMIT, with ``pipeline`` sent together (see
        `Database.transaction`). Every psycopg error surfaces as `StoreError` or
        `StoreUnavailable`."""
        # The injected clock's time, read once for the whole operation; None lets the
        # statements read the database's clock.
        now = None if self._given_clock is None else self._given_clock.now()
        channel = self.notifier.channel
        if access == "claim":
            with self._db.claiming(operation) as (conn, generic):
                yield PostgresExecutor(conn, now=now, channel=channel, autocommit=True,
                                       generic=generic)
            return
        if access in ("statement", "read"):
            with self._db.connection(operation) as conn:
                yield PostgresExecutor(conn, now=now, channel=channel, autocommit=True)
            return
        with self._db.transaction(
            operation, pipeline=pipeline, snapshot=access == "snapshot"
        ) as conn:
            yield PostgresExecutor(conn, now=now, channel=channel, autocommit=False)

    def caller_connection(self, connection: object) -> CallerConnection:
        """A psycopg 3 connection to this store's database (see `PostgresCaller`)."""
        from taskwheel.stores.postgres.caller import PostgresCaller

        channel = self.notifier.channel
        return PostgresCaller(
            connection, schema=self.schema, clock=self._given_clock,
            executor=lambda conn, now: PostgresExecutor(conn, now=now, channel=channel,
                                                        autocommit=False),
        )

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._db.transaction("migrate") as conn:
            conn.execute(_C["lock_migrations"], {"key": advisory_key(self.schema, "migrate")})
            conn.execute(_identifier_query("create_schema", schema=self.schema))
            conn.execute(_Q["create_migrations_table"])
            done = {row["version"] for row in conn.execute(_Q["applied_migrations"])}
            now = None if self._given_clock is None else self._given_clock.now()
            for version, name, text in _MIGRATIONS:
                if version in done:
                    continue
                conn.execute(text.encode())  # several statements, no parameters
                conn.execute(_Q["record_migration"], {"now": now, "version": version,
                                                      "name": name})
                applied.append(name)
        return applied

    def latest_schema_version(self) -> int:
        return _MIGRATIONS[-1][0]

    def schema_version(self) -> int:
        with self._db.connection("schema_version") as conn:
            table = f'"{self.schema}".migrations'
            row = conn.execute(_Q["migrations_table_exists"], {"table": table}).fetchone()
            if row is None or not row["present"]:
                return 0
            row = conn.execute(_Q["schema_version"]).fetchone()
        assert row is not None
        return int(row["version"])

    def drop_schema(self) -> None:
        """Delete the store's schema with everything in it, for a throwaway schema (a
        benchmark's, a test's). The store cannot be used afterwards."""
        with self._db.connection("drop_schema") as conn:
            conn.execute(_identifier_query("drop_schema", schema=self.schema))
        self.close()

    def describe(self) -> dict[str, Any]:
        """The server's settings that bear on speed and durability, and the pool's."""
        names = [
            "server_version", "synchronous_commit", "fsync", "wal_level",
            "default_transaction_isolation", "max_connections", "shared_buffers", "autovacuum",
        ]
        with self._db.connection("describe") as conn:
            found = conn.execute(_C["settings"], {"names": names}).fetchall()
        return {
            "kind": self.kind,
            "schema": self.schema,
            **{row["name"]: row["value"] for row in found},
            "pool_min_size": self.settings.pool_min_size,
            "pool_max_size": self.settings.pool_max_size,
            "pool_timeout_s": self.settings.pool_timeout,
            "pipeline_mode": self._db.pipelines,
            "clock": "injected" if self._given_clock is not None else "database now()",
            "claims": "FOR UPDATE SKIP LOCKED in dispatch order, one statement per batch",
            "wakeups": f"LISTEN/NOTIFY on {self.notifier.channel!r}, one connection per "
                       "process",
        }

    def close(self) -> None:
        self._db.close()


def _identifier_query(name: str, **identifiers: str) -> sql.Composed:
    return sql.SQL(_C[name]).format(
        **{key: sql.Identifier(value) for key, value in identifiers.items()}
    )


# -- parameters and rows ------------------------------------------------------------------------


def _namespaces(namespaces: Sequence[str]) -> Params:
    """Each namespace once (the statements read each one's jobs separately), and how
    many there are (for the planner: see queries.sql)."""
    distinct = list(dict.fromkeys(namespaces))
    return {"namespaces": distinct, "namespace_count": len(distinct)}


def _claim_params(request: ClaimRequest) -> Params:
    return {**_namespaces(request.namespaces), "queues": list(request.queues),
            "worker_id": request.worker_id, "limit": request.limit,
            "lease_ttl": float(request.lease_ttl), "ahead": float(request.ahead),
            "tasks": None if request.tasks is None else list(request.tasks)}


def _moved(row: DictRow) -> Moved:
    return Moved(
        id=row["id"], namespace=row["namespace"], status=JobStatus(row["status"]),
        workflow_run_id=row["workflow_run_id"], step=row["step"],
        failure_policy=row["failure_policy"], schedule_id=row["schedule_id"],
        gate_key=row.get("gate_key"),  # answered by finish_attempts (release_slots)
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _request_columns(jobs: Sequence[NewJob]) -> Params:
    """The parameters of insert_jobs: the requests as one JSON text (the encoder is C;
    psycopg encodes a list parameter element by element in Python) and their namespaces."""
    return {
        "namespaces": sorted({new.namespace for new in jobs}),
        "requests": json.dumps([_request(new) for new in jobs], allow_nan=False),
    }


def _job_columns(new: NewJob) -> Params | None:
    """The parameters of insert_job, for a request without an idempotency key whose
    times are finite (None otherwise: insert_jobs takes it, and refuses what it must)."""
    if new.idempotency_key is not None or not all(
            math.isfinite(value) for value in (new.run_at, new.delay, new.deadline,
                                               new.deadline_in, new.timeout, new.fair_pass)
            if value is not None):
        return None
    return _request(new)


def _request(new: NewJob) -> Params:
    """A request's columns, as insert_jobs reads each of its batch and insert_job takes
    them (it has no idempotency key to read)."""
    return {
        "namespace": new.namespace, "task": new.task, "queue": new.queue,
        "args": new.args_json, "kwargs": new.kwargs_json, "priority": new.priority,
        "run_at": new.run_at, "delay": float(new.delay), "deadline": new.deadline,
        "deadline_in": new.deadline_in, "timeout": new.timeout,
        "max_attempts": new.max_attempts, "guarantee": new.guarantee.value,
        "deadline_policy": new.deadline_policy.value,
        "idempotency_key": new.idempotency_key, "trace_parent": new.trace_parent,
        "fairness_key": new.fairness_key, "rank_offset": new.rank_offset,
        "fair_pass": float(new.fair_pass),
    }


def _outcome_columns(outcomes: Sequence[Outcome]) -> Params:
    """The parameter of finish_attempts: the outcomes as one JSON text."""
    return {"outcomes": json.dumps([{
        "id": o.job_id, "fence": o.fence, "status": o.status.value,
        "outcome": o.outcome.value, "result": o.result_json, "error": o.error,
        "traceback": o.traceback, "retry_delay": float(o.retry_delay),
    } for o in outcomes], allow_nan=False)}
