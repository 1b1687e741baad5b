"""Every store operation, decided once, over a dialect's `Executor`.

`SQLStore` implements the `Store` interface for both dialects: it opens the executor
an operation needs (one statement, a transaction, a read, a consistent snapshot),
composes the executor's intent-named statements in the order the operation's contract
gives, and makes the decisions (overlap policy, guards before requeue and replay,
workflow step ends, the claim policy, folding rows into `Stats`). A dialect
(``sqlite/store.py``, ``postgres/store.py``) supplies the executors and its schema
handling, and nothing else.

Hot paths (claim, report, heartbeat, enqueue) stay one executor call each where the
dialect can do them in one statement or one pipelined round trip.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from taskwheel.alerts import (
    AlertDelivery,
    AlertKind,
    AlertRule,
    AlertState,
    DeliveryStatus,
    Verdict,
    delivery_body,
    judge,
)
from taskwheel.breakers import (
    CLOSED as CLOSED_BREAKER,
)
from taskwheel.breakers import (
    BreakerState,
    BreakerStatus,
    after_cooldown,
    after_outcome,
)
from taskwheel.clock import Clock
from taskwheel.errors import (
    AgingNotFound,
    AlertNotFound,
    ApiKeyNotFound,
    BreakerNotOpen,
    IllegalTransition,
    InvalidInput,
    JobNotFound,
    LeaseLost,
    LimitNotFound,
    NamespaceWeightNotFound,
    NotPaused,
    QueueLimitNotFound,
    QuotaExceeded,
    ReserveNotFound,
    ScheduleNotFound,
    WebhookNotFound,
)
from taskwheel.events import Event, EventKind
from taskwheel.explanations import Explanation, JobFacts, explain
from taskwheel.fairness import (
    FairWeight,
    NamespaceWeight,
    QueueAging,
    QueueReserve,
    ReserveCredit,
)
from taskwheel.gates import GateKind, Pause, QueueLimit, admit_depth
from taskwheel.jobs import (
    Attempt,
    AttemptOutcome,
    Claim,
    DeadlinePolicy,
    Enqueued,
    Job,
    JobFilter,
    JobTemplate,
    NewJob,
    Outcome,
    QueueDepths,
    QueueStats,
    Rescue,
    StartWaits,
    Stats,
    epoch_datetime,
)
from taskwheel.keys import ApiKey, NewApiKey
from taskwheel.lifecycle import PENDING, RUNNING_TARGETS, TERMINAL, JobStatus, check_transition
from taskwheel.limits import BreakerRule, KeyLimit, validate_capacity, validate_key
from taskwheel.notify import due_event
from taskwheel.quotas import Quota, admit
from taskwheel.retry import DEFAULT_RETRY, Retry
from taskwheel.schedules import (
    Fired,
    FirePlan,
    FireResult,
    Firing,
    Overlap,
    PlannedFire,
    Schedule,
    ScheduleDefinition,
    fired_status,
    plan_fires,
    ready_or_due,
)
from taskwheel.stores import placing, rating, steps
from taskwheel.stores.base import Store, WorkerRegistration
from taskwheel.stores.caller import CallerConnection, unwrap_connection
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.executor import Access, AttemptEnd, Executor, announce_finished
from taskwheel.stores.policies import DEFAULT_POLICY, ClaimPolicy
from taskwheel.stores.rating import RateControl
from taskwheel.stores.reserves import QueueReserves
from taskwheel.stores.shares import NamespaceShares
from taskwheel.validators import ALL_NAMESPACES, validate_name
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import (
    RunStatus,
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
)


class SQLStore(RateControl, Store):
    """The `Store` contract written once over a dialect's executors."""

    claim_policy: ClaimPolicy = DEFAULT_POLICY
    _shares: NamespaceShares | None = None
    _reserves: QueueReserves | None = None
    _reserve_credit: ReserveCredit | None = None  # what this store's claims owe reserves
    clock: Clock  # the dialect's: the database's, or one a test injects
    # Whether the dialect's one-statement claim makes due delayed jobs ready and claims
    # them itself: a claim whose worker knows one is due then tries it first too.
    claims_due_at_once: bool = False
    claims_ahead = True  # claim_at_once (PostgreSQL), or Executor.claim_ahead in steps

    def now(self) -> float:
        return self.clock.now()

    @abstractmethod
    def executor(
        self, operation: str, access: Access = "transaction", *, pipeline: bool = False
    ) -> AbstractContextManager[Executor]:
        """An executor for ``operation``: ``statement`` (each statement commits alone),
        ``transaction`` (committed when the block ends, rolled back if it raises),
        ``read`` or ``snapshot``. ``pipeline`` hints that the statements may travel
        together (PostgreSQL)."""

    def executor_if_free(self, operation: str) -> AbstractContextManager[Executor | None]:
        """A write transaction for ``operation`` begun at once if no other writer
        holds the lock, else None (nothing begun): `try_claim`'s. None always from a
        dialect whose writes do not take turns under one lock (the default)."""
        return nullcontext(None)

    def within(self, connection: object) -> SQLStore:
        """This store's operations inside the caller's open transaction on
        ``connection`` (transactional enqueue): a psycopg 3 connection to this
        PostgreSQL database, or a ``sqlite3.Connection`` to this SQLite file (or a
        SQLAlchemy session or connection over either). What the operations write
        exists, and wakes workers, when the caller commits; a rollback leaves nothing.

        Example:
            >>> with psycopg.connect(url) as conn:          # doctest: +SKIP
            ...     conn.execute("INSERT INTO orders ...")
            ...     store.within(conn).enqueue([send.prepare("a@b.c")])
        """
        return CallerTransaction(self, self.caller_connection(unwrap_connection(connection)))

    def caller_connection(self, connection: object) -> CallerConnection:
        """The dialect's hold on the caller's ``connection`` (`InvalidInput` naming
        ``connection`` when it is not one this store can use)."""
        raise InvalidInput("connection", f"the {self.kind} store cannot use the caller's "
                           "connection")

    # -- jobs ---------------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> Enqueued:
        if not jobs:
            return Enqueued()
        if self.tracer is not None:  # each job carries the enqueue's trace context
            with self.tracer.enqueuing(jobs) as traced:
                return self._enqueue(traced)
        return self._enqueue(jobs)

    def _enqueue(self, jobs: Sequence[NewJob]) -> Enqueued:
        deadlines = keyed = placed = False
        for new in jobs:  # one pass: most batches have none of these
            deadlines = deadlines or new.deadline is not None
            keyed = keyed or new.idempotency_key is not None
            placed = placed or (new.gate_key is not None or new.fairness_key is not None
                                or new.rate_key is not None)
        if deadlines:
            _refuse_past_deadlines(jobs, self.now())
        written = None
        # Gated jobs take slots, and jobs with a fairness key get their places, in the
        # transaction below (rate-limited ones wait for their admission there too);
        # keys that others hold may have to be looked for twice: a batch in one
        # transaction too, so it is written whole or not at all. One job is one row
        # either way: each statement commits alone, one round trip fewer.
        if not placed:
            together = keyed and len(jobs) > 1
            with self.executor("enqueue", "transaction" if together else "statement",
                               pipeline=True) as ex:
                written = ex.insert_unlimited_jobs(jobs)
        created = written if written is not None else self._enqueue_within_quotas(jobs)
        if self.events.wants(EventKind.JOB_ENQUEUED):
            for job, existing in zip(created, created.existing, strict=True):
                if existing:
                    continue  # returned for its key: enqueued before
                self.events.emit(Event(EventKind.JOB_ENQUEUED, job.namespace,
                                       job.created_at.timestamp(), job.id, job.task, job.queue))
        return created

    def _enqueue_within_quotas(self, jobs: Sequence[NewJob]) -> Enqueued:
        """An enqueue a namespace's quota or a queue's maximum depth may refuse
        (`QuotaExceeded`, `QueueFull`; nothing written): each quota locked, judged
        (`quotas.admit`) and its rate bucket spent, each queue's maximum depth locked and
        judged (`gates.admit_depth`), in the transaction that writes the jobs. A request
        whose idempotency key is taken counts as a job: a full queue refuses it too.
        Jobs with a concurrency key are written, then given their keys: each takes a
        slot or waits blocked (`taskwheel.limits`). Jobs of a namespace with fair shares
        or aging get their places in the dispatch order there too
        (`placing.placed_jobs`)."""
        counts = Counter(new.namespace for new in jobs)
        by_queue = Counter((new.namespace, new.queue) for new in jobs)
        with self.executor("enqueue") as tx:
            now = tx.now()
            for namespace in sorted(counts):  # two enqueues lock quotas in one order
                usage = tx.quota_usage(namespace)
                if usage is None:
                    continue
                tokens = admit(usage, counts[namespace], now)
                if usage.quota.max_enqueue_rate is not None:
                    tx.spend_tokens(namespace, tokens, now)
            for namespace, queue in sorted(by_queue):  # and queues' limits in one order
                max_depth = tx.lock_queue_limit(namespace, queue)
                if max_depth is None:
                    continue
                depth = tx.queue_depth(namespace, queue, up_to=max_depth + 1)
                admit_depth(QueueLimit(namespace, queue, max_depth), depth,
                            by_queue[namespace, queue])
            gated = any(new.gate_key is not None for new in jobs)
            if gated:
                tx.arm_limits()
                tx.declare_limits(jobs)
            rated = any(new.rate_key is not None for new in jobs)
            if rated:
                tx.arm_rates()
                tx.declare_rates(jobs)
            created = tx.insert_jobs(placing.placed_jobs(tx, jobs, now))
            if rated:  # before their concurrency keys: a ready one waits for tokens
                created = rating.waiting_for_tokens(tx, created, jobs)
            if gated:
                tx.set_gate_keys([(job, new.gate_key) for job, new, existing
                                  in zip(created, jobs, created.existing, strict=True)
                                  if new.gate_key is not None and not existing])
            return created

    def claim(self, request: ClaimRequest) -> Claim:
        if request.limit == 0:
            with self.executor("claim_jobs", "read") as ex:
                return Claim(jobs=[], next_due=ex.next_due(request.namespaces, request.queues))
        policy = self._policy(request)
        claim = None
        if not request.due or self.claims_due_at_once:
            with self.executor("claim_jobs", "claim") as ex:
                # Most claims find nothing but ready jobs: one statement, one round trip.
                claim = policy.claim_at_once(ex, request)
        ahead: Claim | None = None
        if claim is None:
            with self.executor("claim_jobs", pipeline=True) as tx:
                steps.steps_ended(tx, tx.promote_and_expire(request.namespaces))
                claim = policy.claim(tx, request)
                ahead = tx.claim_ahead(request)  # None unless it asks and took some
        return _claimed(policy, claim, ahead)

    def try_claim(self, request: ClaimRequest) -> Claim | None:
        # What `claim` tries first, in a transaction begun only if the lock is free.
        if request.limit == 0 or (request.due and not self.claims_due_at_once):
            return None
        policy = self._policy(request)
        with self.executor_if_free("claim_jobs") as ex:
            claim = None if ex is None else policy.claim_at_once(ex, request)
        return None if claim is None else _claimed(policy, claim, None)

    def _policy(self, request: ClaimRequest) -> ClaimPolicy:
        """The policy that answers ``request``: its queues' reserves over the weights
        between its namespaces (for a claim of several) over `claim_policy`."""
        inner = self.claim_policy
        if len(set(request.namespaces)) > 1:
            inner = self._namespace_shares()
        if self._reserves is None or self._reserves.inner is not inner:
            if self._reserve_credit is None:
                self._reserve_credit = ReserveCredit()
            self._reserves = QueueReserves(inner, self._reserve_credit)
        return self._reserves

    def _namespace_shares(self) -> NamespaceShares:
        """This store's policy for claims over several namespaces (its stride starts
        are this store object's)."""
        if self._shares is None or self._shares.inner is not self.claim_policy:
            self._shares = NamespaceShares(self.claim_policy)
        return self._shares

    def heartbeat(
        self, worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        with self.executor("heartbeat", "statement") as ex:
            return ex.heartbeat(worker_id, float(lease_ttl), leases)

    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        with self.executor("extend_lease", "statement") as ex:
            return ex.extend_lease(job_id, fence, float(lease_ttl))

    def finish_attempts(self, outcomes: Sequence[Outcome]) -> list[int]:
        for outcome in outcomes:
            if outcome.status not in RUNNING_TARGETS:
                raise IllegalTransition(
                    outcome.job_id, JobStatus.RUNNING.value, outcome.status.value
                )
        if not outcomes:
            return []
        # Between a body's end and its outcome's commit, a worker's death runs the job
        # again. So the commit does not wait for the disk, which would widen that window
        # several times over (a database crash can lose an outcome, and costs the same
        # rerun; never a job); and jobs whose end moves nothing else are written by one
        # statement whose answer nothing in the transaction waits for: on PostgreSQL the
        # report leaves with its COMMIT, and once sent it commits even if the worker dies
        # (measured in the two-node crash scenario: the window to the report's sending,
        # about 24 ms at its start, became about 9).
        if all(o.ends_alone and o.trip_until is None for o in outcomes):
            with self.executor("finish_attempts", pipeline=True) as tx:
                tx.commit_unflushed()
                left = tx.finish_alone(outcomes)
            again = set(left())  # stale, or not alone after all: the whole way below
            outcomes = [o for o in outcomes if o.job_id in again]
            if not outcomes:
                return []
        with self.executor("finish_attempts", pipeline=True) as tx:
            tx.commit_unflushed()
            tx.defer_slot_release()
            moved, rejected = tx.finish_attempts(outcomes)
            tx.release_slots(moved)
            tx.release_queue_one(moved)  # queue_one jobs behind the ones that ended
            # Dependents of the steps that ended become ready in this same transaction.
            steps.steps_ended(tx, moved)
            announce_finished(tx, moved)
            applied = {row.id: row.namespace for row in moved}
            # Only a job with a key has a breaker to count its end against: a batch of
            # jobs without keys reads no breaker at all (no round trip).
            keyed = {row.id for row in moved if row.gate_key is not None}
            changes = self._judge_breakers(
                tx, [(o.job_id, o.outcome is AttemptOutcome.SUCCEEDED) for o in outcomes
                     if o.job_id in keyed and o.outcome is not AttemptOutcome.CANCELLED],
                [(o.job_id, applied[o.job_id], o.trip_until, o.trip_key) for o in outcomes
                 if o.job_id in applied and o.trip_until is not None])
        self._breaker_events(changes)
        return rejected

    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[int]:
        if not fences:
            return []
        with self.executor("release_jobs", pipeline=True) as tx:
            moved = tx.release_jobs(worker_id, fences)
            steps.steps_ended(tx, moved)
        released = {row.id for row in moved}
        return [job_id for job_id in fences if job_id in released]

    def end_attempts_of_dead_worker(
        self, worker_id: str, error: str, retries: Mapping[str, Retry] | None = None
    ) -> list[Job]:
        policies = retries or {}
        with self.executor("end_attempts_of_dead_worker") as tx:
            held = tx.lock_running_of_worker(worker_id)
            # Each job's next wait is its own task's policy; the store only applies it.
            ends = [AttemptEnd(job.id, job.fence,
                               policies.get(job.task, DEFAULT_RETRY).delay(job.attempt))
                    for job in held]
            moved = tx.end_attempts_of_worker(worker_id, error, ends)
            tx.release_queue_one(moved)
            steps.steps_ended(tx, moved)
            announce_finished(tx, moved)
            changes = self._judge_breakers(tx, [(row.id, False) for row in moved], [])
            tx.forget_worker(worker_id)
            ended = {row.id for row in moved}
            by_namespace: dict[str, list[int]] = {}
            for job in held:
                if job.id in ended:
                    by_namespace.setdefault(job.namespace, []).append(job.id)
            now = [job for namespace, ids in by_namespace.items()
                   for job in tx.get_jobs(namespace, ids)]
        self._breaker_events(changes)
        return sorted(now, key=lambda job: job.id)

    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        with self.executor("save_checkpoint", "statement") as ex:
            return ex.save_checkpoint(job_id, fence, state_json)

    def rescue_expired_leases(self, namespace: str) -> Rescue:
        with self.executor("rescue_expired_leases", pipeline=True) as tx:
            scope = _scope(tx, namespace)
            moved = tx.rescue_expired(scope, slotted=False)
            steps.steps_ended(tx, moved)
            changes = self._judge_breakers(tx, [(row.id, False) for row in moved], [])
            slotted = tx.expired_slotted_namespaces(scope)
        # The end of a keyed job (or of a workflow step, which moves steps that may be
        # keyed) takes its namespace's slot lock, which a report may hold while it
        # locks the next rows of its batch, one of them this expired job: the rescue
        # takes that lock before any row, one namespace per transaction, so that
        # neither waits for the other while holding what the other needs.
        for each in slotted:
            with self.executor("rescue_expired_leases", pipeline=True) as tx:
                tx.lock_slots(each)
                rescued = tx.rescue_expired([each], slotted=True)
                steps.steps_ended(tx, rescued)
                changes += self._judge_breakers(
                    tx, [(row.id, False) for row in rescued], [])
            moved += rescued
        self._breaker_events(changes)
        # Requeued: ready again, or waiting for its rate key's tokens (taskwheel.rates).
        back = (JobStatus.QUEUED, JobStatus.WAITING)
        return Rescue(
            requeued=sorted(row.id for row in moved if row.status in back),
            failed=sorted(row.id for row in moved if row.status not in back),
        )

    def cancel_job(self, namespace: str, job_id: int) -> Job:
        with self.executor("cancel_job") as tx:
            current = _one(tx.lock_jobs(namespace, [job_id]), job_id)
            if current.status is JobStatus.RUNNING:
                tx.request_cancel(namespace, job_id)
                tx.wake(namespace, "cancel")
            else:
                check_transition(current.status, JobStatus.CANCELLED, job_id)
                steps.steps_ended(tx, tx.cancel_pending(namespace, job_id))
            return _one(tx.get_jobs(namespace, [job_id]), job_id)

    def retry_job(self, namespace: str, job_id: int) -> Job:
        with self.executor("retry_job") as tx:
            return self._requeue_finished(tx, _one(tx.lock_jobs(namespace, [job_id]), job_id))

    def _requeue_finished(self, tx: Executor, current: Job) -> Job:
        """Queue a finished job again; a workflow step runs again the way its run's
        retry runs it, with the steps after it."""
        if current.workflow_run_id is not None:
            steps.retry_steps(tx, current.namespace, current.workflow_run_id, current.step)
            return _one(tx.get_jobs(current.namespace, [current.id]), current.id)
        if current.status not in TERMINAL:
            raise IllegalTransition(current.id, current.status.value, JobStatus.QUEUED.value,
                                    "only a finished job can be retried")
        check_transition(current.status, JobStatus.QUEUED, current.id)
        job = tx.requeue_finished(current.namespace, current.id, current.status)
        if job is None:  # changed since it was read: say what it is now
            now = _one(tx.get_jobs(current.namespace, [current.id]), current.id)
            raise IllegalTransition(current.id, now.status.value, JobStatus.QUEUED.value)
        return job

    def replay_dead(self, namespace: str, job_ids: Sequence[int] | None) -> list[int]:
        with self.executor("replay_dead") as tx:
            ids = tx.dead_ids(namespace) if job_ids is None else list(job_ids)
            # All locked first, in id order: two replays of overlapping sets never wait
            # on each other. Then each as it is now (an earlier one may have changed it).
            tx.lock_jobs(namespace, ids)
            replayed: list[int] = []
            for job_id in ids:
                job = _one(tx.get_jobs(namespace, [job_id]), job_id)
                if job.status is not JobStatus.DEAD and job_ids is None:
                    continue  # a workflow step already re-run with an earlier one
                if job.status is not JobStatus.DEAD:
                    raise IllegalTransition(job_id, job.status.value, "replayed (not dead)")
                self._requeue_finished(tx, job)
                replayed.append(job_id)
        return replayed

    def purge_dead(self, namespace: str, job_ids: Sequence[int] | None = None) -> int:
        with self.executor("purge_dead") as tx:
            return tx.purge_dead(namespace, None if job_ids is None else list(job_ids))

    def delete_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        wanted = sorted(set(job_ids))
        with self.executor("delete_jobs") as tx:
            found = {job.id: job for job in tx.lock_jobs(namespace, wanted)}
            runs_going: dict[int, bool] = {}
            for job_id in wanted:
                job = _one([found[job_id]] if job_id in found else [], job_id)
                if job.status is JobStatus.RUNNING:
                    raise IllegalTransition(job_id, job.status.value, "deleted",
                                            "a running job cannot be deleted (cancel it first)")
                run_id = job.workflow_run_id
                if run_id is not None and run_id not in runs_going:
                    run = tx.workflow_run(namespace, run_id)
                    runs_going[run_id] = run is not None and run.status is RunStatus.RUNNING
                if run_id is not None and runs_going[run_id]:
                    raise IllegalTransition(
                        job_id, job.status.value, "deleted",
                        f"a step of workflow run {run_id}, which is still running, cannot be "
                        "deleted (cancel the run first)")
            if wanted:
                tx.delete_jobs(namespace, wanted)
            return [found[job_id] for job_id in wanted]

    def get_job(self, namespace: str, job_id: int) -> Job:
        with self.executor("get_job", "read") as ex:
            return _one(ex.get_jobs(namespace, [job_id]), job_id)

    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        with self.executor("get_jobs", "read") as ex:
            return ex.get_jobs(namespace, job_ids)

    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        with self.executor("list_jobs", "read") as ex:
            return ex.list_jobs(namespace, where)

    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        with self.executor("list_attempts", "read") as ex:
            return ex.list_attempts(namespace, job_id)

    def finished_per_minute(self, namespace: str, since: float) -> list[tuple[float, str, int]]:
        with self.executor("finished_per_minute", "read") as ex:
            return ex.finished_per_minute(namespace, since)

    def namespaces(self) -> list[str]:
        with self.executor("namespaces", "read") as ex:
            return ex.namespaces()

    # -- schedules ------------------------------------------------------------------------------

    def upsert_schedule(
        self, definition: ScheduleDefinition, *, declared_by: str | None = None
    ) -> tuple[Schedule, bool]:
        namespace, name = definition.namespace, definition.name
        with self.executor("upsert_schedule") as tx:
            next_fire_at = definition.next_fire(tx.now())
            if next_fire_at is not None:
                _check_schedule_quota(
                    tx, namespace, lambda: int(_adds_active(tx, namespace, name)))
            changed = tx.upsert_schedule(definition, next_fire_at, declared_by)
            schedule = _schedule(tx, namespace, name)
            if changed:
                tx.wake(namespace, "schedules")
        return schedule, changed

    def upsert_schedules(
        self, definitions: Sequence[ScheduleDefinition], *, declared_by: str | None = None
    ) -> list[bool]:
        given: set[tuple[str, str]] = set()
        for definition in definitions:
            if (definition.namespace, definition.name) in given:
                raise InvalidInput("name", f"schedule {definition.name!r} is given twice")
            given.add((definition.namespace, definition.name))
        if not definitions:
            return []
        with self.executor("upsert_schedules") as tx:
            now = tx.now()
            items = [(definition, definition.next_fire(now)) for definition in definitions]
            for namespace in sorted({definition.namespace for definition in definitions}):
                firing = [d.name for d, at in items if d.namespace == namespace and at is not None]
                _check_schedule_quota(tx, namespace, functools.partial(
                    _count_adding, tx, namespace, firing))
            changed = tx.upsert_schedules(items, declared_by)
            woken = {d.namespace for (d, _), c in zip(items, changed, strict=True) if c}
            for namespace in sorted(woken):
                tx.wake(namespace, "schedules")
        return changed

    def get_schedule(self, namespace: str, name: str) -> Schedule:
        with self.executor("get_schedule", "read") as ex:
            return _schedule(ex, namespace, name)

    def get_schedules(self, namespace: str, ids: Sequence[int]) -> list[Schedule]:
        with self.executor("get_schedules", "read") as ex:
            return ex.schedules_by_id(_scope(ex, namespace), ids)

    def list_schedules(
        self, namespace: str, *, declared_by: str | None = None
    ) -> list[Schedule]:
        with self.executor("list_schedules", "read") as ex:
            return ex.list_schedules(namespace, declared_by)

    def set_schedule_paused(self, namespace: str, name: str, paused: bool) -> Schedule:
        with self.executor("set_schedule_paused") as tx:
            if not paused:

                def adds_one() -> int:
                    current = tx.schedule_by_name(namespace, name)
                    return int(current is not None and current.paused
                               and current.next_fire_at is not None)

                _check_schedule_quota(tx, namespace, adds_one)
            tx.pause_schedule(namespace, name, paused)
            schedule = _schedule(tx, namespace, name)
            tx.wake(namespace, "schedules")
        return schedule

    def remove_schedule(self, namespace: str, name: str) -> None:
        with self.executor("remove_schedule") as tx:
            if not tx.remove_schedule(namespace, name):
                raise ScheduleNotFound(name)
            tx.wake(namespace, "schedules")

    def schedules_due(
        self, namespace: str, until: float, after: float | None = None,
        partitions: tuple[int, Collection[int]] | None = None,
    ) -> list[tuple[int, float]]:
        if partitions is not None:
            partitions = _checked_partitions(partitions)
        with self.executor("schedules_due", "read") as ex:
            return ex.schedules_due(_scope(ex, namespace), float(until), after, partitions)

    def schedules_changed(self, namespace: str, since: float) -> list[tuple[int, float | None]]:
        with self.executor("schedules_changed", "read") as ex:
            return ex.schedules_changed(_scope(ex, namespace), float(since))

    def fire_schedules(
        self, namespace: str, plans: Sequence[FirePlan], lease: tuple[str, str] | None = None
    ) -> list[Fired]:
        if not plans:
            return []
        with self.executor("fire_schedules") as tx:
            scope, current = _firing(tx, namespace, [plan.schedule_id for plan in plans],
                                     () if lease is None else (lease,))
            return self._apply_plans(tx, scope, {s.id: s for s in current}, plans)

    def fire_due(
        self, namespace: str, ids: Sequence[int], now: float,
        lease: tuple[str, str] | None = None, *, leases: Sequence[tuple[str, str]] = (),
    ) -> list[Firing]:
        if not ids:
            return []
        with self.executor("fire_schedules") as tx:
            scope, found = _firing(tx, namespace, ids,
                                   leases if lease is None else (lease, *leases))
            planned = [(s, plan_fires(s, now)) for s in found]
            plans = [plan for _, plan in planned if plan is not None]
            by_schedule: dict[int, list[Fired]] = {}
            if plans:
                current = {s.id: s for s in found}
                for fired in self._apply_plans(tx, scope, current, plans):
                    by_schedule.setdefault(fired.schedule_id, []).append(fired)
            return [Firing(s, plan, tuple(by_schedule.get(s.id, ()))) for s, plan in planned]

    def _apply_plans(
        self, tx: Executor, scope: list[str], current: dict[int, Schedule],
        plans: Sequence[FirePlan],
    ) -> list[Fired]:
        """Apply plans of the schedules ``current`` (read in this transaction); a plan
        whose schedule is gone or moved on is stale. The fires of job schedules that
        allow overlap depend on nothing before them: one `Executor.insert_fired_jobs`
        writes them all (a burst's fires in a statement or a few, not each in its own).
        The others fire one at a time, each seeing the jobs of the fires before it (and
        so does every fire when traced: each is a span of its own)."""
        now = tx.now()
        advanced = tx.advance_schedules(scope, plans)
        # Each plan with its schedule as moved (None: stale), and whether its fires go
        # with the others. (Loops by index, not zips: a zip(strict=True) costs CPython
        # more than the loop around it, and a scheduler fires mostly one at a time.)
        applied: list[tuple[FirePlan, Schedule | None, bool]] = []
        batch: list[tuple[Schedule, PlannedFire, JobStatus]] = []
        for index, plan in enumerate(plans):
            schedule = current.get(plan.schedule_id) if advanced[index] else None
            together = False
            if schedule is not None and self.tracer is None and _independent(schedule, plan):
                together = True
                for fire in plan.fires:
                    batch.append((schedule, fire, ready_or_due(fire.run_at, now)))
            applied.append((plan, schedule, together))
        job_ids = tx.insert_fired_jobs(batch) if batch else []
        taken = 0
        fired: list[Fired] = []
        by_namespace: dict[str, list[Fired]] = {}
        for plan, schedule, together in applied:
            if schedule is None:
                fired.extend(
                    Fired.at(plan.schedule_id, f.fire_at, FireResult.STALE) for f in plan.fires
                )
                continue
            if together:
                fires = []
                for fire in plan.fires:
                    fires.append(_job_fired(schedule, fire, batch[taken][2], job_ids[taken], now))
                    taken += 1
            else:
                fires = [self._fire(tx, schedule, fire, plan.overlap, now)
                         for fire in plan.fires]
            _key_fired(tx, schedule, fires)
            by_namespace.setdefault(schedule.definition.namespace, []).extend(fires)
            fired += fires
        # Once per namespace for all of its fires, not once per schedule.
        for namespace, fires in by_namespace.items():
            _wake_for_fires(tx, namespace, fires)
            _place_fired(tx, namespace, fires)
        return fired

    def trigger_schedule(self, namespace: str, name: str) -> Fired:
        with self.executor("trigger_schedule") as tx:
            now = tx.now()
            schedule = _schedule(tx, namespace, name)
            fired = self._fire(tx, schedule, PlannedFire(now, now), Overlap.ALLOW, now)
            _wake_for_fires(tx, namespace, [fired])
            _place_fired(tx, namespace, [fired])
        return fired

    def _fire(
        self, tx: Executor, schedule: Schedule, fire: PlannedFire, overlap: Overlap, now: float
    ) -> Fired:
        """`_fire`, in a ``taskwheel.fire`` span when traced: the jobs it creates (the
        job, or every step of the run) carry the span's context."""
        if self.tracer is None:
            return _fire(tx, schedule, fire, overlap, now)
        definition = schedule.definition
        with self.tracer.producing(f"taskwheel.fire {definition.name}", {
            "taskwheel.namespace": definition.namespace,
            "taskwheel.schedule": definition.name, "taskwheel.fire_at": fire.fire_at,
        }) as trace_parent:
            fired = _fire(tx, schedule, fire, overlap, now)
            if trace_parent is not None:
                created = [] if fired.job_id is None else [fired.job_id]
                if fired.workflow_run_id is not None:
                    created = [s.job.id for s in tx.workflow_steps(fired.workflow_run_id)]
                if created:
                    tx.trace_jobs(definition.namespace, created, trace_parent)
        return fired

    # -- workflows ------------------------------------------------------------------------------

    def submit_workflow(self, spec: WorkflowSpec) -> WorkflowRun:
        if self.tracer is None:
            return self._submit_workflow(spec, None)
        # The steps carry the submission's trace context (see taskwheel.tracing).
        with self.tracer.producing(f"taskwheel.submit {spec.name}", {
            "taskwheel.namespace": spec.namespace, "taskwheel.workflow": spec.name,
            "taskwheel.steps": len(spec.steps),
        }) as trace_parent:
            return self._submit_workflow(spec, trace_parent)

    def _submit_workflow(self, spec: WorkflowSpec, trace_parent: str | None) -> WorkflowRun:
        with self.executor("submit_workflow") as tx:
            now = tx.now()
            run_id = tx.insert_run(spec, run_at=now, started=now)
            assert run_id is not None  # only a fire can collide
            _key_steps(tx, spec, run_id)
            if trace_parent is not None:
                tx.trace_jobs(spec.namespace, [s.job.id for s in tx.workflow_steps(run_id)],
                              trace_parent)
            run = steps.read_run(tx, spec.namespace, run_id)
            if placing.in_use(tx, spec.namespace):
                placing.place_written(tx, spec.namespace, [step.job for step in run.steps])
            return run

    def get_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        with self.executor("get_workflow_run", "snapshot") as ex:
            return steps.read_run(ex, namespace, run_id)

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        with self.executor("list_workflow_runs", "snapshot") as ex:
            return steps.list_runs(ex, ex.list_workflow_runs(namespace, where))

    def retry_workflow_run(
        self, namespace: str, run_id: int, step: str | None = None
    ) -> WorkflowRun:
        with self.executor("retry_workflow_run") as tx:
            steps.retry_steps(tx, namespace, run_id, step)
            return steps.read_run(tx, namespace, run_id)

    def cancel_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        with self.executor("cancel_workflow_run") as tx:
            steps.cancel_run(tx, namespace, run_id)
            return steps.read_run(tx, namespace, run_id)

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        with self.executor("upstream_outcomes", "read") as ex:
            return ex.upstream_outcomes(namespace, job_id)

    # -- maintenance ----------------------------------------------------------------------------

    def promote_due_jobs(self, namespace: str) -> tuple[int, float | None]:
        with self.executor("promote_due_jobs", pipeline=True) as tx:
            scope = _scope(tx, namespace)
            promoted = tx.promote_due(scope)
            next_due = tx.next_due(scope)
        return promoted, next_due

    def expire_missed_deadlines(self, namespace: str) -> int:
        with self.executor("expire_missed_deadlines", pipeline=True) as tx:
            moved = tx.expire_missed(_scope(tx, namespace), waiting=True)
            steps.steps_ended(tx, moved)
        return len(moved)

    def release_waiting(self, namespace: str) -> int:
        with self.executor("release_waiting", "statement") as ex:
            return ex.release_waiting(_scope(ex, namespace))

    def prune_finished(self, namespace: str, before: float, limit: int = 10_000) -> int:
        with self.executor("prune_finished", pipeline=True) as tx:
            # Every namespace's, and the leases of processes that served them all.
            scope = [*tx.namespaces(), ALL_NAMESPACES] if namespace == ALL_NAMESPACES else [
                namespace]
            return sum(tx.prune(each, float(before), limit) for each in scope)

    # -- workers and leadership -----------------------------------------------------------------

    def register_worker(self, worker: WorkerRegistration) -> None:
        with self.executor("register_worker", "statement") as ex:
            ex.register_worker(worker)

    def unregister_worker(self, worker_id: str) -> None:
        with self.executor("unregister_worker", "statement") as ex:
            ex.unregister_worker(worker_id)

    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        if not names:
            return set()
        with self.executor("elect_many", "statement") as ex:
            # Sorted: two electors of overlapping sets take the rows in one order.
            return ex.elect_many(namespace, sorted(set(names)), holder, float(ttl))

    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        with self.executor("lease_holders", "read") as ex:
            return ex.lease_holders(namespace, prefix)

    def slowest_heartbeat(self, namespace: str) -> float | None:
        with self.executor("slowest_heartbeat", "read") as ex:
            return ex.slowest_heartbeat(namespace)

    def resign(self, namespace: str, name: str, holder: str) -> None:
        with self.executor("resign", "statement") as ex:
            ex.resign(namespace, name, holder)

    # -- API keys and quotas -----------------------------------------------------------------

    def create_api_key(self, key: NewApiKey) -> ApiKey:
        with self.executor("create_api_key", "statement") as ex:
            return ex.insert_api_key(key)

    def get_api_key(self, prefix: str) -> ApiKey | None:
        with self.executor("get_api_key", "read") as ex:
            return ex.api_key(prefix)

    def list_api_keys(self, namespace: str | None = None) -> list[ApiKey]:
        if namespace is not None and namespace != ALL_NAMESPACES:
            validate_name(namespace, "namespace")
        with self.executor("list_api_keys", "read") as ex:
            return ex.list_api_keys(namespace)

    def revoke_api_key(self, prefix: str) -> ApiKey:
        validate_name(prefix, "prefix")
        with self.executor("revoke_api_key", "statement") as ex:
            key = ex.revoke_api_key(prefix)
        if key is None:
            raise ApiKeyNotFound(prefix)
        return key

    def define_webhook(self, hook: NewWebhook) -> Webhook:
        with self.executor("define_webhook", "statement") as ex:
            return ex.upsert_webhook(hook)

    def get_webhook(self, namespace: str, name: str) -> Webhook:
        with self.executor("get_webhook", "read") as ex:
            found = ex.webhook(namespace, name)
        if found is None:
            raise WebhookNotFound(name)
        return found

    def list_webhooks(self, namespace: str) -> list[Webhook]:
        with self.executor("list_webhooks", "read") as ex:
            return ex.list_webhooks(namespace)

    def remove_webhook(self, namespace: str, name: str) -> None:
        with self.executor("remove_webhook", "statement") as ex:
            if not ex.delete_webhook(namespace, name):
                raise WebhookNotFound(name)

    def get_quota(self, namespace: str) -> Quota:
        validate_name(namespace, "namespace")
        with self.executor("get_quota", "read") as ex:
            return ex.get_quota(namespace) or Quota(namespace)

    def set_quota(self, quota: Quota) -> Quota:
        with self.executor("set_quota", "statement") as ex:
            if quota.unlimited:  # no row: the namespace's enqueues look for nothing more
                ex.remove_quota(quota.namespace)
            else:
                ex.set_quota(quota)
        return quota

    def queue_depths(self) -> QueueDepths:
        with self.executor("queue_depths", "snapshot") as ex:
            return QueueDepths(now=ex.now(), bands=ex.depth_by_band(), workers=ex.all_workers())

    def explain_job(self, namespace: str, job_id: int) -> Explanation:
        with self.executor("explain_job", "snapshot") as ex:
            job = _one(ex.get_jobs(namespace, [job_id]), job_id)
            pending = job.status in PENDING
            gate, blocked = (ex.job_gate(namespace, job_id) if job.status is JobStatus.QUEUED
                             else (None, False))
            facts = JobFacts(
                job=job, now=ex.now(),
                workers=ex.workers_of([namespace]) if pending else (),
                ahead=ex.jobs_ahead(job) if job.status is JobStatus.QUEUED else (),
                upstream=(ex.upstream_outcomes(namespace, job_id)
                          if job.status is JobStatus.WAITING else ()),
                schedule_name=_schedule_name(ex, job),
                pauses=ex.list_pauses(namespace) if pending else (),
                rate=rating.rate_of_waiting(ex, job),
                gate=next(iter(ex.list_limits(namespace, gate)), None) if gate else None,
                blocked=blocked,
            )
        return explain(facts)

    # -- alerts ---------------------------------------------------------------------------------

    def define_alert(self, rule: AlertRule) -> AlertRule:
        with self.executor("define_alert", "statement") as ex:
            return ex.upsert_alert_rule(rule, ex.now())

    def get_alert(self, namespace: str, name: str) -> AlertRule:
        with self.executor("get_alert", "read") as ex:
            found = ex.alert_rule(namespace, name)
        if found is None:
            raise AlertNotFound(name)
        return found

    def list_alerts(self, namespace: str) -> list[AlertRule]:
        with self.executor("list_alerts", "read") as ex:
            return ex.list_alert_rules(namespace)

    def remove_alert(self, namespace: str, name: str) -> None:
        with self.executor("remove_alert") as tx:
            if not tx.delete_alert_rule(namespace, name):
                raise AlertNotFound(name)

    def alert_scope(self, namespace: str) -> list[str]:
        if namespace != ALL_NAMESPACES:
            return [namespace]
        with self.executor("alert_scope", "read") as ex:
            return ex.alert_namespaces()

    def evaluate_alert(self, rule: AlertRule) -> tuple[Verdict, AlertDelivery | None]:
        with self.executor("evaluate_alert") as tx:
            now = tx.now()
            live = 0
            if rule.kind is AlertKind.NO_WORKER:
                live = sum(1 for worker in tx.workers_of([rule.namespace])
                           if worker.alive and rule.queue in worker.queues)
            verdict = judge(rule, tx.alert_reading(rule, now, live))
            to = AlertState.FIRING if verdict.breached else AlertState.OK
            firing = tx.change_alert_state(rule, to, verdict.value, now)
            if firing is None:
                tx.note_alert_value(rule, verdict.value, now)
                return verdict, None
            event = "firing" if verdict.breached else "resolved"
            body = delivery_body(rule, event, firing, verdict, now)
            return verdict, tx.insert_alert_delivery(rule, firing, event, body, now)

    def add_test_delivery(self, rule: AlertRule) -> AlertDelivery:
        with self.executor("add_test_delivery") as tx:
            now = tx.now()
            delivery = tx.insert_alert_delivery(
                rule, None, "test", delivery_body(rule, "test", None, None, now), now)
        assert delivery is not None, "test deliveries have no firing: never a conflict"
        return delivery

    def due_alert_deliveries(self, namespace: str, limit: int = 20) -> list[AlertDelivery]:
        with self.executor("due_alert_deliveries", "read") as ex:
            return ex.due_alert_deliveries(namespace, ex.now(), limit)

    def record_alert_delivery(
        self, delivery_id: int, status: DeliveryStatus, next_at: float,
        status_code: int | None = None, error: str | None = None,
    ) -> AlertDelivery | None:
        with self.executor("record_alert_delivery", "statement") as ex:
            return ex.record_alert_delivery(delivery_id, status, next_at,
                                            status_code=status_code, error=error, now=ex.now())

    def list_alert_deliveries(
        self, namespace: str, name: str, limit: int = 50
    ) -> list[AlertDelivery]:
        with self.executor("list_alert_deliveries", "read") as ex:
            return ex.list_alert_deliveries(namespace, name, limit)

    # -- dispatch control ---------------------------------------------------------------------

    def pause(
        self, namespace: str, kind: GateKind, name: str, until: float | None = None
    ) -> Pause:
        validate_name(namespace, "namespace")
        validate_name(name, kind.value)
        with self.executor("pause") as tx:
            if until is not None and not until > tx.now():
                raise InvalidInput("until", f"{epoch_datetime(until).isoformat()} has passed: "
                                   "a pause ends in the future")
            tx.lock_gates()
            closed = tx.insert_pause(namespace, kind, name, until)
            if closed:
                tx.arm_gates()
                tx.block_jobs(namespace, kind, name)
            else:
                tx.set_pause_until(namespace, kind, name, until)
            pause = _pause_of(tx, namespace, kind, name)
        if closed:
            self._gate_event(EventKind.GATE_CLOSED, pause.paused_at.timestamp(), namespace,
                             kind, name, measurements={"held": pause.held})
        return pause

    def resume(self, namespace: str, kind: GateKind, name: str) -> int:
        validate_name(namespace, "namespace")
        validate_name(name, kind.value)
        with self.executor("resume") as tx:
            tx.lock_gates()
            if not tx.delete_pause(namespace, kind, name):
                raise NotPaused(kind.value, name)
            released = tx.unblock_jobs(namespace, kind, name)
            if not tx.any_pauses():
                tx.disarm_gates()
            now = tx.now()
        self._gate_event(EventKind.GATE_OPENED, now, namespace, kind, name,
                         measurements={"released": released})
        return released

    def resume_due_pauses(self, namespace: str) -> int:
        opened: list[tuple[str, GateKind, str, int]] = []
        with self.executor("resume_due_pauses") as tx:
            scope = _scope(tx, namespace)
            # Maintenance asks every few seconds and a pause is rarely due: the gates'
            # lock (exclusive: every job becoming ready waits for it on PostgreSQL) is
            # taken only when one is, then the due pauses are read again under it.
            if not any(tx.due_pauses(each) for each in scope):
                return 0
            tx.lock_gates()
            for each in scope:
                for kind, name in tx.due_pauses(each):
                    tx.delete_pause(each, kind, name)
                    opened.append((each, kind, name, tx.unblock_jobs(each, kind, name)))
            if opened and not tx.any_pauses():
                tx.disarm_gates()
            now = tx.now()
        for each, kind, name, released in opened:
            self._gate_event(EventKind.GATE_OPENED, now, each, kind, name,
                             measurements={"released": released})
        return len(opened)

    def _gate_event(self, event: EventKind, at: float, namespace: str, kind: GateKind,
                    name: str, *, measurements: dict[str, float]) -> None:
        if self.events.wants(event):
            self.events.emit(Event(
                event, namespace, at, queue=name if kind is GateKind.QUEUE else None,
                task=name if kind is GateKind.TASK else None, measurements=measurements,
                metadata={"kind": kind.value, "name": name}))

    def list_pauses(self, namespace: str) -> list[Pause]:
        validate_name(namespace, "namespace")
        with self.executor("list_pauses", "read") as ex:
            return ex.list_pauses(namespace)

    def set_limit(self, namespace: str, key: str, capacity: int | None) -> KeyLimit:
        _validate_gate(namespace, key)
        if capacity is not None:
            validate_capacity(capacity)
        with self.executor("set_limit") as tx:
            tx.arm_limits()
            tx.lock_slots(namespace)
            tx.set_limit(namespace, key, capacity)
            tx.admit_waiting(namespace, [key])
            return _limit_of(tx, namespace, key)

    def get_limit(self, namespace: str, key: str) -> KeyLimit:
        _validate_gate(namespace, key)
        with self.executor("get_limit", "read") as ex:
            return _limit_of(ex, namespace, key)

    def list_limits(self, namespace: str) -> list[KeyLimit]:
        validate_name(namespace, "namespace")
        with self.executor("list_limits", "read") as ex:
            return ex.list_limits(namespace)

    def pause_key(self, namespace: str, key: str, until: float | None = None) -> KeyLimit:
        _validate_gate(namespace, key)
        with self.executor("pause_key") as tx:
            if until is not None and not until > tx.now():
                raise InvalidInput("until", f"{epoch_datetime(until).isoformat()} has passed: "
                                   "a pause ends in the future")
            tx.lock_slots(namespace)
            before = _limit_of(tx, namespace, key)  # LimitNotFound: nothing written
            tx.pause_key(namespace, key, until)
            tx.block_key(namespace, key)
            paused = _limit_of(tx, namespace, key)
        if not before.paused:
            self._key_event(EventKind.GATE_CLOSED, namespace, key,
                            {"waiting": paused.waiting, "running": paused.in_use})
        return paused

    def resume_key(self, namespace: str, key: str) -> int:
        _validate_gate(namespace, key)
        with self.executor("resume_key") as tx:
            tx.lock_slots(namespace)
            _limit_of(tx, namespace, key)  # LimitNotFound first
            if not tx.resume_key(namespace, key):
                raise NotPaused("key", key)
            admitted = tx.admit_waiting(namespace, [key])
        self._key_event(EventKind.GATE_OPENED, namespace, key, {"released": admitted})
        return admitted

    def admit_due_keys(self, namespace: str) -> int:
        opened: list[tuple[str, str, int]] = []
        admitted = 0
        changes: list[_BreakerChange] = []
        with self.executor("admit_due_keys") as tx:
            now = tx.now()
            for each in _scope(tx, namespace):
                due, cooled = tx.due_key_pauses(each), tx.due_breakers(each)
                waiting = tx.waiting_keys(each)
                if not due and not cooled and not waiting:
                    continue
                tx.lock_slots(each)
                for key in due:
                    tx.resume_key(each, key)
                    opened.append((each, key, tx.admit_waiting(each, [key])))
                for key in cooled:
                    found = tx.key_breaker(each, key)
                    assert found is not None
                    changes.append(self._set_breaker(tx, _BreakerChange(
                        each, key, found.state, after_cooldown(found.state, now), "cooldown")))
                # Read again under the slot lock: the keys resumed above admitted some.
                admitted += tx.admit_waiting(each, tx.waiting_keys(each))
        for each, key, released in opened:
            self._key_event(EventKind.GATE_OPENED, each, key, {"released": released})
        self._breaker_events(changes)
        return admitted + sum(released for _, _, released in opened)

    def open_breaker(self, namespace: str, key: str, until: float | None = None) -> KeyLimit:
        _validate_gate(namespace, key)
        with self.executor("open_breaker") as tx:
            if until is not None and not until > tx.now():
                raise InvalidInput("until", f"{epoch_datetime(until).isoformat()} has passed: "
                                   "a breaker is opened until a time to come")
            tx.lock_slots(namespace)
            found = tx.key_breaker(namespace, key)
            if found is None:
                raise LimitNotFound(key)
            opened = BreakerState(BreakerStatus.OPEN, until=until)
            changes = [self._set_breaker(tx, _BreakerChange(namespace, key, found.state,
                                                            opened, "hand"))]
            limit = _limit_of(tx, namespace, key)
        self._breaker_events(changes)
        return limit

    def close_breaker(self, namespace: str, key: str) -> KeyLimit:
        _validate_gate(namespace, key)
        with self.executor("close_breaker") as tx:
            tx.lock_slots(namespace)
            found = tx.key_breaker(namespace, key)
            if found is None:
                raise LimitNotFound(key)
            if found.state.state is BreakerStatus.CLOSED:
                raise BreakerNotOpen(key)
            changes = [self._set_breaker(tx, _BreakerChange(namespace, key, found.state,
                                                            CLOSED_BREAKER, "hand"))]
            limit = _limit_of(tx, namespace, key)
        self._breaker_events(changes)
        return limit

    def _judge_breakers(
        self, tx: Executor, ends: Sequence[tuple[int, bool]],
        trips: Sequence[tuple[int, str, float, str | None]],
    ) -> list[_BreakerChange]:
        """Count the ended attempts (job, succeeded) against their keys' breakers and
        open the breakers their tasks tripped (job, namespace, until, key), in the
        transaction that ended them (`taskwheel.breakers` decides)."""
        if not ends and not trips:
            return []
        found = {b.job_id: b for b in tx.breaker_states([job for job, _ in ends],
                                                         [job for job, *_ in trips])}
        if not found and all(key is None for *_, key in trips):
            return []
        now = tx.now()
        states: dict[tuple[str, str],
                     tuple[BreakerState, BreakerState, BreakerRule | None]] = {}
        for job_id, success in ends:
            breaker = found.get(job_id)
            if breaker is None:
                continue
            at = (breaker.namespace, breaker.key)
            before, state, rule = states.get(at, (breaker.state, breaker.state, breaker.rule))
            states[at] = (before, after_outcome(rule, state, success=success, now=now), rule)
        for job_id, namespace, until, named in trips:
            key = named if named is not None else (
                found[job_id].key if job_id in found else None)
            if key is None:
                continue  # a job without a key tripped no breaker of its own: nothing to open
            at = (namespace, key)
            if at not in states:
                tx.touch_limit(namespace, key)
                read = tx.key_breaker(namespace, key)
                assert read is not None
                states[at] = (read.state, read.state, read.rule)
            before, state, rule = states[at]
            if state.state is BreakerStatus.OPEN and (state.until is None or state.until >= until):
                continue  # open longer already
            states[at] = (before, BreakerState(BreakerStatus.OPEN, until=until), rule)
        return [self._set_breaker(tx, _BreakerChange(namespace, key, before, after, "outcomes"))
                for (namespace, key), (before, after, _) in sorted(states.items())
                if after != before]

    def _set_breaker(self, tx: Executor, change: _BreakerChange) -> _BreakerChange:
        """Write a key's breaker; its gate follows: an opened breaker sends the key's
        ready jobs back to wait, a closed or half-open one admits waiting jobs."""
        namespace, key, before, after = change.namespace, change.key, change.before, change.after
        tx.lock_slots(namespace)
        tx.set_breaker(namespace, key, after)
        if after.state is BreakerStatus.OPEN and before.state is not BreakerStatus.OPEN:
            tx.block_key(namespace, key)
        elif after.state is not BreakerStatus.OPEN and before.state is not after.state:
            tx.admit_waiting(namespace, [key])
        return change

    def _breaker_events(self, changes: Sequence[_BreakerChange]) -> None:
        kinds = {BreakerStatus.OPEN: EventKind.BREAKER_OPENED,
                 BreakerStatus.HALF_OPEN: EventKind.BREAKER_HALF_OPEN,
                 BreakerStatus.CLOSED: EventKind.BREAKER_CLOSED}
        for change in changes:
            if change.after.state is change.before.state:
                continue
            kind = kinds[change.after.state]
            if self.events.wants(kind):
                self.events.emit(Event(kind, change.namespace, self.now(), metadata={
                    "key": change.key, "until": change.after.until, "by": change.by}))

    def _key_event(self, event: EventKind, namespace: str, key: str,
                   measurements: dict[str, float]) -> None:
        if self.events.wants(event):
            self.events.emit(Event(event, namespace, self.now(), measurements=measurements,
                                   metadata={"kind": "key", "name": key}))

    def set_queue_limit(self, limit: QueueLimit) -> QueueLimit:
        with self.executor("set_queue_limit") as tx:
            tx.set_queue_limit(limit)
            return next(found for found in tx.list_queue_limits(limit.namespace)
                        if found.queue == limit.queue)

    def set_fair_weight(self, weight: FairWeight) -> FairWeight:
        with self.executor("set_fair_weight") as tx:
            tx.set_fair_weight(weight.namespace, weight.key, weight.weight)
            return next(found for found in tx.list_fair_flows(weight.namespace)
                        if found.key == weight.key)

    def list_fair_weights(self, namespace: str) -> list[FairWeight]:
        validate_name(namespace, "namespace")
        with self.executor("list_fair_weights", "read") as ex:
            return ex.list_fair_flows(namespace)

    def set_queue_aging(self, aging: QueueAging) -> QueueAging:
        with self.executor("set_queue_aging", "statement") as ex:
            ex.set_queue_aging(aging)
        return aging

    def remove_queue_aging(self, namespace: str, queue: str) -> None:
        validate_name(namespace, "namespace")
        validate_name(queue, "queue")
        with self.executor("remove_queue_aging", "statement") as ex:
            if not ex.delete_queue_aging(namespace, queue):
                raise AgingNotFound(queue)

    def list_queue_aging(self, namespace: str) -> list[QueueAging]:
        validate_name(namespace, "namespace")
        with self.executor("list_queue_aging", "read") as ex:
            return ex.list_queue_aging(namespace)

    def set_queue_reserve(self, reserve: QueueReserve) -> QueueReserve:
        with self.executor("set_queue_reserve", "statement") as ex:
            ex.set_queue_reserve(reserve)
        return reserve

    def remove_queue_reserve(self, namespace: str, queue: str) -> None:
        validate_name(namespace, "namespace")
        validate_name(queue, "queue")
        with self.executor("remove_queue_reserve", "statement") as ex:
            if not ex.delete_queue_reserve(namespace, queue):
                raise ReserveNotFound(queue)

    def list_queue_reserves(self, namespace: str) -> list[QueueReserve]:
        validate_name(namespace, "namespace")
        with self.executor("list_queue_reserves", "read") as ex:
            return ex.list_queue_reserves(namespace)

    def set_namespace_weight(self, weight: NamespaceWeight) -> NamespaceWeight:
        with self.executor("set_namespace_weight", "statement") as ex:
            ex.set_namespace_weight(weight)
        return weight

    def remove_namespace_weight(self, namespace: str) -> None:
        validate_name(namespace, "namespace")
        with self.executor("remove_namespace_weight", "statement") as ex:
            if not ex.delete_namespace_weight(namespace):
                raise NamespaceWeightNotFound(namespace)

    def list_namespace_weights(self) -> list[NamespaceWeight]:
        with self.executor("list_namespace_weights", "read") as ex:
            return ex.list_namespace_weights()

    def remove_queue_limit(self, namespace: str, queue: str) -> None:
        validate_name(namespace, "namespace")
        validate_name(queue, "queue")
        with self.executor("remove_queue_limit", "statement") as ex:
            if not ex.delete_queue_limit(namespace, queue):
                raise QueueLimitNotFound(queue)

    def list_queue_limits(self, namespace: str) -> list[QueueLimit]:
        validate_name(namespace, "namespace")
        with self.executor("list_queue_limits", "read") as ex:
            return ex.list_queue_limits(namespace)

    def start_waits(self, namespace: str, since: float) -> list[StartWaits]:
        with self.executor("start_waits", "read") as ex:
            return ex.start_waits(namespace, float(since))

    def stats(self, namespace: str) -> Stats:
        with self.executor("stats", "snapshot", pipeline=True) as ex:
            found = ex.stats_rows(namespace)
        now = found.now
        by_queue: dict[str, dict[str, int]] = {}
        for group in found.counts:
            by_queue.setdefault(group.queue, {})[group.status] = group.count
        by_priority: dict[str, dict[int, dict[str, int]]] = {}
        priorities: dict[str, dict[int, int]] = {}
        oldest: dict[str, float] = {}
        for band in found.bands:
            by_priority.setdefault(band.queue, {}).setdefault(
                band.priority, {})[band.status] = band.count
            if band.status == JobStatus.QUEUED.value:
                priorities.setdefault(band.queue, {})[band.priority] = band.count
            if band.first_ready is not None:
                oldest[band.queue] = min(oldest.get(band.queue, band.first_ready),
                                         band.first_ready)
        queues = [
            QueueStats(
                queue=queue,
                counts=by_queue[queue],
                ready_by_priority=dict(sorted(priorities.get(queue, {}).items(), reverse=True)),
                oldest_ready_age=max(0.0, now - oldest[queue]) if queue in oldest else None,
                by_priority=dict(sorted(by_priority.get(queue, {}).items(), reverse=True)),
            )
            for queue in sorted(by_queue)
        ]
        return Stats(queues=queues, workers=found.workers)


class CallerTransaction(SQLStore):
    """``store``'s operations in the caller's transaction (see `SQLStore.within`).

    Reads see what the transaction wrote so far; writes become visible to others,
    and wake workers, when the caller commits. Maintenance, claims and other worker
    operations are the pool's business and are not meant to run here.
    """

    def __init__(self, store: SQLStore, connection: CallerConnection) -> None:
        self.store = store
        self.kind = store.kind
        self.clock = store.clock
        self.claim_policy = store.claim_policy
        self.notifier = store.notifier
        self._events = store.events
        self._connection = connection

    def executor(
        self, operation: str, access: Access = "transaction", *, pipeline: bool = False
    ) -> AbstractContextManager[Executor]:
        # Every kind of access is the caller's one transaction.
        return self._connection.executor(operation)

    def migrate(self) -> list[str]:
        return self.store.migrate()

    def schema_version(self) -> int:
        return self.store.schema_version()

    def latest_schema_version(self) -> int:
        return self.store.latest_schema_version()

    def describe(self) -> dict[str, Any]:
        return self.store.describe()

    def close(self) -> None:
        """Nothing to close: the connection is the caller's."""


# -- decisions shared by several operations -----------------------------------------------------


def _refuse_past_deadlines(jobs: Sequence[NewJob], now: float) -> None:
    """A job whose fixed deadline is not after the time it is due would expire without
    running (unless its deadline policy is to run late): refused, and nothing written.
    Judged here, by the store's clock, the one that judges the deadline."""
    for new in jobs:
        if new.deadline is None or new.deadline_policy is not DeadlinePolicy.EXPIRE:
            continue
        due = new.run_at if new.run_at is not None else now + new.delay
        if new.deadline <= max(due, now):
            raise InvalidInput("deadline", f"{epoch_datetime(new.deadline).isoformat()} has "
                               "passed, or is not after the job's start: the job would "
                               "expire without running")


def _scope(ex: Executor, namespace: str) -> list[str]:
    """The namespaces an operation given ``namespace`` covers: that one, or every
    namespace for `ALL_NAMESPACES` (a process serving them all)."""
    return ex.namespaces() if namespace == ALL_NAMESPACES else [namespace]


def _firing(
    tx: Executor, namespace: str, ids: Sequence[int], leases: Sequence[tuple[str, str]],
) -> tuple[list[str], list[Schedule]]:
    """The scope of a firing transaction and the schedules ``ids`` as it reads them,
    once each of ``leases`` (name, holder) is found held (`LeaseLost` naming the first
    in name order that is not, otherwise). One statement reads them all."""
    if leases:
        holders = tx.holders_of(namespace, sorted({name for name, _ in leases}))
        for name, holder in sorted(leases):
            if holders.get(name) != holder:
                raise LeaseLost(name, holder)
    scope = _scope(tx, namespace)
    return scope, tx.schedules_by_id(scope, ids)


def _checked_partitions(
    partitions: tuple[int, Collection[int]],
) -> tuple[int, frozenset[int]]:
    """(count, wanted) of `Store.schedules_due`, or `InvalidInput` naming what is wrong."""
    count, wanted = partitions
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput("partitions", f"the count must be an integer >= 1, got {count!r}")
    chosen = frozenset(wanted)
    if any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < count
           for k in chosen):
        raise InvalidInput("partitions", f"each partition must be an integer from 0 to "
                           f"{count - 1}, got {sorted(chosen, key=repr)!r}")
    return count, chosen


