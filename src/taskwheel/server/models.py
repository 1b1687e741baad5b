"""The bodies the API reads and writes. Requests refuse unknown fields; every answer
has a model, so the OpenAPI document says exactly what comes back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from taskwheel.explanations import Explanation, ReasonCode
from taskwheel.fairness import FairWeight, QueueAging, QueueReserve
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.jobs import Attempt, DeadlinePolicy, Guarantee, Job, QueueStats, WorkerInfo
from taskwheel.keys import ApiKey, Role
from taskwheel.lifecycle import JobStatus
from taskwheel.limits import KeyLimit
from taskwheel.quotas import Quota
from taskwheel.rates import KeyRate
from taskwheel.schedules import FireResult, Misfire, Overlap, Schedule
from taskwheel.triggers import DstEffect, DstFold, DstGap
from taskwheel.workflows import FailurePolicy, RunStatus, WorkflowRun

# A duration: "30s", "1h30m", "250ms", or seconds.
Duration = str | float


# Attempts of a job: the stores keep 32-bit integers.
Attempts = Annotated[int, Field(ge=1, le=1_000_000)]
# A row id: the stores keep 64-bit signed integers.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """A NUL character is refused anywhere in a request: PostgreSQL cannot keep one
        in text, and no name, key or time has one."""
        where = _nul_in(data, "")
        if where is not None:
            raise ValueError(f"{where or 'body'}: NUL characters are not accepted")
        return data


def _nul_in(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return inner
            found = _nul_in(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class Answer(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- jobs -------------------------------------------------------------------------------------


class EnqueueRequest(Request):
    """A job of a task the server's app defines; its arguments are checked against the
    task before anything is written."""

    task: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    delay: Duration | None = Field(None, description="Run after this long.")
    at: AwareDatetime | None = Field(None, description="Run at this time.")
    deadline: AwareDatetime | Duration | None = Field(
        None, description="Must start before this time, or within this long.")
    timeout: Duration | None = None
    max_attempts: Attempts | None = None
    idempotency_key: str | None = Field(
        None, description="A second enqueue with this key answers the first job.")
    fairness_key: str | None = Field(
        None, description="The job's share of claims: its key's weight among the keys "
                          "of the namespace (see fair shares).")


class EnqueueBatch(Request):
    """Jobs written in one transaction: all or none."""

    jobs: list[EnqueueRequest] = Field(min_length=1, max_length=10_000)


class JobOut(Answer):
    id: int
    namespace: str
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    status: JobStatus
    priority: int
    run_at: datetime
    deadline: datetime | None
    timeout: float | None
    max_attempts: int
    attempt: int
    fence: int
    guarantee: Guarantee
    deadline_policy: DeadlinePolicy
    idempotency_key: str | None
    worker_id: str | None
    lease_expires_at: datetime | None
    started_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    cancel_requested: bool
    result: Any
    last_error: str | None
    checkpoint: Any
    schedule_id: int | None
    fire_at: datetime | None
    workflow_run_id: int | None
    step: str | None
    fairness_key: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls.model_validate(job)


class EnqueuedOut(JobOut):
    existing: bool = Field(
        description="True when the request's idempotency key was held by this job "
                    "already (before, or by an earlier request of the batch): nothing was "
                    "created, and a single enqueue answers 200 instead of 201.")

    @classmethod
    def of_enqueued(cls, job: Job, existing: bool) -> EnqueuedOut:
        fields = {name: getattr(job, name) for name in _JOB_FIELDS}
        return cls.model_validate({**fields, "existing": existing})


_JOB_FIELDS = tuple(JobOut.model_fields)


class EnqueuedList(Answer):
    jobs: list[EnqueuedOut]


class JobList(Answer):
    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null on the last page.")


class ReasonOut(Answer):
    code: ReasonCode = Field(description="Stable: what holds the job, or where it stands.")
    message: str = Field(description="The same, as a sentence for people.")
    details: dict[str, Any] = Field(description="What the reason was built from.")


class ExplanationOut(Answer):
    """Why a job is where it is, read from the store at ``at``."""

    job_id: int
    namespace: str
    status: JobStatus
    at: datetime
    summary: str
    reasons: list[ReasonOut]

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        return cls.model_validate(explanation.to_dict())


class AttemptOut(Answer):
    job_id: int
    attempt: int
    fence: int
    worker_id: str | None
    started_at: datetime
    ended_at: datetime
    outcome: str
    result: Any
    error: str | None
    traceback: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls.model_validate(attempt)


class AttemptList(Answer):
    attempts: list[AttemptOut]


class JobSelection(Request):
    """Which jobs a bulk action takes: ``ids``, or every job matching ``filter`` (up
    to ``limit``)."""

    ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    filter: JobFilterIn | None = None


class JobFilterIn(Request):
    status: JobStatus | None = None
    queue: str | None = None
    task: str | None = None
    limit: int = Field(1000, ge=1, le=10_000)


class BulkFailure(Answer):
    id: int
    detail: str


class BulkResult(Answer):
    """What a bulk action did: the jobs it changed, and why each other one was not."""

    done: list[JobOut]
    failed: list[BulkFailure]


# -- dead-letter queue --------------------------------------------------------------------------


class DeadSelection(Request):
    """Dead jobs to replay: ``ids``, or every dead job matching ``filter`` (an empty
    filter is every dead job)."""

    ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    filter: DeadFilterIn | None = None


class PurgeSelection(Request):
    """Dead jobs to delete: those of ``ids`` that are dead."""

    ids: list[Id] = Field(min_length=1, max_length=10_000)


class DeadFilterIn(Request):
    queue: str | None = None
    task: str | None = None


class Replayed(Answer):
    replayed: list[int]


class Purged(Answer):
    purged: int


# -- schedules --------------------------------------------------------------------------------


class ScheduleRequest(Request):
    """A schedule of a task (or of a workflow, given in the workflow file's form):
    exactly one of ``cron``, ``every`` and ``at``."""

    task: str | None = None
    workflow: dict[str, Any] | None = None
    cron: str | None = None
    every: Duration | None = None
    at: AwareDatetime | None = None
    timezone: str | None = None
    dst_gap: DstGap = DstGap.RUN_AFTER_GAP
    dst_fold: DstFold = DstFold.FIRST
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    misfire: Misfire = Misfire.RUN_ONCE
    max_catch_up: int = 10
    misfire_grace: Duration = "1s"
    overlap: Overlap = Overlap.ALLOW
    jitter: Duration = 0
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    queue: str | None = None
    priority: int | None = None
    timeout: Duration | None = None
    max_attempts: Attempts | None = None
    deadline: Duration | None = Field(
        None, description="Each job must start within this long of its fire time.")


class ScheduleOut(Answer):
    id: int
    name: str
    namespace: str
    target: str
    task: str | None
    state: str = Field(description="active, paused or done")
    paused: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: int | None
    last_job_status: str | None
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any] = Field(description="The trigger, job template and policies.")

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        return cls(
            id=schedule.id, name=schedule.name, namespace=schedule.definition.namespace,
            target=schedule.definition.target,
            task=None if schedule.definition.job is None else schedule.definition.job.task,
            state="paused" if schedule.paused else (
                "done" if schedule.next_fire_at is None else "active"),
            paused=schedule.paused, next_fire_at=schedule.next_fire_at,
            last_fire_at=schedule.last_fire_at, last_job_id=schedule.last_job_id,
            last_job_status=schedule.last_job_status, created_at=schedule.created_at,
            updated_at=schedule.updated_at, spec=schedule.definition.spec(),
        )


class ScheduleWritten(Answer):
    schedule: ScheduleOut
    changed: bool


class ScheduleDetail(ScheduleOut):
    jobs: list[JobOut] = Field(description="Its most recent jobs.")


class ScheduleList(Answer):
    schedules: list[ScheduleOut]


class FiredOut(Answer):
    schedule: str
    result: FireResult
    job_id: int | None
    workflow_run_id: int | None


class PreviewRequest(Request):
    """A trigger to preview: exactly one of ``cron``, ``every`` and ``at``."""

    cron: str | None = None
    every: Duration | None = None
    at: AwareDatetime | None = None
    timezone: str | None = None
    dst_gap: DstGap = DstGap.RUN_AFTER_GAP
    dst_fold: DstFold = DstFold.FIRST
    count: int = Field(10, ge=1, le=10_000)
    after: AwareDatetime | None = Field(None, description="Start after this time (now).")


class FireOut(Answer):
    utc: datetime
    local: datetime
    dst: DstEffect


class Preview(Answer):
    fires: list[FireOut]


# -- workflows ----------------------------------------------------------------------------------


class WorkflowSubmit(Request):
    """A run of a workflow given in the workflow file's form: ``{"name", "on_failure"?,
    "steps": [{"task", "name"?, "args"?, "kwargs"?, "after"?, "on_failure"?, ...}]}``."""

    workflow: dict[str, Any]
    on_failure: FailurePolicy | None = None


class StepOut(Answer):
    name: str
    after: list[str]
    on_failure: FailurePolicy
    job: JobOut


class WorkflowRunOut(Answer):
    id: int
    namespace: str
    name: str
    status: RunStatus
    on_failure: FailurePolicy
    cancel_requested: bool
    created_at: datetime
    finished_at: datetime | None
    schedule_id: int | None
    fire_at: datetime | None
    step_counts: dict[str, int]
    steps: list[StepOut] = Field(description="Empty in listings.")

    @classmethod
    def of(cls, run: WorkflowRun) -> WorkflowRunOut:
        return cls.model_validate(run)


class WorkflowRunList(Answer):
    runs: list[WorkflowRunOut]


class StepRetry(Request):
    step: str | None = Field(None, description="Retry this step only (and those after it).")


# -- queues, workers, stats --------------------------------------------------------------------


class QueueOut(Answer):
    queue: str
    counts: dict[str, int] = Field(description="Jobs by state.")
    ready_by_priority: dict[int, int]
    oldest_ready_age: float | None = Field(description="Seconds.")
    by_priority: dict[int, dict[str, int]] = Field(
        description="Unfinished and dead jobs by priority (highest first), then by state.")

    @classmethod
    def of(cls, queue: QueueStats) -> QueueOut:
        return cls.model_validate(queue)


class WorkerOut(Answer):
    id: str
    namespace: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    pool: str
    started_at: datetime
    last_seen_at: datetime
    alive: bool

    @classmethod
    def of(cls, worker: WorkerInfo) -> WorkerOut:
        return cls.model_validate(worker)


class QueueList(Answer):
    queues: list[QueueOut]


class WorkerList(Answer):
    workers: list[WorkerOut]


class StatsOut(Answer):
    queues: list[QueueOut]
    workers: list[WorkerOut]


# -- quotas and keys ---------------------------------------------------------------------------


class QuotaIn(Request):
    """A namespace's limits; null is no limit."""

    max_queued: int | None = Field(None, ge=0, le=2**31 - 1)
    max_enqueue_rate: float | None = Field(None, gt=0, description="Jobs per second.")
    max_active_schedules: int | None = Field(None, ge=0, le=2**31 - 1)


