"""The namespace-scoped client: every operation on one namespace's jobs, schedules and
workflow runs, over a store.

A `Client` holds no task registry and no state of its own beyond its store and
namespace: the command line builds one per command, an HTTP server one per request,
and `App` keeps one for its own namespace (`App.client`). What needs the tasks
(checking a job's arguments, compiling a workflow, declaring a schedule) happens
before, in `Task.prepare`, `Workflow.compile` and `App.schedule`; the client takes the
validated results.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from taskwheel.alerts import AlertDelivery, AlertRule
from taskwheel.durations import DurationLike, aware_datetime, parse_duration
from taskwheel.errors import InvalidInput, QueueFull, WorkflowRunEnded
from taskwheel.explanations import Explanation
from taskwheel.fairness import (
    FairWeight,
    NamespaceWeight,
    QueueAging,
    QueueReserve,
    parse_aging_rate,
    parse_share,
)
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.handles import JobHandle, WorkflowRunHandle
from taskwheel.jobs import Attempt, Job, JobFilter, NewJob, Stats
from taskwheel.lifecycle import JobStatus
from taskwheel.limits import KeyLimit
from taskwheel.quotas import Quota
from taskwheel.rates import KeyRate
from taskwheel.schedules import Fired, Schedule, ScheduleDefinition
from taskwheel.stores.base import Store
from taskwheel.validators import validate_id, validate_limit, validate_name
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import RunStatus, WorkflowRun, WorkflowRunFilter, WorkflowSpec


class Client:
    """One namespace of a store: enqueue prepared jobs; read, cancel and retry jobs;
    the dead-letter queue; schedules; workflow runs; statistics.

    Args:
        store: an open store whose schema is current (see `App.store`).
        namespace: the tenant every operation acts in; nothing crosses namespaces.

    Example:
        >>> client = Client(store, "tenant-a")
        >>> [handle] = client.enqueue_many([send.prepare("a@b.c")])
        >>> client.job(handle.id).cancel().status
        <JobStatus.CANCELLED: 'cancelled'>
        >>> client.list_jobs(JobFilter(status=JobStatus.DEAD))
        []
    """

    def __init__(
        self, store: Store, namespace: str = "default", *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.namespace = validate_name(namespace, "namespace")
        self._sleep = sleep  # how an enqueue waits for room in a full queue
        # Where the handles this client gives look their jobs up: the store, or for a
        # client in the caller's transaction (`within`), the store under it.
        self._handles: Store = store

    def within(self, connection: object) -> Client:
        """This client's operations in the caller's open transaction on
        ``connection`` (see `SQLStore.within`): what they write exists when the caller
        commits, and wakes workers then; a rollback leaves nothing. The handles it
        gives read through the store's own connections (so they see a job once the
        caller has committed it)."""
        client = Client(self.store.within(connection), self.namespace, sleep=self._sleep)
        client._handles = self.store
        return client

    def __repr__(self) -> str:
        return f"<Client namespace={self.namespace}>"

    # -- jobs -------------------------------------------------------------------------------

    def enqueue_many(
        self, requests: Iterable[NewJob], *, wait: float = 0.0
    ) -> list[JobHandle]:
        """Create jobs from prepared requests (`Task.prepare`) in one transaction (all
        or none); a request of another namespace is refused, and a batch over the
        namespace's quota raises `QuotaExceeded`, one over a queue's maximum depth
        `QueueFull`: nothing is written. A request whose idempotency key is taken gets
        the job holding it, its handle marked ``existing``.

        ``wait``: seconds to keep trying while a queue is full (by the store's clock,
        polling a few times a second) before `QueueFull` is raised; 0 refuses at once.
        """
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not (
                math.isfinite(wait) and wait >= 0):
            raise InvalidInput("wait", f"must be a number of seconds >= 0, got {wait!r}")
        batch = list(requests)
        for request in batch:
            if not isinstance(request, NewJob):
                raise InvalidInput(
                    "requests", f"expected Task.prepare(...) results, got {request!r}"
                )
            self._check_namespace(request.namespace, "request")
        until = None
        pause = 0.05
        while True:
            try:
                answer = self.store.enqueue(batch)
                break
            except QueueFull:
                now = self.store.now()
                if until is None:  # the wait counts from the first refusal
                    until = now + wait
                left = until - now
                if left <= 0:
                    raise
                self._sleep(min(pause, left))
                pause = min(pause * 2, 0.5)
        return [JobHandle(self._handles, self.namespace, job, existing=existing)
                for job, existing in zip(answer, answer.existing, strict=True)]

    def job(self, job_id: int) -> JobHandle:
        """A handle on an existing job (`JobNotFound` if the namespace has none)."""
        return JobHandle(self.store, self.namespace,
                         self.store.get_job(self.namespace, validate_id(job_id, "job_id")))

    def get_jobs(self, job_ids: Sequence[int]) -> list[Job]:
        """The jobs of ``job_ids`` that exist, in one read."""
        return self.store.get_jobs(self.namespace,
                                   [validate_id(job_id, "job_ids") for job_id in job_ids])

    def list_jobs(self, where: JobFilter | None = None) -> list[Job]:
        """Jobs, newest first."""
        where = where or JobFilter()
        validate_limit(where.limit)
        for field_name in ("queue", "task"):
            if getattr(where, field_name) is not None:
                validate_name(getattr(where, field_name), field_name)
        return self.store.list_jobs(self.namespace, where)

    def attempts(self, job_id: int) -> list[Attempt]:
        """The history of a job's attempts, oldest first."""
        return self.store.list_attempts(self.namespace, validate_id(job_id, "job_id"))

    def explain(self, job_id: int) -> Explanation:
        """Why the job is where it is, from the store's state at this instant: each
        reason with a stable code and a sentence (see `taskwheel.explanations`).

        Example:
            >>> client.explain(42).summary
            'due at 2030-01-01T09:00:00Z (in 3 h 2 min)'
        """
        return self.store.explain_job(self.namespace, validate_id(job_id, "job_id"))

    def cancel_job(self, job_id: int) -> Job:
        """Cancel a waiting job at once, or ask the worker running it to stop."""
        return self.store.cancel_job(self.namespace, validate_id(job_id, "job_id"))

    def retry_job(self, job_id: int) -> Job:
        """Queue a finished job again with a fresh set of attempts."""
        return self.store.retry_job(self.namespace, validate_id(job_id, "job_id"))

    def delete_jobs(self, job_ids: Sequence[int]) -> list[Job]:
        """Delete jobs and their history for good, all or none; the jobs as they were.

        A running job, or a step of a workflow run still going, is refused
        (`IllegalTransition`: cancel it first), as is an unknown id (`JobNotFound`).

        Example:
            >>> [job.id for job in client.delete_jobs([17, 18])]  # doctest: +SKIP
            [17, 18]
        """
        return self.store.delete_jobs(
            self.namespace, [validate_id(job_id, "job_ids") for job_id in job_ids])

    # -- dead-letter queue ------------------------------------------------------------------

    def list_dead(
        self, *, queue: str | None = None, task: str | None = None, limit: int = 100
    ) -> list[Job]:
        """Dead jobs (their attempts ran out), newest first."""
        return self.list_jobs(JobFilter(status=JobStatus.DEAD, queue=queue, task=task,
                                        limit=limit))

    def replay_dead(self, job_ids: Sequence[int] | None) -> list[int]:
        """Queue dead jobs again with a fresh set of attempts: those of ``job_ids``, or
        every dead job when it is None. The ids replayed."""
        if job_ids is not None:
            job_ids = [validate_id(job_id, "job_ids") for job_id in job_ids]
        return self.store.replay_dead(self.namespace, job_ids)

    def purge_dead(self, job_ids: Sequence[int] | None = None) -> int:
        """Delete the dead jobs (those of ``job_ids`` that are dead, if given) and their
        attempts for good; how many."""
        if job_ids is not None:
            job_ids = [validate_id(job_id, "job_ids") for job_id in job_ids]
        return self.store.purge_dead(self.namespace, job_ids)

    # -- schedules -------------------------------------------------------------------------

    def upsert_schedule(
        self, definition: ScheduleDefinition, *, declared_by: str | None = None
    ) -> tuple[Schedule, bool]:
        """Create the schedule, or update the one of its name (a paused one stays
        paused); the schedule, and whether anything changed. ``declared_by``: the app
        that declares it in code (see `App.sync_schedules`); None, written by hand."""
        self._check_namespace(definition.namespace, "schedule")
        if declared_by is not None:
            validate_name(declared_by, "declared_by")
        return self.store.upsert_schedule(definition, declared_by=declared_by)

    def upsert_schedules(
        self, definitions: Sequence[ScheduleDefinition], *, declared_by: str | None = None
    ) -> list[bool]:
        """`upsert_schedule` of each, in one transaction (all written or none); whether
        each changed anything."""
        for definition in definitions:
            self._check_namespace(definition.namespace, "schedule")
        if declared_by is not None:
            validate_name(declared_by, "declared_by")
        return self.store.upsert_schedules(definitions, declared_by=declared_by)

    def list_schedules(self) -> list[Schedule]:
        return self.store.list_schedules(self.namespace)

    def get_schedule(self, name: str) -> Schedule:
        """The schedule called ``name`` (`ScheduleNotFound` if there is none)."""
        return self.store.get_schedule(self.namespace, validate_name(name, "name"))

    def schedule_jobs(self, schedule: Schedule, limit: int = 10) -> list[Job]:
        """The most recent jobs ``schedule`` created (none for a workflow schedule,
        whose fires create runs)."""
        template = schedule.definition.job
        if template is None:
            return []
        jobs = self.list_jobs(JobFilter(task=template.task, limit=500))
        return [job for job in jobs if job.schedule_id == schedule.id][:limit]

    def pause_schedule(self, name: str) -> Schedule:
        """Stop firing ``name`` until resumed."""
        return self.store.set_schedule_paused(self.namespace, validate_name(name, "name"), True)

    def resume_schedule(self, name: str) -> Schedule:
        """Fire ``name`` again; times missed while paused go through its misfire policy."""
        return self.store.set_schedule_paused(self.namespace, validate_name(name, "name"), False)

    def remove_schedule(self, name: str) -> None:
        """Delete ``name``; the jobs it created stay."""
        self.store.remove_schedule(self.namespace, validate_name(name, "name"))

    def trigger_schedule(self, name: str) -> Fired:
        """Fire ``name`` now, once, outside its timing."""
        return self.store.trigger_schedule(self.namespace, validate_name(name, "name"))

    # -- workflows --------------------------------------------------------------------------

    def submit(self, spec: WorkflowSpec) -> WorkflowRunHandle:
        """Start a run of a compiled workflow (`Workflow.compile`) in one transaction."""
        self._check_namespace(spec.namespace, "workflow")
        return WorkflowRunHandle(self._handles, self.namespace, self.store.submit_workflow(spec))

    def workflow_run(self, run_id: int) -> WorkflowRunHandle:
        """A handle on an existing run (`WorkflowRunNotFound` if the namespace has none)."""
        return WorkflowRunHandle(
            self.store, self.namespace,
            self.store.get_workflow_run(self.namespace, validate_id(run_id, "run_id")),
        )

    def list_workflow_runs(self, where: WorkflowRunFilter | None = None) -> list[WorkflowRun]:
        """Runs, newest first, with their steps counted by state."""
        where = where or WorkflowRunFilter()
        validate_limit(where.limit)
        if where.name is not None:
            validate_name(where.name, "name")
        return self.store.list_workflow_runs(self.namespace, where)

    def retry_workflow_run(self, run_id: int, step: str | None = None) -> WorkflowRun:
        """Run the failed steps (or ``step``) again, with every step after them that
        did not succeed."""
        return self.store.retry_workflow_run(self.namespace, validate_id(run_id, "run_id"), step)

    def cancel_workflow_run(self, run_id: int) -> WorkflowRun:
        """Cancel the steps not yet finished; running ones are asked to stop.
        `WorkflowRunEnded` if the run had already ended (as cancelling a finished job
        is refused)."""
        run = self.store.get_workflow_run(self.namespace, validate_id(run_id, "run_id"))
        if run.status is not RunStatus.RUNNING:
            raise WorkflowRunEnded(run.id, run.status.value)
        return self.store.cancel_workflow_run(self.namespace, run_id)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Per queue: jobs by state, ready jobs by priority, the oldest ready job's age;
        and the workers."""
        return self.store.stats(self.namespace)

    # -- quota ------------------------------------------------------------------------------

    def quota(self) -> Quota:
        """The namespace's limits (none when none were set)."""
        return self.store.get_quota(self.namespace)

    def set_quota(
        self, *, max_queued: int | None = None, max_enqueue_rate: float | None = None,
        max_active_schedules: int | None = None,
    ) -> Quota:
        """Set the namespace's limits; None is no limit (see `Quota`)."""
        return self.store.set_quota(Quota(
            self.namespace, max_queued=max_queued, max_enqueue_rate=max_enqueue_rate,
            max_active_schedules=max_active_schedules))

    # -- pauses and queues' maximum depths --------------------------------------------------

    def pause_queue(
        self, queue: str, *, until: datetime | None = None,
        duration: DurationLike | None = None,
    ) -> Pause:
        """Stop dispatching the queue's jobs until `resume_queue` (see
        `taskwheel.gates`), or until ``until`` (an aware datetime) or for ``duration``
        (``"10m"``), when maintenance resumes it: workers claim none of them; running
        ones finish; enqueues still land (and wait). Pausing a paused queue keeps its
        jobs held and gives it the new end (none, if neither is given)."""
        return self.store.pause(self.namespace, GateKind.QUEUE, validate_name(queue, "queue"),
                                self._pause_end(until, duration))

    def resume_queue(self, queue: str) -> int:
        """Dispatch the queue's jobs again; how many became claimable. `NotPaused` if it
        was not paused."""
        return self.store.resume(self.namespace, GateKind.QUEUE, validate_name(queue, "queue"))

    def pause_task(
        self, task: str, *, until: datetime | None = None,
        duration: DurationLike | None = None,
    ) -> Pause:
        """Stop dispatching the task's jobs, in every queue, until `resume_task` (or
        ``until``, or for ``duration``, as `pause_queue`)."""
        return self.store.pause(self.namespace, GateKind.TASK, validate_name(task, "task"),
                                self._pause_end(until, duration))

    def _pause_end(self, until: datetime | None, duration: DurationLike | None) -> float | None:
        """When a pause ends, as epoch seconds; a duration counts from the store's now."""
        if until is not None and duration is not None:
            raise InvalidInput("until", "a pause ends at a time or after a duration, not both")
        if duration is not None:
            return self.store.now() + parse_duration(duration, "duration", allow_zero=False)
        if until is None:
            return None
        return aware_datetime(until, "until").timestamp()  # with a zone, and in range

    def resume_task(self, task: str) -> int:
        """Dispatch the task's jobs again; how many became claimable."""
        return self.store.resume(self.namespace, GateKind.TASK, validate_name(task, "task"))

    def pauses(self) -> list[Pause]:
        """The paused queues and tasks, each with the queued jobs it holds."""
        return self.store.list_pauses(self.namespace)

    def set_queue_limit(self, queue: str, max_depth: int) -> QueueLimit:
        """Refuse enqueues (`QueueFull`, nothing written) that would leave more than
        ``max_depth`` jobs waiting to run in ``queue``."""
        return self.store.set_queue_limit(QueueLimit(self.namespace, queue, max_depth))

    def remove_queue_limit(self, queue: str) -> None:
        """No maximum depth for ``queue`` any more (`QueueLimitNotFound` if it had none)."""
        self.store.remove_queue_limit(self.namespace, validate_name(queue, "queue"))

    def queue_limits(self) -> list[QueueLimit]:
        """The queues with a maximum depth, and their depth now."""
        return self.store.list_queue_limits(self.namespace)

    # -- key gates (taskwheel.limits) ----------------------------------------------------------

    def set_limit(self, key: str, limit: int | None) -> KeyLimit:
        """Run at most ``limit`` jobs of ``key`` at once from now on (None: no limit),
        whatever the task declares; waiting jobs are admitted at once if it rose.

        Example:
            >>> client.set_limit("tenant:42", 10).capacity
            10
        """
        return self.store.set_limit(self.namespace, key, limit)

    def limit(self, key: str) -> KeyLimit:
        """``key``'s gate: its slots, those in use, its waiting jobs, its pause
        (`LimitNotFound` for a key never seen)."""
        return self.store.get_limit(self.namespace, key)

    def limits(self) -> list[KeyLimit]:
        """Every key of the namespace, with its slots in use and waiting jobs."""
        return self.store.list_limits(self.namespace)

    def set_rate(self, key: str, rate: str | float | None = None, *,
                 burst: int | None = None) -> KeyRate:
        """Start ``key``'s jobs at ``rate`` at most (``"100/min"``, or tokens per
        second; None: the key's rate, unchanged) with ``burst`` (None: the key's, or 1
        for a new key) from the next admission pass on, whatever the task declares
        (`taskwheel.rates`). `RateNotFound` when only ``burst`` is given for a key
        without a rate.

        Example:
            >>> client.set_rate("api:acme", "100/min", burst=20).burst
            20
        """
        if rate is None:
            rate = self.store.get_rate(self.namespace, key).rate
        return self.store.set_rate(self.namespace, key, rate, burst)

    def rate(self, key: str) -> KeyRate:
        """``key``'s rate limit, its tokens and its jobs waiting for them
        (`RateNotFound` for a key without one)."""
        return self.store.get_rate(self.namespace, key)

    def rates(self) -> list[KeyRate]:
        """Every rate-limited key of the namespace."""
        return self.store.list_rates(self.namespace)

    def pause_key(
        self, key: str, *, until: datetime | None = None, duration: DurationLike | None = None,
    ) -> KeyLimit:
        """Admit no job of ``key`` until `resume_key` (or ``until``, or for
        ``duration``, as `pause_queue`): its ready jobs wait, running ones finish."""
        return self.store.pause_key(self.namespace, key, self._pause_end(until, duration))

    def resume_key(self, key: str) -> int:
        """Admit ``key``'s jobs again, up to its limit; how many were admitted."""
        return self.store.resume_key(self.namespace, key)

    def breakers(self) -> list[KeyLimit]:
        """The keys with a breaker rule, or a breaker not closed (`taskwheel.breakers`)."""
        return [limit for limit in self.store.list_limits(self.namespace)
                if limit.breaker_rule is not None or limit.breaker != "closed"]

    def open_breaker(
        self, key: str, *, until: datetime | None = None, duration: DurationLike | None = None,
    ) -> KeyLimit:
        """Open ``key``'s breaker: no job of it is admitted until ``until`` (or for
        ``duration``; neither: until `close_breaker`), then one probe at a time."""
        return self.store.open_breaker(self.namespace, key, self._pause_end(until, duration))

    def close_breaker(self, key: str) -> KeyLimit:
        """Close ``key``'s breaker and admit its waiting jobs (`BreakerNotOpen` if it
        was closed)."""
        return self.store.close_breaker(self.namespace, key)
    # -- fair shares and aging (taskwheel.fairness) --------------------------------------

    def set_fair_weight(self, key: str, weight: float) -> FairWeight:
        """Give the jobs of fairness key ``key`` (``""``: those without one) ``weight``
        shares of the claims of a saturated queue, against the other keys' weights.

        Example:
            >>> client.set_fair_weight("customer:42", 4)
        """
        return self.store.set_fair_weight(FairWeight(self.namespace, key, weight))

    def fair_weights(self) -> list[FairWeight]:
        """The namespace's fairness keys, with their weights."""
        return self.store.list_fair_weights(self.namespace)

    def set_queue_aging(self, queue: str, rate: str | float, *,
                        cap: int | None = None) -> QueueAging:
        """Make ``queue``'s waiting jobs gain priority at ``rate`` (``"1/min"``: one level
        a minute; a number: levels per second), so no band starves forever; with a
        ``cap``, aging lifts no job above that priority (jobs above it do not age, and
        are claimed first).

        Example:
            >>> client.set_queue_aging("reports", "1/min", cap=8)
        """
        return self.store.set_queue_aging(QueueAging(self.namespace, queue,
                                                     parse_aging_rate(rate), cap))

    def remove_queue_aging(self, queue: str) -> None:
        """Jobs of ``queue`` written from now on do not age (`AgingNotFound` if it did
        not)."""
        self.store.remove_queue_aging(self.namespace, validate_name(queue, "queue"))

    def queue_aging(self) -> list[QueueAging]:
        """The queues that age, with their rates."""
        return self.store.list_queue_aging(self.namespace)

    def set_queue_reserve(self, queue: str, share: str | float, *,
                          below: int) -> QueueReserve:
        """Keep ``share`` (``"10%"`` or ``0.1``) of ``queue``'s claims for its jobs
        ranked below priority ``below``, whenever such jobs are ready.

        Example:
            >>> client.set_queue_reserve("reports", "10%", below=5)
        """
        return self.store.set_queue_reserve(QueueReserve(self.namespace, queue,
                                                         parse_share(share), below))

    def remove_queue_reserve(self, queue: str) -> None:
        """Keep no share of ``queue``'s claims (`ReserveNotFound` if it kept none)."""
        self.store.remove_queue_reserve(self.namespace, validate_name(queue, "queue"))

    def queue_reserves(self) -> list[QueueReserve]:
        """The queues that keep a share of their claims for their lower bands."""
        return self.store.list_queue_reserves(self.namespace)

    def set_namespace_weight(self, weight: float) -> NamespaceWeight:
        """Give the namespace ``weight`` shares of the claims of a worker that serves
        it with other namespaces, against their weights (a namespace without one
        weighs 1), from the next claim on.

        Example:
            >>> client.set_namespace_weight(3)
        """
        return self.store.set_namespace_weight(NamespaceWeight(self.namespace, weight))

    def remove_namespace_weight(self) -> None:
        """Weigh the namespace 1 again (`NamespaceWeightNotFound` if it had no weight)."""
        self.store.remove_namespace_weight(self.namespace)

    def namespace_weight(self) -> float | None:
        """The namespace's weight; None when it has none (it weighs 1)."""
        return next((found.weight for found in self.store.list_namespace_weights()
                     if found.namespace == self.namespace), None)

    # -- webhooks ---------------------------------------------------------------------------

    def define_webhook(self, hook: NewWebhook) -> Webhook:
        """Create or replace a webhook (`taskwheel.webhooks.new_webhook`): requests to
        ``POST /hooks/{namespace}/{name}`` signed with its secret become jobs of its
        task."""
        self._check_namespace(hook.namespace, "webhook")
        return self.store.define_webhook(hook)

    def webhooks(self) -> list[Webhook]:
        return self.store.list_webhooks(self.namespace)

    def webhook(self, name: str) -> Webhook:
        """The webhook called ``name`` (`WebhookNotFound` if there is none)."""
        return self.store.get_webhook(self.namespace, validate_name(name, "name"))

    def remove_webhook(self, name: str) -> None:
        self.store.remove_webhook(self.namespace, validate_name(name, "name"))

    # -- alerts -----------------------------------------------------------------------------

    def define_alert(self, rule: AlertRule) -> AlertRule:
        """Create or replace an alert rule (`taskwheel.alerts.new_alert_rule`): the
        maintenance lease holder judges it and delivers its firings to its URL."""
        self._check_namespace(rule.namespace, "alert")
        return self.store.define_alert(rule)

    def alerts(self) -> list[AlertRule]:
        return self.store.list_alerts(self.namespace)

    def alert(self, name: str) -> AlertRule:
        """The rule called ``name`` (`AlertNotFound` if there is none)."""
        return self.store.get_alert(self.namespace, validate_name(name, "name"))

    def remove_alert(self, name: str) -> None:
        self.store.remove_alert(self.namespace, validate_name(name, "name"))

    def alert_deliveries(self, name: str, limit: int = 50) -> list[AlertDelivery]:
        """The rule's deliveries, newest first, each with how its attempts went."""
        validate_limit(limit)
        return self.store.list_alert_deliveries(self.namespace, self.alert(name).name, limit)

    def test_alert(self, name: str) -> AlertDelivery:
        """Send the rule's receiver a signed ``test`` event now, once; the delivery as
        it went (recorded with the others)."""
        from taskwheel.maintenance.alerter import deliver

        rule = self.alert(name)
        return deliver(self.store, rule, self.store.add_test_delivery(rule), max_attempts=1)

    def _check_namespace(self, namespace: str, what: str) -> None:
        if namespace != self.namespace:
            raise InvalidInput("namespace", f"{what} for {namespace!r} in namespace "
                               f"{self.namespace!r}")
