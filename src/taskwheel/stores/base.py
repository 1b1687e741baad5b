"""The `Store` interface: every read and write of taskwheel's state, named for intent.

Only stores touch SQL. Each backend implements this class and passes the contract
suite in ``tests/contract``. Every time-dependent operation is judged by the store's
clock (the database clock), never by the caller's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from taskwheel.alerts import AlertDelivery, AlertRule, DeliveryStatus, Verdict
from taskwheel.errors import InvalidInput, SchemaOutdated
from taskwheel.events import Events
from taskwheel.explanations import Explanation
from taskwheel.fairness import FairWeight, NamespaceWeight, QueueAging, QueueReserve
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.jobs import (
    Attempt,
    Claim,
    Enqueued,
    Job,
    JobFilter,
    NewJob,
    Outcome,
    QueueDepths,
    Rescue,
    StartWaits,
    Stats,
)
from taskwheel.keys import ApiKey, NewApiKey
from taskwheel.limits import KeyLimit
from taskwheel.notify import Notifier
from taskwheel.quotas import Quota
from taskwheel.rates import AdmissionPass, KeyRate
from taskwheel.retry import Retry
from taskwheel.schedules import Fired, FirePlan, Firing, Schedule, ScheduleDefinition
from taskwheel.stores.claims import ClaimRequest
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import StepOutcome, WorkflowRun, WorkflowRunFilter, WorkflowSpec


@dataclass(frozen=True, slots=True)
class WorkerRegistration:
    id: str
    namespace: str
    hostname: str
    pid: int
    queues: Sequence[str]
    concurrency: int
    pool: str
    heartbeat_interval: float


class EnqueueTracer(Protocol):
    """What traces enqueues (`taskwheel.tracing.JobTracing`): a context around each
    enqueue that hands back the requests to write, carrying its trace context; and a
    span around each schedule fire and workflow submission, whose context (a W3C
    ``traceparent``, or None) the jobs it creates carry."""

    def enqueuing(self, jobs: Sequence[NewJob]) -> AbstractContextManager[list[NewJob]]: ...

    def producing(
        self, name: str, attributes: Mapping[str, str | int | float]
    ) -> AbstractContextManager[str | None]: ...


class Store(ABC):
    """Durable state of jobs, attempts, workers and leases."""

    notifier: Notifier
    kind: str = "taskwheel"  # the backend's name in messages: "sqlite", "postgres"
    _events: Events | None = None
    tracer: EnqueueTracer | None = None  # set by `taskwheel.tracing.instrument`
    # Whether `claim` takes delayed jobs due within `ClaimRequest.ahead` (both SQL
    # stores do: a claim takes longer than a worker's alarm is late).
    claims_ahead: bool = False
    # Whether the writes of every process take turns under one lock (SQLite's): a
    # worker then hands the outcomes waiting to be written to the store before it
    # claims, so that no claim holds the lock while a finished job's outcome waits.
    one_writer: bool = False

    @property
    def events(self) -> Events:
        """The hook through which this store, and the workers and schedulers that use
        it, announce what happened (see `taskwheel.events`)."""
        if self._events is None:
            self._events = Events()
        return self._events

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied (0 when none)."""

    @abstractmethod
    def latest_schema_version(self) -> int:
        """The version this taskwheel's migrations bring a database to."""

    def check_schema(self) -> None:
        """`SchemaOutdated` unless the database's schema is the one this taskwheel
        expects (nothing migrates implicitly)."""
        found, expected = self.schema_version(), self.latest_schema_version()
        if found != expected:
            raise SchemaOutdated(found, expected, self.kind)

    def check_writable(self) -> None:
        """`StoreError` if this process could read the database but never write it (a
        read-only file, say): a configuration error for a worker or scheduler to
        report at start, not an outage to wait out. Writes nothing.

        Example:
            >>> store.check_writable()  # before serving: fails at once, in one line
        """
        return  # a store that can be reached can be written, unless it says otherwise

    @abstractmethod
    def now(self) -> float:
        """The store's clock, in epoch seconds."""

    @abstractmethod
    def namespaces(self) -> list[str]:
        """Every namespace that has jobs, schedules or workflow runs, sorted.

        Where a method below takes a ``namespace``, the maintenance ones (promote,
        rescue, expire, release, prune) and the schedule reads and fires also take
        `ALL_NAMESPACES` (``"*"``), for a process that serves every namespace; leases
        named under ``"*"`` are that process's. Rows still belong to one namespace each.
        """

    # -- jobs ---------------------------------------------------------------------

    @abstractmethod
    def enqueue(self, jobs: Sequence[NewJob]) -> Enqueued:
        """Create jobs in one transaction; durable on return.

        A job whose idempotency key already exists in its namespace is not created:
        the existing job is returned in its place, and its id is in the answer's
        ``existing``. A batch that would pass a quota of one of its namespaces
        (`set_quota`) raises `QuotaExceeded` and writes nothing.
        """

    @abstractmethod
    def claim(self, request: ClaimRequest) -> Claim:
        """Take up to ``request.limit`` ready jobs of its queues and namespaces, in the
        order the store's claim policy gives (by default priority, deadline, due time,
        id), under a lease.

        In the same transaction, delayed jobs that are due become ready and waiting
        jobs whose deadline passed expire. Each claimed job gets attempt + 1 and a
        new fencing token. ``next_due`` is when the earliest delayed job falls due;
        for a claim of nothing (``limit`` 0, which writes nothing), the earliest of the
        request's queues: when there will be work for this worker.
        """

    def try_claim(self, request: ClaimRequest) -> Claim | None:
        """`claim`, if it can be answered without waiting for a lock another writer
        holds; None (nothing done) when it cannot, or when this store never claims so
        (the default). The caller may be an event loop with nothing else to do: an idle
        worker claims here first, on its loop, which spares its claim the hop to a
        thread and back (SQLite: about a quarter of the time from an enqueue to the
        job's start on an idle worker), and claims with `claim` on a thread when this
        answers None."""
        return None

    def claim_jobs(
        self,
        namespace: str,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_ttl: float,
    ) -> Claim:
        """`claim` for one namespace."""
        return self.claim(ClaimRequest(worker_id, (namespace,), tuple(queues), limit,
                                       float(lease_ttl)))

    @abstractmethod
    def heartbeat(
        self, worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        """Extend, in one statement, the leases of exactly the attempts the worker is
        executing (``leases``: {job id: fencing token}) and its own last-seen time.

        A lease of the worker that is not named (a claim whose answer never reached it,
        an attempt it lost track of) is not renewed: it expires and is rescued, so no
        lease outlives its work. Returns {job id: cancel requested} for the named
        attempts still held.
        """

    @abstractmethod
    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool:
        """Extend one job's lease; False when ``fence`` is stale."""

    @abstractmethod
    def finish_attempts(self, outcomes: Sequence[Outcome]) -> list[int]:
        """Apply attempt outcomes in one transaction; return the ids rejected as stale."""

    @abstractmethod
    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[int]:
        """Give back the leases of running jobs ({id: fence}) so others take them now.

        At-least-once jobs return to the queue without using up an attempt;
        at-most-once jobs die (they may have run). Returns the ids released.
        """

    @abstractmethod
    def end_attempts_of_dead_worker(
        self, worker_id: str, error: str, retries: Mapping[str, Retry] | None = None
    ) -> list[Job]:
        """End at once every attempt of a worker whose process died (its supervisor saw
        it die), instead of waiting for the leases to expire; in one transaction.

        Each is recorded as a ``crashed`` attempt with ``error``. An at-least-once job
        with attempts left, not asked to cancel, goes back to the queue after its task's
        retry delay (``retries`` by task name; `DEFAULT_RETRY` for the others); the
        others end: dead (an at-most-once job never runs again: its body may have
        finished), or cancelled when that was asked. The worker's registration and the
        leases it held (the maintenance lease) go too, so others take them at once.
        Returns the jobs ended, as they now stand, by id.
        """

    @abstractmethod
    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool:
        """Store a running job's progress; False when ``fence`` is stale."""

    @abstractmethod
    def rescue_expired_leases(self, namespace: str) -> Rescue:
        """Requeue (at-least-once) or fail (at-most-once, or no attempts left) jobs
        whose lease expired."""

    @abstractmethod
    def cancel_job(self, namespace: str, job_id: int) -> Job:
        """Cancel a pending job at once, or ask a running one to stop."""

    @abstractmethod
    def retry_job(self, namespace: str, job_id: int) -> Job:
        """Queue a finished job again with a fresh set of attempts."""

    @abstractmethod
    def replay_dead(self, namespace: str, job_ids: Sequence[int] | None) -> list[int]:
        """Queue dead jobs again (all of them when ``job_ids`` is None)."""

    @abstractmethod
    def purge_dead(self, namespace: str, job_ids: Sequence[int] | None = None) -> int:
        """Delete the dead jobs (those of ``job_ids`` that are dead, if given) and their
        attempts; return how many."""

    @abstractmethod
    def delete_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        """Delete the jobs with their attempts and edges, in one transaction; the jobs as
        they were. All or none: an unknown id is `JobNotFound`, and a running job or a
        step of a workflow run still going is `IllegalTransition` (a worker, or the
        run's later steps, still need it: cancel it first), with nothing deleted."""

    @abstractmethod
    def get_job(self, namespace: str, job_id: int) -> Job:
        """The job, or `JobNotFound`."""

    @abstractmethod
    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        """The jobs that exist among ``job_ids``."""

    @abstractmethod
    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]:
        """Jobs matching the filter, newest first."""

    @abstractmethod
    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]:
        """The attempts of a job, first first."""

    @abstractmethod
    def finished_per_minute(self, namespace: str, since: float) -> list[tuple[float, str, int]]:
        """Attempts that ended at or after ``since`` (epoch seconds), counted per minute
        and outcome: (the minute's start, outcome, count), oldest minute first. (The
        dashboard's throughput chart; it reads every attempt row of the namespace
        since then, so ask for a short window.)"""

    # -- schedules ----------------------------------------------------------------------

    @abstractmethod
    def upsert_schedule(
        self, definition: ScheduleDefinition, *, declared_by: str | None = None
    ) -> tuple[Schedule, bool]:
        """Create the schedule, or update the one of that name when its spec changed
        (its next fire time is then computed afresh from now). ``declared_by``: the
        app whose declarations in code the schedule comes from (`App.name`), None when
        written by hand; the last writer's is kept. Returns the schedule and whether
        anything changed; pausing and history are kept."""

    @abstractmethod
    def upsert_schedules(
        self, definitions: Sequence[ScheduleDefinition], *, declared_by: str | None = None
    ) -> list[bool]:
        """`upsert_schedule` for each definition, in one transaction: every one written,
        or none (a name given twice, a quota passed). Whether each changed anything,
        in order. One commit for them all: a schedule per customer, a million of them,
        without a round trip and a flush each."""

    @abstractmethod
    def get_schedule(self, namespace: str, name: str) -> Schedule:
        """The schedule, or `ScheduleNotFound`."""

    @abstractmethod
    def get_schedules(self, namespace: str, ids: Sequence[int]) -> list[Schedule]:
        """The schedules that exist among ``ids``."""

    @abstractmethod
    def list_schedules(
        self, namespace: str, *, declared_by: str | None = None
    ) -> list[Schedule]:
        """Every schedule of the namespace, by name; with ``declared_by``, only the
        active ones (neither paused nor done) that app declared."""

    @abstractmethod
    def set_schedule_paused(self, namespace: str, name: str, paused: bool) -> Schedule:
        """Pause or resume. A resumed schedule keeps its next fire time, so the times
        missed while paused go through its misfire policy."""

    @abstractmethod
    def remove_schedule(self, namespace: str, name: str) -> None:
        """Delete the schedule (its jobs stay), or `ScheduleNotFound`."""

    @abstractmethod
    def schedules_due(
        self, namespace: str, until: float, after: float | None = None,
        partitions: tuple[int, Collection[int]] | None = None,
    ) -> list[tuple[int, float]]:
        """(id, next fire time) of every active schedule due at or before ``until``
        (and after ``after``, when given: a scheduler extends its horizon a slice at a
        time). With ``partitions`` = (count, wanted), only the schedules whose id modulo
        ``count`` is in ``wanted`` (a scheduler sharing the partitions reads its own
        share only; the filter runs in the store, on the index)."""

    @abstractmethod
    def schedules_changed(self, namespace: str, since: float) -> list[tuple[int, float | None]]:
        """(id, next fire time) of the schedules declared, changed, paused or resumed at
        or after ``since`` (store clock); the time is None for one that will not fire
        (paused or finished). Firing is not a change. Removed schedules are not listed:
        a scheduler finds them gone when it next fires them."""

    @abstractmethod
    def fire_schedules(
        self, namespace: str, plans: Sequence[FirePlan], lease: tuple[str, str] | None = None
    ) -> list[Fired]:
        """Apply plans in one transaction: each only if its schedule's next fire time
        is still the plan's ``expected_next``; at most one job per (schedule, fire
        time); the overlap policy judged against the schedule's unfinished jobs.

        With ``lease`` = (name, holder), nothing is applied unless ``holder`` holds that
        lease at this moment (a deposed scheduler fires nothing); `LeaseLost` then.
        """

    @abstractmethod
    def fire_due(
        self, namespace: str, ids: Sequence[int], now: float,
        lease: tuple[str, str] | None = None, *, leases: Sequence[tuple[str, str]] = (),
    ) -> list[Firing]:
        """Plan (`plan_fires` at ``now``) and fire the schedules ``ids`` in one
        transaction, each planned from its row as the transaction reads it: what a
        scheduler does when their fire times expire, without a read of its own first.
        The plans are applied as `fire_schedules` applies them (under ``lease`` the
        same way, and under every one of ``leases``: `LeaseLost` naming the first not
        held in name order, nothing fired); a schedule removed meanwhile is left out of
        the answer.
        """

    @abstractmethod
    def trigger_schedule(self, namespace: str, name: str) -> Fired:
        """Fire a schedule now, outside its timing (its next fire time is unchanged)."""

    # -- maintenance ----------------------------------------------------------------------

    @abstractmethod
    def promote_due_jobs(self, namespace: str) -> tuple[int, float | None]:
        """Make delayed and backed-off jobs that are due ready (waking workers); return
        how many, and when the next one falls due."""

    @abstractmethod
    def expire_missed_deadlines(self, namespace: str) -> int:
        """Expire waiting jobs whose deadline passed before they started."""

    @abstractmethod
    def release_waiting(self, namespace: str) -> int:
        """Make ready the ``queue_one`` jobs whose schedule has no earlier unfinished job."""

    @abstractmethod
    def prune_finished(self, namespace: str, before: float, limit: int = 10_000) -> int:
        """Delete up to ``limit`` jobs (and their attempts) that ended before ``before``,
        and the leases that lapsed before it (those of processes that died holding
        them); return the number of jobs. Dead jobs stay: the dead-letter queue is
        emptied by `purge_dead` only."""

    # -- workers and leadership -------------------------------------------------------

    @abstractmethod
    def register_worker(self, worker: WorkerRegistration) -> None: ...

    @abstractmethod
    def unregister_worker(self, worker_id: str) -> None: ...

    def elect(self, namespace: str, name: str, holder: str, ttl: float) -> bool:
        """Take or keep the lease called ``name``; True while ``holder`` holds it."""
        return name in self.elect_many(namespace, [name], holder, ttl)

    @abstractmethod
    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]:
        """Take or keep each lease of ``names`` that is free, lapsed or already held by
        ``holder``, for ``ttl`` seconds from now (store clock), in one transaction;
        return the names ``holder`` holds afterwards. A lease held by another and not
        lapsed is left alone."""

    @abstractmethod
    def slowest_heartbeat(self, namespace: str) -> float | None:
        """The longest heartbeat interval (seconds) of the workers registered for
        ``namespace`` or for every namespace (every worker, for `ALL_NAMESPACES`), alive
        or not; None when there is none: how long a live one may take to renew its
        leases once the store is back."""

    def lease_holder(self, namespace: str, name: str) -> str | None:
        """Who holds the lease ``name`` now, None if nobody does (or it lapsed)."""
        return self.lease_holders(namespace, name).get(name)

    @abstractmethod
    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]:
        """Name -> holder of every live (not lapsed) lease whose name starts with
        ``prefix`` (taken literally: no wildcards)."""

    @abstractmethod
    def resign(self, namespace: str, name: str, holder: str) -> None:
        """Give up a lease so a standby can take it at once."""

    @abstractmethod
    def stats(self, namespace: str) -> Stats: ...

    @abstractmethod
    def start_waits(self, namespace: str, since: float) -> list[StartWaits]:
        """How long the jobs that started at ``since`` or later waited to start (their
        latest attempt each), by queue and priority."""

    @abstractmethod
    def queue_depths(self) -> QueueDepths:
        """Every namespace's unfinished and dead jobs by queue, state and priority, and
        every worker: what a metrics scrape reports, cheaply (one statement for the
        jobs, one for the workers)."""

    @abstractmethod
    def explain_job(self, namespace: str, job_id: int) -> Explanation:
        """Why the job is where it is, from one snapshot of the store at this instant
        (see `taskwheel.explanations`); or `JobNotFound`."""

    # -- API keys and quotas (the HTTP server's) ---------------------------------------------

    @abstractmethod
    def create_api_key(self, key: NewApiKey) -> ApiKey:
        """Store a new key (its digest, never the key itself)."""

    @abstractmethod
    def get_api_key(self, prefix: str) -> ApiKey | None:
        """The key of that prefix, revoked or not; read afresh on every call (a revoke
        takes effect at the next request)."""

    @abstractmethod
    def list_api_keys(self, namespace: str | None = None) -> list[ApiKey]:
        """Every key, or those of ``namespace``, oldest first."""

    @abstractmethod
    def revoke_api_key(self, prefix: str) -> ApiKey:
        """Revoke a key for good (`ApiKeyNotFound` if there is none)."""

    @abstractmethod
    def get_quota(self, namespace: str) -> Quota:
        """The namespace's quota (one without limits when none was set)."""

    @abstractmethod
    def set_quota(self, quota: Quota) -> Quota:
        """Set the namespace's limits (one without limits removes them). Enqueues over
        a limit raise `QuotaExceeded` and write nothing; so does declaring or resuming
        a schedule beyond ``max_active_schedules``."""

    # -- dispatch control ----------------------------------------------------------------------

    @abstractmethod
    def pause(
        self, namespace: str, kind: GateKind, name: str, until: float | None = None
    ) -> Pause:
        """Stop dispatching the jobs of a queue or task (see `taskwheel.gates`): none is
        claimed until it is resumed, by hand or, with ``until`` (epoch seconds, in the
        future), by maintenance at that time; running ones finish, nothing is lost.
        Pausing what is paused keeps its jobs held and gives it the new ``until``."""

    @abstractmethod
    def resume_due_pauses(self, namespace: str) -> int:
        """Resume the pauses of ``namespace`` (every namespace for `ALL_NAMESPACES`)
        whose ``until`` has come (maintenance does); how many."""

    @abstractmethod
    def resume(self, namespace: str, kind: GateKind, name: str) -> int:
        """Dispatch the jobs of a paused queue or task again, waking the workers; how
        many jobs became claimable (those no other pause holds). `NotPaused` if it
        was not paused."""

    @abstractmethod
    def list_pauses(self, namespace: str) -> list[Pause]:
        """The namespace's paused queues and tasks, with the jobs each holds."""

    @abstractmethod
    def set_limit(self, namespace: str, key: str, capacity: int | None) -> KeyLimit:
        """Set a key's slots at run time (see `taskwheel.limits`; None: no limit),
        whether or not a job of it was enqueued yet; a task's declaration no longer
        changes them. Raising it admits waiting jobs at once; lowering it lets running
        jobs finish and admits none until fewer than ``capacity`` hold a slot."""

    @abstractmethod
    def get_limit(self, namespace: str, key: str) -> KeyLimit:
        """A key's gate with its slots in use and waiting jobs (`LimitNotFound`)."""

    @abstractmethod
    def list_limits(self, namespace: str) -> list[KeyLimit]:
        """The namespace's keys by name, each with its slots in use and waiting jobs."""

    @abstractmethod
    def pause_key(self, namespace: str, key: str, until: float | None = None) -> KeyLimit:
        """Close a key's gate (until ``until``, epoch seconds in the future, or a
        resume): its ready jobs give their slots back and wait, running ones finish,
        nothing is lost. `LimitNotFound` for a key the namespace does not know."""

    @abstractmethod
    def resume_key(self, namespace: str, key: str) -> int:
        """Open a paused key's gate; how many waiting jobs it admitted (`NotPaused`,
        `LimitNotFound`)."""

    @abstractmethod
    def set_rate(self, namespace: str, key: str, rate: str | float,
                 burst: int | None = None) -> KeyRate:
        """Set a key's rate limit at run time (see `taskwheel.rates`): ``rate`` as
        ``"100/min"`` or tokens per second, ``burst`` (None: the key's, or 1); a task's
        declaration no longer changes it. The next admission pass uses it."""

    @abstractmethod
    def get_rate(self, namespace: str, key: str) -> KeyRate:
        """A key's rate limit with its waiting and admitted jobs (`RateNotFound`)."""

    @abstractmethod
    def list_rates(self, namespace: str) -> list[KeyRate]:
        """The namespace's rate-limited keys by name."""

    @abstractmethod
    def admit_rated_jobs(self, namespace: str, key: str | None = None) -> int:
        """Maintenance of the rate limits of ``namespace`` (every namespace for
        `ALL_NAMESPACES`): admit the jobs waiting for tokens as their buckets allow, in
        dispatch order; how many."""

    @abstractmethod
    def admission_pass(self, namespace: str, key: str | None = None) -> AdmissionPass:
        """`admit_rated_jobs`, saying besides whether jobs still wait for tokens and
        when the first of their keys' buckets will pay for one (`Admitter` passes
        then)."""

    @abstractmethod
    def admit_due_keys(self, namespace: str) -> int:
        """Maintenance of the key gates of ``namespace`` (every namespace for
        `ALL_NAMESPACES`): resume the paused keys whose time has come, and give free
        slots to waiting jobs a slot's release could not reach (it skips jobs others
        hold locked); how many jobs were admitted."""

    @abstractmethod
    def open_breaker(self, namespace: str, key: str, until: float | None = None) -> KeyLimit:
        """Open a key's breaker by hand, until ``until`` (epoch seconds in the future;
        None: until closed by hand): its ready jobs wait, running ones finish
        (`LimitNotFound` for a key the namespace does not know)."""

    @abstractmethod
    def close_breaker(self, namespace: str, key: str) -> KeyLimit:
        """Close a key's open or half-open breaker by hand and admit its waiting jobs
        (`BreakerNotOpen`, `LimitNotFound`)."""

    @abstractmethod
    def set_queue_limit(self, limit: QueueLimit) -> QueueLimit:
        """Set a queue's maximum depth: enqueues that would pass it raise `QueueFull`
        and write nothing. Jobs already there stay."""

    @abstractmethod
    def remove_queue_limit(self, namespace: str, queue: str) -> None:
        """Let the queue grow without bound again (`QueueLimitNotFound` if it had no
        maximum depth)."""

    @abstractmethod
    def list_queue_limits(self, namespace: str) -> list[QueueLimit]:
        """The namespace's queues with a maximum depth, with their depth now."""

    # -- fair shares and aging (taskwheel.fairness) ------------------------------------------

    @abstractmethod
    def set_fair_weight(self, weight: FairWeight) -> FairWeight:
        """Give a fairness key of a namespace its weight (the namespace then uses fair
        shares: its jobs without a key share the flow ``''``). Jobs written from now on
        take their passes by it."""

    @abstractmethod
    def list_fair_weights(self, namespace: str) -> list[FairWeight]:
        """The namespace's fairness flows, by key, with their last pass."""

    @abstractmethod
    def set_queue_aging(self, aging: QueueAging) -> QueueAging:
        """Make the queue's jobs that fall due from now on age at ``aging.rate``."""

    @abstractmethod
    def remove_queue_aging(self, namespace: str, queue: str) -> None:
        """Stop aging the queue's jobs written from now on (`AgingNotFound` if it did
        not age)."""

    @abstractmethod
    def list_queue_aging(self, namespace: str) -> list[QueueAging]:
        """The namespace's queues that age."""

    @abstractmethod
    def set_queue_reserve(self, reserve: QueueReserve) -> QueueReserve:
        """Keep ``reserve.share`` of the queue's claims for its jobs ranked below
        ``reserve.below``, from the next claim on."""

    @abstractmethod
    def remove_queue_reserve(self, namespace: str, queue: str) -> None:
        """Keep no share of the queue's claims (`ReserveNotFound` if it kept none)."""

    @abstractmethod
    def list_queue_reserves(self, namespace: str) -> list[QueueReserve]:
        """The namespace's queues that keep a reserve."""

    @abstractmethod
    def set_namespace_weight(self, weight: NamespaceWeight) -> NamespaceWeight:
        """Give a namespace its weight: its share of the claims of a worker that serves
        it with other namespaces, from the next claim on."""

    @abstractmethod
    def remove_namespace_weight(self, namespace: str) -> None:
        """Weigh the namespace 1 again (`NamespaceWeightNotFound` if it had no weight)."""

    @abstractmethod
    def list_namespace_weights(self) -> list[NamespaceWeight]:
        """Every namespace with a weight."""

    # -- webhooks (the HTTP server's) ---------------------------------------------------------

    @abstractmethod
    def define_webhook(self, hook: NewWebhook) -> Webhook:
        """Create the webhook, or replace the definition of the one of that name in its
        namespace (its creation time kept)."""

    @abstractmethod
    def get_webhook(self, namespace: str, name: str) -> Webhook:
        """The webhook, or `WebhookNotFound`."""

    @abstractmethod
    def list_webhooks(self, namespace: str) -> list[Webhook]:
        """The namespace's webhooks, by name."""

    @abstractmethod
    def remove_webhook(self, namespace: str, name: str) -> None:
        """Delete the webhook (the jobs it made stay), or `WebhookNotFound`."""

    # -- alerts (taskwheel.alerts) ------------------------------------------------------------

    @abstractmethod
    def define_alert(self, rule: AlertRule) -> AlertRule:
        """Create the rule, or replace the definition of the one of that name (its
        creation time and where it stands kept)."""

    @abstractmethod
    def get_alert(self, namespace: str, name: str) -> AlertRule:
        """The rule, or `AlertNotFound`."""

    @abstractmethod
    def list_alerts(self, namespace: str) -> list[AlertRule]:
        """The namespace's rules, by name."""

    @abstractmethod
    def remove_alert(self, namespace: str, name: str) -> None:
        """Delete the rule and its deliveries, or `AlertNotFound`."""

    @abstractmethod
    def alert_scope(self, namespace: str) -> list[str]:
        """The namespaces whose rules an evaluator of ``namespace`` judges: that one, or
        every namespace with rules for `ALL_NAMESPACES`."""

    @abstractmethod
    def evaluate_alert(self, rule: AlertRule) -> tuple[Verdict, AlertDelivery | None]:
        """Judge ``rule`` on a reading of the store at this instant and, in the same
        transaction, move it to firing or back to ok if the verdict says so, writing the
        delivery of that change (once per firing and event, whoever evaluates). The
        verdict, and the delivery written (None when nothing changed)."""

    @abstractmethod
    def add_test_delivery(self, rule: AlertRule) -> AlertDelivery:
        """A delivery of a ``test`` event of ``rule``, due now."""

    @abstractmethod
    def due_alert_deliveries(self, namespace: str, limit: int = 20) -> list[AlertDelivery]:
        """Pending deliveries of ``namespace`` due now (store clock), oldest first."""

    @abstractmethod
    def record_alert_delivery(
        self, delivery_id: int, status: DeliveryStatus, next_at: float,
        status_code: int | None = None, error: str | None = None,
    ) -> AlertDelivery | None:
        """Record one attempt of a delivery: where it stands now, when the next attempt
        is due (a pending one), the receiver's status code or the error."""

    @abstractmethod
    def list_alert_deliveries(
        self, namespace: str, name: str, limit: int = 50
    ) -> list[AlertDelivery]:
        """A rule's deliveries, newest first."""

    def describe(self) -> dict[str, Any]:
        """The backend and the settings in force that bear on speed and durability
        (printed with benchmark figures)."""
        return {"kind": type(self).__name__}

    @abstractmethod
    def close(self) -> None: ...

    def within(self, connection: object) -> Store:
        """This store's operations in the caller's open transaction on ``connection``
        (transactional enqueue; see `SQLStore.within`). `InvalidInput` naming
        ``connection`` for a store that cannot."""
        raise InvalidInput("connection", f"the {self.kind} store cannot use the caller's "
                           "connection")

    # -- workflows ------------------------------------------------------------------------
    #
    # A workflow run is a row of its own (id, namespace, name, status, on_failure,
    # cancel_requested, created_at, finished_at, schedule_id, fire_at) and one job per
    # step. A step's job carries its run id, its step name (unique in the run), its
    # failure policy (`FailurePolicy`) and how many of its dependencies it still waits
    # for; the edges (dependency job -> dependent job) are rows too. Every row carries
    # the namespace of its run.
    #
    # When a step's job reaches an end state (`TERMINAL`) by ANY path -- an outcome in
    # `finish_attempts`, `rescue_expired_leases`, `release_jobs` (at-most-once),
    # `cancel_job` of a pending step, expiry in `claim_jobs` or
    # `expire_missed_deadlines` -- the same transaction applies
    # `workflows.effect_of_end(status, policy)`:
    #   RELEASE:  each dependent still `waiting` waits for one dependency fewer; the one
    #             that reaches zero becomes `queued` (run_at = max(run_at, now)) and the
    #             workers of the namespace are woken. No scan, no poll.
    #   BLOCK:    every transitive dependent still `waiting` becomes `upstream_failed`
    #             (finished_at = now, last_error names the failed step).
    #   FAIL_RUN: every `waiting`/`queued`/`scheduled` step of the run becomes `cancelled`
    #             and every `running` one gets cancel_requested (and the "cancel" wake-up),
    #             after the releases of that transaction.
    # Then each run touched whose steps have all ended gets
    # `workflows.run_status(counts, cancel_requested)` and finished_at = now. A step that
    # goes back to the queue (a retry, a rescue) changes nothing. `retry_job` and
    # `replay_dead` of a step's job do what `retry_workflow_run(run, step)` does.
    # `prune_finished` keeps the steps of running runs, deletes the edges of the jobs it
    # deletes (ids may be reused) and runs that finished before ``before`` with no step
    # left; `purge_dead` deletes the edges of the jobs it deletes. A schedule whose
    # definition has a ``workflow`` fires a run (see `submit_workflow`) instead of a job,
    # at most one per (schedule, fire time) under a unique constraint on the runs, with
    # ``overlap`` judged against its running runs (queue_one is refused at declaration);
    # the `Fired` carries ``workflow_run_id`` and no ``job_id``.

    @abstractmethod
    def submit_workflow(self, spec: WorkflowSpec) -> WorkflowRun:
        """Create a run of ``spec`` in one transaction, durable on return; nothing is
        written if anything fails.

        ``spec`` is validated (`Workflow.compile`): its steps are in topological order,
        each named once, each ``after`` naming earlier steps only. The run is
        ``running``. Each step's job is built from its `JobTemplate` as a fired job is:
        run_at = now, deadline = now + ``deadline_in``; steps without dependencies are
        ``queued`` (the workers are woken), the others ``waiting`` on as many
        dependencies as their ``after`` names. Job ids increase in the order of the
        steps. Returns the run with its steps (in that order) and step counts.
        """

    @abstractmethod
    def get_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        """The run with its steps (in topological order, each with its job and the
        names of the steps it runs after) and step counts; or `WorkflowRunNotFound`
        (also for a run of another namespace)."""

    @abstractmethod
    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        """Runs of the namespace matching the filter (status, name), newest first, at
        most ``where.limit``; each with its step counts (steps by job status) and no
        steps."""

    @abstractmethod
    def retry_workflow_run(
        self, namespace: str, run_id: int, step: str | None = None
    ) -> WorkflowRun:
        """Run again, in one transaction, what `workflows.plan_retry` says: the failed
        steps (or ``step``) and every step downstream of them that did not succeed;
        nothing that succeeded. Each reset step gets the plan's status (``queued`` or
        ``waiting``) and count, attempt 0, no result, finished_at and lease cleared,
        cancel_requested cleared, run_at = now, and its deadline dropped if it has
        passed. The run becomes ``running`` again (finished_at and cancel_requested
        cleared). Errors as `plan_retry` raises them (`InvalidInput` naming ``step`` or
        ``run``; `IllegalTransition` for a downstream step still queued or running),
        and `WorkflowRunNotFound`; nothing is written then. Returns the run as
        `get_workflow_run` does.
        """

    @abstractmethod
    def cancel_workflow_run(self, namespace: str, run_id: int) -> WorkflowRun:
        """Cancel a run in one transaction: cancel_requested is set on the run, its
        pending steps (waiting, queued, scheduled) become ``cancelled``, its running
        steps get cancel_requested (the workers are sent the "cancel" wake-up, as for
        `cancel_job`); the run is ``cancelled`` once none is unfinished. A finished run
        is left as it is. Returns the run as `get_workflow_run` does, or
        `WorkflowRunNotFound`."""

    @abstractmethod
    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        """How the direct dependencies of the step ``job_id`` stand (step name, job id,
        status, result, last error), by job id; empty for a job that is no step."""