class QuotaOut(Answer):
    namespace: str
    max_queued: int | None
    max_enqueue_rate: float | None
    max_active_schedules: int | None

    @classmethod
    def of(cls, quota: Quota) -> QuotaOut:
        return cls.model_validate(quota)


class KeyOut(Answer):
    """The caller's own key (never its secret)."""

    prefix: str
    name: str
    namespace: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls.model_validate(key)


JobSelection.model_rebuild()
DeadSelection.model_rebuild()


class PauseIn(Request):
    """When the pause ends by itself (maintenance resumes it); none: only by hand."""

    until: AwareDatetime | None = None


class PauseOut(Answer):
    """A paused queue or task, and the queued jobs it holds."""

    namespace: str
    kind: GateKind
    name: str
    paused_at: datetime
    until: datetime | None
    held: int

    @classmethod
    def of(cls, pause: Pause) -> PauseOut:
        return cls.model_validate(pause)


class PauseList(Answer):
    pauses: list[PauseOut]


class ResumedOut(Answer):
    """A queue or task resumed: how many of its jobs became claimable again."""

    kind: GateKind
    name: str
    released: int


class QueueLimitIn(Request):
    """A queue's maximum depth: jobs waiting to run (queued, scheduled, waiting)."""

    max_depth: int = Field(ge=1, le=2**31 - 1)


