"""The embedded SQLite store: one file shared by the processes of one host.

WAL mode with ``synchronous=NORMAL``; every write is one ``BEGIN IMMEDIATE``
transaction serialised across processes (see `connection`). The decisions are
`SQLStore`'s; this module is the dialect: `SQLiteExecutor` runs the blocks of
``queries.sql``, one per statement of `Executor` (batches as loops inside the single
writer's transaction, which costs no round trips), and turns rows into records.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from taskwheel.clock import Clock, SystemClock
from taskwheel.errors import InvalidInput, StoreError
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
    loads_json,
)
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.notify import Notifier, NullNotifier, due_event
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
    announce_finished,
)
from taskwheel.stores.observation import ObservationStatements
from taskwheel.stores.rating import RateStatements
from taskwheel.stores.sql_files import load_migrations, split_statements
from taskwheel.stores.sqlite.caller import CommitWatcher, Witness, WitnessedExecutor
from taskwheel.stores.sqlite.connection import (
    STORE,
    Database,
    Q,
    WriteTransaction,
    job_record,
    job_records,
    read_settings,
    records,
    statement,
    translated,
    translation,
)
from taskwheel.stores.sqlite.notifier import LocalNotifier
from taskwheel.stores.sqlite.workflow_steps import WorkflowStatements
from taskwheel.stores.tenancy import TenancyStatements
from taskwheel.workflows import WorkflowSpec

_MIGRATIONS = load_migrations("taskwheel.stores.sqlite.migrations")


class SQLiteExecutor(
    WorkflowStatements, TenancyStatements, ObservationStatements, AlertStatements,
    DispatchStatements, RateStatements, Executor,
):
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
        # Work that needs no lock, done once the write transaction has committed (by
        # `_Writing`), so the write lock is held for statements only.
        self.after_commit: list[Callable[[], None]] = []
        self._claimed = 0  # rows claimed in this transaction (their records come after it)

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

    def commit_unflushed(self) -> None:
        pass  # WAL with synchronous=NORMAL: no commit of this store waits for the disk

    def wake(self, namespace: str, event: str) -> None:
        self.wakes.add((namespace, event))

    def _stamped(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "now": self.now()}

    def _decode(self, value: Any) -> Any:
        return loads_json(value)

    def _announce_ready(self, namespace: str) -> None:
        self.wake(namespace, "jobs")

    def arm_gates(self) -> None:
        self._run("arm_gates", {})

    def arm_limits(self) -> None:
        self._run("arm_limits", {})

    def arm_rates(self) -> None:
        self._run("arm_rates", {})

    def defer_slot_release(self) -> None:
        pass  # its triggers give each slot back in this process, under the write lock

    def release_slots(self, moved: Sequence[Moved]) -> None:
        pass

    def _admit(self, namespace: str, keys: Sequence[str]) -> int:
        # A statement per key, in this process (each reads a key's slots off its
        # indexes); one row for each job admitted (SQLite cannot count an UPDATE's rows
        # in SQL).
        return sum(len(self._execute("admit_waiting", {"namespace": namespace,
                                                       "key": key}).fetchall())
                   for key in keys)

    def _admit_rated(self, ids: str) -> int:
        return len(self._execute("admit_rated", {"ids": ids}).fetchall())

    def _rate_waiting_rows(
        self, namespace: str, limits: Mapping[str, int]
    ) -> list[tuple[str, Any]]:
        # A statement per key, in this process: a LIMIT cannot be a column of the list.
        return [(key, row) for key, limit in limits.items()
                for row in self._execute("rate_waiting_jobs", {
                    "namespace": namespace, "key": key, "limit": limit}).fetchall()]

    def disarm_gates(self) -> None:
        self._run("disarm_gates", {})

    def _name_list(self, namespaces: Sequence[str]) -> Any:
        return json.dumps(list(namespaces))

    def claim_shares(
        self, request: ClaimRequest, shares: Sequence[tuple[str, float, float]]
    ) -> Claim:
        params = {**_claim_params(request, self.now()), "shares": json.dumps(
            [list(share) for share in shares])}
        jobs = self._jobs_after_commit(self._execute("claim_shares", params).fetchall())
        return Claim(jobs=jobs, next_due=self.next_due(request.namespaces))

    def _wake_ready(self, moved: Sequence[Moved]) -> None:
        for row in moved:
            if row.status is JobStatus.QUEUED:
                self.wake(row.namespace, "jobs")

    # -- jobs ---------------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        return [str(row[0]) for row in self._execute("namespaces")]

    def insert_jobs(self, jobs: Sequence[NewJob]) -> Enqueued:
        written = self._insert(jobs, unless_limited=False)
        assert written is not None
        return written

    def insert_unlimited_jobs(self, jobs: Sequence[NewJob]) -> Enqueued | None:
        return self._insert(jobs, unless_limited=True)

    def _insert(self, jobs: Sequence[NewJob], *, unless_limited: bool) -> Enqueued | None:
        """The batch, or None (nothing written) when ``unless_limited`` and a namespace
        of it has a quota: learnt from the statement that reserves the batch's ids."""
        if not jobs:
            return Enqueued()
        first, limited = self._reserve(jobs)
        if unless_limited and limited:
            return None
        now = self.now()
        if any(new.idempotency_key is not None for new in jobs):
            answers, existing = [], []
            for new in jobs:  # one at a time: a key may be taken by an earlier request
                inserted, held = self._run("insert_jobs", _keyed_params(new, now))
                answers.append(job_record((inserted.rows or held.rows)[0]))
                existing.append(not inserted.rows)
            created = Enqueued(answers, existing)
        else:
            created = Enqueued(self._copy(jobs, first, now))
        first_due: dict[str, float] = {}
        for job in created:
            if job.status is JobStatus.QUEUED:
                first_due.setdefault(job.namespace, -math.inf)
            elif job.status is JobStatus.SCHEDULED:
                due = job.run_at.timestamp()
                first_due[job.namespace] = min(first_due.get(job.namespace, due), due)
        for namespace, due in first_due.items():
            # Ready jobs wake workers now; delayed ones move sleeping workers' alarms.
            self.wake(namespace, "jobs" if due == -math.inf else due_event(due))
        return created

    def _copy(self, jobs: Sequence[NewJob], first: int, now: float) -> list[Job]:
        """A batch without keys, which cannot conflict, its ids from ``first`` on: the
        rows in one executemany, each record built without reading it back."""
        values = [rows.job_values(new, first + n, now) for n, new in enumerate(jobs)]
        self._c().executemany(statement("copy_jobs"), values)
        moment = epoch_datetime(now)
        return [rows.new_job(new, value, moment) for new, value in zip(jobs, values, strict=True)]

    def _reserve(self, jobs: Sequence[NewJob] = ()) -> tuple[int, bool]:
        """The first id of the jobs about to be written (the ids from it on are theirs
        until this write transaction commits), and whether a namespace of ``jobs`` has
        a quota."""
        found = self._execute("reserve_jobs", {
            "namespaces": _namespaces(sorted({new.namespace for new in jobs}))}).fetchone()
        return int(found[0]), bool(found[1])

    def place_jobs(self, placed: Sequence[tuple[int, str | None, int, float]]) -> None:
        self._c().executemany(statement("place_job"), [
            {"id": job_id, "fairness_key": key, "rank_offset": offset, "fair_pass": fair_pass}
            for job_id, key, offset, fair_pass in placed])

    def claim_at_once(self, request: ClaimRequest) -> Claim | None:
        slow, claim, due = Q["claim_at_once"]
        conn, params = self._c(), _claim_params(request, self.now())
        if conn.execute(slow, params).fetchone()[0]:
            return None  # due jobs to promote, or missed ones to expire, first
        jobs = self._jobs_after_commit(conn.execute(claim, params).fetchall())
        return Claim(jobs=jobs, next_due=_optional_float(conn.execute(due, params).fetchone()[0]))

    def _jobs_after_commit(self, found: list[sqlite3.Row]) -> list[Job]:
        """The records of rows a claim took, made once the claim has committed: most of
        a claim's own time, which the other writers need not wait for (and, on a busy
        worker, time its thread may spend waiting for the interpreter). The list is
        empty until then; nothing reads it inside the transaction. Counted for
        `claim_ahead`."""
        jobs: list[Job] = []
        self._claimed += len(found)
        if self._write is None:
            jobs.extend(job_records(found))
        else:
            self.after_commit.append(lambda: jobs.extend(job_records(found)))
        return jobs

    def promote_due(self, namespaces: Sequence[str]) -> int:
        now = self.now()
        promoted = 0
        for namespace in namespaces:
            count = self._execute("promote_due", {"namespace": namespace, "now": now}).rowcount
            if count:
                promoted += count
                self.wake(namespace, "jobs")
        return promoted

    def expire_missed(self, namespaces: Sequence[str], *, waiting: bool) -> list[Moved]:
        ready_ones, waiting_ones = Q["expire_missed"]
        conn, params = self._c(), {"namespaces": _namespaces(namespaces), "now": self.now()}
        found = conn.execute(ready_ones, params).fetchall()
        if waiting:
            found += conn.execute(waiting_ones, params).fetchall()
        return [_moved(row) for row in found]

    def promote_and_expire(self, namespaces: Sequence[str]) -> list[Moved]:
        self.promote_due(namespaces)
        return self.expire_missed(namespaces, waiting=False)

    def claim_jobs(self, request: ClaimRequest) -> Claim:
        jobs = self._jobs_after_commit(self._execute(
            "claim_jobs", _claim_params(request, self.now())).fetchall())
        return Claim(jobs=jobs, next_due=self.next_due(request.namespaces))

    def claim_ahead(self, request: ClaimRequest) -> Claim | None:
        room = request.limit - self._claimed
        if room <= 0 or not request.ahead:
            return None
        params = {**_claim_params(request, self.now()), "limit": room, "ahead": request.ahead}
        found = self._execute("claim_ahead", params).fetchall()
        if not found:
            return None
        return Claim(jobs=self._jobs_after_commit(found),
                     next_due=self.next_due(request.namespaces),
                     at=self._clock.now())  # as it ends: see Claim.at

    def claim_reserved(self, request: ClaimRequest, namespace: str, queue: str,
                       rank_below: int) -> tuple[int, list[Job]]:
        found = self._execute("claim_reserved", {
            **_claim_params(request, self.now()), "namespace": namespace, "queue": queue,
            "rank_below": rank_below}).fetchall()
        return len(found), self._jobs_after_commit(found)

    def next_due(
        self, namespaces: Sequence[str], queues: Sequence[str] | None = None
    ) -> float | None:
        if queues is None:
            found = self._execute("next_due", {"namespaces": _namespaces(namespaces)}).fetchone()
        else:
            found = self._execute("next_due_in_queues", {
                "namespaces": _namespaces(namespaces), "queues": json.dumps(list(queues)),
            }).fetchone()
        return _optional_float(found[0])

    def heartbeat(
        self, worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        held, _seen = self._run("heartbeat", {
            "worker_id": worker_id, "now": self.now(), "lease_ttl": lease_ttl,
            "leases": json.dumps(list(leases.items()))})
        return {int(row[0]): bool(row[1]) for row in held.rows}

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        return self._execute("extend_lease", {
            "id": job_id, "fence": fence, "now": self.now(), "lease_ttl": lease_ttl,
        }).rowcount == 1

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> tuple[list[Moved], list[int]]:
        return self._finish(outcomes, alone=False)

    def finish_alone(self, outcomes: Sequence[Outcome]) -> Callable[[], list[int]]:
        moved, left = self._finish(outcomes, alone=True)
        announce_finished(self, moved)
        return lambda: left

    def _finish(self, outcomes: Sequence[Outcome], *,
                alone: bool) -> tuple[list[Moved], list[int]]:
        # The hot path of every report: a round's two statements run directly, without
        # `_run`'s per-statement bookkeeping. The rounds' JSON is made before the write
        # lock is taken: only the statements run while it is held.
        finish, record = Q["finish_attempts"]
        batches = [[[o.job_id, o.fence, o.status.value, o.outcome.value, o.result_json,
                     o.error, o.traceback, o.retry_delay] for o in batch]
                   for batch in rows.outcome_rounds(outcomes)]
        texts = [json.dumps(batch) for batch in batches]
        conn, now = self._c(), self.now()
        applied: list[set[int]] = []
        moved: list[Moved] = []
        for batch, text in zip(batches, texts, strict=True):
            found = conn.execute(finish, {"outcomes": text, "now": now,
                                          "alone": alone}).fetchall()
            ids = {row[0] for row in found}
            if ids:  # a stale one's attempt is not recorded
                conn.execute(record, {"now": now, "applied": text if len(ids) == len(batch)
                                      else json.dumps([o for o in batch if o[0] in ids])})
            applied.append(ids)
            moved += [Moved(row[0], row[1], JobStatus(row[2]), row[3], row[4], row[5], row[6],
                            row[7]) for row in found]
        self._wake_ready(moved)
        return moved, rows.rejected(outcomes, applied)

    def release_queue_one(self, moved: Sequence[Moved]) -> None:
        schedules = sorted({row.schedule_id for row in moved
                            if row.schedule_id is not None and row.status in TERMINAL})
        if schedules:
            for row in self._execute("release_queue_one", {
                "schedule_ids": json.dumps(schedules), "now": self.now(),
            }):
                self.wake(row["namespace"], "jobs")

    def release_waiting(self, namespaces: Sequence[str]) -> int:
        now = self.now()
        released = 0
        for namespace in namespaces:
            count = len(self._execute("release_waiting",
                                      {"namespace": namespace, "now": now}).fetchall())
            if count:
                released += count
                self.wake(namespace, "jobs")
        return released

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[Moved]:
        now = self.now()
        moved: list[Moved] = []
        for job_id, fence in fences.items():
            _recorded, released = self._run("release_jobs", {
                "id": job_id, "fence": fence, "worker_id": worker_id, "now": now})
            moved += [_moved(row) for row in released.rows]
        self._wake_ready(moved)
        return moved

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        return self._execute(
            "save_checkpoint", {"id": job_id, "fence": fence, "state": state_json}
        ).rowcount == 1

    def rescue_expired(self, namespaces: Sequence[str], *, slotted: bool) -> list[Moved]:
        _recorded, requeued, failed, _forgotten = self._run("rescue_expired", {
            "namespaces": _namespaces(namespaces), "now": self.now(), "slotted": slotted})
        moved = [_moved(row) for row in [*requeued.rows, *failed.rows]]
        self._wake_ready(moved)
        return moved

    def expired_slotted_namespaces(self, namespaces: Sequence[str]) -> list[str]:
        found = self._execute("expired_slotted_namespaces", {
            "namespaces": _namespaces(namespaces), "now": self.now()})
        return [str(row[0]) for row in found]

    def lock_running_of_worker(self, worker_id: str) -> list[Job]:
        return job_records(self._execute("lock_running_of_worker", {"worker_id": worker_id}))

    def end_attempts_of_worker(
        self, worker_id: str, error: str, ends: Sequence[AttemptEnd]
    ) -> list[Moved]:
        now = self.now()
        moved: list[Moved] = []
        for end in ends:
            _recorded, ended = self._run("end_attempts_of_worker", {
                "id": end.job_id, "fence": end.fence, "retry_delay": end.retry_delay,
                "worker_id": worker_id, "error": error, "now": now})
            moved += [_moved(row) for row in ended.rows]
        self._wake_ready(moved)
        return moved

    def forget_worker(self, worker_id: str) -> None:
        self._run("forget_worker", {"worker_id": worker_id})

    def lock_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        return job_records(self._execute(
            "lock_jobs", {"namespace": namespace, "ids": json.dumps(list(job_ids))}))

    def request_cancel(self, namespace: str, job_id: int) -> None:
        self._execute("request_cancel", {"namespace": namespace, "id": job_id})

    def cancel_pending(self, namespace: str, job_id: int) -> list[Moved]:
        return [_moved(row) for row in self._execute(
            "cancel_pending", {"namespace": namespace, "id": job_id, "now": self.now()})]

    def requeue_finished(self, namespace: str, job_id: int, expected: JobStatus) -> Job | None:
        row = self._execute("requeue_finished", {
            "namespace": namespace, "id": job_id, "expected_status": expected.value,
            "now": self.now(),
        }).fetchone()
        if row is None:
            return None
        self.wake(namespace, "jobs")
        return job_record(row)

    def dead_ids(self, namespace: str) -> list[int]:
        return [int(row[0]) for row in self._execute("dead_ids", {"namespace": namespace})]

    def purge_dead(self, namespace: str, job_ids: list[int] | None) -> int:
        ids = None if job_ids is None else json.dumps(job_ids)
        _unlinked, _forgotten, purged = self._run("purge_dead", {"namespace": namespace,
                                                                "ids": ids})
        return purged.count

    def delete_jobs(self, namespace: str, job_ids: list[int]) -> int:
        _unlinked, _forgotten, deleted = self._run("delete_jobs", {
            "namespace": namespace, "ids": json.dumps(job_ids)})
        return deleted.count

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        return job_records(self._execute(
            "get_jobs", {"namespace": namespace, "ids": json.dumps(list(job_ids))}))

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        return job_records(self._execute("list_jobs", {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "queue": where.queue, "task": where.task, "limit": where.limit,
            "before_id": where.before_id,
        }))

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        return [rows.attempt(row) for row in self._execute(
            "list_attempts", {"namespace": namespace, "job_id": job_id})]

    def finished_per_minute(self, namespace: str, since: float) -> list[tuple[float, str, int]]:
        return [(float(minute), str(outcome), int(count)) for minute, outcome, count in
                self._execute("finished_per_minute", {"namespace": namespace, "since": since})]

    # -- schedules ------------------------------------------------------------------------------

    def upsert_schedule(
        self, definition: ScheduleDefinition, next_fire_at: float | None,
        declared_by: str | None,
    ) -> bool:
        return self._execute("upsert_schedule", {
            "namespace": definition.namespace, "name": definition.name,
            "spec": definition.spec_json(), "next_fire_at": next_fire_at,
            "declared_by": declared_by, "now": self.now(),
        }).rowcount == 1

    def schedule_by_name(self, namespace: str, name: str) -> Schedule | None:
        row = self._execute("schedule_by_name", {"namespace": namespace, "name": name}
                            ).fetchone()
        return None if row is None else rows.schedule(row)

    def schedules_by_id(self, namespaces: Sequence[str], ids: Sequence[int]) -> list[Schedule]:
        one, many = Q["schedules_by_id"]
        scope = _namespaces(namespaces)
        sql, params = ((one, {"namespaces": scope, "id": ids[0]}) if len(ids) == 1 else
                       (many, {"namespaces": scope, "ids": json.dumps(list(ids))}))
        return records(self._c().execute(sql, params), rows.schedule)

    def list_schedules(self, namespace: str, declared_by: str | None) -> list[Schedule]:
        return records(self._execute(
            "list_schedules", {"namespace": namespace, "declared_by": declared_by}),
            rows.schedule)

    def pause_schedule(self, namespace: str, name: str, paused: bool) -> None:
        self._execute("pause_schedule", {
            "namespace": namespace, "name": name, "paused": int(paused), "now": self.now()})

    def remove_schedule(self, namespace: str, name: str) -> bool:
        return self._execute(
            "remove_schedule", {"namespace": namespace, "name": name}).rowcount > 0

    def schedules_due(
        self, namespaces: Sequence[str], until: float, after: float | None,
        partitions: tuple[int, Collection[int]] | None = None,
    ) -> list[tuple[int, float]]:
        count, wanted = (0, ()) if partitions is None else partitions
        return [(int(row[0]), float(row[1])) for row in self._execute("schedules_due", {
            "namespaces": _namespaces(namespaces), "until": until,
            "after": -math.inf if after is None else after,
            "partition_count": count, "partitions": json.dumps(sorted(wanted)),
        })]

    def schedules_changed(
        self, namespaces: Sequence[str], since: float
    ) -> list[tuple[int, float | None]]:
        return [(int(row[0]), _optional_float(row[1])) for row in self._execute(
            "schedules_changed", {"namespaces": _namespaces(namespaces), "since": since})]

    def holders_of(self, namespace: str, names: Sequence[str]) -> dict[str, str]:
        return {row[0]: row[1] for row in self._execute("holders_of", {
            "namespace": namespace, "names": json.dumps(list(names)), "now": self.now(),
        })}

    def advance_schedules(
        self, namespaces: Sequence[str], plans: Sequence[FirePlan]
    ) -> list[bool]:
        # A plan alone (a scheduler's usual call: one schedule due at a time) by its id;
        # plans that move alike (a burst's: the same times) in one statement, their
        # schedules' ids in JSON (a time is bound, never sent as JSON text, so the
        # comparison with the stored one is exact). Plans of one schedule apply one
        # after the other (rounds), as they would one call each.
        conn, (one, alike) = self._c(), Q["advance_schedules"]
        scope, now = _namespaces(namespaces), self.now()
        def moved_alone(plan: FirePlan) -> bool:
            params = {**_moving(plan, scope, now), "id": plan.schedule_id}
            return bool(conn.execute(one, params).rowcount == 1)

        if len(plans) == 1:
            return [moved_alone(plans[0])]
        advanced = [False] * len(plans)
        for batch in rows.rounds(list(enumerate(plans)), key=lambda item: item[1].schedule_id):
            sets: dict[tuple[float | None, float, float | None], list[int]] = {}
            for index, plan in batch:
                sets.setdefault(_moves(plan), []).append(index)
            for indexes in sets.values():
                if len(indexes) == 1:
                    advanced[indexes[0]] = moved_alone(plans[indexes[0]])
                    continue
                moved = {row[0] for row in conn.execute(alike, {
                    **_moving(plans[indexes[0]], scope, now),
                    "ids": json.dumps([plans[i].schedule_id for i in indexes])})}
                for i in indexes:
                    advanced[i] = plans[i].schedule_id in moved
        return advanced

    def unfinished_of_schedule(self, schedule_id: int) -> list[JobStatus]:
        return [JobStatus(row[0]) for row in self._execute(
            "unfinished_of_schedule", {"schedule_id": schedule_id})]

    def insert_fired_jobs(
        self, fires: Sequence[tuple[Schedule, PlannedFire, JobStatus]]
    ) -> list[int | None]:
        # A fire alone (a scheduler's usual call) in one row; fires whose jobs differ
        # only in their schedule (a burst's) in one statement, the schedules' ids in
        # JSON, every other value bound (a time sent as JSON text would not come back
        # exactly the same double).
        conn, (one, alike, set_last) = self._c(), Q["insert_fired_jobs"]
        now = self.now()
        written: dict[tuple[int, float], int] = {}
        sets: dict[tuple[Any, ...], tuple[dict[str, Any], list[int]]] = {}
        for schedule, fire, status in fires:
            values = rows.fired_job_values(schedule, fire, status)
            schedule_id = values.pop("schedule_id")
            sets.setdefault(tuple(values.values()), (values, []))[1].append(schedule_id)
        for values, schedule_ids in sets.values():
            if len(schedule_ids) == 1:
                cursor = conn.execute(one, {**values, "schedule_id": schedule_ids[0],
                                            "now": now})
                if cursor.rowcount == 1 and cursor.lastrowid is not None:
                    written[schedule_ids[0], values["fire_at"]] = cursor.lastrowid
                continue
            for job_id, schedule_id in conn.execute(alike, {
                    **values, "schedule_ids": json.dumps(schedule_ids), "now": now}):
                written[schedule_id, values["fire_at"]] = job_id
        job_ids: list[int | None] = []
        last: dict[int, int] = {}  # each schedule's job of its latest fire written
        for schedule, fire, status in fires:
            job_id = written.get((schedule.id, fire.fire_at))
            job_ids.append(job_id)
            if job_id is not None:
                last[schedule.id] = job_id
                if status is JobStatus.QUEUED:
                    self.wake(schedule.definition.namespace, "jobs")
        for schedule_id, job_id in last.items():
            conn.execute(set_last, {"schedule_id": schedule_id, "job_id": job_id})
        return job_ids

    def trace_jobs(self, namespace: str, job_ids: Sequence[int], trace_parent: str) -> None:
        self._execute("trace_jobs", {"namespace": namespace, "ids": json.dumps(list(job_ids)),
                                     "trace_parent": trace_parent})

    def unfinished_workflow_run(self, schedule_id: int) -> bool:
        return self._execute(
            "unfinished_workflow_run", {"schedule_id": schedule_id}).fetchone() is not None

    # -- maintenance ------------------------------------------------------------------------------

    def prune(self, namespace: str, before: float, limit: int) -> int:
        _lapsed, _table, _chosen, _unlinked, _forgotten, pruned, _emptied, _cleared = self._run(
            "prune", {"namespace": namespace, "before": before, "limit": limit})
        return pruned.count

    # -- workers and leases -----------------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        self._execute("register_worker", {
            "id": worker.id, "namespace": worker.namespace, "hostname": worker.hostname,
            "pid": worker.pid, "queues": json.dumps(list(worker.queues)),
            "concurrency": worker.concurrency, "pool": worker.pool,
            "heartbeat_interval": worker.heartbeat_interval, "now": self.now(),
        })

    def unregister_worker(self, worker_id: str) -> None:
        self._execute("unregister_worker", {"worker_id": worker_id})

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        now = self.now()
        return {name for name in names if self._execute("elect_many", {
            "namespace": namespace, "name": name, "holder": holder, "now": now, "ttl": ttl,
        }).fetchone() is not None}

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        return {str(name): str(holder) for name, holder in self._execute(
            "lease_holders", {"namespace": namespace, "prefix": prefix, "now": self.now()})}

    def resign(self, namespace: str, name: str, holder: str) -> None:
        self._execute("resign", {"namespace": namespace, "name": name, "holder": holder})

    # -- stats ------------------------------------------------------------------------------------

    def start_waits(self, namespace: str, since: float) -> list[StartWaits]:
        return [StartWaits(queue, int(priority), int(count), float(mean), float(longest))
                for queue, priority, count, mean, longest in self._execute(
                    "start_waits", {"namespace": namespace, "since": since})]

    def stats_rows(self, namespace: str) -> StatsRows:
        scope, now = {"namespace": namespace}, self.now()
        return StatsRows(
            now=now,
            counts=[QueueCount(queue, status, int(count)) for queue, status, count in
                    self._execute("count_by_state", scope)],
            bands=[BandCount(queue, status, int(priority), int(count),
                             None if first_ready is None else float(first_ready))
                   for queue, status, priority, count, first_ready in
                   self._execute("depth_by_priority", scope)],
            workers=[rows.worker(row, now) for row in self._execute("list_workers", scope)],
        )

    # -- API keys and quotas --------------------------------------------------------------------

    def count_active_schedules(self, namespace: str) -> int:
        return int(self._execute("count_active_schedules",
                                 {"namespace": namespace}).fetchone()[0])