def _active(schedule: Schedule | None) -> bool:
    return schedule is not None and not schedule.paused and schedule.next_fire_at is not None


def _check_schedule_quota(tx: Executor, namespace: str, adds: Callable[[], int]) -> None:
    """`QuotaExceeded` when the write makes ``adds()`` more schedules active (asked only
    under a limit: a namespace without one reads nothing more) and that would pass the
    namespace's limit (the quota locked until the transaction ends)."""
    usage = tx.quota_usage(namespace)
    limit = None if usage is None else usage.quota.max_active_schedules
    if limit is None:
        return
    more = adds()
    if more and (active := tx.count_active_schedules(namespace)) + more > limit:
        raise QuotaExceeded(namespace, "max_active_schedules", (
            f"{limit} active schedules already (pause or remove one)" if more == 1 else
            f"{more} more active schedules would make {active + more}, past the limit of "
            f"{limit}"))


def _count_adding(tx: Executor, namespace: str, names: Sequence[str]) -> int:
    return sum(_adds_active(tx, namespace, name) for name in names)


def _adds_active(tx: Executor, namespace: str, name: str) -> bool:
    """Whether writing schedule ``name`` (with a fire ahead) makes one more active: it
    is new or finished (a paused one stays paused)."""
    current = tx.schedule_by_name(namespace, name)
    return not (current is not None and current.paused) and not _active(current)


