"""One worker or scheduler process serving many namespaces: it runs (or fires) the work
of every namespace it serves and nothing of the others, and each job stays in its own
namespace."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskwheel
from taskwheel import JobStatus
from taskwheel.clock import ManualClock
from taskwheel.scheduler import Scheduler, SchedulerSettings
from taskwheel.validators import ALL_NAMESPACES

from . import sample_tasks
from .conftest import migrated_app, running_worker

T0 = 1_700_000_000.0


def enqueue_in(app: taskwheel.App, task: taskwheel.Task, namespace: str) -> taskwheel.JobHandle:
    """A job of ``task`` in ``namespace`` (the app's registry serves every namespace)."""
    request = dataclasses.replace(task.prepare(namespace), namespace=namespace)
    return taskwheel.Client(app.store, namespace).enqueue_many([request])[0]


def test_a_worker_runs_the_jobs_of_the_namespaces_it_serves_and_no_others(
    app: taskwheel.App,
) -> None:
    task = app.task(sample_tasks.ok)
    served = [enqueue_in(app, task, ns) for ns in ("tenant-a", "tenant-b", "tenant-a")]
    other = enqueue_in(app, task, "tenant-c")

    with running_worker(app, namespaces=["tenant-a", "tenant-b"]) as worker:
        for job in served:
            assert job.result(timeout=20) == job.record.namespace
        assert worker.namespace == ALL_NAMESPACES  # its registration's scope
    assert other.refresh().status is JobStatus.QUEUED
    assert [job.refresh().record.namespace for job in served] == [
        "tenant-a", "tenant-b", "tenant-a",
    ]


def test_a_worker_serving_every_namespace_runs_work_of_a_namespace_that_appears_later(
    app: taskwheel.App,
) -> None:
    task = app.task(sample_tasks.ok)
    early = enqueue_in(app, task, "tenant-a")

    with running_worker(app, namespaces=[ALL_NAMESPACES], poll_interval="30s"):
        assert early.result(timeout=20) == "tenant-a"
        # Unknown to the worker until its wake-up arrives (the next look is 300 s away).
        late = enqueue_in(app, task, "tenant-new")
        assert late.result(timeout=20) == "tenant-new"


def test_a_worker_settings_refuse_every_namespace_beside_named_ones() -> None:
    with pytest.raises(taskwheel.InvalidInput, match="namespaces"):
        taskwheel.WorkerSettings.build(namespaces=[ALL_NAMESPACES, "tenant-a"])
    with pytest.raises(taskwheel.InvalidInput, match="namespaces"):
        taskwheel.WorkerSettings.build(namespaces=["no spaces"])


@pytest.fixture
def clocked_app(backend: str, tmp_path: Path) -> Iterator[tuple[taskwheel.App, ManualClock]]:
    clock = ManualClock(T0)
    with migrated_app(backend, tmp_path, clock) as application:
        yield application, clock


def test_a_scheduler_of_every_namespace_fires_each_namespace_s_schedules_into_it(
    clocked_app: tuple[taskwheel.App, ManualClock],
) -> None:
    app, clock = clocked_app
    app.task(name="report")(sample_tasks.ok)
    for namespace in ("tenant-a", "tenant-b"):
        tenant = taskwheel.App(store=app.store, namespace=namespace)
        tenant.task(name="report")(sample_tasks.ok)
        tenant.add_schedule("hourly", "report", every="1h", args=[namespace])
    scheduler = Scheduler(app, SchedulerSettings.build(all_namespaces=True), sync=False)

    scheduler.step()
    clock.set(T0 - T0 % 3600 + 3600)  # the first hour mark: one fire each
    scheduler.step()

    assert scheduler.namespace == ALL_NAMESPACES
    for namespace in ("tenant-a", "tenant-b"):
        jobs = taskwheel.Client(app.store, namespace).list_jobs()
        assert [(job.namespace, job.args) for job in jobs] == [(namespace, [namespace])]
    assert scheduler.stats["fired"] == 2
    assert app.store.lease_holder(ALL_NAMESPACES, "scheduler:0") == scheduler.id
