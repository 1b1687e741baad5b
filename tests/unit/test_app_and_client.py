"""The app keeps the task registry; everything stored goes through a namespace-scoped
client; tasks need only an enqueue callable; nothing migrates implicitly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

import taskwheel
from taskwheel.app import open_checked_store
from taskwheel.errors import InvalidInput, JobNotFound, SchemaOutdated
from taskwheel.handles import JobHandle
from taskwheel.jobs import JobFilter, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import Store, open_store
from taskwheel.tasks import Task, make_options


def add(a: int, b: int = 0) -> int:
    return a + b


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/taskwheel.db"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    opened.migrate()
    yield opened
    opened.close()


def schema_version(url: str) -> int:
    with contextlib.closing(open_store(url)) as store:
        return store.schema_version()


# -- migrations --------------------------------------------------------------------------------


def test_an_app_on_an_unmigrated_database_says_to_migrate_and_creates_no_schema(
    url: str,
) -> None:
    app = taskwheel.App(url)
    app.task(add)

    with pytest.raises(SchemaOutdated) as raised:
        app.enqueue("add", [1, 2])

    assert str(raised.value) == ("sqlite store: open failed: the database has no taskwheel "
                                 "schema yet: run `taskwheel migrate`")
    app.close()
    assert schema_version(url) == 0


def test_an_app_made_with_migrate_creates_the_schema_when_it_opens_the_store(url: str) -> None:
    app = taskwheel.App(url, migrate=True)
    job = app.task(add).enqueue(1, 2)
    app.close()

    assert job.status is JobStatus.QUEUED
    assert schema_version(url) > 0


def test_app_migrate_applies_the_pending_migrations_once(url: str) -> None:
    app = taskwheel.App(url)

    applied = app.migrate()

    assert applied[0] == "0001_initial.sql"
    assert app.migrate() == []
    assert app.list_jobs() == []  # the store it opened is checked and in use
    app.close()
    with contextlib.closing(taskwheel.App(url)) as again:
        assert again.list_jobs() == []  # a migrated database opens without the flag


def test_an_in_memory_database_gets_its_schema_when_it_is_opened() -> None:
    for url in ("sqlite://:memory:", "sqlite:///:memory:"):
        with contextlib.closing(taskwheel.App(url)) as app:
            assert app.task(add).enqueue(1).status is JobStatus.QUEUED


def test_a_store_that_fails_its_check_is_closed_and_a_later_migration_works(url: str) -> None:
    with pytest.raises(SchemaOutdated):
        open_checked_store(url)
    store = open_checked_store(url, migrate=True)
    store.close()
    open_checked_store(url).close()


# -- the client --------------------------------------------------------------------------------


def test_a_client_acts_in_its_namespace_only(store: Store) -> None:
    registry = taskwheel.App(store=store)
    adder = registry.task(add)
    mine = taskwheel.Client(store, "default")
    theirs = taskwheel.Client(store, "tenant-b")

    [job] = mine.enqueue_many([adder.prepare(1, 2)])

    assert [j.id for j in mine.list_jobs()] == [job.id]
    assert theirs.list_jobs() == []
    with pytest.raises(JobNotFound):
        theirs.job(job.id)
    with pytest.raises(InvalidInput) as refused:
        theirs.enqueue_many([adder.prepare(3)])
    assert refused.value.field == "namespace"
    assert mine.list_jobs(JobFilter(status=JobStatus.QUEUED)) == mine.get_jobs([job.id])


def test_the_clients_job_handles_need_only_the_store_and_the_namespace(store: Store) -> None:
    client = taskwheel.Client(store, "default")
    request = taskwheel.App(store=store).task(add).prepare(1)
    [created] = client.enqueue_many([request])

    handle = JobHandle(store, "default", created.record)

    assert handle.cancel().status is JobStatus.CANCELLED
    assert client.job(created.id).status is JobStatus.CANCELLED
    assert client.retry_job(created.id).status is JobStatus.QUEUED
    assert client.attempts(created.id) == []


def test_the_client_runs_the_dead_letter_queue_and_stats(store: Store) -> None:
    client = taskwheel.Client(store, "default")
    assert client.list_dead() == []
    assert client.replay_dead(None) == []
    assert client.purge_dead() == 0
    assert client.stats().queues == []


def test_the_client_keeps_schedules_of_its_namespace(store: Store) -> None:
    registry = taskwheel.App(store=store)
    registry.task(add)
    definition = registry.schedule("adds", "add", every="1h", args=[1])
    client = registry.client

    schedule, changed = client.upsert_schedule(definition)

    assert changed
    assert [s.name for s in client.list_schedules()] == ["adds"]
    assert client.pause_schedule("adds").paused
    assert not client.resume_schedule("adds").paused
    fired = client.trigger_schedule("adds")
    assert [job.id for job in client.schedule_jobs(schedule)] == [fired.job_id]
    client.remove_schedule("adds")
    assert client.list_schedules() == []
    other = taskwheel.Client(store, "tenant-b")
    with pytest.raises(InvalidInput) as refused:
        other.upsert_schedule(definition)
    assert refused.value.field == "namespace"


def test_the_client_submits_compiled_workflows_and_runs_them(store: Store) -> None:
    registry = taskwheel.App(store=store)
    registry.task(add)
    wf = taskwheel.Workflow("sums")
    wf.step("add", [1, 2])
    client = registry.client

    run = client.submit(wf.compile(registry.tasks, "default"))

    assert [r.id for r in client.list_workflow_runs()] == [run.id]
    assert client.workflow_run(run.id).record.name == "sums"
    assert client.cancel_workflow_run(run.id).cancel_requested
    with pytest.raises(InvalidInput) as refused:
        taskwheel.Client(store, "tenant-b").submit(wf.compile(registry.tasks, "default"))
    assert refused.value.field == "namespace"


def test_a_client_refuses_a_malformed_namespace(store: Store) -> None:
    with pytest.raises(InvalidInput) as refused:
        taskwheel.Client(store, "two words")
    assert refused.value.field == "namespace"


# -- tasks -------------------------------------------------------------------------------------


def test_a_task_needs_only_an_enqueue_callable_and_a_namespace() -> None:
    sent: list[NewJob] = []

    def enqueue(requests: Sequence[NewJob]) -> list[JobHandle]:
        sent.extend(requests)
        return []

    task: Task[..., int] = Task("add", make_options(queue="math"), namespace="tenant-a",
                                enqueue=enqueue, fn=add)

    request = task.prepare(1, b=2, priority=3)
    with pytest.raises(IndexError):  # the callable created nothing
        task.enqueue(4)

    assert (request.namespace, request.queue, request.priority) == ("tenant-a", "math", 3)
    assert [(r.task, r.args) for r in sent] == [("add", [4])]


def test_configuring_the_namespace_moves_the_apps_tasks_and_client(store: Store) -> None:
    app = taskwheel.App(store=store)
    adder = app.task(add)
    app.configure(namespace="staging")

    job = adder.enqueue(1)

    assert job.record.namespace == "staging"
    assert app.client.namespace == "staging"
    assert [j.id for j in taskwheel.Client(store, "staging").list_jobs()] == [job.id]


# -- schedule records --------------------------------------------------------------------------


def test_a_schedule_record_has_aware_utc_datetimes_and_the_exact_stored_fire_time(
    store: Store,
) -> None:
    app = taskwheel.App(store=store)
    app.task(add)
    start = datetime(2030, 1, 1, tzinfo=UTC)

    schedule = app.add_schedule("adds", "add", every="1h", start=start, args=[1])

    assert schedule.next_fire_at == start
    assert schedule.next_fire_epoch == start.timestamp()
    assert schedule.last_fire_at is None
    for moment in (schedule.next_fire_at, schedule.created_at, schedule.updated_at):
        assert moment is not None
        assert moment.utcoffset() is not None
        assert moment.tzinfo is UTC
    assert schedule.to_dict()["next_fire_at"] == "2030-01-01T00:00:00+00:00"
