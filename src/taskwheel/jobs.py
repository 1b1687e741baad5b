"""Jobs: one requested run of a task, its attempts, and the records stores return."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from taskwheel.clock import to_datetime
from taskwheel.errors import InvalidInput
from taskwheel.lifecycle import JobStatus
from taskwheel.limits import BreakerRule


class Guarantee(StrEnum):
    """What happens to a job whose worker vanished (its lease expired)."""

    AT_LEAST_ONCE = "at_least_once"  # run it again
    AT_MOST_ONCE = "at_most_once"  # mark it dead, never run it twice


class DeadlinePolicy(StrEnum):
    """What happens to a job still waiting when its deadline passes."""

    EXPIRE = "expire"  # becomes `expired`, never runs
    RUN_LATE = "run_late"  # runs anyway


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the task raised
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"  # its process died or exited
    CANCELLED = "cancelled"
    LEASE_EXPIRED = "lease_expired"  # the worker vanished; found by the rescuer
    INTERRUPTED = "interrupted"  # the worker shut down and gave the lease back


@dataclass(slots=True)
class NewJob:
    """A validated request to create a job; what `Store.enqueue` accepts.

    Times: ``run_at``/``deadline`` are absolute (epoch seconds); ``delay`` and
    ``deadline_in`` are relative to the store's clock at the moment of enqueue,
    so that due times are judged by the database's clock. ``args``/``kwargs`` are
    the values as validated, kept beside their JSON so that the record of a job just
    created needs no decoding.
    """

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    args_json: str
    kwargs_json: str
    queue: str
    priority: int
    namespace: str
    max_attempts: int
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE
    deadline_policy: DeadlinePolicy = DeadlinePolicy.EXPIRE
    delay: float = 0.0
    run_at: float | None = None
    deadline: float | None = None
    deadline_in: float | None = None
    timeout: float | None = None
    idempotency_key: str | None = None
    trace_parent: str | None = None  # W3C traceparent of the enqueue (taskwheel.tracing)
    gate_key: str | None = None  # its concurrency key (taskwheel.limits), rendered
    gate_capacity: int | None = None  # the slots its task declares for that key
    gate_breaker: BreakerRule | None = None  # its task's breaker rule
    fairness_key: str | None = None  # its share of claims (taskwheel.fairness)
    rate_key: str | None = None  # its rate limit's key (taskwheel.rates), rendered
    rate_cost: int = 1  # what each start of it costs in that key's tokens
    rate_declared: tuple[float, int] | None = None  # its task's rate (per second), burst
    # Its place in the dispatch order, given by the store in the enqueue's transaction
    # when its namespace has fair shares or aging (taskwheel.fairness); callers leave 0.
    rank_offset: int = 0
    fair_pass: float = 0.0


# The options of a job template (the rest are fixed by each fire or run: times, keys).
TEMPLATE_OPTIONS = frozenset({"queue", "priority", "timeout", "max_attempts", "deadline"})


# The fields a template gained after templates were first stored.
_LATER_FIELDS = frozenset({"gate_key", "gate_capacity", "gate_breaker", "rate_key",
                           "rate_cost", "rate_declared"})


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """A job to create again and again (at every fire of a schedule, for a step of every
    run of a workflow): a task's validated request, minus its times and key.

    Example:
        >>> template = JobTemplate.of(send.prepare("ops@example.com", deadline="5m"))
        >>> template.deadline_in
        300.0
    """

    task: str
    args_json: str
    kwargs_json: str
    queue: str
    priority: int
    max_attempts: int
    guarantee: str
    deadline_policy: str
    timeout: float | None
    deadline_in: float | None  # each job must start this long after it is created for
    # Its task's key gate (`NewJob.gate_key`...): every job made from it takes a slot.
    gate_key: str | None = None
    gate_capacity: int | None = None
    gate_breaker: BreakerRule | None = None
    # Its task's rate limit (`NewJob.rate_key`...): every job made from it waits for
    # its tokens once it could run (its step's dependencies done, its fire's turn).
    rate_key: str | None = None
    rate_cost: int = 1
    rate_declared: tuple[float, int] | None = None

    @classmethod
    def of(cls, request: NewJob) -> JobTemplate:
        """The template of ``request``; `InvalidInput` if it has what each created job
        gets on its own (a time, a fixed deadline, an idempotency key)."""
        if request.idempotency_key is not None:
            raise InvalidInput("idempotency_key", "a schedule's jobs are keyed by fire time; "
                               "they take no idempotency key")
        if request.run_at is not None or request.delay:
            raise InvalidInput("delay", "a schedule's jobs run at their fire time; "
                               "use the schedule's start or jitter instead")
        if request.deadline is not None:
            raise InvalidInput("deadline", "give a schedule's jobs a relative deadline "
                               "(a duration such as '5m'), not a fixed time")
        return cls(
            task=request.task, args_json=request.args_json, kwargs_json=request.kwargs_json,
            queue=request.queue, priority=request.priority, max_attempts=request.max_attempts,
            guarantee=request.guarantee.value, deadline_policy=request.deadline_policy.value,
            timeout=request.timeout, deadline_in=request.deadline_in,
            gate_key=request.gate_key, gate_capacity=request.gate_capacity,
            gate_breaker=request.gate_breaker, rate_key=request.rate_key,
            rate_cost=request.rate_cost, rate_declared=request.rate_declared,
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobTemplate:
        # A scheduler parses one at most fires (distinct specs miss any cache): a
        # template with every field, as `to_dict` writes today, is taken as it is.
        if len(data) == len(cls.__slots__):
            values = dict(data)
        else:  # stored before key gates or rate limits: none
            values = {name: data.get(name) if name in _LATER_FIELDS else data[name]
                      for name in cls.__slots__}
            if values["rate_cost"] is None:
                values["rate_cost"] = 1
        # Rules stored before failure rates have three parts: no rate.
        breaker = values["gate_breaker"]
        if breaker is not None:
            values["gate_breaker"] = (*breaker, None)[:4]
        declared = values["rate_declared"]
        if declared is not None:
            values["rate_declared"] = tuple(declared)
        return cls(**values)


@dataclass(slots=True)
class Job:
    """A snapshot of a job as the store holds it. Times are aware UTC datetimes.

    Not frozen: a frozen dataclass costs several microseconds more per record, and
    stores build one for every job they enqueue or claim.
    """

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
    schedule_id: int | None = None  # the schedule that fired it
    fire_at: datetime | None = None  # the instant it stands for
    workflow_run_id: int | None = None  # the workflow run it is a step of
    step: str | None = None  # its step's name in that run
    trace_parent: str | None = None  # W3C traceparent of its enqueue, when traced
    fairness_key: str | None = None  # its share of claims (taskwheel.fairness)
    rank_offset: int = 0  # what its queue's aging takes off its priority, as of its due time
    fair_pass: float = 0.0  # its pass in its fairness flow

    def dispatch_key(self) -> tuple[int, float, float, float, int]:
        """This job's place in the claim order (see `dispatch_key`)."""
        deadline = None if self.deadline is None else self.deadline.timestamp()
        return dispatch_key(self.priority, deadline, self.run_at.timestamp(), self.id,
                            rank_offset=self.rank_offset, fair_pass=self.fair_pass)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


