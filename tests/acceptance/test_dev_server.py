"""``taskwheel dev`` serves the HTTP API too: a job enqueued over HTTP is run by its
worker."""

from __future__ import annotations

import signal

import taskwheel
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project
from .test_readme import free_port, listening


def test_dev_serves_the_api_and_runs_what_it_enqueues(fresh_project: Project) -> None:
    project = fresh_project
    port = free_port()
    dev = project.start("dev", "--port", str(port))
    wait_for(lambda: listening(port), timeout=30, what="taskwheel dev's API to listen")
    created = project.run("keys", "create", "--namespace", "default", "--role", "operate")
    assert created.returncode == 0, created.stderr
    with taskwheel.HttpClient(f"http://127.0.0.1:{port}", created.stdout.strip()) as remote:
        job = remote.enqueue("add", [2, 3])
        wait_for(lambda: remote.job(job.id).status is JobStatus.SUCCEEDED, timeout=20,
                 what="the job enqueued over HTTP to run")
        assert remote.job(job.id).result == 5
    dev.signal(signal.SIGTERM)
    assert dev.wait() == 0, dev.log_text()
    assert not listening(port)


def test_dev_without_the_server_serves_nothing(fresh_project: Project) -> None:
    project = fresh_project
    port = free_port()
    dev = project.start("dev", "--port", str(port), "--no-server")
    wait_for(lambda: project.store.schema_version() == project.store.latest_schema_version(),
             timeout=20, what="taskwheel dev to migrate the database")
    wait_for(lambda: "worker" in dev.log_text(), timeout=20, what="the worker to start")
    assert not listening(port)
    dev.signal(signal.SIGTERM)
    assert dev.wait() == 0, dev.log_text()
