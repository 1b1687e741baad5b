"""The PostgreSQL store: the distributed engine, shared by every process of a deployment.

Claims take ready jobs with ``FOR UPDATE SKIP LOCKED``, so any number of workers claim
at once without waiting on each other or taking the same job; wake-ups travel by
LISTEN/NOTIFY (`PostgresNotifier`); leadership is a lease row judged by the database's
clock. The SQL is in ``queries.sql`` and the schema in numbered ``migrations/``; both
live in one PostgreSQL schema (``taskwheel`` unless told otherwise), so that several
deployments can share a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from taskwheel.clock import Clock
from taskwheel.errors import IllegalTransition, JobNotFound, LeaseLost, ScheduleNotFound
from taskwheel.jobs import (
    Attempt,
    Claim,
    Job,
    JobFilter,
    NewJob,
    Outcome,
    QueueStats,
    Rescue,
    Stats,
    epoch_datetime,
)
from taskwheel.lifecycle import RUNNING_TARGETS, JobStatus, check_transition
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
from taskwheel.stores.postgres import records, workflow_steps
from taskwheel.stores.postgres.connection import (
    Connection,
    ConnectionSettings,
    Database,
    DatabaseClock,
    advisory_key,
)
from taskwheel.stores.postgres.notifier import PostgresNotifier, payload_of
from taskwheel.stores.rows import fired_job_values
from taskwheel.stores.sql_files import load_migrations, load_queries
from taskwheel.workflows import StepOutcome, WorkflowRun, WorkflowRunFilter, WorkflowSpec

_Q = load_queries("taskwheel.stores.postgres", "queries.sql")
_MIGRATIONS = load_migrations("taskwheel.stores.postgres.migrations")

# A batch of at least this many jobs without idempotency keys is written with COPY: it
# costs two round trips more than the one INSERT statement, and saves the per-value
# cost of sending arrays, which wins from a few dozen rows on.
_COPY_FROM = 64

Params = dict[str, Any]


class PostgresStore(Store):
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
        ['0001_initial.sql', '0002_schedules.sql']
    """

    def __init__(self, url: str, *, schema: str | None = None, clock: Clock | None = None) -> None:
        self.settings = ConnectionSettings.from_url(url, schema=schema)
        self.schema = self.settings.schema
        self._db = Database(self.settings)
        self._given_clock = clock
        self.clock: Clock = clock or DatabaseClock(self._db, _Q["database_clock"])
        self.notifier: PostgresNotifier = PostgresNotifier(self._db)

    # -- time --------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def _scope(self, **params: Any) -> Params:
        """Parameters of one operation. ``now`` is the injected clock's time, read once,
        or None: the statements then read the database's clock (see queries.sql).
        ``channel`` is for the wake-ups the operation sends."""
        params["now"] = None if self._given_clock is None else self._given_clock.now()
        params["channel"] = self.notifier.channel
        return params

    def _transaction_now(self, conn: Connection, scope: Params) -> float:
        """The instant the current transaction judges time by."""
        row = conn.execute(_Q["transaction_now"], scope).fetchone()
        assert row is not None
        return float(row["now"])

    def _notify(self, conn: Connection, namespace: str, event: str) -> None:
        """Wake listeners when the current transaction commits."""
        payload = payload_of(namespace, event)
        conn.execute(_Q["notify"], {"channel": self.notifier.channel, "payload": payload})

    # Where jobs end (outcomes, rescues, releases, cancellations, expiry), the rows they
    # return go through `workflow_steps.steps_ended` before the transaction commits. In a
    # pipelined transaction that means reading them inside the block: a round trip more
    # than if the COMMIT could travel with the statements, the price of applying a
    # workflow step's end in the transaction that ends it.

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._db.transaction("migrate") as conn:
            conn.execute(_Q["lock_migrations"], {"key": advisory_key(self.schema, "migrate")})
            conn.execute(self._identifier_query("create_schema", schema=self.schema))
            conn.execute(_Q["create_migrations_table"])
            done = {row["version"] for row in conn.execute(_Q["applied_migrations"])}
            scope = self._scope()
            for version, name, text in _MIGRATIONS:
                if version in done:
                    continue
                conn.execute(text.encode())  # several statements, no parameters
                conn.execute(_Q["record_migration"], {**scope, "version": version, "name": name})
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
            conn.execute(self._identifier_query("drop_schema", schema=self.schema))
        self.close()

    @staticmethod
    def _identifier_query(name: str, **identifiers: str) -> sql.Composed:
        return sql.SQL(_Q[name]).format(
            **{key: sql.Identifier(value) for key, value in identifiers.items()}
        )

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        if all(new.idempotency_key is None for new in jobs):
            if len(jobs) >= _COPY_FROM:
                return self._copy(jobs)
            with self._db.connection("enqueue") as conn:  # one statement, its own transaction
                return self._insert(conn, jobs)
        # Keys that others hold may have to be looked for twice: in one transaction.
        with self._db.transaction("enqueue", pipeline=True) as conn:
            return self._insert(conn, jobs)

    def _insert(self, conn: Connection, jobs: Sequence[NewJob]) -> list[Job]:
        """Write a batch with the insert_jobs statement; each request's answer is the job
        it created, or the one holding its idempotency key."""
        rows = conn.execute(_Q["insert_jobs"], self._scope(**_request_columns(jobs))).fetchall()
        written = [records.job(row) for row in rows]
        # Rows without a key in id order, which is the order of their requests.
        fresh = iter(sorted((job for job in written if job.idempotency_key is None),
                            key=lambda job: job.id))
        keyed = {(job.namespace, job.idempotency_key): job for job in written
                 if job.idempotency_key is not None}
        answers: list[Job | None] = [
            keyed.get((new.namespace, new.idempotency_key)) if new.idempotency_key is not None
            else next(fresh) for new in jobs
        ]
        lost = [new for new, job in zip(jobs, answers, strict=True) if job is None]
        if lost:
            # Their keys were taken by transactions that committed while the statement
            # ran: the next statement sees them (or, if they were deleted meanwhile, takes
            # the keys).
            found = iter(self._insert(conn, lost))
            answers = [job if job is not None else next(found) for job in answers]
        return [job for job in answers if job is not None]

    def _copy(self, jobs: Sequence[NewJob]) -> list[Job]:
        """A big batch without keys: the instant and the ids first, then the rows by
        COPY, which is one transaction by itself (ids taken from a sequence are never
        given again, whatever becomes of the COPY)."""
        with self._db.connection("enqueue") as conn:
            row = conn.execute(_Q["reserve_jobs"], self._scope(count=len(jobs))).fetchone()
            assert row is not None
            now = float(row["now"])
            values = [records.job_values(new, job_id, now)
                      for new, job_id in zip(jobs, row["ids"], strict=True)]
            with conn.cursor().copy(_Q["copy_jobs"]) as copy:
                for value in values:
                    copy.write_row(value)
        moment = epoch_datetime(now)
        return [records.new_job(new, value, moment)
                for new, value in zip(jobs, values, strict=True)]

    def claim_jobs(
        self,
        namespace: str,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_ttl: float,
    ) -> Claim:
        scope = self._scope(namespace=namespace)
        if limit <= 0:
            with self._db.connection("claim_jobs") as conn:
                due = conn.execute(_Q["next_due"], scope).fetchone()
            return Claim(jobs=[], next_due=_next_due(due))
        params = {**scope, "worker_id": worker_id, "queues": list(queues), "limit": limit,
                  "lease_ttl": float(lease_ttl)}
        # Most claims find nothing but ready jobs: one statement, one round trip.
        with self._db.connection("claim_jobs") as conn:
            rows = conn.execute(_Q["claim_ready_jobs"], params).fetchall()
        if rows[0]["slow"]:
            return self._claim_in_steps(params)
        jobs = [records.job(row) for row in rows if row["id"] is not None]
        jobs.sort(key=Job.dispatch_key)
        return Claim(jobs=jobs, next_due=_next_due(rows[0]))

    def _claim_in_steps(self, params: Params) -> Claim:
        """Promote due jobs, expire missed ones (with what their ends do to workflow
        runs), then claim, in one transaction."""
        with self._db.transaction("claim_jobs", pipeline=True) as conn:
            conn.execute(_Q["promote_due"], params)
            expired = conn.execute(_Q["expire_missed"], params).fetchall()
            workflow_steps.steps_ended(conn, params, expired)
            claimed = conn.execute(_Q["claim_jobs"], params)
            due_cursor = conn.execute(_Q["next_due"], params)
        jobs = [records.job(row) for row in claimed.fetchall()]
        jobs.sort(key=Job.dispatch_key)
        return Claim(jobs=jobs, next_due=_next_due(due_cursor.fetchone()))

    def heartbeat(self, worker_id: str, lease_ttl: float) -> dict[int, bool]:
        params = self._scope(worker_id=worker_id, lease_ttl=float(lease_ttl))
        with self._db.connection("heartbeat") as conn:
            rows = conn.execute(_Q["heartbeat"], params).fetchall()
        return {int(row["id"]): bool(row["cancel_requested"]) for row in rows}

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        params = self._scope(id=job_id, fence=fence, lease_ttl=float(lease_ttl))
        with self._db.connection("extend_lease") as conn:
            return conn.execute(_Q["extend_lease"], params).rowcount == 1

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> list[int]:
        for outcome in outcomes:
            if outcome.status not in RUNNING_TARGETS:
                raise IllegalTransition(
                    outcome.job_id, JobStatus.RUNNING.value, outcome.status.value
                )
        if not outcomes:
            return []
        scope = self._scope()
        rounds = _rounds(outcomes)
        with self._db.transaction("finish_attempts", pipeline=True) as conn:
            cursors = [
                conn.execute(_Q["finish_attempts"], {**scope, **_outcome_columns(batch)})
                for batch in rounds
            ]
            # queue_one jobs waiting behind the ones that just ended (a trigger wakes
            # the workers for those it makes ready).
            conn.execute(
                _Q["release_waiting_of"],
                {**scope, "ids": sorted({outcome.job_id for outcome in outcomes})},
            )
            finished = [cursor.fetchall() for cursor in cursors]
            # Dependents of the steps that ended become ready in this same transaction.
            workflow_steps.steps_ended(conn, scope, (row for rows in finished for row in rows))
        applied = [{int(row["id"]) for row in rows} for rows in finished]
        rejected: list[int] = []
        occurrence: dict[int, int] = {}
        for outcome in outcomes:  # in the order given, as one call each would answer
            n = occurrence.get(outcome.job_id, 0)
            occurrence[outcome.job_id] = n + 1
            if outcome.job_id not in applied[n]:
                rejected.append(outcome.job_id)
        return rejected

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[int]:
        if not fences:
            return []
        params = self._scope(worker_id=worker_id, id=list(fences), fence=list(fences.values()))
        with self._db.transaction("release_jobs", pipeline=True) as conn:
            rows = conn.execute(_Q["release_jobs"], params).fetchall()
            workflow_steps.steps_ended(conn, params, rows)
        released = {int(row["id"]) for row in rows}
        return [job_id for job_id in fences if job_id in released]

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        params = {"id": job_id, "fence": fence, "state": state_json}
        with self._db.connection("save_checkpoint") as conn:
            return conn.execute(_Q["save_checkpoint"], params).rowcount == 1

    def rescue_expired_leases(self, namespace: str) -> Rescue:
        scope = self._scope(namespace=namespace)
        with self._db.transaction("rescue_expired_leases", pipeline=True) as conn:
            rescued = conn.execute(_Q["rescue_expired_leases"], scope)
            conn.execute(_Q["prune_workers"], scope)
            rows = rescued.fetchall()
            workflow_steps.steps_ended(conn, scope, rows)
        return Rescue(
            requeued=sorted(int(r["id"]) for r in rows if r["requeue"]),
            failed=sorted(int(r["id"]) for r in rows if not r["requeue"]),
        )

    def cancel_job(self, namespace: str, job_id: int) -> Job:
        with self._db.transaction("cancel_job") as conn:
            current = self._locked(conn, namespace, [job_id])[0]
            scope = self._scope(namespace=namespace, id=job_id)
            if current.status is JobStatus.RUNNING:
                row = conn.execute(_Q["request_cancel"], scope).fetchone()
                self._notify(conn, namespace, "cancel")
            else:
                check_transition(current.status, JobStatus.CANCELLED, job_id)
                row = conn.execute(_Q["cancel_pending"], scope).fetchone()
                assert row is not None
                workflow_steps.steps_ended(conn, scope, [row])
                if row["workflow_run_id"] is not None:  # its run may have moved on
                    row = conn.execute(_Q["get_job"], scope).fetchone()
        assert row is not None
        return records.job(row)

    def retry_job(self, namespace: str, job_id: int) -> Job:
        with self._db.transaction("retry_job") as conn:
            return self._requeue_finished(conn, self._locked(conn, namespace, [job_id])[0])

    def _requeue_finished(self, conn: Connection, current: Job) -> Job:
        """Queue a finished job again (a trigger wakes the workers)."""
        if current.workflow_run_id is not None:
            # A step runs again the way its run's retry runs it: with the steps after it.
            workflow_steps.retry_steps(
                conn, self._scope(), current.namespace, current.workflow_run_id, current.step
            )
            row = conn.execute(
                _Q["get_job"], {"namespace": current.namespace, "id": current.id}
            ).fetchone()
            assert row is not None
            return records.job(row)
        check_transition(current.status, JobStatus.QUEUED, current.id)
        if current.status in (JobStatus.WAITING, JobStatus.SCHEDULED, JobStatus.RUNNING):
            raise IllegalTransition(current.id, current.status.value, JobStatus.QUEUED.value)
        row = conn.execute(
            _Q["requeue_finished"],
            self._scope(
                namespace=current.namespace, id=current.id, expected_status=current.status.value
            ),
        ).fetchone()
        assert row is not None
        return records.job(row)

    def replay_dead(self, namespace: str, job_ids: Sequence[int] | None) -> list[int]:
        with self._db.transaction("replay_dead") as conn:
            if job_ids is None:
                rows = conn.execute(_Q["dead_ids"], {"namespace": namespace})
                ids = [int(row["id"]) for row in rows]
            else:
                ids = list(job_ids)
            # All locked first, in id order: two replays of overlapping sets never wait on
            # each other. Then each as it is now (an earlier one may have changed it).
            self._locked(conn, namespace, ids, strict=False)
            replayed: list[int] = []
            for job_id in ids:
                job = self._locked(conn, namespace, [job_id])[0]
                if job.status is not JobStatus.DEAD and job_ids is None:
                    continue  # a workflow step already re-run with an earlier one
                if job.status is not JobStatus.DEAD:
                    raise IllegalTransition(job_id, job.status.value, "replayed (not dead)")
                self._requeue_finished(conn, job)
                replayed.append(job_id)
        return replayed

    def _locked(
        self, conn: Connection, namespace: str, job_ids: Sequence[int], *, strict: bool = True
    ) -> list[Job]:
        """The jobs, locked until the transaction ends; `JobNotFound` for the first
        missing one when ``strict``."""
        rows = conn.execute(_Q["lock_jobs"], {"namespace": namespace, "ids": list(job_ids)})
        jobs = [records.job(row) for row in rows]
        if strict and len(jobs) < len(set(job_ids)):
            found = {job.id for job in jobs}
            raise JobNotFound(next(job_id for job_id in job_ids if job_id not in found))
        return jobs

    def purge_dead(self, namespace: str) -> int:
        with self._db.connection("purge_dead") as conn:
            row = conn.execute(_Q["purge_dead"], {"namespace": namespace}).fetchone()
        assert row is not None
        return int(row["purged"])

    def get_job(self, namespace: str, job_id: int) -> Job:
        with self._db.connection("get_job") as conn:
            row = conn.execute(_Q["get_job"], {"namespace": namespace, "id": job_id}).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return records.job(row)

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        params = {"namespace": namespace, "ids": list(job_ids)}
        with self._db.connection("get_jobs") as conn:
            rows = conn.execute(_Q["get_jobs"], params).fetchall()
        return [records.job(row) for row in rows]

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        params = {
            "namespace": namespace,
            "status": where.status.value if where.status else None,
            "queue": where.queue,
            "task": where.task,
            "limit": where.limit,
        }
        with self._db.connection("list_jobs") as conn:
            rows = conn.execute(_Q["list_jobs"], params).fetchall()
        return [records.job(row) for row in rows]

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        params = {"namespace": namespace, "job_id": job_id}
        with self._db.connection("list_attempts") as conn:
            rows = conn.execute(_Q["list_attempts"], params).fetchall()
        return [records.attempt(row) for row in rows]

    # -- schedules --------------------------------------------------------------------------

    def upsert_schedule(self, definition: ScheduleDefinition) -> tuple[Schedule, bool]:
        ns, name = definition.namespace, definition.name
        with self._db.transaction("upsert_schedule") as conn:
            scope = self._scope(namespace=ns, name=name)
            now = self._transaction_now(conn, scope)
            changed = conn.execute(
                _Q["upsert_schedule"],
                {**scope, "spec": definition.spec_json(),
                 "next_fire_at": definition.first_fire(now)},
            ).rowcount == 1
            schedule = self._schedule(conn, ns, name)
            if changed:
                self._notify(conn, ns, "schedules")
        return schedule, changed

    def _schedule(self, conn: Connection, namespace: str, name: str) -> Schedule:
        row = conn.execute(
            _Q["schedule_by_name"], {"namespace": namespace, "name": name}
        ).fetchone()
        if row is None:
            raise ScheduleNotFound(name)
        return records.schedule(row)

    def get_schedule(self, namespace: str, name: str) -> Schedule:
        with self._db.connection("get_schedule") as conn:
            return self._schedule(conn, namespace, name)

    def get_schedules(self, namespace: str, ids: Sequence[int]) -> list[Schedule]:
        with self._db.connection("get_schedules") as conn:
            return self._schedules_by_id(conn, namespace, ids)

    def _schedules_by_id(
        self, conn: Connection, namespace: str, ids: Sequence[int]
    ) -> list[Schedule]:
        rows = conn.execute(_Q["schedules_by_id"], {"namespace": namespace, "ids": list(ids)})
        return [records.schedule(row) for row in rows]

    def list_schedules(self, namespace: str) -> list[Schedule]:
        with self._db.connection("list_schedules") as conn:
            rows = conn.execute(_Q["list_schedules"], {"namespace": namespace}).fetchall()
        return [records.schedule(row) for row in rows]

    def set_schedule_paused(self, namespace: str, name: str, paused: bool) -> Schedule:
        with self._db.transaction("set_schedule_paused") as conn:
            conn.execute(
                _Q["pause_schedule"], self._scope(namespace=namespace, name=name, paused=paused)
            )
            schedule = self._schedule(conn, namespace, name)
            self._notify(conn, namespace, "schedules")
        return schedule

    def remove_schedule(self, namespace: str, name: str) -> None:
        with self._db.transaction("remove_schedule") as conn:
            removed = conn.execute(_Q["remove_schedule"], {"namespace": namespace, "name": name})
            if removed.rowcount == 0:
                raise ScheduleNotFound(name)
            self._notify(conn, namespace, "schedules")

    def schedules_due(
        self, namespace: str, until: float, after: float | None = None
    ) -> list[tuple[int, float]]:
        params = {"namespace": namespace, "until": float(until),
                  "after": float("-inf") if after is None else float(after)}
        with self._db.connection("schedules_due") as conn:
            rows = conn.execute(_Q["schedules_due"], params).fetchall()
        return [(int(row["id"]), float(row["next_fire_at"])) for row in rows]

    def schedules_changed(self, namespace: str, since: float) -> list[tuple[int, float | None]]:
        params = {"namespace": namespace, "since": float(since)}
        with self._db.connection("schedules_changed") as conn:
            rows = conn.execute(_Q["schedules_changed"], params).fetchall()
        return [(int(row["id"]), row["next_fire_at"]) for row in rows]

    def fire_schedules(
        self, namespace: str, plans: Sequence[FirePlan], lease: tuple[str, str] | None = None
    ) -> list[Fired]:
        if not plans:
            return []
        fired: list[Fired] = []
        with self._db.transaction("fire_schedules") as conn:
            scope = self._scope(namespace=namespace)
            now = self._transaction_now(conn, scope)
            if lease is not None and conn.execute(
                _Q["lease_held"], {**scope, "name": lease[0], "holder": lease[1]}
            ).fetchone() is None:
                raise LeaseLost(*lease)
            ids = [plan.schedule_id for plan in plans]
            current = {s.id: s for s in self._schedules_by_id(conn, namespace, ids)}
            for plan in plans:
                schedule = current.get(plan.schedule_id)
                advanced = schedule is not None and conn.execute(
                    _Q["advance_schedule"],
                    {
                        **scope, "id": plan.schedule_id, "next_fire_at": plan.next_fire_at,
                        "expected": plan.expected_next,
                        "last_fire_at": plan.fires[-1].fire_at if plan.fires else None,
                    },
                ).rowcount == 1
                if not advanced or schedule is None:
                    fired.extend(
                        Fired(plan.schedule_id, f.fire_at, FireResult.STALE) for f in plan.fires
                    )
                    continue
                for fire in plan.fires:
                    fired.append(
                        self._fire(conn, scope, schedule, fire, overlap=plan.overlap, now=now)
                    )
            self._after_fires(conn, namespace, fired)
        return fired

    def _fire(
        self, conn: Connection, scope: Params, schedule: Schedule, fire: PlannedFire, *,
        overlap: Overlap, now: float,
    ) -> Fired:
        """One job of a fire, under the overlap policy and the (schedule, fire time) key."""
        if schedule.definition.workflow is not None:
            return self._fire_workflow(conn, scope, schedule, fire, overlap=overlap, now=now)
        unfinished = [] if overlap is Overlap.ALLOW else [
            row["status"]
            for row in conn.execute(_Q["schedule_unfinished"], {"schedule_id": schedule.id})
        ]
        status = fired_status(overlap, unfinished, fire.run_at, now)
        if status is None:
            return Fired(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
        row = conn.execute(
            _Q["insert_fired_job"], {**scope, **fired_job_values(schedule, fire, status)}
        ).fetchone()
        if row is None:
            return Fired(schedule.id, fire.fire_at, FireResult.DUPLICATE)
        job_id = int(row["id"])
        conn.execute(_Q["set_last_job"], {"id": schedule.id, "job_id": job_id})
        result = FireResult.WAITING if status is JobStatus.WAITING else FireResult.CREATED
        return Fired(schedule.id, fire.fire_at, result, job_id, fire.run_at, now)

    def _fire_workflow(
        self, conn: Connection, scope: Params, schedule: Schedule, fire: PlannedFire, *,
        overlap: Overlap, now: float,
    ) -> Fired:
        """One run of a fire, under the overlap policy and the (schedule, fire time) key
        of the runs table."""
        workflow = schedule.definition.workflow
        assert workflow is not None
        if overlap is not Overlap.ALLOW and conn.execute(
            _Q["unfinished_workflow_run"], {"schedule_id": schedule.id}
        ).fetchone():
            return Fired(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
        run_id = workflow_steps.insert_run(
            conn, scope, workflow, now=now, run_at=fire.run_at, started=fire.fire_at,
            schedule_id=schedule.id, fire_at=fire.fire_at,
        )
        if run_id is None:
            return Fired(schedule.id, fire.fire_at, FireResult.DUPLICATE)
        return Fired(schedule.id, fire.fire_at, FireResult.CREATED, None, fire.run_at, now,
                     workflow_run_id=run_id)

    def _after_fires(self, conn: Connection, namespace: str, fired: Sequence[Fired]) -> None:
        """Wake the schedulers for jobs due later (their promotion). Workers are woken
        for the jobs ready now by the trigger that sees them inserted."""
        if any(f.result is FireResult.CREATED and f.run_at is not None
               and f.created_at is not None and f.run_at > f.created_at for f in fired):
            self._notify(conn, namespace, "due")

    def trigger_schedule(self, namespace: str, name: str) -> Fired:
        with self._db.transaction("trigger_schedule") as conn:
            scope = self._scope(namespace=namespace)
            now = self._transaction_now(conn, scope)
            schedule = self._schedule(conn, namespace, name)
            fired = self._fire(
                conn, scope, schedule, PlannedFire(now, now), overlap=Overlap.ALLOW, now=now
            )
            self._after_fires(conn, namespace, [fired])
        return fired

    # -- workflows ----------------------------------------------------------------------------

    def submit_workflow(self, spec: WorkflowSpec) -> WorkflowRun:
        with self._db.transaction("submit_workflow") as conn:
            scope = self._scope()
            now = self._transaction_now(conn, scope)
            run_id = workflow_steps.insert_run(conn, scope, spec, now=now, run_at=now,
                                               started=now)
            assert run_id is not None  # only a fire can collide
            return workflow_steps.read_run(conn, spec.namespace, run_id)

    def get_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        with self._db.transaction("get_workflow_run", snapshot=True) as conn:
            return workflow_steps.read_run(conn, namespace, run_id)

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        params = {"namespace": namespace, "status": where.status.value if where.status else None,
                  "name": where.name, "limit": where.limit}
        with self._db.transaction("list_workflow_runs", snapshot=True) as conn:
            return workflow_steps.list_runs(conn, params)

    def retry_workflow_run(
        self, namespace: str, run_id: int, step: str | None = None
    ) -> WorkflowRun:
        with self._db.transaction("retry_workflow_run") as conn:
            workflow_steps.retry_steps(conn, self._scope(), namespace, run_id, step)
            return workflow_steps.read_run(conn, namespace, run_id)

    def cancel_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        with self._db.transaction("cancel_workflow_run") as conn:
            scope = self._scope(namespace=namespace, id=run_id)
            workflow_steps.lock_run(conn, namespace, run_id)
            conn.execute(_Q["request_cancel_workflow_run"], scope)
            workflow_steps.stop_steps(conn, scope, namespace, run_id,
                                      reason="cancelled with its workflow run")
            workflow_steps.settle_run(conn, scope, run_id)
            return workflow_steps.read_run(conn, namespace, run_id)

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        with self._db.connection("upstream_outcomes") as conn:
            rows = conn.execute(
                _Q["upstream_outcomes"], {"namespace": namespace, "job_id": job_id}
            ).fetchall()
        return [
            StepOutcome(step=row["step"], job_id=row["id"], status=JobStatus(row["status"]),
                        result=row["result"], error=row["last_error"])
            for row in rows
        ]

    # -- maintenance --------------------------------------------------------------------------

    def promote_due_jobs(self, namespace: str) -> tuple[int, float | None]:
        scope = self._scope(namespace=namespace)
        with self._db.transaction("promote_due_jobs", pipeline=True) as conn:
            promoted = conn.execute(_Q["promote_due"], scope)
            due = conn.execute(_Q["next_due"], scope)
        return max(promoted.rowcount, 0), _next_due(due.fetchone())

    def expire_missed_deadlines(self, namespace: str) -> int:
        scope = self._scope(namespace=namespace)
        with self._db.transaction("expire_missed_deadlines", pipeline=True) as conn:
            rows = conn.execute(_Q["expire_missed_any"], scope).fetchall()
            workflow_steps.steps_ended(conn, scope, rows)
        return len(rows)

    def release_waiting(self, namespace: str) -> int:
        with self._db.connection("release_waiting") as conn:
            return conn.execute(_Q["release_waiting"], self._scope(namespace=namespace)).rowcount

    def prune_finished(self, namespace: str, before: float, limit: int = 10_000) -> int:
        params = {"namespace": namespace, "before": float(before), "limit": limit}
        with self._db.transaction("prune_finished", pipeline=True) as conn:
            conn.execute(_Q["delete_lapsed_leases"], params)
            pruned = conn.execute(_Q["prune_finished"], params)
            conn.execute(_Q["delete_emptied_workflow_runs"], params)
        row = pruned.fetchone()
        assert row is not None
        return int(row["pruned"])

    # -- workers and leadership ------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        params = self._scope(
            id=worker.id,
            namespace=worker.namespace,
            hostname=worker.hostname,
            pid=worker.pid,
            queues=list(worker.queues),
            concurrency=worker.concurrency,
            pool=worker.pool,
            heartbeat_interval=float(worker.heartbeat_interval),
        )
        with self._db.connection("register_worker") as conn:
            conn.execute(_Q["register_worker"], params)

    def unregister_worker(self, worker_id: str) -> None:
        with self._db.connection("unregister_worker") as conn:
            conn.execute(_Q["unregister_worker"], {"worker_id": worker_id})

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        if not names:
            return set()
        params = self._scope(
            namespace=namespace, names=sorted(set(names)), holder=holder, ttl=float(ttl)
        )
        with self._db.connection("elect_many") as conn:
            return {str(row["name"]) for row in conn.execute(_Q["elect_many"], params)}

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        params = self._scope(namespace=namespace, prefix=prefix)
        with self._db.connection("lease_holders") as conn:
            rows = conn.execute(_Q["lease_holders"], params).fetchall()
        return {str(row["name"]): str(row["holder"]) for row in rows}

    def resign(self, namespace: str, name: str, holder: str) -> None:
        params = {"namespace": namespace, "name": name, "holder": holder}
        with self._db.connection("resign") as conn:
            conn.execute(_Q["resign"], params)

    def stats(self, namespace: str) -> Stats:
        scope = self._scope(namespace=namespace)
        with self._db.transaction("stats", pipeline=True, snapshot=True) as conn:
            clock = conn.execute(_Q["transaction_now"], scope)
            counts = conn.execute(_Q["count_by_state"], scope)
            ready = conn.execute(_Q["ready_by_priority"], scope)
            workers = conn.execute(_Q["list_workers"], scope)
        now_row = clock.fetchone()
        assert now_row is not None
        now = float(now_row["now"])
        by_queue: dict[str, dict[str, int]] = {}
        for row in counts.fetchall():
            by_queue.setdefault(row["queue"], {})[row["status"]] = int(row["count"])
        priorities: dict[str, dict[int, int]] = {}
        oldest: dict[str, float] = {}
        for row in ready.fetchall():
            queue, first_due = row["queue"], float(row["first_due"])
            priorities.setdefault(queue, {})[int(row["priority"])] = int(row["count"])
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
        return Stats(
            queues=queues, workers=[records.worker(row, now) for row in workers.fetchall()]
        )

    def describe(self) -> dict[str, Any]:
        """The server's settings that bear on speed and durability, and the pool's."""
        names = [
            "server_version", "synchronous_commit", "fsync", "wal_level",
            "default_transaction_isolation", "max_connections", "shared_buffers", "autovacuum",
        ]
        with self._db.connection("describe") as conn:
            rows = conn.execute(_Q["settings"], {"names": names}).fetchall()
        return {
            "kind": "postgres",
            "schema": self.schema,
            **{row["name"]: row["value"] for row in rows},
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


# -- batches -------------------------------------------------------------------------------


def _next_due(row: records.Row | None) -> float | None:
    assert row is not None
    value = row["next_due"]
    return None if value is None else float(value)


def _request_columns(jobs: Sequence[NewJob]) -> Params:
    return {
        "namespace": [new.namespace for new in jobs],
        "task": [new.task for new in jobs],
        "queue": [new.queue for new in jobs],
        "args": [new.args_json for new in jobs],
        "kwargs": [new.kwargs_json for new in jobs],
        "priority": [new.priority for new in jobs],
        "run_at": [_float(new.run_at) for new in jobs],
        "delay": [float(new.delay) for new in jobs],
        "deadline": [_float(new.deadline) for new in jobs],
        "deadline_in": [_float(new.deadline_in) for new in jobs],
        "timeout": [_float(new.timeout) for new in jobs],
        "max_attempts": [new.max_attempts for new in jobs],
        "guarantee": [new.guarantee.value for new in jobs],
        "deadline_policy": [new.deadline_policy.value for new in jobs],
        "idempotency_key": [new.idempotency_key for new in jobs],
    }


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _rounds(outcomes: Sequence[Outcome]) -> list[list[Outcome]]:
    """Outcomes split so that no job appears twice in one round, in their order: the
    outcomes of one job apply one after the other, as they would one call each."""
    rounds: list[list[Outcome]] = []
    seen: dict[int, int] = {}
    for outcome in outcomes:
        index = seen.get(outcome.job_id, 0)
        seen[outcome.job_id] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(outcome)
    return rounds


def _outcome_columns(outcomes: Sequence[Outcome]) -> Params:
    return {
        "id": [o.job_id for o in outcomes],
        "fence": [o.fence for o in outcomes],
        "status": [o.status.value for o in outcomes],
        "outcome": [o.outcome.value for o in outcomes],
        "result": [o.result_json for o in outcomes],
        "error": [o.error for o in outcomes],
        "traceback": [o.traceback for o in outcomes],
        "retry_delay": [float(o.retry_delay) for o in outcomes],
    }