class JobOrigin(StrEnum):
    """What created a job: an enqueue, a schedule's fire, or a workflow run (its steps,
    whether the run was submitted or fired)."""

    ENQUEUE = "enqueue"
    SCHEDULE = "schedule"
    WORKFLOW = "workflow"


def job_origin(job: Job) -> JobOrigin:
    """Example:
        >>> job_origin(store.get_job("default", fired_id))  # doctest: +SKIP
        <JobOrigin.SCHEDULE: 'schedule'>
    """
    if job.workflow_run_id is not None:
        return JobOrigin.WORKFLOW
    if job.schedule_id is not None:
        return JobOrigin.SCHEDULE
    return JobOrigin.ENQUEUE


class Enqueued(list[Job]):
    """The jobs an enqueue answered, one per request in their order; and for each,
    whether the request created nothing (``existing``): its idempotency key was held
    by that job already, before the enqueue or by an earlier request of its batch.

    Example:
        >>> answer = store.enqueue([send.prepare("a@b.c", idempotency_key="k")])
        >>> answer.existing   # (True,) when "k" was used before
        (False,)
    """

    def __init__(self, jobs: Iterable[Job] = (), existing: Iterable[bool] | None = None) -> None:
        super().__init__(jobs)
        self.existing = tuple(existing) if existing is not None else (False,) * len(self)
        if len(self.existing) != len(self):
            raise ValueError(f"{len(self.existing)} flags for {len(self)} jobs")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a job by one worker."""

    job_id: int
    attempt: int
    fence: int
    worker_id: str | None
    started_at: datetime
    ended_at: datetime
    outcome: AttemptOutcome
    result: Any
    error: str | None
    traceback: str | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker reports when an attempt ends.

    ``status`` is where the job goes next: `SUCCEEDED`, `QUEUED` (retry now),
    `SCHEDULED` (retry after ``retry_delay`` seconds), `DEAD` or `CANCELLED`.
    The store applies it only if ``fence`` is still the job's fencing token.
    """

    job_id: int
    fence: int
    status: JobStatus
    outcome: AttemptOutcome
    result_json: str | None = None
    error: str | None = None
    traceback: str | None = None
    retry_delay: float = 0.0
    trip_until: float | None = None  # the task raised TripBreaker: open a breaker until
    trip_key: str | None = None  # ...of this key (None: the job's own)
    # The job's end moves nothing else: it has no schedule or workflow run (the store
    # checks that and its concurrency key), so its report needs no answer before COMMIT.
    ends_alone: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    """Jobs a worker claimed, in dispatch order, and when the next delayed job is due.
    ``at``: the store's clock when it claimed jobs due ahead of it (`ClaimRequest.ahead`),
    so that the claimer holds each for its due time less that, whatever its own clock."""

    jobs: list[Job]
    next_due: float | None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Rescue:
    """What one pass of the lease rescuer did."""

    requeued: list[int]
    failed: list[int]


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's jobs by state (``counts``), and its unfinished and dead ones by
    priority then state (``by_priority``, highest priority first); its ready ones by
    priority, and how long the one ready longest has been ready."""

    queue: str
    counts: dict[str, int]
    ready_by_priority: dict[int, int]
    oldest_ready_age: float | None
    by_priority: dict[int, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StartWaits:
    """How long the jobs of a queue and priority that started lately waited to start,
    from ready (due, or created if due before) to started: their latest attempt each."""

    queue: str
    priority: int
    count: int
    mean: float
    longest: float


@dataclass(frozen=True, slots=True)
class WorkerInfo:
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


@dataclass(frozen=True, slots=True)
class Stats:
    queues: list[QueueStats]
    workers: list[WorkerInfo]


class DepthBand(NamedTuple):
    """Jobs of one namespace, queue, state and priority; for ready ones, the earliest
    time one became ready (its due time, or its creation if it was due before). A
    tuple: a scrape reads tens of thousands (a frozen dataclass's construction took an
    eighth of a scrape)."""

    namespace: str
    queue: str
    status: str
    priority: int
    jobs: int  # (not `count`: a tuple's method)
    first_ready: float | None


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """Every namespace's unfinished and dead jobs by band, and every worker, read at
    the store's instant ``now`` (what a metrics scrape reports)."""

    now: float
    bands: list[DepthBand]
    workers: list[WorkerInfo]


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: JobStatus | None = None
    queue: str | None = None
    task: str | None = None
    limit: int = 100
    before_id: int | None = None  # only jobs older than this one (the next page)


