"""The bash worker of examples/http-worker drains jobs from a real ``taskwheel server``
over the pull protocol, on both stores: its first claim waits, is woken by the enqueue,
results and failures are reported with the fencing token, and a failure is retried or
dies as the task's retry policy says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import COMMAND, Project
from .test_readme import block_with, free_port, listening, python, write_modules

WORKER = Path(__file__).parents[2] / "examples" / "http-worker" / "worker.sh"

# CI installs curl and jq (.ci/run) and must run this: there it fails rather than skips.
pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")) and not os.environ.get("CI"),
    reason="the example worker needs curl and jq (apt-get install curl jq)")


def test_the_bash_worker_drains_jobs_through_the_server(any_project: Project) -> None:
    project = any_project
    created = project.run("keys", "create", "--namespace", "default", "--role", "operate",
                          "--name", "bash-worker")
    assert created.returncode == 0, created.stderr
    port = free_port()
    project.start("server", "--port", str(port), "--log-level", "warning")
    wait_for(lambda: listening(port), timeout=30, what="the server to listen")
    env = {**project.env, "TASKWHEEL_URL": f"http://127.0.0.1:{port}",
           "TASKWHEEL_API_KEY": created.stdout.strip(), "TASKWHEEL_BURST": "1",
           "TASKWHEEL_WAIT": "5", "TASKWHEEL_LEASE_TTL": "10"}
    log = project.root / "bash-worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(["bash", str(WORKER)], cwd=project.root, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        # Registered, and (nothing being ready) its first claim waits.
        wait_for(lambda: len(project.store.stats("default").workers) == 1, timeout=30,
                 what="the bash worker to register")
        adds = project.enqueue_many("add", [[i, i] for i in range(5)])
        [ok] = project.enqueue_many("ok", [[]])
        [boom] = project.enqueue_many("boom", [[]])
        assert worker.wait(60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    print(log.read_text())
    jobs = {job.id: job for job in project.jobs()}
    assert [(jobs[i].status, jobs[i].result) for i in adds] == [
        (JobStatus.SUCCEEDED, 2 * i) for i in range(5)]
    assert (jobs[ok].status, jobs[ok].result) == (JobStatus.SUCCEEDED, "ok")
    # boom has retry=1: one attempt, then the dead-letter queue.
    assert jobs[boom].status is JobStatus.DEAD
    assert "boom" in (jobs[boom].last_error or "")
    assert project.store.stats("default").workers == []  # it unregistered on the way out


def test_the_readme_http_client_example_runs_against_a_real_server(project: Project) -> None:
    write_modules(project)
    created = project.run("keys", "create", "--namespace", "default", "--role", "operate")
    assert created.returncode == 0, created.stderr
    port = free_port()
    serve = project.root / "server.log"
    with serve.open("wb") as out:
        server = subprocess.Popen(
            [*COMMAND, "server", "--app", "mymod:app", "--port", str(port)],
            cwd=project.root, env=project.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: listening(port), timeout=30, what="the server to listen")
        snippet = block_with("py", "taskwheel.HttpClient(").replace("8080", str(port))
        python(project, f"key = {created.stdout.strip()!r}\n{snippet}")
    finally:
        server.kill()
        server.wait(10)
    [job] = project.jobs()
    assert (job.task, job.args, job.idempotency_key) == ("send", ["a@b.c"], "signup:8")
