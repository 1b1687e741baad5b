"""Job records built in memory, for tests of pure logic that take a `Job`."""

from __future__ import annotations

from datetime import datetime

from taskwheel.jobs import DeadlinePolicy, Guarantee, Job, epoch_datetime
from taskwheel.lifecycle import JobStatus

EPOCH = 1_700_000_000.0


def job_record(
    job_id: int = 1,
    *,
    status: JobStatus = JobStatus.RUNNING,
    priority: int = 0,
    run_at: float = EPOCH,
    deadline: float | None = None,
    attempt: int = 1,
    max_attempts: int = 3,
    fence: int = 1,
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE,
    cancel_requested: bool = False,
) -> Job:
    """A job as a store would return it; times are epoch seconds."""
    created: datetime = epoch_datetime(EPOCH)
    return Job(
        id=job_id,
        namespace="default",
        task="sample",
        queue="default",
        args=[],
        kwargs={},
        status=status,
        priority=priority,
        run_at=epoch_datetime(run_at),
        deadline=None if deadline is None else epoch_datetime(deadline),
        timeout=None,
        max_attempts=max_attempts,
        attempt=attempt,
        fence=fence,
        guarantee=guarantee,
        deadline_policy=DeadlinePolicy.EXPIRE,
        idempotency_key=None,
        worker_id="worker-1" if status is JobStatus.RUNNING else None,
        lease_expires_at=None,
        started_at=None,
        created_at=created,
        finished_at=None,
        cancel_requested=cancel_requested,
        result=None,
        last_error=None,
        checkpoint=None,
    )
