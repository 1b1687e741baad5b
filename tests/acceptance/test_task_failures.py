"""Nothing a task does takes its worker down."""

from __future__ import annotations

import signal

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project, worker_pid

# task -> (outcome of its attempt, what the error says)
MISBEHAVING = {
    "boom": (AttemptOutcome.FAILED, "RuntimeError: boom"),
    "exit_in_thread": (AttemptOutcome.FAILED, "SystemExit: 3"),
    "exit_on_event_loop": (AttemptOutcome.FAILED, "SystemExit: 3"),
    "exit_in_child": (AttemptOutcome.CRASHED, "process exited with code 3"),
    "hard_exit_in_child": (AttemptOutcome.CRASHED, "process exited with code 7"),
    "segfault_in_child": (AttemptOutcome.CRASHED, "process killed by SIGSEGV"),
}


def test_raising_exiting_and_crashing_tasks_do_not_take_the_worker_down(
    project: Project,
) -> None:
    worker = project.start_worker("-c", "2")
    failing = {
        task: project.run_json("enqueue", task, "--app", "acceptance_app:app")["id"]
        for task in MISBEHAVING
    }
    wait_for(lambda: project.all_in(list(failing.values()), JobStatus.DEAD),
             timeout=20, what="the misbehaving jobs to fail")
    assert worker.alive()

    [after] = project.enqueue_many("ok", [[]])
    wait_for(lambda: project.job(after).status is JobStatus.SUCCEEDED,
             timeout=20, what="a job after the failures to succeed")

    assert worker.alive()
    assert worker_pid(project.job(after).worker_id) == worker.pid
    for task, job_id in failing.items():
        [attempt] = project.attempts(job_id)
        expected_outcome, expected_error = MISBEHAVING[task]
        assert attempt.outcome is expected_outcome, task
        assert expected_error in (attempt.error or ""), (task, attempt.error)
        assert worker_pid(attempt.worker_id) == worker.pid
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