def dispatch_key(
    priority: int, deadline: float | None, run_at: float, job_id: int, *,
    rank_offset: int = 0, fair_pass: float = 0.0,
) -> tuple[int, float, float, float, int]:
    """The order claims take ready jobs: priority (higher first; aged, see
    `taskwheel.fairness`), then fair pass (lower first), then deadline (earliest first,
    none last), then due time, then id. Stores implement it in SQL; this is the
    reference the tests compare them against."""
    return (-(priority + rank_offset), fair_pass,
            deadline if deadline is not None else float("inf"), run_at, job_id)


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
# The JSON of a job's arguments is at most this many bytes by default: a larger value
# belongs in a file or a table the task reads, not in every read of the job.
MAX_ARGUMENT_BYTES = 1_000_000


def dumps_json(value: Any, field: str) -> str:
    """Serialise ``value`` as JSON or raise `InvalidInput` naming ``field``."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"not JSON-serialisable: {exc}") from None
    # JSON escapes every character beyond ASCII, lone surrogates too; those are not text
    # (no encoding can write them), and each one would break every read of the job.
    if "\\ud" in text:
        bad = _not_unicode(value, field)
        if bad is not None:
            path, char = bad
            raise InvalidInput(field, f"{path} is not valid Unicode: it holds a lone "
                               f"surrogate {char!r}")
    return text


def _not_unicode(value: Any, where: str) -> tuple[str, str] | None:
    """Where (``args[0]``, ``kwargs.to``) a string is not valid Unicode (holds a lone
    surrogate, as ``"\\ud800"`` in JSON decodes to), and the surrogate; None if nowhere."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return where, value[exc.start]
        return None
    found = None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _not_unicode(key, f"a key of {where}") or _not_unicode(item, f"{where}.{key}")
            if found:
                break
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _not_unicode(item, f"{where}[{index}]")
            if found:
                break
    return found


def unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A JSON object's ``object_pairs_hook`` that refuses a key given twice (JSON
    decoders otherwise keep the last value silently)."""
    value: dict[Any, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"the key {key!r} appears twice")
        value[key] = item
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
_EMPTY: dict[type, str] = {list: "[]", dict: "{}"}


def _as_json_gives_back(value: Any) -> bool:
    """Whether decoding ``value``'s JSON yields an equal value of the same types: only
    plain lists, dicts with string keys and JSON's scalars (no tuples, no subclasses)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is list:
        return all(_as_json_gives_back(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _as_json_gives_back(item)
                   for key, item in value.items())
    return False


def stored_json(
    value: Any, field: str, *, max_bytes: int = MAX_ARGUMENT_BYTES
) -> tuple[Any, str]:
    """``value`` as the store keeps it, with its JSON: tuples become lists and keys
    strings, exactly what the task will receive. Keys that would collide (``1`` and
    ``"1"``) are refused, naming ``field``, rather than one silently dropped; so are
    strings that are not valid Unicode and a JSON longer than ``max_bytes``.

    Example:
        >>> stored_json((1, {2: "b"}), "args")
        ([1, {'2': 'b'}], '[1,{"2":"b"}]')
    """
    if not value and type(value) in _EMPTY:  # no arguments of a kind: nothing to check
        return value, _EMPTY[type(value)]
    text = dumps_json(value, field)
    # The text is ASCII (every other character escaped): its length is its size.
    if len(text) > max_bytes:
        raise InvalidInput(field, f"{len(text)} bytes of JSON; at most {max_bytes} (pass "
                           "large data by reference, e.g. a path or a row id)")
    if _as_json_gives_back(value):  # the common case: no round trip on the enqueue path
        return value, text
    try:
        return json.loads(text, object_pairs_hook=unique_keys), text
    except ValueError as exc:
        raise InvalidInput(field, f"not representable in JSON: {exc}") from None


def loads_json(text: str | None) -> Any:
    if text is None:
        return None
    if text == "{}":  # most jobs' keywords (and a task without arguments)
        return {}
    if text == "[]":
        return []
    return json.loads(text)


def epoch_datetime(seconds: float) -> datetime:
    moment = to_datetime(seconds)
    assert moment is not None
    return moment
