"""Why a job is (not) running: the store's state at one instant, turned into reasons.

`explain` is pure: it takes the `JobFacts` a store read in one snapshot (the job,
the store's time, the live workers of its namespace, the ready jobs ahead of it, its
workflow dependencies, its schedule) and answers an `Explanation`: a list of `Reason`
records, each with a stable ``code`` (for the dashboard and scripts), a human
``message`` and the ``details`` it was built from. Every rule is a small function of
the facts in `RULES`, tried in order; each adds the reasons it sees.

Dispatch control (paused queues, concurrency and rate limits, circuit breakers) adds
its reasons here, in one place: a fact to `JobFacts` (read by `SQLStore.explain_job`)
and a rule to `RULES`.

Example:
    >>> explanation = store.explain_job("default", 42)
    >>> [reason.code for reason in explanation.reasons]
    [<ReasonCode.JOBS_AHEAD: 'jobs_ahead'>]
    >>> explanation.reasons[0].message
    '3 jobs are ahead of it in dispatch order in queue emails (3 at priority 5, above its 0)'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from taskwheel.gates import GateKind, Pause
from taskwheel.jobs import DeadlinePolicy, Job, WorkerInfo
from taskwheel.lifecycle import PENDING, JobStatus
from taskwheel.limits import KeyLimit
from taskwheel.rates import KeyRate
from taskwheel.workflows import StepOutcome


class ReasonCode(StrEnum):
    """What holds a job, or where it stands. Stable: scripts and the dashboard read them."""

    DUE_LATER = "due_later"  # scheduled: its due time is ahead
    DUE_NOW = "due_now"  # scheduled and due: the next claim or promotion makes it ready
    BACKING_OFF = "backing_off"  # scheduled after a failed attempt, until its retry time
    WAITING_FOR_STEPS = "waiting_for_steps"  # a workflow step whose dependencies run
    WAITING_FOR_EARLIER_RUN = "waiting_for_earlier_run"  # queue_one: the schedule's last job
    NO_LIVE_WORKER = "no_live_worker"  # nothing alive serves its queue in its namespace
    JOBS_AHEAD = "jobs_ahead"  # ready jobs a claim takes before it
    NEXT_IN_LINE = "next_in_line"  # ready, first in its queue, and a live worker serves it
    DEADLINE_PASSED = "deadline_passed"  # pending past its deadline: it will expire
    PAUSED = "paused"  # its queue or its task is paused: no worker claims it until resumed
    WAITING_FOR_RATE = "waiting_for_rate"  # waits for its rate key's tokens (taskwheel.rates)
    LIMIT_FULL = "limit_full"  # its key's concurrency limit has no free slot: it waits for one
    KEY_PAUSED = "key_paused"  # its key is paused: no slot is given until it resumes
    BREAKER_OPEN = "breaker_open"  # its key's circuit breaker is open: nothing is admitted
    BREAKER_HALF_OPEN = "breaker_half_open"  # one probe job of its key at a time
    RUNNING = "running"
    CANCEL_REQUESTED = "cancel_requested"  # running; its worker was asked to stop it
    LEASE_EXPIRED = "lease_expired"  # running, but its worker stopped renewing the lease
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DEAD = "dead"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing that holds the job, or says where it stands."""

    code: ReasonCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": self.details}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why job ``job_id`` is where it is, at the store's instant ``at`` (epoch seconds)."""

    job_id: int
    namespace: str
    status: JobStatus
    at: float
    reasons: tuple[Reason, ...]

    @property
    def summary(self) -> str:
        """The reasons' messages as one sentence each, joined."""
        return "; ".join(reason.message for reason in self.reasons)

    def codes(self) -> list[ReasonCode]:
        return [reason.code for reason in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "namespace": self.namespace,
                "status": self.status.value, "at": _iso(self.at), "summary": self.summary,
                "reasons": [reason.to_dict() for reason in self.reasons]}


