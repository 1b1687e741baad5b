"""Fixtures of the store contract suite: one fresh, migrated store per test and backend,
whose clock only moves when a test moves it; and terse builders of requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from taskwheel.clock import ManualClock
from taskwheel.jobs import (
    AttemptOutcome,
    DeadlinePolicy,
    Guarantee,
    Job,
    NewJob,
    Outcome,
)
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store, WorkerRegistration

from .backends import BACKENDS, MIGRATED_BACKENDS, BackendFactory, forget_databases

# 2023-11-14 22:13:20 UTC: whole seconds, so times survive the round trip through
# datetimes exactly and tests can compare them with ==.
T0 = 1_700_000_000.0
NS = "contract"
OTHER_NS = "elsewhere"
QUEUE = "default"
TTL = 30.0


@pytest.fixture(autouse=True)
def _forget_databases() -> Iterator[None]:
    """Each test's databases are its own: dropped after it (stores closed first)."""
    yield
    forget_databases()


@pytest.fixture
def open_backend(backend: str) -> BackendFactory:
    """The backend's factory: opens the same database again from the same directory."""
    return BACKENDS[backend]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    opened = MIGRATED_BACKENDS[backend](tmp_path, clock)
    opened.migrate()
    yield opened
    opened.close()


# -- requests ------------------------------------------------------------------------------


def new_job(
    task: str = "contract.noop",
    *args: Any,
    namespace: str = NS,
    queue: str = QUEUE,
    priority: int = 0,
    max_attempts: int = 3,
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE,
    deadline_policy: DeadlinePolicy = DeadlinePolicy.EXPIRE,
    delay: float = 0.0,
    run_at: float | None = None,
    deadline: float | None = None,
    deadline_in: float | None = None,
    timeout: float | None = None,
    idempotency_key: str | None = None,
    **kwargs: Any,
) -> NewJob:
    """A valid `NewJob`; positional arguments after the task and unknown keywords are
    the task's arguments."""
    return NewJob(
        task=task,
        args=list(args),
        kwargs=kwargs,
        args_json=json.dumps(list(args)),
        kwargs_json=json.dumps(kwargs),
        queue=queue,
        priority=priority,
        namespace=namespace,
        max_attempts=max_attempts,
        guarantee=guarantee,
        deadline_policy=deadline_policy,
        delay=delay,
        run_at=run_at,
        deadline=deadline,
        deadline_in=deadline_in,
        timeout=timeout,
        idempotency_key=idempotency_key,
    )


def enqueue_one(store: Store, request: NewJob | None = None) -> Job:
    [job] = store.enqueue([request or new_job()])
    return job


def claim_one(
    store: Store, worker: str = "w1", *, namespace: str = NS, queue: str = QUEUE
) -> Job:
    """Claim exactly one job (failing the test if none is ready)."""
    claim = store.claim_jobs(namespace, worker, [queue], 1, TTL)
    assert len(claim.jobs) == 1, f"expected one ready job in {namespace}/{queue}, got none"
    return claim.jobs[0]


def succeeded(job: Job, result: Any = None) -> Outcome:
    return Outcome(
        job.id, job.fence, JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, json.dumps(result)
    )


def failed(
    job: Job,
    then: JobStatus,
    *,
    retry_delay: float = 0.0,
    error: str = "ValueError: boom",
    traceback: str = 'Traceback (most recent call last):\n  File "task.py"\nValueError: boom\n',
) -> Outcome:
    """The outcome of an attempt that raised; ``then`` is where the job goes next
    (`QUEUED`/`SCHEDULED` for a retry, `DEAD` when it was the last attempt)."""
    return Outcome(
        job.id,
        job.fence,
        then,
        AttemptOutcome.FAILED,
        error=error,
        traceback=traceback,
        retry_delay=retry_delay,
    )


def registration(
    worker_id: str = "w1",
    *,
    namespace: str = NS,
    queues: tuple[str, ...] = (QUEUE,),
    heartbeat_interval: float = 5.0,
) -> WorkerRegistration:
    return WorkerRegistration(
        id=worker_id,
        namespace=namespace,
        hostname="contract-host",
        pid=4242,
        queues=queues,
        concurrency=4,
        pool="thread",
        heartbeat_interval=heartbeat_interval,
    )


def ts(moment: datetime | None) -> float | None:
    """A record's datetime as epoch seconds (None stays None)."""
    return None if moment is None else moment.timestamp()
