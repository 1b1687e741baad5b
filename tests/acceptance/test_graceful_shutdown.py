"""SIGTERM stops a worker gracefully: short jobs finish, long ones are handed back."""

from __future__ import annotations

import signal
import time

import pytest

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project, worker_pid


def test_sigterm_lets_a_running_short_job_finish_and_exits_zero(project: Project) -> None:
    worker = project.start_worker()
    [job_id] = project.enqueue_many("slow", [[1.0]])
    wait_for(lambda: project.running_under(worker), timeout=20, what="the job to start")
    ran_it = project.worker_process_pids(worker)

    worker.signal(signal.SIGTERM)  # to the supervisor, which passes it on

    assert worker.wait() == 0
    job = project.job(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert job.result in ran_it
    assert [a.outcome for a in project.attempts(job_id)] == [AttemptOutcome.SUCCEEDED]


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_sigterm_after_grace_gives_a_long_job_back_to_the_next_worker_at_once(
    project: Project, pool: str
) -> None:
    # The job ignores cancellation, and its lease is long: only a lease given back lets
    # another worker start it soon.
    settings = ("--pool", pool, "--lease-ttl", "60s", "--grace", "0.5s")
    first = project.start_worker(*settings)
    [job_id] = project.enqueue_many("long_only_the_first_time", [[30.0]])
    wait_for(lambda: project.running_under(first), timeout=20, what="the job to start")

    first.signal(signal.SIGTERM)

    assert first.wait(timeout=15) == 0, "the worker did not exit soon after its grace period"
    job = project.job(job_id)
    assert job.status is JobStatus.QUEUED
    [interrupted] = project.attempts(job_id)
    assert interrupted.outcome is AttemptOutcome.INTERRUPTED
    assert worker_pid(interrupted.worker_id) == first.pid

    started = time.monotonic()
    second = project.start_worker(*settings)
    wait_for(lambda: project.job(job_id).status is JobStatus.SUCCEEDED, timeout=15,
             what="the second worker to finish the job")
    assert time.monotonic() - started < 15  # far below the 60 s lease
    assert [(a.outcome, worker_pid(a.worker_id)) for a in project.attempts(job_id)] == [
        (AttemptOutcome.INTERRUPTED, first.pid),
        (AttemptOutcome.SUCCEEDED, second.pid),
    ]
    second.signal(signal.SIGTERM)
    assert second.wait() == 0


def test_a_burst_worker_stopped_by_a_signal_before_its_queues_drained_exits_non_zero(
    project: Project,
) -> None:
    """`--burst` means "drain the queues, then exit 0": stopped first (a CI step's
    timeout), it says so in its exit status, 128 + the signal's number, like a shell."""
    [job_id] = project.enqueue_many("slow", [[30.0]])
    worker = project.start_worker("--burst", "--grace", "0s")
    wait_for(lambda: project.running_under(worker), timeout=20, what="the job to start")

    worker.signal(signal.SIGTERM)

    assert worker.wait() == 128 + signal.SIGTERM
    assert project.job(job_id).status is JobStatus.QUEUED  # given back
