"""A key rate-limited to 20 starts a second with bursts of 4, on PostgreSQL with three
workers and two schedulers, while a worker running its jobs and the holder of the
maintenance lease (which admits the waiting jobs) are SIGKILLed mid-run and replaced:
every job succeeds, and the attempts' start times (the claims, each job's every attempt,
killed ones included) never exceed the bucket's bound, ``burst + rate x t`` starts in
any window of length ``t`` (docs/how-to/limits.md, "The guarantee, exactly")."""

from __future__ import annotations

import random
import signal
import time

from buckets import most_over_the_bound
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance.maintenance import LEASE
from waiting import wait_for

from .conftest import Project, WorkerProcess, worker_pid

RATE, BURST = 20.0, 4
JOBS = 80


def test_the_bound_as_this_test_reads_it() -> None:
    assert most_over_the_bound([(0.0, 1)] * BURST, RATE, BURST) == 0
    assert most_over_the_bound([(0.0, 1)] * (BURST + 1), RATE, BURST) == 1
    assert most_over_the_bound([(0.0, 1)] * BURST + [(1 / RATE, 1)], RATE, BURST) == 0


def maintainer(project: Project, processes: list[WorkerProcess]) -> WorkerProcess | None:
    holder = project.store.lease_holder("default", LEASE)
    return None if holder is None else next(
        (p for p in processes if p.pid == worker_pid(holder)), None)


def test_a_rate_limited_key_never_starts_more_than_its_bucket_allows_while_processes_die(
    pg_project: Project,
) -> None:
    project, rng = pg_project, random.Random(29)
    schedulers = [project.start_scheduler() for _ in range(2)]
    workers = [project.start_worker("-c", "4", "--lease-ttl", "2s") for _ in range(3)]
    wait_for(lambda: len(project.store.stats("default").workers) == 3, timeout=30,
             what="three workers registered")
    doomed_maintainer = wait_for(lambda: maintainer(project, schedulers), timeout=30,
                                 what="a scheduler holding the maintenance lease")
    job_ids = project.enqueue_many("rated", [["acme", rng.choice([0.05, 0.1, 0.2])]
                                             for _ in range(JOBS)])

    # A worker in the middle of its jobs, then the process that admits them.
    doomed = wait_for(lambda: next((w for w in workers if project.running_under(w)), None),
                      timeout=30, what="a worker running rate-limited jobs")
    time.sleep(rng.uniform(0, 0.2))
    doomed.signal_group(signal.SIGKILL)
    assert doomed.wait() == -signal.SIGKILL
    workers.append(project.start_worker("-c", "4", "--lease-ttl", "2s"))
    doomed_maintainer.signal_group(signal.SIGKILL)
    assert doomed_maintainer.wait() == -signal.SIGKILL
    schedulers.append(project.start_scheduler())

    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=180,
             what="every rate-limited job to succeed")
    starts = [(attempt.started_at.timestamp(), 1)
              for job_id in job_ids for attempt in project.attempts(job_id)]
    assert len(starts) >= JOBS
    # The bucket was the limit (its burst started at once), and was never passed; a
    # store clock read in microseconds: a millionth of a token of slack.
    assert -1 < most_over_the_bound(starts, RATE, BURST) <= 1e-6
    rate = project.store.get_rate("default", "api:acme")
    assert (rate.rate, rate.burst, rate.waiting, rate.admitted) == (RATE, BURST, 0, 0)
