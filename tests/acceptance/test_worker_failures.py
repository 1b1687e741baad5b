"""Workers that die or freeze: their jobs are rescued (by the workers' own maintenance:
no scheduler runs here), and their late outcomes refused."""

from __future__ import annotations

import fcntl
import signal
from pathlib import Path

import pytest

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance import LEASE
from waiting import wait_for

from .conftest import Project, WorkerProcess, worker_pid

LEASE_EXPIRED = AttemptOutcome.LEASE_EXPIRED
SUCCEEDED = AttemptOutcome.SUCCEEDED


def maintainer_pid(project: Project) -> int | None:
    holder = project.store.lease_holder("default", LEASE)
    return None if holder is None else worker_pid(holder)


@pytest.mark.parametrize("doomed_role", ["the_maintainer", "the_other_worker"])
def test_jobs_of_a_sigkilled_worker_are_rescued_and_run_again_once(
    project: Project, doomed_role: str
) -> None:
    """No scheduler runs: the workers maintain the store themselves, one at a time under
    the maintenance lease. Killing the one that maintains hands the lease (and the
    rescue of its own jobs) to the survivor."""
    workers = [project.start_worker("-c", "4", "--lease-ttl", "2s") for _ in range(2)]
    wait_for(lambda: len(project.store.stats("default").workers) == 2,
             timeout=20, what="workers registered")
    maintainer = wait_for(lambda: maintainer_pid(project), timeout=20,
                          what="a worker to maintain")
    doomed = next(w for w in workers if (w.pid == maintainer) == (doomed_role == "the_maintainer"))
    survivor = next(w for w in workers if w is not doomed)
    survivor_pids = project.worker_process_pids(survivor)
    job_ids = project.enqueue_many("slow", [[0.02 + (i % 4) * 0.01] for i in range(400)])

    # Kill it while it holds jobs and the survivor is busy too.
    wait_for(lambda: project.running_under(doomed) and project.running_under(survivor)
             and project.count(JobStatus.SUCCEEDED) >= 40,
             timeout=20, what="both workers mid-run")
    doomed.signal_group(signal.SIGKILL)  # the node dies: supervisor and worker process
    assert doomed.wait() == -signal.SIGKILL
    in_flight = {job.id for job in project.running_under(doomed)}
    assert in_flight, "the killed worker held no job: nothing was tested"

    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=60,
             what="every job to succeed")
    assert survivor.alive()
    assert maintainer_pid(project) == survivor.pid
    for job_id in job_ids:
        history = project.attempts(job_id)
        outcomes = [attempt.outcome for attempt in history]
        assert outcomes.count(SUCCEEDED) == 1, (job_id, outcomes)
        assert history[-1].outcome is SUCCEEDED
        for attempt in history:
            if attempt.outcome is LEASE_EXPIRED:
                assert worker_pid(attempt.worker_id) == doomed.pid, (job_id, history)
        if job_id in in_flight:
            assert outcomes == [LEASE_EXPIRED, SUCCEEDED], (job_id, outcomes)
            assert worker_pid(history[1].worker_id) == survivor.pid
            assert project.job(job_id).result in survivor_pids
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0
    assert maintainer_pid(project) is None  # given back on the way out


def write_lock_free(project: Project) -> bool:
    """Whether no process is inside a write transaction of the project's SQLite file
    (writers hold ``<db>-writelock`` from BEGIN IMMEDIATE to COMMIT)."""
    with open(f"{project.database}-writelock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def stopped(pid: int) -> bool:
    """Whether the process is stopped (state T in /proc)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "T"


def freeze_outside_a_write(project: Project, worker: WorkerProcess) -> None:
    """SIGSTOP ``worker`` at a moment it holds no write lock. A process frozen inside a
    write transaction holds SQLite's single writer with it, and every other process
    waits until it is resumed, as they would for a frozen machine: that is not the pause
    this test is about (a worker frozen between its store calls)."""
    for _ in range(100):
        worker.signal(signal.SIGSTOP)
        # Stopped for sure before looking: a signal is delivered a moment after kill().
        wait_for(lambda: stopped(worker.pid), timeout=5, what="the worker to stop")
        if write_lock_free(project):
            return
        worker.signal(signal.SIGCONT)
        wait_for(lambda: write_lock_free(project), timeout=5,
                 what="the worker to leave its write transaction")
    raise AssertionError("the worker was inside a write transaction at every attempt")


@pytest.mark.parametrize("resume", ["after_the_rescuer_finished", "while_the_rescuer_runs_them"])
def test_a_paused_worker_cannot_complete_jobs_another_worker_took_over(
    project: Project, resume: str
) -> None:
    # One process each: the worker frozen is the one that runs the jobs.
    lease = ("--lease-ttl", "1s", "--heartbeat", "0.3s", "--no-supervisor")
    frozen = project.start_worker("-c", "4", *lease)
    job_ids = project.enqueue_many("slow", [[1.0]] * 4)
    wait_for(lambda: len(project.running_under(frozen)) == 4, timeout=20, what="the jobs to start")

    freeze_outside_a_write(project, frozen)
    rescuer = project.start_worker("-c", "4", *lease)
    if resume == "after_the_rescuer_finished":
        wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=30,
                 what="the other worker to rescue and finish the jobs")
    else:
        wait_for(lambda: len(project.running_under(rescuer)) == 4, timeout=30,
                 what="the other worker to rescue and start the jobs")
    frozen.signal(signal.SIGCONT)
    # Its attempts end now; it reports them and must be told they are stale.
    wait_for(lambda: "refused" in frozen.log_text(), timeout=20,
             what="the paused worker to report its outcomes")
    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=30,
             what="the jobs to succeed")

    for worker in (frozen, rescuer):
        worker.signal(signal.SIGTERM)
    assert [frozen.wait(), rescuer.wait()] == [0, 0]
    for job_id in job_ids:
        job = project.job(job_id)
        assert job.status is JobStatus.SUCCEEDED
        assert job.result == rescuer.pid, "the stale attempt's result overwrote the newer one"
        history = project.attempts(job_id)
        assert [(a.outcome, worker_pid(a.worker_id)) for a in history] == [
            (LEASE_EXPIRED, frozen.pid),
            (SUCCEEDED, rescuer.pid),
        ]
        assert history[0].fence < history[1].fence == job.fence
