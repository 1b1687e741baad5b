"""The per-dialect half of a store: intent-named statements, lists in and lists out.

A store is two halves. `SQLStore` (``engine.py``) makes every decision once: which
statements an operation runs, in which order, and what their answers mean (what the
end of a workflow step does to its run, whether a fire may create a job under its
overlap policy, which jobs may be retried or replayed, how rows fold into `Stats`).
An `Executor` is the other half, one per dialect (``sqlite/store.py``,
``postgres/store.py``): it runs one intent-named statement at a time and turns rows
into records. It holds no policy; it is large only because of parameter marshalling.

An executor is one transaction, or a pool whose every statement commits alone (the
store says which when it hands one out). Statements take and return lists, so a
dialect can do a batch in one set-based statement (PostgreSQL: arrays and ``unnest``,
pipelined) or in a loop inside its single-writer transaction (SQLite): the decision
above does not change.

Wake-ups follow one rule: a statement that makes jobs ready wakes the workers of their
namespaces itself, when its transaction commits (SQLite: the store sends the
notifications after COMMIT; PostgreSQL: a trigger on the jobs table sends them with the
commit). Anything else worth a wake-up is asked for with `Executor.wake`, which travels
only if the transaction commits.

Times are epoch seconds of the store's clock. ``now`` is the transaction's instant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from taskwheel.alerts import AlertDelivery, AlertRule, AlertState, DeliveryStatus, Reading
from taskwheel.breakers import BreakerState, KeyBreaker
from taskwheel.explanations import PriorityBand
from taskwheel.fairness import FairWeight, Flow, NamespaceWeight, QueueAging, QueueReserve
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.jobs import (
    Attempt,
    Claim,
    DepthBand,
    Enqueued,
    Job,
    JobFilter,
    JobTemplate,
    NewJob,
    Outcome,
    StartWaits,
    WorkerInfo,
)
from taskwheel.keys import ApiKey, NewApiKey
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.limits import KeyLimit
from taskwheel.notify import FINISHED
from taskwheel.quotas import Quota, QuotaUsage
from taskwheel.rates import Bucket, KeyRate, Waiting
from taskwheel.schedules import FirePlan, PlannedFire, Schedule, ScheduleDefinition
from taskwheel.stores.base import WorkerRegistration
from taskwheel.stores.claims import ClaimRequest
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import (
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
    WorkflowStep,
)

# How an operation uses the database: one statement that commits alone; a write
# transaction; reads that need no snapshot; reads that must agree with each other; a
# claim statement that commits alone (on PostgreSQL, on the connection kept for claims).
Access = Literal["statement", "transaction", "read", "snapshot", "claim"]


@dataclass(frozen=True, slots=True)
class Moved:
    """A job a statement moved to another state: what the decisions that follow need
    (its run and step policy, its schedule). ``status`` is where it went."""

    id: int
    namespace: str
    status: JobStatus
    workflow_run_id: int | None = None
    step: str | None = None
    failure_policy: str | None = None
    schedule_id: int | None = None
    gate_key: str | None = None  # its concurrency key (finish_attempts' rows only)


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """An attempt of a worker that died, to end now: the job, the fence it was claimed
    with, and how long the job waits before it runs again if it is requeued."""

    job_id: int
    fence: int
    retry_delay: float


@dataclass(frozen=True, slots=True)
class StepReset:
    """One step a workflow retry starts afresh (see `workflows.plan_retry`), written
    only while the step is still in ``expected``."""

    job_id: int
    status: JobStatus
    waiting_on: int
    expected: JobStatus


@dataclass(frozen=True, slots=True)
class RunSettlement:
    """A running run none of whose steps is unfinished: its steps by state."""

    cancel_requested: bool
    counts: dict[JobStatus, int]


@dataclass(frozen=True, slots=True)
class QueueCount:
    """One group of a namespace's jobs: how many of a queue are in a state."""

    queue: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class StatsRows:
    """A namespace's jobs counted by queue and state (every state: off the status
    index alone), its unfinished and dead jobs by queue, state and priority (only those
    rows are read), its workers, and the store's time they were read at."""

    now: float
    counts: list[QueueCount]
    bands: list[BandCount]
    workers: list[WorkerInfo]


@dataclass(frozen=True, slots=True)
class BandCount:
    """Unfinished or dead jobs of a queue in one state at one priority; for ready ones,
    the earliest time one of them became ready (its due time, or its creation if it was
    due before)."""

    queue: str
    status: str
    priority: int
    count: int
    first_ready: float | None