class _WitnessedExecutor(SQLiteExecutor, WitnessedExecutor):
    """`SQLiteExecutor` that notes, for each row it creates, how to find it once the
    caller has committed it (`Witness`)."""

    def __init__(self, clock: Clock, *, conn: sqlite3.Connection) -> None:
        super().__init__(clock, conn=conn)
        self.witnesses: list[Witness] = []

    def insert_jobs(self, jobs: Sequence[NewJob]) -> Enqueued:
        return self._witness_jobs(super().insert_jobs(jobs))

    def insert_unlimited_jobs(self, jobs: Sequence[NewJob]) -> Enqueued | None:
        written = super().insert_unlimited_jobs(jobs)
        return None if written is None else self._witness_jobs(written)

    def _witness_jobs(self, written: Enqueued) -> Enqueued:
        created = [job.id for job, existing in zip(written, written.existing, strict=True)
                   if not existing]
        if created:  # one statement or savepoint wrote them all: one suffices
            self.witnesses.append(Witness("job_exists", {"id": max(created)}))
        return written

    def insert_run(
        self, spec: WorkflowSpec, *, run_at: float, started: float,
        schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        run_id: int | None = super().insert_run(spec, run_at=run_at, started=started,
                                                schedule_id=schedule_id, fire_at=fire_at)
        if run_id is not None:
            self.witnesses.append(Witness("run_exists", {"id": run_id}))
        return run_id

    def insert_fired_jobs(
        self, fires: Sequence[tuple[Schedule, PlannedFire, JobStatus]]
    ) -> list[int | None]:
        job_ids: list[int | None] = super().insert_fired_jobs(fires)
        written = [job_id for job_id in job_ids if job_id is not None]
        if written:  # the transaction wrote them all, or none: one suffices
            self.witnesses.append(Witness("job_exists", {"id": max(written)}))
        return job_ids

    def upsert_schedule(
        self, definition: ScheduleDefinition, next_fire_at: float | None,
        declared_by: str | None,
    ) -> bool:
        changed: bool = super().upsert_schedule(definition, next_fire_at, declared_by)
        if changed:
            self._witness_schedule(definition)
        return changed

    def upsert_schedules(
        self, items: Sequence[tuple[ScheduleDefinition, float | None]],
        declared_by: str | None,
    ) -> list[bool]:
        changed = [SQLiteExecutor.upsert_schedule(self, d, at, declared_by) for d, at in items]
        # The transaction wrote them all, or none: one witness suffices.
        last = next((d for (d, _), c in zip(reversed(items), reversed(changed),
                                            strict=True) if c), None)
        if last is not None:
            self._witness_schedule(last)
        return changed

    def _witness_schedule(self, definition: ScheduleDefinition) -> None:
        self.witnesses.append(Witness("schedule_written", {
            "namespace": definition.namespace, "name": definition.name, "now": self.now()}))


class SQLiteStore(SQLStore):
    """`Store` on a SQLite file (or ``:memory:`` for a single process).

    Example:
        >>> store = SQLiteStore(":memory:")
        >>> store.migrate()
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

    kind = "sqlite"
    one_writer = True

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
        # Wake-ups of operations run in callers' transactions (see `caller_connection`).
        self._commits = None if memory else CommitWatcher(path, self.notifier.notify)

    def caller_connection(self, connection: object) -> CallerConnection:
        """A ``sqlite3.Connection`` to this store's file (see `SQLiteCaller`)."""
        from taskwheel.stores.sqlite.caller import SQLiteCaller

        return SQLiteCaller(connection, path=self.path, notifier=self.notifier,
                            commits=self._commits,
                            executor=lambda conn: _WitnessedExecutor(self.clock, conn=conn))

    def executor(
        self, operation: str, access: Access = "transaction", *, pipeline: bool = False
    ) -> AbstractContextManager[Executor]:
        if access in ("read", "snapshot"):
            return self._reading(operation, access == "snapshot")
        # One statement or many: SQLite has one writer either way.
        return _Writing(self, operation)

    @contextlib.contextmanager
    def executor_if_free(self, operation: str) -> Iterator[Executor | None]:
        writing = _Writing(self, operation)
        with writing:  # commits what was written, if anything was begun
            yield writing.begun_if_free()

    @contextlib.contextmanager
    def _reading(self, operation: str, snapshot: bool) -> Iterator[Executor]:
        with translated(operation), self._db.reading(snapshot=snapshot) as conn:
            yield SQLiteExecutor(self.clock, conn=conn)

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with translated("migrate"):
            write = self._db.write()
            try:
                conn = write.connection()
                conn.execute(statement("create_migrations_table"))
                done = {row[0] for row in conn.execute(statement("applied_migrations"))}
                for version, name, sql in _MIGRATIONS:
                    if version in done:
                        continue
                    for step in split_statements(sql, source=name):
                        conn.execute(step)
                    conn.execute(statement("record_migration"),
                                 {"version": version, "name": name, "now": self.now()})
                    applied.append(name)
                # A migration may have replaced the triggers that exist only while they
                # have work: created again with today's text.
                armed = (("arm_limits", "any_limits"), ("arm_gates", "any_pauses"),
                         ("arm_rates", "any_rates"))
                for arm, found in armed if applied else ():
                    if conn.execute(statement(found)).fetchone()[0]:
                        for step in Q[arm]:
                            conn.execute(step)
            except BaseException:
                write.finish(commit=False)
                raise
            write.finish(commit=True)
        return applied

    def latest_schema_version(self) -> int:
        return _MIGRATIONS[-1][0]

    def check_writable(self) -> None:
        # The write lock and BEGIN IMMEDIATE, as every write takes them; rolled back.
        if self._db.memory:
            return
        transaction = self._db.write()
        with translated("check_writable"):
            try:
                transaction.connection()
            finally:
                transaction.finish(commit=False)
        if self._db.read_only():
            raise StoreError("write", f"{self._db.path} is read-only here", STORE)

    def schema_version(self) -> int:
        if not self._db.exists():  # reading would create the file
            return 0
        with translated("schema_version"), self._db.reading(snapshot=False) as conn:
            if not conn.execute(statement("migrations_table_exists")).fetchone()[0]:
                return 0
            return int(conn.execute(statement("schema_version")).fetchone()[0])

    def describe(self) -> dict[str, Any]:
        """``synchronous`` and ``temp_store`` are per connection, so they are read off
        this store's own."""
        with translated("describe"), self._db.reading(snapshot=False) as conn:
            settings = read_settings(conn)
        synchronous, temp_store = settings["synchronous"], settings["temp_store"]
        return {
            "kind": "sqlite",
            "sqlite_version": sqlite3.sqlite_version,
            **settings,
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                synchronous, synchronous),
            "temp_store": {0: "DEFAULT", 1: "FILE", 2: "MEMORY"}.get(temp_store, temp_store),
            "write_serialisation": "flock on <db>-writelock, then BEGIN IMMEDIATE",
        }

    def close(self) -> None:
        if self._commits is not None:
            self._commits.close()
        self._db.close()
        if isinstance(self.notifier, LocalNotifier):
            self.notifier.close()


