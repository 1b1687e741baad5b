"""The job lifecycle: states and the only transitions between them.

Every store obeys this table; a change that is not in it is refused with
`IllegalTransition`. See DESIGN.md, "Job lifecycle".
"""

from __future__ import annotations

from enum import StrEnum

from taskwheel.errors import IllegalTransition


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for run_at (delayed, or backing off before a retry)
    WAITING = "waiting"  # for workflow dependencies, or for its rate key's tokens
    QUEUED = "queued"  # ready to be claimed
    RUNNING = "running"  # claimed under a lease
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    DEAD = "dead"  # retries exhausted: the dead-letter queue
    EXPIRED = "expired"  # deadline passed before it started
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"


S = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED, S.EXPIRED}),
    # waiting -> expired: a deadline can pass while a job waits for its turn.
    S.WAITING: frozenset({S.QUEUED, S.CANCELLED, S.EXPIRED, S.UPSTREAM_FAILED, S.SKIPPED}),
    # queued -> scheduled: a retry or replay that asks for a delay; queued -> waiting: a
    # rate-limited job ready without an admission waits for its key's tokens
    # (taskwheel.rates), in the transaction that made it ready.
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.EXPIRED, S.SCHEDULED, S.WAITING}),
    # running -> queued: lease rescued or given back; running -> scheduled: retry after backoff.
    S.RUNNING: frozenset({S.SUCCEEDED, S.QUEUED, S.SCHEDULED, S.DEAD, S.CANCELLED}),
    # Finished jobs can be started again by hand (retry / DLQ replay). A workflow step
    # re-run with a dependency that re-runs too waits for it again (-> waiting).
    S.SUCCEEDED: frozenset({S.QUEUED}),
    S.CANCELLED: frozenset({S.QUEUED, S.WAITING}),
    S.DEAD: frozenset({S.QUEUED, S.WAITING}),
    S.EXPIRED: frozenset({S.QUEUED, S.WAITING}),
    S.UPSTREAM_FAILED: frozenset({S.QUEUED, S.WAITING}),
    S.SKIPPED: frozenset({S.QUEUED, S.WAITING}),
}

TERMINAL: frozenset[JobStatus] = frozenset(
    {S.SUCCEEDED, S.CANCELLED, S.DEAD, S.EXPIRED, S.UPSTREAM_FAILED, S.SKIPPED}
)
PENDING: frozenset[JobStatus] = frozenset({S.SCHEDULED, S.WAITING, S.QUEUED})


def can_transition(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]


def check_transition(source: JobStatus, target: JobStatus, job_id: int | None = None) -> None:
    """Raise `IllegalTransition` unless ``source -> target`` is in the table."""
    if not can_transition(source, target):
        raise IllegalTransition(job_id, source.value, target.value)

# Where a running job can go when its attempt ends (what `Outcome.status` may say).
RUNNING_TARGETS: frozenset[JobStatus] = TRANSITIONS[S.RUNNING]