class QueueLimitOut(Answer):
    namespace: str
    queue: str
    max_depth: int
    depth: int | None

    @classmethod
    def of(cls, limit: QueueLimit) -> QueueLimitOut:
        return cls.model_validate(limit)


class QueueLimitList(Answer):
    limits: list[QueueLimitOut]


class KeyLimitIn(Request):
    """A key's slots: at most this many of its jobs run at once (null: no limit)."""

    limit: StrictInt | None = Field(ge=1, le=2**31 - 1)


class KeyLimitOut(Answer):
    """A key's gate: its slots, those in use (jobs ready or running), its jobs waiting
    for one, and its pause."""

    namespace: str
    key: str
    capacity: int | None
    in_use: int
    waiting: int
    set_by_hand: bool
    paused: bool
    paused_at: datetime | None
    paused_until: datetime | None
    breaker: str
    breaker_until: datetime | None
    failures: int
    attempts: int = Field(description="Attempts ended in the breaker's window (counted "
                          "under a failure rate only).")
    breaker_failures: int | None
    breaker_window: float | None
    breaker_cooldown: float | None
    breaker_failure_rate: float | None = Field(description=(
        "The share of the window's attempts the failures must also be; None: the count "
        "alone."))

    @classmethod
    def of(cls, limit: KeyLimit) -> KeyLimitOut:
        return cls.model_validate(limit.to_dict())