def _schedule_name(ex: Executor, job: Job) -> str | None:
    """The name of the schedule that fired a job waiting its turn (queue_one)."""
    if job.schedule_id is None or job.status is not JobStatus.WAITING:
        return None
    found = ex.schedules_by_id([job.namespace], [job.schedule_id])
    return found[0].definition.name if found else None
@dataclass(frozen=True, slots=True)
class _BreakerChange:
    namespace: str
    key: str
    before: BreakerState
    after: BreakerState
    by: str  # "outcomes", "cooldown" or "hand"


def _validate_gate(namespace: str, key: str) -> None:
    validate_name(namespace, "namespace")
    validate_key(key)


def _limit_of(ex: Executor, namespace: str, key: str) -> KeyLimit:
    found = ex.list_limits(namespace, key)
    if not found:
        raise LimitNotFound(key)
    return found[0]


def _pause_of(ex: Executor, namespace: str, kind: GateKind, name: str) -> Pause:
    return next(found for found in ex.list_pauses(namespace)
                if found.kind is kind and found.name == name)


def _one(jobs: list[Job], job_id: int) -> Job:
    if not jobs:
        raise JobNotFound(job_id)
    return jobs[0]


def _schedule(ex: Executor, namespace: str, name: str) -> Schedule:
    schedule = ex.schedule_by_name(namespace, name)
    if schedule is None:
        raise ScheduleNotFound(name)
    return schedule


