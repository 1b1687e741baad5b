"""Several worker processes on one SQLite file share the work and run each job once."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project, worker_pid

JOBS = 5_000


@pytest.mark.slow
def test_three_workers_drain_5000_jobs_each_completed_exactly_once(project: Project) -> None:
    workers = [project.start_worker("-c", "8") for _ in range(3)]
    wait_for(lambda: len(project.store.stats("default").workers) == 3,
             timeout=20, what="workers registered")
    side_effects = project.root / "ran.txt"

    job_ids = project.enqueue_many("record", [[str(side_effects)]] * JOBS)

    assert len(set(job_ids)) == JOBS
    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=150,
             what="every job to succeed")
    for worker in workers:
        worker.signal(signal.SIGTERM)
    assert [worker.wait() for worker in workers] == [0, 0, 0]

    jobs = project.jobs()
    assert len(jobs) == JOBS
    assert all(job.status is JobStatus.SUCCEEDED and job.attempt == 1 for job in jobs)
    attempts = {job.id: project.attempts(job.id) for job in jobs}
    assert all(
        [a.outcome for a in history] == [AttemptOutcome.SUCCEEDED]
        for history in attempts.values()
    )
    ran = Counter(int(line) for line in side_effects.read_text().split())
    assert set(ran) == set(job_ids)
    assert [job_id for job_id, times in ran.items() if times != 1] == []
    # The three processes really shared the queue.
    by_worker = Counter(worker_pid(job.worker_id) for job in jobs)
    assert set(by_worker) == {worker.pid for worker in workers}