class Executor(ABC):
    """One transaction (or a pool) of a dialect: the statements `SQLStore` composes."""

    # -- the transaction ------------------------------------------------------------------

    @abstractmethod
    def now(self) -> float:
        """The instant this transaction judges time by (read once, then the same)."""

    @abstractmethod
    def commit_unflushed(self) -> None:
        """Let this transaction's commit return before it is flushed to disk (outcomes:
        a lost one leaves its job running until its lease lapses, then it is rescued as
        if its worker had died). A commit is still atomic and survives any crash of a
        taskwheel process; only a crash of the database's machine can lose it."""

    @abstractmethod
    def wake(self, namespace: str, event: str) -> None:
        """Notify listeners of ``namespace`` (``"cancel"``, ``"due"``, ``"schedules"``,
        ``"jobs"``, ``"finished"``) if and when this transaction commits."""

    @abstractmethod
    def namespaces(self) -> list[str]:
        """Every namespace that has jobs, schedules or workflow runs, sorted; read off
        the indexes that lead with the namespace (one probe per namespace, not a scan of
        the rows)."""

    # -- jobs -------------------------------------------------------------------------------

    @abstractmethod
    def insert_jobs(self, jobs: Sequence[NewJob]) -> Enqueued:
        """Write a batch; each request's answer, in order, is the job it created or the
        one already holding its idempotency key in its namespace (its id then in
        ``existing``)."""

    @abstractmethod
    def insert_unlimited_jobs(self, jobs: Sequence[NewJob]) -> Enqueued | None:
        """`insert_jobs`, unless a namespace of the batch has a quota: None then, and
        nothing written (the store enqueues it again with `quota_usage`). Found out in
        the same statement or transaction as the insert: a namespace without a quota
        pays no round trip for the question."""

    def claim_at_once(self, request: ClaimRequest) -> Claim | None:
        """A claim in dispatch order in one statement, when nothing but ready jobs is in
        play; None when it cannot be done that way (due jobs to promote first, workflow
        steps to expire) or the dialect has no such statement. The store then claims in
        steps in one transaction."""
        return None

    @abstractmethod
    def promote_due(self, namespaces: Sequence[str]) -> int:
        """Make delayed and backed-off jobs that are due ready; how many."""

    @abstractmethod
    def expire_missed(self, namespaces: Sequence[str], *, waiting: bool) -> list[Moved]:
        """Expire jobs not started whose deadline passed (with ``waiting``: waiting
        ones too, as maintenance does; a claim leaves them to it)."""

    @abstractmethod
    def promote_and_expire(self, namespaces: Sequence[str]) -> list[Moved]:
        """What a claim in steps does first: make due jobs ready (`promote_due`), then
        expire ready jobs whose deadline passed (`expire_missed`); the expired. The
        promotion's count is not read, so PostgreSQL sends both in one round trip."""

    @abstractmethod
    def claim_jobs(self, request: ClaimRequest) -> Claim:
        """Take up to ``request.limit`` ready jobs in dispatch order (priority,
        deadline, due time, id) under a lease: attempt + 1, a new fencing token; with
        `next_due` after them (one round trip on PostgreSQL)."""

    @abstractmethod
    def claim_ahead(self, request: ClaimRequest) -> Claim | None:
        """After the ready jobs of a claim in steps, in the same transaction, for a
        request with ``ahead``: up to the rest of its limit (less the rows this
        transaction claimed) of plain delayed jobs due within ``ahead``, started at
        their due time, with `next_due` after them; None when it took none.
        (PostgreSQL's `claim_at_once` takes them in its one statement.)"""

    @abstractmethod
    def next_due(
        self, namespaces: Sequence[str], queues: Sequence[str] | None = None
    ) -> float | None:
        """When the earliest delayed job of ``namespaces`` (of ``queues`` only, when
        given) falls due."""

    @abstractmethod
    def heartbeat(
        self, worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        """Extend the leases of the attempts ``leases`` names ({job id: fence}) that the
        worker still holds, and its last-seen time: {job id: cancel asked}."""

    @abstractmethod
    def extend_lease(self, job_id: int, fence: int, lease_ttl: float) -> bool: ...

    @abstractmethod
    def finish_attempts(self, outcomes: Sequence[Outcome]) -> tuple[list[Moved], list[int]]:
        """Apply outcomes whose fence still holds, in order, each recorded as an
        attempt; the jobs moved, and the ids refused (one per stale outcome, in the
        order given). A retry of a job asked to cancel ends it cancelled."""

    @abstractmethod
    def finish_alone(self, outcomes: Sequence[Outcome]) -> Callable[[], list[int]]:
        """`finish_attempts` for jobs whose end moves nothing else: no concurrency key,
        schedule or workflow run (the caller's hint, `Outcome.ends_alone`; the statement
        checks it). Those are applied, and the namespaces where jobs ended get their
        `FINISHED` wake-up at the commit; the rest are left running. Returns a call that
        answers, once the transaction has committed, the ids not applied (stale, or not
        alone after all: the caller reports them again the whole way). PostgreSQL sends
        the statement with the COMMIT and reads nothing before it."""

    @abstractmethod
    def defer_slot_release(self) -> None:
        """Until `release_slots`, the slots the next `finish_attempts` frees are not
        given back row by row (PostgreSQL: one admission for all of the keys, the slot
        lock taken once, after the rows are written; SQLite's triggers give each back in
        the writer's process, and it defers nothing)."""

    @abstractmethod
    def release_slots(self, moved: Sequence[Moved]) -> None:
        """Give back the slots ``moved`` (a `finish_attempts` answer) freed: their keys'
        waiting jobs are admitted, in dispatch order; rows free their slots row by row
        again."""

    @abstractmethod
    def release_queue_one(self, moved: Sequence[Moved]) -> None:
        """``queue_one``: the waiting jobs of the schedules of the jobs that ended in
        ``moved`` become ready once no earlier job of their schedule is unfinished."""

    @abstractmethod
    def release_waiting(self, namespaces: Sequence[str]) -> int:
        """The same for every schedule of ``namespaces``; how many became ready."""

    @abstractmethod
    def release_jobs(self, worker_id: str, fences: dict[int, int]) -> list[Moved]:
        """Give back leases the worker holds ({id: fence}), each recorded as an
        interrupted attempt: at-least-once jobs to the queue with their attempt given
        back, at-most-once ones dead (cancelled if asked)."""

    @abstractmethod
    def save_checkpoint(self, job_id: int, fence: int, state_json: str) -> bool: ...

    @abstractmethod
    def rescue_expired(self, namespaces: Sequence[str], *, slotted: bool) -> list[Moved]:
        """Jobs whose lease expired, each recorded as a lease_expired attempt: requeued
        (at-least-once with attempts left, not asked to cancel), else failed (dead, or
        cancelled if asked). Only those whose end may take their namespace's slot lock
        (`lock_slots`), or only the others (``slotted``): jobs with a concurrency key,
        and workflow steps (whose end moves other steps, which may have one). Workers
        silent for a day are forgotten."""

    @abstractmethod
    def expired_slotted_namespaces(self, namespaces: Sequence[str]) -> list[str]:
        """The namespaces of ``namespaces`` with a slotted job (see `rescue_expired`)
        whose lease expired, in order; nothing locked."""

    @abstractmethod
    def lock_running_of_worker(self, worker_id: str) -> list[Job]:
        """The jobs the worker is running, in id order, locked until this transaction
        ends."""

    @abstractmethod
    def end_attempts_of_worker(
        self, worker_id: str, error: str, ends: Sequence[AttemptEnd]
    ) -> list[Moved]:
        """End attempts of a worker whose process died (each while its fence holds),
        each recorded as a crashed attempt with ``error``: requeued after its
        ``retry_delay`` (at-least-once with attempts left, not asked to cancel), else
        ended (dead, or cancelled if asked)."""

    @abstractmethod
    def forget_worker(self, worker_id: str) -> None:
        """Delete the worker's registration and the leases it holds."""

    @abstractmethod
    def lock_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]:
        """The jobs that exist among ``job_ids``, in id order, locked until this
        transaction ends."""

    @abstractmethod
    def request_cancel(self, namespace: str, job_id: int) -> None:
        """Ask a running job to stop (its worker sees it at its next heartbeat)."""

    @abstractmethod
    def cancel_pending(self, namespace: str, job_id: int) -> list[Moved]:
        """Cancel a job that has not started."""

    @abstractmethod
    def requeue_finished(self, namespace: str, job_id: int, expected: JobStatus) -> Job | None:
        """Queue a finished job again with a fresh set of attempts (its deadline
        dropped if it expired); None if it is no longer in ``expected``."""

    @abstractmethod
    def dead_ids(self, namespace: str) -> list[int]: ...

    @abstractmethod
    def purge_dead(self, namespace: str, job_ids: list[int] | None) -> int:
        """Delete dead jobs (only those of ``job_ids``, if given), their attempts and
        their edges; how many jobs."""

    @abstractmethod
    def delete_jobs(self, namespace: str, job_ids: list[int]) -> int:
        """Delete the jobs of ``job_ids`` (whatever their state), their attempts and
        their edges; how many jobs."""

    @abstractmethod
    def get_jobs(self, namespace: str, job_ids: Sequence[int]) -> list[Job]: ...

    @abstractmethod
    def list_jobs(self, namespace: str, where: JobFilter) -> list[Job]: ...

    @abstractmethod
    def list_attempts(self, namespace: str, job_id: int) -> list[Attempt]: ...

    @abstractmethod
    def finished_per_minute(
        self, namespace: str, since: float
    ) -> list[tuple[float, str, int]]: ...

    # -- schedules --------------------------------------------------------------------------

    @abstractmethod
    def upsert_schedule(
        self, definition: ScheduleDefinition, next_fire_at: float | None,
        declared_by: str | None,
    ) -> bool:
        """Create the schedule or change its spec (and next fire time) and declarer;
        False when it exists with the same spec and declarer (nothing written)."""

    def upsert_schedules(
        self, items: Sequence[tuple[ScheduleDefinition, float | None]],
        declared_by: str | None,
    ) -> list[bool]:
        """`upsert_schedule` of each (definition, first fire time), in order; a dialect
        may send them together."""
        return [self.upsert_schedule(d, at, declared_by) for d, at in items]

    @abstractmethod
    def schedule_by_name(self, namespace: str, name: str) -> Schedule | None: ...

    @abstractmethod
    def schedules_by_id(self, namespaces: Sequence[str], ids: Sequence[int]) -> list[Schedule]:
        """The schedules among ``ids`` that belong to ``namespaces``."""

    @abstractmethod
    def list_schedules(self, namespace: str, declared_by: str | None) -> list[Schedule]:
        """With ``declared_by``, only the active schedules that app declared."""

    @abstractmethod
    def pause_schedule(self, namespace: str, name: str, paused: bool) -> None: ...

    @abstractmethod
    def remove_schedule(self, namespace: str, name: str) -> bool: ...

    @abstractmethod
    def schedules_due(
        self, namespaces: Sequence[str], until: float, after: float | None,
        partitions: tuple[int, Collection[int]] | None = None,
    ) -> list[tuple[int, float]]:
        """(id, next fire time) of the active schedules of ``namespaces`` due in
        (``after``, ``until``]; with ``partitions`` = (count, wanted), only those whose
        id modulo ``count`` is in ``wanted``."""

    @abstractmethod
    def schedules_changed(
        self, namespaces: Sequence[str], since: float
    ) -> list[tuple[int, float | None]]:
        """(id, next fire time or None) of the schedules of ``namespaces`` changed at or
        after ``since``."""

    @abstractmethod
    def holders_of(self, namespace: str, names: Sequence[str]) -> dict[str, str]:
        """The holder now of each of the leases ``names`` that is held; where the dialect
        can, nobody can take one over until this transaction ends (on PostgreSQL the
        rows are locked in name order, the order `elect_many` takes them)."""

    @abstractmethod
    def advance_schedules(
        self, namespaces: Sequence[str], plans: Sequence[FirePlan]
    ) -> list[bool]:
        """Move each plan's schedule to its next fire time, only where it still stands
        at the plan's ``expected_next`` and is not paused; whether each moved."""

    @abstractmethod
    def unfinished_of_schedule(self, schedule_id: int) -> list[JobStatus]:
        """The states of the schedule's jobs that have not ended."""

    @abstractmethod
    def insert_fired_jobs(
        self, fires: Sequence[tuple[Schedule, PlannedFire, JobStatus]]
    ) -> list[int | None]:
        """The job of each fire (schedule, fire, the status it starts in), in their
        order, each schedule's last job set to its last one written; None for a fire
        whose (schedule, fire time) has one already."""

    @abstractmethod
    def trace_jobs(self, namespace: str, job_ids: Sequence[int], trace_parent: str) -> None:
        """Give the jobs the trace context of what created them (a fire, a workflow
        submission)."""

    @abstractmethod
    def unfinished_workflow_run(self, schedule_id: int) -> bool:
        """Whether a run the schedule fired is still running."""

    # -- maintenance -------------------------------------------------------------------------

    @abstractmethod
    def prune(self, namespace: str, before: float, limit: int) -> int:
        """Delete up to ``limit`` jobs that ended before ``before`` (not dead ones, not
        steps of a running run) with their attempts and edges, the leases that lapsed
        before it, and finished runs left without steps; how many jobs."""

    # -- workers and leases ------------------------------------------------------------------

    @abstractmethod
    def register_worker(self, worker: WorkerRegistration) -> None: ...

    @abstractmethod
    def unregister_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    def elect_many(
        self, namespace: str, names: Sequence[str], holder: str, ttl: float
    ) -> set[str]: ...

    @abstractmethod
    def lease_holders(self, namespace: str, prefix: str) -> dict[str, str]: ...

    @abstractmethod
    def resign(self, namespace: str, name: str, holder: str) -> None: ...

    # -- stats -----------------------------------------------------------------------------

    @abstractmethod
    def start_waits(self, namespace: str, since: float) -> list[StartWaits]:
        """The waits to start of the jobs whose latest attempt started at ``since`` or
        later, by queue and priority."""

    @abstractmethod
    def stats_rows(self, namespace: str) -> StatsRows:
        """What `Stats` is folded from, read together (one round trip on PostgreSQL)."""

    # -- observation (``stores/observation.py``) ---------------------------------------------

    @abstractmethod
    def jobs_ahead(self, job: Job) -> list[PriorityBand]:
        """The ready jobs of ``job``'s namespace and queue a claim takes before it, by
        priority (highest first)."""

    @abstractmethod
    def workers_of(self, namespaces: Sequence[str]) -> list[WorkerInfo]:
        """The workers registered in ``namespaces`` or serving several (``"*"``)."""

    @abstractmethod
    def slowest_heartbeat(self, namespace: str) -> float | None:
        """The longest heartbeat interval of the workers registered in ``namespace`` or
        serving every namespace (every worker, for ``"*"``), alive or not; None when
        there is none."""

    @abstractmethod
    def depth_by_band(self) -> list[DepthBand]:
        """Unfinished and dead jobs of every namespace by queue, state and priority."""

    @abstractmethod
    def all_workers(self) -> list[WorkerInfo]: ...

    # -- alerts (``stores/alerting.py``) -------------------------------------------------------

    @abstractmethod
    def upsert_alert_rule(self, rule: AlertRule, now: float) -> AlertRule: ...

    @abstractmethod
    def alert_rule(self, namespace: str, name: str) -> AlertRule | None: ...

    @abstractmethod
    def list_alert_rules(self, namespace: str) -> list[AlertRule]: ...

    @abstractmethod
    def alert_namespaces(self) -> list[str]: ...

    @abstractmethod
    def delete_alert_rule(self, namespace: str, name: str) -> bool: ...

    @abstractmethod
    def change_alert_state(
        self, rule: AlertRule, to: AlertState, value: float, now: float
    ) -> int | None: ...

    @abstractmethod
    def note_alert_value(self, rule: AlertRule, value: float, now: float) -> None: ...

    @abstractmethod
    def insert_alert_delivery(
        self, rule: AlertRule, firing: int | None, event: str, body: str, now: float
    ) -> AlertDelivery | None: ...

    @abstractmethod
    def due_alert_deliveries(
        self, namespace: str, now: float, limit: int
    ) -> list[AlertDelivery]: ...

    @abstractmethod
    def record_alert_delivery(
        self, delivery_id: int, status: DeliveryStatus, next_at: float, *,
        status_code: int | None, error: str | None, now: float,
    ) -> AlertDelivery | None: ...

    @abstractmethod
    def list_alert_deliveries(
        self, namespace: str, name: str, limit: int
    ) -> list[AlertDelivery]: ...

    @abstractmethod
    def alert_reading(self, rule: AlertRule, now: float, live_workers: int) -> Reading: ...

    # -- workflows (``workflow_steps.py`` of each dialect) -------------------------------------

    @abstractmethod
    def insert_run(
        self, spec: WorkflowSpec, *, run_at: float, started: float,
        schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        """A run, a job per step (ids ascending in the order of the steps; roots
        queued, or scheduled when ``run_at`` is later; the others waiting on their
        dependency count) and the edges; None when the (schedule, fire time) has a run
        already. Deadlines count from ``started``."""

    @abstractmethod
    def release_dependents(self, job_ids: Sequence[int]) -> None:
        """The steps after ``job_ids`` wait for one dependency fewer per ended one;
        those that reach none become ready."""

    @abstractmethod
    def block_downstream(self, job_id: int, error: str) -> None:
        """Every step waiting (transitively) behind ``job_id`` becomes upstream_failed."""

    @abstractmethod
    def cancel_pending_steps(self, run_id: int, error: str) -> None: ...

    @abstractmethod
    def request_cancel_running_steps(self, run_id: int) -> int:
        """Ask the run's running steps to stop; how many were asked."""

    @abstractmethod
    def settlement(self, run_id: int) -> RunSettlement | None:
        """The run's steps by state, if it is running and none is unfinished."""

    @abstractmethod
    def finish_run(self, run_id: int, status: str) -> None: ...

    @abstractmethod
    def lock_run(self, namespace: str, run_id: int) -> bool:
        """Lock the run until this transaction ends; False when it does not exist."""

    @abstractmethod
    def request_cancel_run(self, namespace: str, run_id: int) -> None: ...

    @abstractmethod
    def reopen_run(self, run_id: int) -> None: ...

    @abstractmethod
    def reset_steps(self, resets: Sequence[StepReset]) -> None: ...

    @abstractmethod
    def workflow_run(self, namespace: str, run_id: int) -> WorkflowRun | None:
        """The run without steps or counts."""

    @abstractmethod
    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        """Runs without steps or counts, newest first."""

    @abstractmethod
    def workflow_steps(self, run_id: int) -> list[WorkflowStep]:
        """The run's steps with their jobs, in id order (the order of the steps); their
        ``after`` is left empty (`workflow_edges` has the edges)."""

    @abstractmethod
    def workflow_edges(self, run_id: int) -> list[tuple[int, int]]:
        """(dependency's job id, dependent's job id) of every edge of the run."""

    @abstractmethod
    def step_counts(self, run_ids: Sequence[int]) -> dict[int, dict[str, int]]: ...

    @abstractmethod
    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]: ...

    # -- API keys and quotas ---------------------------------------------------------------

    @abstractmethod
    def insert_api_key(self, key: NewApiKey) -> ApiKey: ...

    @abstractmethod
    def api_key(self, prefix: str) -> ApiKey | None: ...

    @abstractmethod
    def list_api_keys(self, namespace: str | None) -> list[ApiKey]:
        """Every key (of ``namespace`` only, when given), oldest first."""

    @abstractmethod
    def revoke_api_key(self, prefix: str) -> ApiKey | None:
        """Revoke the key (keeping the first revocation's time); None if there is none."""

    @abstractmethod
    def get_quota(self, namespace: str) -> Quota | None: ...

    # -- webhooks ----------------------------------------------------------------------------

    @abstractmethod
    def upsert_webhook(self, hook: NewWebhook) -> Webhook: ...

    @abstractmethod
    def webhook(self, namespace: str, name: str) -> Webhook | None: ...

    @abstractmethod
    def list_webhooks(self, namespace: str) -> list[Webhook]:
        """The namespace's webhooks, by name."""

    @abstractmethod
    def delete_webhook(self, namespace: str, name: str) -> bool:
        """Whether there was one to delete."""

    @abstractmethod
    def set_quota(self, quota: Quota) -> None: ...

    @abstractmethod
    def remove_quota(self, namespace: str) -> None: ...

    @abstractmethod
    def quota_usage(self, namespace: str) -> QuotaUsage | None:
        """The namespace's quota and what counts against it, locked until this
        transaction ends; None without a quota."""

    @abstractmethod
    def spend_tokens(self, namespace: str, tokens: float, tokens_at: float) -> None:
        """Set the namespace's rate bucket to ``tokens`` as of ``tokens_at``."""

    @abstractmethod
    def count_active_schedules(self, namespace: str) -> int:
        """Schedules of the namespace neither paused nor finished."""

    # -- dispatch control (``dispatch.py``) ----------------------------------------------------

    @abstractmethod
    def lock_gates(self) -> None:
        """Hold off every transaction that would judge a job becoming ready by the gates
        until this one ends (a pause or resume takes it before it reads the jobs)."""

    @abstractmethod
    def arm_gates(self) -> None:
        """Make sure jobs that become queued behind a closed gate are blocked (SQLite
        creates its triggers for it; PostgreSQL's always exist)."""

    @abstractmethod
    def disarm_gates(self) -> None:
        """Stop looking for gates when jobs become queued (none is closed)."""

    @abstractmethod
    def any_pauses(self) -> bool:
        """Whether a gate of any namespace is closed."""

    @abstractmethod
    def insert_pause(self, namespace: str, kind: GateKind, name: str,
                     until: float | None) -> bool:
        """Close the gate (until ``until``, or until resumed); False when it was closed
        already (nothing written)."""

    @abstractmethod
    def set_pause_until(self, namespace: str, kind: GateKind, name: str,
                        until: float | None) -> None:
        """Give a closed gate a new end (None: none)."""

    @abstractmethod
    def due_pauses(self, namespace: str) -> list[tuple[GateKind, str]]:
        """The namespace's closed gates whose ``until`` has come."""

    @abstractmethod
    def block_jobs(self, namespace: str, kind: GateKind, name: str) -> int:
        """Take the queued jobs of the queue or task out of the ready index; how many."""

    @abstractmethod
    def delete_pause(self, namespace: str, kind: GateKind, name: str) -> bool:
        """Open the gate; False when it was not closed."""

    @abstractmethod
    def unblock_jobs(self, namespace: str, kind: GateKind, name: str) -> int:
        """Put the blocked jobs of the queue or task that no gate holds any more back in
        the ready index, waking the namespace's workers; how many."""

    @abstractmethod
    def list_pauses(self, namespace: str) -> list[Pause]:
        """The namespace's closed gates by kind and name, each with the jobs it holds."""

    @abstractmethod
    def set_queue_limit(self, limit: QueueLimit) -> None: ...

    @abstractmethod
    def delete_queue_limit(self, namespace: str, queue: str) -> bool:
        """Whether there was one to delete."""

    @abstractmethod
    def list_queue_limits(self, namespace: str) -> list[QueueLimit]:
        """The namespace's queues with a maximum depth, by name, with their depth."""

    @abstractmethod
    def lock_queue_limit(self, namespace: str, queue: str) -> int | None:
        """The queue's maximum depth, locked until this transaction ends; None without
        one."""

    @abstractmethod
    def queue_depth(self, namespace: str, queue: str, up_to: int) -> int:
        """The queue's jobs waiting to run (queued, scheduled, waiting), counted up to
        ``up_to`` at most."""

    # -- key gates (``dispatch.py``, `taskwheel.limits`) ----------------------------------------

    @abstractmethod
    def arm_limits(self) -> None:
        """Make sure keyed jobs take and give back slots (SQLite creates its triggers
        for it with the first key; PostgreSQL's always exist)."""

    @abstractmethod
    def lock_slots(self, namespace: str) -> None:
        """Hold off every change of who holds the namespace's slots until this
        transaction ends."""

    @abstractmethod
    def declare_limits(self, jobs: Sequence[NewJob | tuple[str, JobTemplate]]) -> None:
        """Create the rows of the keys of ``jobs`` (requests, or (namespace, template)
        pairs) with their tasks' declared slots (a declared limit follows the
        declaration; one set by hand stays)."""

    @abstractmethod
    def set_gate_keys(self, keyed: Sequence[tuple[Job, str]]) -> None:
        """Give new jobs their keys: each takes a slot, or waits blocked."""

    @abstractmethod
    def admit_waiting(self, namespace: str, keys: Sequence[str]) -> int:
        """Give the free slots of the keys to the jobs waiting for one, in dispatch
        order, waking the namespace's workers; how many."""

    @abstractmethod
    def set_limit(self, namespace: str, key: str, capacity: int | None) -> None:
        """Set a key's slots by hand (None: no limit), creating its row."""

    @abstractmethod
    def pause_key(self, namespace: str, key: str, until: float | None) -> bool:
        """Close a key's gate until ``until`` (None: a resume); False when the key has
        no row (nothing written)."""

    @abstractmethod
    def block_key(self, namespace: str, key: str) -> int:
        """Take the key's ready jobs out of the ready index; how many."""

    @abstractmethod
    def resume_key(self, namespace: str, key: str) -> bool:
        """Open a paused key's gate; False when it was not paused."""

    @abstractmethod
    def due_key_pauses(self, namespace: str) -> list[str]:
        """The namespace's paused keys whose time has come."""

    @abstractmethod
    def waiting_keys(self, namespace: str) -> list[str]:
        """The namespace's keys with jobs waiting for a slot."""

    @abstractmethod
    def list_limits(self, namespace: str, key: str | None = None) -> list[KeyLimit]:
        """The namespace's keys (only ``key``, when given) by name, with their slots in
        use and their waiting jobs."""

    @abstractmethod
    def job_gate(self, namespace: str, job_id: int) -> tuple[str | None, bool]:
        """A job's key (None: none) and whether it waits blocked, out of the ready index."""

    @abstractmethod
    def touch_limit(self, namespace: str, key: str) -> None:
        """Create the key's row (no limit) unless it has one."""

    @abstractmethod
    def breaker_states(self, job_ids: Sequence[int], tripped: Sequence[int]
                       ) -> list[KeyBreaker]:
        """The breakers of the keyed jobs among ``job_ids`` whose key has a breaker rule
        or a breaker not closed, and of the keyed jobs among ``tripped``, one per job."""

    @abstractmethod
    def key_breaker(self, namespace: str, key: str) -> KeyBreaker | None:
        """A key's breaker; None when the namespace has no row for it."""

    @abstractmethod
    def set_breaker(self, namespace: str, key: str, state: BreakerState) -> None: ...

    @abstractmethod
    def due_breakers(self, namespace: str) -> list[str]:
        """The namespace's open breakers whose time has come."""

    # -- rate limits (``rating.py``, `taskwheel.rates`) -------------------------------------

    @abstractmethod
    def arm_rates(self) -> None:
        """Make sure rate-limited jobs wait for their admission (SQLite creates its
        trigger with the first bucket; PostgreSQL's always exists)."""

    @abstractmethod
    def declare_rates(self, jobs: Sequence[NewJob | tuple[str, JobTemplate]]) -> None:
        """Create the buckets of the keys of ``jobs`` (requests, or templates with their
        namespace) with their tasks' declared rates (a declared rate follows the
        declaration; one set by hand stays)."""

    @abstractmethod
    def set_rate_keys(self, keyed: Sequence[tuple[Job, str, int]]) -> None:
        """Give new jobs their rate keys and costs (job, key, cost): a ready one waits."""

    @abstractmethod
    def set_rate(self, namespace: str, key: str, rate: float, burst: int) -> None:
        """Set a key's rate (per second) and burst by hand, creating its bucket."""

    @abstractmethod
    def lock_rate_buckets(self, namespace: str, key: str | None = None
                          ) -> dict[str, Bucket]:
        """The buckets of the namespace's keys with waiting jobs, locked until this
        transaction ends."""

    @abstractmethod
    def rate_outstanding(self, namespace: str) -> dict[str, int]:
        """What the admitted and not started jobs of each key cost."""

    @abstractmethod
    def rate_waiting_jobs(
        self, namespace: str, limits: Mapping[str, int]
    ) -> dict[str, list[Waiting]]:
        """For each key of ``limits``, its first (at most that many) jobs waiting for
        its tokens that no paused queue or task holds, in dispatch order, each with its
        concurrency key's free slots."""

    @abstractmethod
    def admit_rated(self, namespace: str, ids: Sequence[int]) -> int:
        """Queue the waiting jobs ``ids`` with their admission, waking the workers."""

    @abstractmethod
    def save_buckets(self, namespace: str, buckets: dict[str, Bucket]) -> None:
        """Write the buckets an admission pass leaves."""

    @abstractmethod
    def job_rate_key(self, job_id: int) -> str | None:
        """The rate key whose tokens a job waits for (None: it waits for none, or for
        its dependencies or its turn first)."""

    @abstractmethod
    def list_rates(self, namespace: str, key: str | None = None) -> list[KeyRate]:
        """The namespace's buckets (one key's), with waiting and admitted jobs."""
    # -- fair shares and aging (taskwheel.fairness) -----------------------------------------

    @abstractmethod
    def uses_placing(self, namespace: str) -> bool:
        """Whether jobs written in the namespace need places: it uses fairness or has a
        queue that ages (`is_fair` or `aging_rates`, in one statement)."""

    @abstractmethod
    def is_fair(self, namespace: str) -> bool:
        """Whether the namespace uses fairness (it has a flow)."""

    @abstractmethod
    def lock_fair_flow(self, namespace: str, key: str) -> Flow | None:
        """A flow's weight and last pass, locked until this transaction ends; None for a
        flow never seen."""

    @abstractmethod
    def save_fair_flow(self, namespace: str, key: str, last_pass: float) -> None:
        """Record the pass of the flow's last job (creating the flow)."""

    @abstractmethod
    def pass_frontier(self, namespace: str, rank: int) -> float | None:
        """The lowest pass of the namespace's ready jobs of ``rank``; None without any."""

    @abstractmethod
    def fair_ceiling(self, namespace: str) -> float:
        """The highest last pass of the namespace's flows (0 without any)."""

    @abstractmethod
    def place_jobs(self, placed: Sequence[tuple[int, str | None, int, float]]) -> None:
        """Write jobs' places: (id, fairness key, rank offset, fair pass) each."""

    @abstractmethod
    def set_fair_weight(self, namespace: str, key: str, weight: float | None) -> None:
        """Give a flow a weight (None: the default, 1), creating it if need be."""

    @abstractmethod
    def list_fair_flows(self, namespace: str) -> list[FairWeight]:
        """The namespace's flows by key."""

    @abstractmethod
    def set_queue_aging(self, aging: QueueAging) -> None: ...

    @abstractmethod
    def delete_queue_aging(self, namespace: str, queue: str) -> bool:
        """Whether the queue aged."""

    @abstractmethod
    def list_queue_aging(self, namespace: str) -> list[QueueAging]:
        """The namespace's queues that age, by name."""

    @abstractmethod
    def set_queue_reserve(self, reserve: QueueReserve) -> None: ...

    @abstractmethod
    def delete_queue_reserve(self, namespace: str, queue: str) -> bool:
        """Whether the queue had a reserve."""

    @abstractmethod
    def list_queue_reserves(self, namespace: str) -> list[QueueReserve]:
        """The namespace's queues with a reserve, by name."""

    @abstractmethod
    def claimed_reserves(
        self, namespaces: Sequence[str], queues: Sequence[str]
    ) -> list[tuple[QueueReserve, QueueAging | None]]:
        """The reserves of a claim's queues, each with its queue's aging (to rank the
        reserved bands by aged priority)."""

    @abstractmethod
    def claim_reserved(self, request: ClaimRequest, namespace: str, queue: str,
                       rank_below: int) -> tuple[int, list[Job]]:
        """claim_jobs for the ready jobs of one queue ranked below ``rank_below`` only,
        up to ``request.limit``: how many it took, and their records (the list is
        complete once the transaction commits)."""

    # -- weights between namespaces (taskwheel.fairness.NamespaceStride) -----------------------

    @abstractmethod
    def namespace_weights(self, namespaces: Sequence[str]) -> dict[str, float]:
        """The weights of those of ``namespaces`` that have one."""

    @abstractmethod
    def set_namespace_weight(self, weight: NamespaceWeight) -> None: ...

    @abstractmethod
    def delete_namespace_weight(self, namespace: str) -> bool:
        """Whether the namespace had a weight."""

    @abstractmethod
    def list_namespace_weights(self) -> list[NamespaceWeight]:
        """Every namespace with a weight, by name."""

    @abstractmethod
    def claim_shares(
        self, request: ClaimRequest, shares: Sequence[tuple[str, float, float]]
    ) -> Claim:
        """`claim_jobs` dividing the jobs between the request's namespaces by stride:
        ``shares`` gives each namespace (each once) its start and weight
        (`fairness.NamespaceStride`)."""


def announce_finished(tx: Executor, moved: Sequence[Moved]) -> None:
    """One `FINISHED` wake-up per namespace where jobs ended, sent at the commit (one
    per batch of outcomes, not per job; a retry that waits again has not ended)."""
    for namespace in sorted({row.namespace for row in moved if row.status in TERMINAL}):
        tx.wake(namespace, FINISHED)
