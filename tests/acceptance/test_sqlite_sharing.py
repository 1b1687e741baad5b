"""Processes sharing one SQLite file: a short-lived command that writes and exits (an
enqueue, a listing) never pulls the WAL from under a running worker. A process that
opened the database file with a descriptor of its own and closed it lost every POSIX
lock its SQLite connections held on it; another process then found nobody using the
file, checkpointed it and reset the WAL, and the worker's reads went malformed."""

from __future__ import annotations

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project


def test_commands_that_come_and_go_leave_a_running_worker_s_database_whole(
    project: Project,
) -> None:
    [first] = project.enqueue_many("add", [[1, 2]])
    worker = project.start_worker()
    # Its first write (the claim): where a process used to read the file's header itself.
    wait_for(lambda: project.all_in([first], JobStatus.SUCCEEDED), timeout=30,
             what="the first job to succeed")
    later = []
    for n in range(5):  # each a process of its own that writes, reads and exits
        answer = project.run_json("enqueue", "add", "--args", f"[{n}, 1]")
        later.append(answer["id"])
        assert project.run("jobs", "list").returncode == 0
    wait_for(lambda: project.all_in(later, JobStatus.SUCCEEDED), timeout=30,
             what="the later jobs to succeed")
    log = worker.log_text()
    assert "malformed" not in log, log[-2000:]
    assert worker.alive()
