"""``taskwheel worker`` is a supervisor and its worker process: a poison job (a segfault,
``os._exit``) never takes the node down in any pool; the dead process's jobs are given
back at once as crashed attempts; a worker process retires after ``--max-tasks-per-child``
jobs or above ``--max-memory-per-child``; signals reach the worker process once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import APP, Project, WorkerProcess, worker_pid

CRASHED = AttemptOutcome.CRASHED
SUCCEEDED = AttemptOutcome.SUCCEEDED
# The lease outlives every test: what happens to a dead process's jobs is not its expiry.
LONG_LEASE = ("--lease-ttl", "120s")
POISON = {"segfault": "killed by SIGSEGV", "hard_exit": "exited with code 1"}


def crash_lines(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.log_text().splitlines() if " died after " in line]


def worker_ids(project: Project, job_ids: list[int]) -> set[str]:
    return {a.worker_id or "" for job_id in job_ids for a in project.attempts(job_id)}


@pytest.mark.parametrize("pool", ["async", "thread", "process"])
def test_a_poison_job_ends_dead_after_its_attempts_and_the_worker_keeps_serving(
    any_project: Project, pool: str
) -> None:
    project = any_project
    # One job at a time: each crash is its own job's.
    worker = project.start_worker("-c", "1", "--pool", pool, *LONG_LEASE)
    poison = {task: project.enqueue_many(task, [[]])[0] for task in POISON}

    wait_for(lambda: project.all_in(list(poison.values()), JobStatus.DEAD), timeout=60,
             what="the poison jobs to end dead")
    [after] = project.enqueue_many("ok", [[]])
    wait_for(lambda: project.job(after).status is JobStatus.SUCCEEDED, timeout=60,
             what="a job after the poison ones to succeed")

    assert worker.alive()
    assert worker_pid(project.job(after).worker_id) == worker.pid
    for task, job_id in poison.items():
        attempts = project.attempts(job_id)
        assert [a.outcome for a in attempts] == [CRASHED, CRASHED], task
        for attempt in attempts:
            assert POISON[task] in (attempt.error or ""), (task, attempt.error)
            assert worker_pid(attempt.worker_id) == worker.pid
    lines = crash_lines(worker)
    if pool == "process":
        # Only the job's own process died: the worker process went on, under one id.
        assert lines == []
        assert len(worker_ids(project, [*poison.values(), after])) == 1
    else:
        # The worker process died with each; each crash one log line naming its job,
        # and the next process started at once: the poison job is the suspect, and
        # its retries are paced by its own policy, not by idling the node.
        assert len(lines) == 4, lines
        assert all(line.endswith("; starting another") for line in lines), lines
        for task, job_id in poison.items():
            mine = [line for line in lines if f": {job_id} ({task}, " in line]
            assert len(mine) == 2, lines
            assert all(POISON[task] in line for line in mine)
        assert len(worker_ids(project, [*poison.values(), after])) == 5
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_the_jobs_running_beside_a_poison_job_are_given_back_at_once_and_run_again(
    any_project: Project,
) -> None:
    project = any_project
    worker = project.start_worker("-c", "4", *LONG_LEASE)
    # They block (not cooperatively) on their first claim only, then return at once.
    bystanders = project.enqueue_many("long_only_the_first_time", [[60.0]] * 3)
    wait_for(lambda: len(project.running_under(worker)) == 3, timeout=30,
             what="the bystanders to start")
    [poison] = project.enqueue_many("segfault", [[]])

    wait_for(lambda: project.all_in(bystanders, JobStatus.SUCCEEDED), timeout=60,
             what="the bystanders to run again and succeed, long before their leases expire")
    wait_for(lambda: project.job(poison).status is JobStatus.DEAD, timeout=60,
             what="the poison job to end dead")

    assert worker.alive()
    for job_id in bystanders:
        outcomes = [a.outcome for a in project.attempts(job_id)]
        # Suspects of every crash they were running at; then one success.
        assert outcomes[-1] is SUCCEEDED, outcomes
        assert set(outcomes[:-1]) == {CRASHED}, outcomes
        assert len(outcomes) >= 2, outcomes
    assert [a.outcome for a in project.attempts(poison)] == [CRASHED, CRASHED]
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_worker_process_killed_alone_has_its_jobs_back_at_once_and_is_replaced(
    any_project: Project,
) -> None:
    """As the out-of-memory killer would: the node lives on, the lease (two minutes) is
    not waited for."""
    project = any_project
    worker = project.start_worker("-c", "4", *LONG_LEASE)
    job_ids = project.enqueue_many("long_only_the_first_time", [[60.0]] * 2)
    wait_for(lambda: len(project.running_under(worker)) == 2, timeout=30,
             what="the jobs to start")
    [victim] = project.worker_process_pids(worker)

    os.kill(victim, signal.SIGKILL)

    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=30,
             what="the jobs to run again in a fresh worker process")
    for job_id in job_ids:
        first, second = project.attempts(job_id)
        assert (first.outcome, second.outcome) == (CRASHED, SUCCEEDED)
        assert first.error == ("the worker process died while running it "
                               "(process killed by SIGKILL)")
        assert first.worker_id != second.worker_id
        assert worker_pid(second.worker_id) == worker.pid
    [line] = crash_lines(worker)
    assert f"worker process {victim} " in line
    assert all(f" {job_id} (long_only_the_first_time, attempt 1/3 -> " in line
               for job_id in job_ids), line
    assert project.worker_process_pids(worker) - {victim}
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_the_supervisor_exits_with_the_status_of_its_worker_process(project: Project) -> None:
    worker = project.start_worker()
    [job_id] = project.enqueue_many("slow", [[30.0]])
    wait_for(lambda: project.running_under(worker), timeout=20, what="the job to start")
    [process] = project.worker_process_pids(worker)

    worker.signal(signal.SIGTERM)  # it waits for the job (--grace 30s)...
    wait_for(lambda: "stopping the worker process gracefully" in worker.log_text(),
             timeout=10, what="the supervisor to pass the signal on")
    os.kill(process, signal.SIGKILL)  # ...and dies meanwhile

    assert worker.wait() == 128 + signal.SIGKILL
    assert [a.outcome for a in project.attempts(job_id)] == [CRASHED]
    assert project.job(job_id).status is not JobStatus.RUNNING
    assert "not restarted: stopping" in crash_lines(worker)[0]


def test_a_worker_process_retires_after_max_tasks_and_a_fresh_one_takes_over(
    any_project: Project,
) -> None:
    project = any_project
    worker = project.start_worker("-c", "2", "--max-tasks-per-child", "5")
    side_effects = project.root / "ran.txt"
    job_ids = project.enqueue_many("record", [[str(side_effects)]] * 30)

    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=90,
             what="every job to succeed")

    ran = side_effects.read_text().split()
    assert sorted(map(int, ran)) == sorted(job_ids), "a job ran twice or not at all"
    for job_id in job_ids:
        assert [a.outcome for a in project.attempts(job_id)] == [SUCCEEDED]
    ids = worker_ids(project, job_ids)
    # Never more than five jobs each: a process claims no more than it may run.
    per_process = Counter(a.worker_id for job_id in job_ids for a in project.attempts(job_id))
    assert max(per_process.values()) <= 5, per_process
    assert len(ids) >= 30 // 5, ids
    assert {worker_pid(worker_id) for worker_id in ids} == {worker.pid}
    assert "retires: it ran 5 jobs (--max-tasks-per-child 5)" in worker.log_text()
    assert crash_lines(worker) == []
    assert worker.alive()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_worker_process_retires_once_its_memory_passes_max_memory(project: Project) -> None:
    worker = project.start_worker("--max-memory-per-child", "300MB")
    [leaky] = project.enqueue_many("leak", [[400]])
    wait_for(lambda: "retires: its resident memory is" in worker.log_text(), timeout=30,
             what="the worker process to retire")
    [after] = project.enqueue_many("ok", [[]])
    wait_for(lambda: project.job(after).status is JobStatus.SUCCEEDED, timeout=30,
             what="a fresh worker process to run the next job")

    assert project.job(leaky).status is JobStatus.SUCCEEDED
    assert project.job(after).worker_id != project.job(leaky).worker_id
    assert worker_pid(project.job(after).worker_id) == worker.pid
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_ctrl_c_reaches_the_worker_process_once_and_stops_it_gracefully(
    project: Project,
) -> None:
    worker = project.start_worker()
    [job_id] = project.enqueue_many("slow", [[1.5]])
    wait_for(lambda: project.running_under(worker), timeout=20, what="the job to start")

    worker.signal_group(signal.SIGINT)  # as a terminal does: every process of the group

    assert worker.wait() == 0
    assert [a.outcome for a in project.attempts(job_id)] == [SUCCEEDED]


def test_a_worker_process_whose_supervisor_was_killed_stops_by_itself(
    project: Project,
) -> None:
    worker = project.start_worker()
    [job_id] = project.enqueue_many("slow", [[1.0]])
    wait_for(lambda: project.running_under(worker), timeout=20, what="the job to start")
    [registered] = project.store.stats("default").workers
    assert registered.pid != worker.pid  # the worker process, not its supervisor

    worker.signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL

    wait_for(lambda: not Path(f"/proc/{registered.pid}").exists()
             or _zombie(registered.pid), timeout=30, what="the orphan to stop")
    assert project.store.stats("default").workers == []  # it said goodbye
    assert [a.outcome for a in project.attempts(job_id)] == [SUCCEEDED]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--max-memory-per-child", "lots", "expected a size such as '512MB'"),
    ("--max-memory-per-child", "0MB", "must be a positive size"),
    ("--max-tasks-per-child", "0", "must be an integer >= 1"),
])
def test_bad_limits_are_refused_in_one_line_before_anything_starts(
    project: Project, option: str, value: str, message: str
) -> None:
    done = project.run("worker", "--app", APP, option, value)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {option}: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert "started worker process" not in done.stderr + done.stdout
