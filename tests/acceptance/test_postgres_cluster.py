"""Several machines' worth of processes on one PostgreSQL database: 4 workers and 2
schedulers, with a worker and the active scheduler SIGKILLed mid-run, and separately a
restart of the PostgreSQL server under load.

After each run the history is checked: every accepted job reached a terminal state
with exactly one successful attempt (no stale completion accepted), and each instant
of the ``every-second`` schedule fired exactly once.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pg_server import with_schema
from restartable_postgres import restartable_postgres
from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from taskwheel.scheduler import SchedulerSettings, partition_lease, partition_of
from waiting import wait_for

from .conftest import Project, WorkerProcess, running_project, worker_pid

T = TypeVar("T")
SUCCEEDED = AttemptOutcome.SUCCEEDED
LEASE_EXPIRED = AttemptOutcome.LEASE_EXPIRED

pytestmark = pytest.mark.slow


def fire_times(project: Project) -> list[float]:
    return sorted(job.fire_at.timestamp() for job in project.jobs()
                  if job.schedule_id is not None and job.fire_at is not None)


def holder_of_the_schedule(project: Project) -> str | None:
    schedule = project.store.get_schedule("default", "every-second")
    lease = partition_lease(partition_of(schedule.id, SchedulerSettings().partitions))
    return project.store.lease_holder("default", lease)


def assert_each_job_succeeded_once(project: Project, job_ids: list[int]) -> None:
    assert project.all_in(job_ids, JobStatus.SUCCEEDED)
    for job_id in job_ids:
        outcomes = [attempt.outcome for attempt in project.attempts(job_id)]
        assert outcomes.count(SUCCEEDED) == 1, (job_id, outcomes)
        assert outcomes[-1] is SUCCEEDED, (job_id, outcomes)


def assert_each_instant_fired_once(project: Project) -> list[float]:
    times = fire_times(project)
    assert len(times) >= 3
    assert len(times) == len(set(times)), "an instant fired twice"
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {1.0}, f"instants lost: gaps of {sorted(gaps)} s"
    return times


def stop_all_gracefully(processes: list[WorkerProcess]) -> None:
    for process in processes:
        assert process.alive(), process.log_text()[-3000:]
        process.signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(30) == 0, process.log_text()[-3000:]


def test_four_workers_and_two_schedulers_lose_nothing_when_one_of_each_is_killed(
    pg_project: Project,
) -> None:
    project = pg_project
    assert project.run("migrate").returncode == 0
    schedulers = [project.start_scheduler() for _ in range(2)]
    workers = [project.start_worker("-c", "4", "--lease-ttl", "2s") for _ in range(4)]
    wait_for(lambda: len(project.store.stats("default").workers) == 4, timeout=30,
             what="four workers registered")
    wait_for(lambda: len(fire_times(project)) >= 2, timeout=30, what="the schedule to fire")
    job_ids = project.enqueue_many("slow", [[0.02 + (i % 4) * 0.01] for i in range(800)])

    doomed = workers[0]
    wait_for(lambda: project.running_under(doomed)
             and project.count(JobStatus.SUCCEEDED) >= 100, timeout=30,
             what="the first worker mid-run")
    doomed.signal_group(signal.SIGKILL)  # the node dies: supervisor and worker process
    assert doomed.wait() == -signal.SIGKILL
    in_flight = {job.id for job in project.running_under(doomed)}
    assert in_flight, "the killed worker held no job: nothing was tested"

    # Wait until both schedulers share the partitions, then kill the schedule's holder.
    pids = {str(s.pid) for s in schedulers}
    wait_for(lambda: {h.split(":")[1] for h in project.store.lease_holders(
        "default", "scheduler:").values()} == pids, timeout=30,
        what="the schedulers to share the partitions")
    holder = wait_for(lambda: holder_of_the_schedule(project),
                      timeout=20, what="the schedule's holder")
    active = next(s for s in schedulers if f":{s.pid}:" in holder)
    standby = next(s for s in schedulers if s is not active)
    active.signal(signal.SIGKILL)
    assert active.wait() == -signal.SIGKILL
    killed_at = time.time()
    wait_for(lambda: f":{standby.pid}:" in (holder_of_the_schedule(project) or ""),
             timeout=15, what="the standby to take the schedule's partition")
    wait_for(lambda: max(fire_times(project)) > killed_at + 2, timeout=15,
             what="the standby to fire instants after the kill")

    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=120,
             what="every job to succeed")
    stop_all_gracefully([standby, *workers[1:]])

    assert_each_job_succeeded_once(project, job_ids)
    for job_id in in_flight:
        history = project.attempts(job_id)
        outcomes = [a.outcome for a in history]
        # A report whose COMMIT reached the server before the node died stands; every
        # other attempt of the dead node was rescued and run again once.
        assert outcomes in ([SUCCEEDED], [LEASE_EXPIRED, SUCCEEDED]), (job_id, history)
        assert worker_pid(history[0].worker_id) == doomed.pid
    assert_each_instant_fired_once(project)


def tolerant(predicate: Callable[[], T]) -> Callable[[], T | None]:
    """``predicate``, reading None while the database is down."""

    def attempt() -> T | None:
        try:
            return predicate()
        except Exception:
            return None

    return attempt


def test_a_database_restart_under_load_loses_no_job_and_every_process_recovers(
    tmp_path: Path,
) -> None:
    with restartable_postgres() as server, running_project(
        tmp_path, with_schema(server.url, "taskwheel")
    ) as project:
        assert project.run("migrate").returncode == 0
        processes = [project.start_scheduler(), project.start_scheduler()]
        processes += [project.start_worker("-c", "4", "--lease-ttl", "3s") for _ in range(2)]
        wait_for(lambda: len(project.store.stats("default").workers) == 2, timeout=30,
                 what="two workers registered")
        wait_for(lambda: len(fire_times(project)) >= 2, timeout=30,
                 what="the schedule to fire")
        job_ids = project.enqueue_many("slow", [[0.01]] * 600)
        wait_for(lambda: project.count(JobStatus.SUCCEEDED) >= 100, timeout=30,
                 what="the run to be under way")

        server.stop()  # every connection of every process is cut
        # A worker started during the outage waits for the database.
        processes.append(project.start_worker("-c", "4", "--lease-ttl", "3s"))
        time.sleep(2)  # a real outage: the processes retry against a server that is gone
        assert all(p.alive() for p in processes)
        server.start()
        wait_for(tolerant(lambda: len(project.store.stats("default").workers) == 3),
                 timeout=30, what="the late worker to register")

        job_ids += tolerant(lambda: project.enqueue_many("slow", [[0.01]] * 200))() or []
        assert len(job_ids) == 800, "an enqueue after the restart failed"
        wait_for(tolerant(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED)), timeout=120,
                 what="every job to succeed after the restart")
        restarted_at = time.time()
        wait_for(tolerant(lambda: max(fire_times(project)) > restarted_at + 2), timeout=30,
                 what="the schedule to fire again")
        stop_all_gracefully(processes)

        assert_each_job_succeeded_once(project, job_ids)
        assert_each_instant_fired_once(project)