def _fire(
    tx: Executor, schedule: Schedule, fire: PlannedFire, overlap: Overlap, now: float
) -> Fired:
    """One fire of a schedule under its overlap policy and the (schedule, fire time)
    key: a job, or a workflow run for a schedule of a workflow."""
    if schedule.definition.workflow is not None:
        if overlap is not Overlap.ALLOW and tx.unfinished_workflow_run(schedule.id):
            return Fired.at(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
        run_id = tx.insert_run(schedule.definition.workflow, run_at=fire.run_at,
                               started=fire.fire_at, schedule_id=schedule.id,
                               fire_at=fire.fire_at)
        if run_id is None:
            return Fired.at(schedule.id, fire.fire_at, FireResult.DUPLICATE)
        return Fired.at(schedule.id, fire.fire_at, FireResult.CREATED, run_at=fire.run_at,
                        created_at=now, workflow_run_id=run_id)
    unfinished = [] if overlap is Overlap.ALLOW else tx.unfinished_of_schedule(schedule.id)
    status = fired_status(overlap, unfinished, fire.run_at, now)
    if status is None:
        return Fired.at(schedule.id, fire.fire_at, FireResult.OVERLAP_SKIPPED)
    [job_id] = tx.insert_fired_jobs([(schedule, fire, status)])
    return _job_fired(schedule, fire, status, job_id, now)


def _independent(schedule: Schedule, plan: FirePlan) -> bool:
    """Whether the fires of ``plan`` may be written with any others (`_apply_plans`):
    jobs, whatever else their schedule has unfinished."""
    return schedule.definition.workflow is None and plan.overlap is Overlap.ALLOW


def _job_fired(
    schedule: Schedule, fire: PlannedFire, status: JobStatus, job_id: int | None, now: float
) -> Fired:
    """What a fire did that wrote the job ``job_id`` in ``status`` (None: the fire's
    job existed already)."""
    if job_id is None:
        return Fired.at(schedule.id, fire.fire_at, FireResult.DUPLICATE)
    result = FireResult.WAITING if status is JobStatus.WAITING else FireResult.CREATED
    return Fired.at(schedule.id, fire.fire_at, result, job_id=job_id, run_at=fire.run_at,
                    created_at=now)


def _key_created(tx: Executor, created: Sequence[tuple[Job, JobTemplate]]) -> None:
    """Jobs made from templates (a fire's job, a workflow's steps) whose task declares
    a rate, a concurrency limit or a breaker get their keys, as an enqueue gives them:
    the rate key first (a ready job waits for its tokens instead; one waiting for its
    dependencies or its turn waits for them, then for its tokens: `taskwheel.rates`),
    then the concurrency key (each takes a slot or waits blocked: `taskwheel.limits`)."""
    rated = [(job, template, template.rate_key) for job, template in created
             if template.rate_key is not None]
    if rated:
        tx.arm_rates()
        tx.declare_rates([(job.namespace, template) for job, template, _ in rated])
        tx.set_rate_keys([(job, key, template.rate_cost) for job, template, key in rated])
    gated = [(job, template, template.gate_key) for job, template in created
             if template.gate_key is not None]
    if gated:
        tx.arm_limits()
        tx.declare_limits([(job.namespace, template) for job, template, _ in gated])
        tx.set_gate_keys([(job, key) for job, _, key in gated])


def _keyed(template: JobTemplate) -> bool:
    """Whether jobs made from ``template`` get keys (`_key_created`)."""
    return template.gate_key is not None or template.rate_key is not None


def _key_fired(tx: Executor, schedule: Schedule, fired: Sequence[Fired]) -> None:
    definition = schedule.definition
    if definition.workflow is not None:
        for f in fired:
            if f.workflow_run_id is not None:
                _key_steps(tx, definition.workflow, f.workflow_run_id)
        return
    template = definition.job
    job_ids = [f.job_id for f in fired if f.job_id is not None]
    if template is None or not _keyed(template) or not job_ids:
        return
    _key_created(tx, [(job, template)
                       for job in tx.get_jobs(definition.namespace, job_ids)])


def _key_steps(tx: Executor, spec: WorkflowSpec, run_id: int) -> None:
    templates = {step.name: step.job for step in spec.steps}
    if not any(_keyed(template) for template in templates.values()):
        return
    _key_created(tx, [(step.job, templates[step.name])
                       for step in tx.workflow_steps(run_id)])


def _place_fired(tx: Executor, namespace: str, fired: Sequence[Fired]) -> None:
    """Give the jobs the fires created (a job, or a workflow run's steps) their places
    in the dispatch order, when their namespace has fair shares or aging."""
    if not any(f.job_id or f.workflow_run_id for f in fired) or not placing.in_use(
            tx, namespace):
        return
    job_ids = [f.job_id for f in fired if f.job_id is not None]
    jobs = tx.get_jobs(namespace, job_ids) if job_ids else []
    for f in fired:
        if f.workflow_run_id is not None:
            jobs += [step.job for step in steps.read_run(tx, namespace,
                                                         f.workflow_run_id).steps]
    placing.place_written(tx, namespace, jobs)


def _wake_for_fires(tx: Executor, namespace: str, fired: Sequence[Fired]) -> None:
    """Schedulers promote the fired jobs that are due later (the "due" wake-up);
    workers are woken for those ready now by the statements that wrote them."""
    later = [f.run_at for f in fired if f.result is FireResult.CREATED and f.run_at is not None
             and f.created_at is not None and f.run_at > f.created_at]
    if later:
        tx.wake(namespace, due_event(min(later).timestamp()))


def _claimed(policy: ClaimPolicy, claim: Claim, ahead: Claim | None) -> Claim:
    """A claim committed: told to its policy (the jobs taken ahead are not its), with
    those jobs added, in dispatch order."""
    policy.claimed(claim)
    if ahead is not None:
        claim = Claim(jobs=[*claim.jobs, *ahead.jobs], next_due=ahead.next_due, at=ahead.at)
    claim.jobs.sort(key=Job.dispatch_key)
    return claim