# -- parameters and rows ------------------------------------------------------------------------


def _moves(plan: FirePlan) -> tuple[float | None, float, float | None]:
    """Where a plan moves its schedule from and to: plans alike in it move in one
    statement (`SQLiteExecutor.advance_schedules`)."""
    return (plan.next_fire_at, plan.expected_next,
            plan.fires[-1].fire_at if plan.fires else None)


def _moving(plan: FirePlan, scope: str, now: float) -> dict[str, Any]:
    """The parameters of advance_schedules but the schedules'."""
    next_fire_at, expected, last_fire_at = _moves(plan)
    return {"namespaces": scope, "next_fire_at": next_fire_at, "expected": expected,
            "last_fire_at": last_fire_at, "now": now}


def _namespaces(namespaces: Sequence[str]) -> str:
    """The namespaces of a statement that reads them with json_each, each once."""
    if len(namespaces) == 1:  # the common case, on every enqueue and claim
        return _one_namespace(namespaces[0])
    return json.dumps(list(dict.fromkeys(namespaces)))


@functools.lru_cache(maxsize=256)
def _one_namespace(namespace: str) -> str:
    return json.dumps([namespace])


def _claim_params(request: ClaimRequest, now: float) -> dict[str, Any]:
    return {"namespaces": _namespaces(request.namespaces), "worker_id": request.worker_id,
            "queues": json.dumps(list(request.queues)), "limit": request.limit,
            "lease_ttl": request.lease_ttl, "now": now,
            "tasks": None if request.tasks is None else json.dumps(list(request.tasks))}


