"""The supervisor in this process, over real worker processes stood in for by tiny
programs: a process that dies holding jobs has them ended at once through the store and
announced, and is replaced under a fresh worker id; a process that ends cleanly by itself
(``--burst``) ends the supervision."""

from __future__ import annotations

import os
import socket
import sys

import taskwheel
from taskwheel.events import Event, EventKind
from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from taskwheel.retry import Retry
from taskwheel.stores.claims import ClaimRequest
from taskwheel.worker.supervisor import Supervisor

from . import sample_tasks

DIES = [sys.executable, "-c", "import os; os._exit(3)"]
FINISHES = [sys.executable, "-c", "pass"]


def test_a_dead_worker_processes_jobs_end_at_once_and_a_fresh_one_is_started(
    app: taskwheel.App,
) -> None:
    store = app.store
    task = app.task(sample_tasks.ok)
    theirs, ours = store.enqueue([task.prepare(), task.prepare()])
    store.claim(ClaimRequest("someone-else", ("default",), ("default",), 1, 300.0))
    rescued: list[Event] = []
    store.events.attach(rescued.append, [EventKind.JOB_RESCUED])
    started: list[str] = []

    def command(worker_id: str, control_fd: int) -> list[str]:
        started.append(worker_id)
        if len(started) == 1:  # the first worker process takes a job, then dies
            [job] = store.claim(ClaimRequest(worker_id, ("default",), ("default",), 1,
                                             300.0)).jobs
            assert job.id == ours.id
            return DIES
        return FINISHES

    an_hour = Retry(base="1h", cap="1h", jitter=0)
    supervisor = Supervisor(store, command, retries={task.name: an_hour})

    assert supervisor.run() == 0  # the second one ended cleanly, by itself

    prefix = f"{socket.gethostname()}:{os.getpid()}:"
    assert len(set(started)) == 2
    assert all(worker_id.startswith(prefix) for worker_id in started)
    assert supervisor.crashes == 1
    [attempt] = store.list_attempts("default", ours.id)
    assert (attempt.outcome, attempt.worker_id, attempt.error) == (
        AttemptOutcome.CRASHED, started[0],
        "the worker process died while running it (process exited with code 3)")
    job = store.get_job("default", ours.id)
    assert job.status is JobStatus.SCHEDULED  # after its task's retry delay: an hour
    assert job.run_at.timestamp() > store.now() + 3500
    assert store.get_job("default", theirs.id).status is JobStatus.RUNNING  # not its job
    [event] = rescued
    assert (event.job_id, event.metadata["outcome"], event.metadata["worker"]) == (
        ours.id, "requeued", started[0])