class KeyLimitList(Answer):
    limits: list[KeyLimitOut]


class BreakerList(Answer):
    breakers: list[KeyLimitOut]


class KeyRateIn(Request):
    """A key's rate limit: ``rate`` as ``"100/min"`` or tokens per second, ``burst``
    in tokens; null leaves either as it is (a new key's burst is 1)."""

    rate: StrictStr | StrictFloat | StrictInt | None = None
    burst: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1)


class KeyRateOut(Answer):
    """A key's rate limit (tokens per second), its tokens at the last admission pass,
    its jobs waiting for tokens and those admitted and not started."""

    namespace: str
    key: str
    rate: float
    rate_per_minute: float
    burst: int
    set_by_hand: bool
    tokens: float
    refilled_at: datetime | None
    waiting: int
    admitted: int

    @classmethod
    def of(cls, rate: KeyRate) -> KeyRateOut:
        return cls.model_validate(rate.to_dict())


class KeyRateList(Answer):
    rates: list[KeyRateOut]


class KeyResumedOut(Answer):
    """A key resumed: how many of its waiting jobs it admitted."""

    key: str
    released: int


class FairWeightIn(Request):
    """A fairness key's weight: its share of a saturated queue's claims against the
    other keys' weights."""

    weight: float = Field(gt=0, le=1_000_000)


class FairWeightOut(Answer):
    namespace: str
    key: str
    weight: float
    last_pass: float | None

    @classmethod
    def of(cls, weight: FairWeight) -> FairWeightOut:
        return cls.model_validate(weight)


class FairWeightList(Answer):
    weights: list[FairWeightOut]


class NamespaceWeightIn(Request):
    """The namespace's share of the claims of a worker that serves it with other
    namespaces, against their weights (namespaces without one weigh 1)."""

    weight: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)


class NamespaceWeightOut(Answer):
    namespace: str
    weight: float | None = Field(description="None: no weight set (it weighs 1).")


class QueueAgingIn(Request):
    """Priority levels a waiting job of the queue gains: ``"1/min"``, ``"2/30s"``, or a
    number of levels per second; and the priority aging lifts a job to at most."""

    rate: str | float
    cap: int | None = Field(default=None, description=(
        "The priority aging lifts a job to at most: jobs above it do not age and are "
        "claimed first. None: no ceiling."))


class QueueAgingOut(Answer):
    namespace: str
    queue: str
    rate: float = Field(description="Priority levels per second of waiting.")
    cap: int | None = Field(description="The priority aging lifts a job to at most.")

    @classmethod
    def of(cls, aging: QueueAging) -> QueueAgingOut:
        return cls.model_validate(aging)


class QueueAgingList(Answer):
    queues: list[QueueAgingOut]


class QueueReserveIn(Request):
    """A share of the queue's claims (``"10%"`` or ``0.1``) kept for its jobs ranked
    below a priority, whenever such jobs are ready."""

    share: str | float
    below: int = Field(description="Jobs ranked below this priority (by aged priority, "
                       "in a queue that ages) are the reserved bands.")


class QueueReserveOut(Answer):
    namespace: str
    queue: str
    share: float = Field(description="The share of each claimer's claims kept, 0 to 1.")
    below: int

    @classmethod
    def of(cls, reserve: QueueReserve) -> QueueReserveOut:
        return cls.model_validate(reserve)


class QueueReserveList(Answer):
    queues: list[QueueReserveOut]