def _keyed_params(new: NewJob, now: float) -> dict[str, Any]:
    """A request of insert_jobs (by name: it is also looked for by its key)."""
    run_at, deadline, status = rows.placement(new, now)
    return {
        "namespace": new.namespace, "task": new.task, "queue": new.queue,
        "args": new.args_json, "kwargs": new.kwargs_json, "status": status.value,
        "priority": new.priority, "run_at": run_at, "deadline": deadline,
        "timeout": new.timeout, "max_attempts": new.max_attempts,
        "guarantee": new.guarantee.value, "deadline_policy": new.deadline_policy.value,
        "idempotency_key": new.idempotency_key, "now": now, "trace_parent": new.trace_parent,
        "fairness_key": new.fairness_key, "rank_offset": new.rank_offset,
        "fair_pass": new.fair_pass,
    }


def _moved(row: sqlite3.Row) -> Moved:
    """A row returned by a statement that moved a job."""
    return Moved(
        id=int(row["id"]), namespace=row["namespace"], status=JobStatus(row["status"]),
        workflow_run_id=row["workflow_run_id"], step=row["step"],
        failure_policy=row["failure_policy"], schedule_id=row["schedule_id"],
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = ["STORE", "SQLiteExecutor", "SQLiteStore"]


class _Writing:
    """A write executor as a context manager: its transaction committed when the block
    ends (rolled back if it raises), then the work it left for after the commit done
    and its wake-ups sent. A class rather than a generator: every write of the store
    passes here, and the plain methods cost a fraction of a generator's machinery."""

    __slots__ = ("_executor", "_operation", "_store", "_write")

    def __init__(self, store: SQLiteStore, operation: str) -> None:
        self._store = store
        self._operation = operation
        self._write = store._db.write()
        self._executor = SQLiteExecutor(store.clock, write=self._write)

    def __enter__(self) -> SQLiteExecutor:
        return self._executor

    def begun_if_free(self) -> SQLiteExecutor | None:
        """The executor in its transaction begun now, or None (nothing begun) when
        another writer holds the lock."""
        with translated(self._operation):
            return self._executor if self._write.begin_if_free() else None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._write.finish(commit=exc is None)
        except sqlite3.Error as error:
            if exc is None:
                raise translation(self._operation, error) from error
        if isinstance(exc, sqlite3.Error):
            raise translation(self._operation, exc) from exc
        if exc is None:
            for work in self._executor.after_commit:
                work()
            notify = self._store.notifier.notify
            for namespace, event in self._executor.wakes:
                notify(namespace, event)