@dataclass(frozen=True, slots=True)
class PriorityBand:
    """Ready jobs of the job's queue at one priority that a claim takes before it."""

    priority: int
    count: int


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What the store read, in one snapshot, to explain ``job``.

    ``workers``: the registrations of its namespace and of workers serving every
    namespace (``"*"``), alive or not; ``ahead``: read only for a ready job;
    ``upstream``: its workflow dependencies (a waiting step); ``schedule_name``: the
    schedule that fired it, if any; ``pauses``: the namespace's closed gates (read for a
    pending job); ``gate``: a queued job's key gate (`KeyLimit`), if it has a key, and
    ``blocked``: whether it waits out of the ready index (for a slot, or a pause).
    """

    job: Job
    now: float
    workers: Sequence[WorkerInfo] = ()
    ahead: Sequence[PriorityBand] = ()
    upstream: Sequence[StepOutcome] = ()
    schedule_name: str | None = None
    pauses: Sequence[Pause] = ()
    rate: KeyRate | None = None  # its rate key's bucket, for a job waiting for tokens
    gate: KeyLimit | None = None
    blocked: bool = False


Rule = Callable[[JobFacts], Iterable[Reason]]


def explain(facts: JobFacts) -> Explanation:
    """Every reason the rules of `RULES` find, in their order."""
    reasons = tuple(reason for rule in RULES for reason in rule(facts))
    job = facts.job
    return Explanation(job.id, job.namespace, job.status, facts.now, reasons)


# -- the rules --------------------------------------------------------------------------------


def _scheduled(facts: JobFacts) -> Iterable[Reason]:
    job, now = facts.job, facts.now
    if job.status is not JobStatus.SCHEDULED:
        return
    due = job.run_at.timestamp()
    details = {"run_at": _iso(due), "in_seconds": round(due - now, 3)}
    if job.attempt > 0:  # a retry: it ran and failed, and waits out its backoff
        attempt = f"attempt {job.attempt} of {job.max_attempts}"
        error = f" ({job.last_error})" if job.last_error else ""
        details.update(attempt=job.attempt, max_attempts=job.max_attempts,
                       last_error=job.last_error)
        yield Reason(ReasonCode.BACKING_OFF,
                     f"backing off after {attempt} failed{error} until {_iso(due)}"
                     f"{_relative(due, now)}", details)
    elif due > now:
        yield Reason(ReasonCode.DUE_LATER, f"due at {_iso(due)} (in {_seconds(due - now)})",
                     details)
    if due <= now:
        yield Reason(ReasonCode.DUE_NOW,
                     f"due since {_iso(due)}: the next claim or maintenance pass makes it "
                     "ready", details)


def _waiting(facts: JobFacts) -> Iterable[Reason]:
    job = facts.job
    if job.status is not JobStatus.WAITING or facts.rate is not None:
        return  # a step or a fire that waits for its rate key's tokens: `_rate` says so
    if job.workflow_run_id is not None:
        pending = [step for step in facts.upstream if step.status not in _ENDED]
        names = [step.step for step in pending]
        yield Reason(ReasonCode.WAITING_FOR_STEPS,
                     f"waiting for workflow {_noun(len(names), 'step')} {_and(names)} of "
                     f"run {job.workflow_run_id}",
                     {"workflow_run_id": job.workflow_run_id, "steps": names,
                      "jobs": [step.job_id for step in pending]})
    elif job.schedule_id is not None:
        name = facts.schedule_name or f"#{job.schedule_id}"
        yield Reason(ReasonCode.WAITING_FOR_EARLIER_RUN,
                     f"waiting for the earlier job of schedule {name} to finish "
                     "(overlap policy queue_one)",
                     {"schedule_id": job.schedule_id, "schedule": facts.schedule_name})


def _rate(facts: JobFacts) -> Iterable[Reason]:
    job, rate = facts.job, facts.rate
    if job.status is not JobStatus.WAITING or rate is None:
        return
    yield Reason(ReasonCode.WAITING_FOR_RATE,
                 f"waiting for tokens of rate key {rate.key} ({rate.rate * 60:g}/min, burst "
                 f"{rate.burst}): {_count(rate.waiting, 'job')} wait for them and "
                 f"{rate.admitted} admitted have not started; the maintenance lease "
                 "holder admits it, in dispatch order, when the bucket has its tokens",
                 {"key": rate.key, "rate": rate.rate, "burst": rate.burst,
                  "tokens": rate.tokens, "waiting": rate.waiting, "admitted": rate.admitted})


def _deadline(facts: JobFacts) -> Iterable[Reason]:
    job = facts.job
    if (job.status in PENDING and job.deadline is not None
            and job.deadline_policy is DeadlinePolicy.EXPIRE
            and job.deadline.timestamp() <= facts.now):
        at = job.deadline.timestamp()
        yield Reason(ReasonCode.DEADLINE_PASSED,
                     f"its deadline {_iso(at)} passed before it started: it expires at the "
                     "next claim or maintenance pass instead of running",
                     {"deadline": _iso(at)})


def _workers(facts: JobFacts) -> Iterable[Reason]:
    job = facts.job
    if job.status not in PENDING:
        return
    serving = [worker for worker in facts.workers if job.queue in worker.queues]
    if any(worker.alive for worker in serving):
        return
    gone = [worker.id for worker in serving]
    note = (f" ({_count(len(gone), 'registered worker')} stopped heartbeating: "
            f"{_and(gone)})" if gone else "")
    yield Reason(ReasonCode.NO_LIVE_WORKER,
                 f"no live worker serves queue {job.queue} in namespace {job.namespace}{note}",
                 {"queue": job.queue, "namespace": job.namespace, "silent_workers": gone})


def _holding(facts: JobFacts) -> list[Pause]:
    """The pauses that hold the job: of its queue, or of its task."""
    job = facts.job
    return [pause for pause in facts.pauses
            if (pause.kind is GateKind.QUEUE and pause.name == job.queue)
            or (pause.kind is GateKind.TASK and pause.name == job.task)]


def _pause_end(until: float | None) -> str:
    """When a pause (of a queue, a task or a key) ends, as its explanations say it."""
    return (f"until {_iso(until)} (maintenance resumes it then)" if until is not None
            else "until someone resumes it")


def _paused(facts: JobFacts) -> Iterable[Reason]:
    if facts.job.status not in PENDING:
        return
    for pause in _holding(facts):
        until = _epoch(pause.until)
        yield Reason(ReasonCode.PAUSED,
                     f"its {pause.kind.value} {pause.name} is paused since "
                     f"{_iso(_epoch(pause.paused_at))}, {_pause_end(until)}: no worker "
                     "claims it meanwhile",
                     {"kind": pause.kind.value, "name": pause.name,
                      "paused_at": _iso(_epoch(pause.paused_at)), "until": _iso(until)})


def _key_gate(facts: JobFacts) -> Iterable[Reason]:
    """A queued job its key's gate holds: the key paused, its breaker open or half-open
    (one probe at a time), or every slot taken."""
    job, gate = facts.job, facts.gate
    if job.status is not JobStatus.QUEUED or gate is None or not facts.blocked:
        return
    details: dict[str, Any] = {"key": gate.key, "capacity": gate.capacity,
                               "in_use": gate.in_use, "waiting": gate.waiting}
    if gate.paused:
        until = _epoch(gate.paused_until)
        yield Reason(ReasonCode.KEY_PAUSED,
                     f"its key {gate.key} is paused since {_iso(_epoch(gate.paused_at))}, "
                     f"{_pause_end(until)}: no job of the key is admitted meanwhile",
                     {**details, "paused_at": _iso(_epoch(gate.paused_at)),
                      "until": _iso(until)})
    if gate.breaker == "open":
        until = _epoch(gate.breaker_until)
        end = (f"until {_iso(until)}, then one probe job runs" if until is not None
               else "until someone closes it")
        yield Reason(ReasonCode.BREAKER_OPEN,
                     f"the circuit breaker of its key {gate.key} is open {end}: no job of the "
                     "key is admitted meanwhile", {**details, "until": _iso(until)})
    elif gate.breaker == "half_open":
        yield Reason(ReasonCode.BREAKER_HALF_OPEN,
                     f"the circuit breaker of its key {gate.key} is half-open: one probe job "
                     f"runs at a time ({gate.in_use} running or ready), and its success "
                     "closes the breaker", details)
    elif (not gate.paused and gate.capacity is not None and gate.in_use >= gate.capacity
          and not _holding(facts)):
        yield Reason(ReasonCode.LIMIT_FULL,
                     f"its key {gate.key} has every slot of its concurrency limit taken "
                     f"({gate.in_use} of {gate.capacity}, running or ready): it is admitted "
                     f"when one is given back ({_count(gate.waiting, 'job')} waiting)",
                     details)


def _queued(facts: JobFacts) -> Iterable[Reason]:
    job = facts.job
    if job.status is not JobStatus.QUEUED or _holding(facts) or facts.blocked:
        return  # (a held job is in no line: `_paused` or `_key_gate` says why)
    total = sum(band.count for band in facts.ahead)
    if total == 0:
        if any(w.alive and job.queue in w.queues for w in facts.workers):
            yield Reason(ReasonCode.NEXT_IN_LINE,
                         f"ready and first in line in queue {job.queue}: the next claim of a "
                         "live worker takes it", {"queue": job.queue})
        return
    higher = sum(band.count for band in facts.ahead if band.priority > job.priority)
    lower = sum(band.count for band in facts.ahead if band.priority < job.priority)
    same = total - higher - lower
    parts = []
    if higher:
        bands = ", ".join(f"{band.count} at priority {band.priority}"
                          for band in facts.ahead if band.priority > job.priority)
        parts.append(f"{bands}, above its {job.priority}")
    if same:
        parts.append(f"{same} at its own priority {job.priority}, earlier in order")
    if lower:  # older jobs its queue's aging ranks above it
        bands = ", ".join(f"{band.count} at priority {band.priority}"
                          for band in facts.ahead if band.priority < job.priority)
        parts.append(f"{bands}, below its {job.priority}, aged above it")
    yield Reason(ReasonCode.JOBS_AHEAD,
                 f"{_count(total, 'job')} {'is' if total == 1 else 'are'} ahead of it in "
                 f"dispatch order in queue {job.queue} ({'; '.join(parts)})",
                 {"queue": job.queue, "priority": job.priority, "ahead": total,
                  "higher_priority": higher, "same_priority": same,
                  "lower_priority": lower,
                  "bands": {str(band.priority): band.count for band in facts.ahead}})


def _running(facts: JobFacts) -> Iterable[Reason]:
    job, now = facts.job, facts.now
    if job.status is not JobStatus.RUNNING:
        return
    started = _epoch(job.started_at)
    lease = _epoch(job.lease_expires_at)
    details = {"worker_id": job.worker_id, "started_at": _iso(started),
               "lease_expires_at": _iso(lease), "attempt": job.attempt,
               "max_attempts": job.max_attempts, "fence": job.fence}
    yield Reason(ReasonCode.RUNNING,
                 f"running on worker {job.worker_id} since {_iso(started)} (attempt "
                 f"{job.attempt} of {job.max_attempts}; lease until {_iso(lease)})", details)
    if job.cancel_requested:
        yield Reason(ReasonCode.CANCEL_REQUESTED,
                     f"cancel requested: worker {job.worker_id} stops it at its next heartbeat",
                     {"worker_id": job.worker_id})
    if lease is not None and lease <= now:
        yield Reason(ReasonCode.LEASE_EXPIRED,
                     f"its lease lapsed at {_iso(lease)} ({_seconds(now - lease)} ago): worker "
                     f"{job.worker_id} is presumed gone and the next rescue pass "
                     f"{'fails' if job.guarantee.value == 'at_most_once' else 'requeues'} it",
                     {"worker_id": job.worker_id, "lease_expires_at": _iso(lease)})


def _ended(facts: JobFacts) -> Iterable[Reason]:
    job = facts.job
    if job.status not in _ENDED:
        return
    code = ReasonCode(job.status.value)
    finished = _epoch(job.finished_at)
    details = {"finished_at": _iso(finished), "attempts": job.attempt,
               "last_error": job.last_error}
    when = f" at {_iso(finished)}" if finished is not None else ""
    error = f": {job.last_error}" if job.last_error else ""
    if code is ReasonCode.SUCCEEDED:
        message = f"succeeded{when} after {_count(job.attempt, 'attempt')}"
    elif code is ReasonCode.DEAD:
        message = (f"dead{when} after {_count(job.attempt, 'attempt')} of "
                   f"{job.max_attempts}{error} (in the dead-letter queue: replay it to run "
                   "it again)")
    elif code is ReasonCode.EXPIRED:
        deadline = _epoch(job.deadline)
        message = (f"expired{when}: its deadline {_iso(deadline)} passed before it started"
                   if deadline is not None else f"expired{when}{error}")
        details["deadline"] = _iso(deadline)
    elif code is ReasonCode.CANCELLED:
        message = f"cancelled{when}{error}"
    elif code is ReasonCode.UPSTREAM_FAILED:
        message = f"not run{when}: an upstream step failed{error}"
    else:
        message = f"skipped{when}{error}"
    yield Reason(code, message, details)


# Tried in this order; a dispatch-control gate adds its rule here.
RULES: list[Rule] = [_ended, _running, _scheduled, _waiting, _rate, _deadline, _paused,
                     _key_gate, _workers, _queued]

_ENDED = frozenset({JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.DEAD,
                    JobStatus.EXPIRED, JobStatus.UPSTREAM_FAILED, JobStatus.SKIPPED})


# -- wording ----------------------------------------------------------------------------------


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def _seconds(seconds: float) -> str:
    """A duration as people say it: 42 s, 3 min 5 s, 2 h 10 min."""
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 120:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _relative(at: float, now: float) -> str:
    return f" (in {_seconds(at - now)})" if at > now else ""


def _count(count: int, noun: str) -> str:
    """``1 job``, ``3 jobs``."""
    return f"{count} {_noun(count, noun)}"


def _noun(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
