"""Bad input is refused before anything is written: task options when a task is defined,
job options and arguments when a job is enqueued. Each error names the field, and the
database (a real SQLite file) is left without a single job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel.errors import InvalidInput, UnknownTask
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import open_store
from taskwheel.tasks import Pool


def add(a: int, b: int = 0) -> int:
    return a + b


def no_parameters() -> None:
    return None


def takes_a_queue(queue: str) -> str:
    return queue


@pytest.fixture
def app(tmp_path: Path) -> Iterator[taskwheel.App]:
    url = f"sqlite:///{tmp_path}/taskwheel.db"
    store = open_store(url)
    store.migrate()  # an app never migrates on its own
    application = taskwheel.App(url, store=store)
    assert application.store.list_jobs("default", JobFilter()) == []  # opened and migrated
    yield application
    application.close()


@pytest.fixture
def adder(app: taskwheel.App) -> taskwheel.Task[..., int]:
    return app.task(add)


def jobs_in(app: taskwheel.App) -> int:
    """Every job the app's namespace holds, whatever its state."""
    listed = app.list_jobs(JobFilter(limit=1000))
    counted = sum(sum(queue.counts.values()) for queue in app.store.stats(app.namespace).queues)
    assert len(listed) == counted
    return counted


def refused(action: Callable[[], object], field: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        action()
    assert caught.value.field == field, caught.value
    assert str(caught.value).startswith(f"{field}: ")
    return caught.value


def test_a_valid_job_is_written_and_counted(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    # The control for every test below: the same count sees a job that was written.
    handle = adder.enqueue(1, b=2, priority=3, timeout="30s")
    assert jobs_in(app) == 1
    assert handle.refresh().status is JobStatus.QUEUED
    assert (handle.record.args, handle.record.kwargs) == ([1], {"b": 2})
    assert (handle.record.priority, handle.record.timeout) == (3, 30.0)


# --- defining a task ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "reason_part"),
    [
        ({"timeout": -1}, "timeout", "negative"),
        ({"timeout": "-30s"}, "timeout", "negative"),
        ({"timeout": "half an hour"}, "timeout", "malformed"),
        ({"timeout": 0}, "timeout", "greater than zero"),
        ({"timeout": float("nan")}, "timeout", "finite"),
        ({"pool": "gpu"}, "pool", "async, thread, process"),
        ({"pool": 3}, "pool", "unknown value"),
        ({"queue": "two words"}, "queue", "letters, digits"),
        ({"queue": ""}, "queue", "1-200"),
        ({"priority": 1.5}, "priority", "integer"),
        ({"priority": True}, "priority", "integer"),
        ({"priority": 1_000_001}, "priority", "between"),
        ({"retry": "3"}, "retry", "Retry or an attempt count"),
        ({"retry": 0}, "max_attempts", "from 1 to"),
        ({"guarantee": "exactly_once"}, "guarantee", "at_least_once, at_most_once"),
        ({"deadline_policy": "whenever"}, "deadline_policy", "expire, run_late"),
        ({"name": "has spaces"}, "name", "letters, digits"),
    ],
)
def test_invalid_task_options_are_refused_naming_the_field(
    app: taskwheel.App, options: dict[str, Any], field: str, reason_part: str
) -> None:
    error = refused(lambda: app.task(**options)(add), field)
    assert reason_part in error.reason
    assert app.tasks == {}
    assert jobs_in(app) == 0


def test_a_task_name_can_be_registered_once(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    error = refused(lambda: app.task(add), "name")
    assert "already registered" in error.reason
    assert app.tasks == {"add": adder}


def test_a_context_task_needs_a_parameter_for_the_context(app: taskwheel.App) -> None:
    refused(lambda: app.task(pass_context=True)(no_parameters), "pass_context")
    assert app.tasks == {}


def test_task_parameters_cannot_shadow_enqueue_options(app: taskwheel.App) -> None:
    error = refused(lambda: app.task(takes_a_queue), "task")
    assert "queue" in error.reason
    assert app.tasks == {}


@pytest.mark.parametrize(
    ("name", "command", "options", "field"),
    [
        ("backup", "   ", {}, "command"),
        ("back up", "tar czf x /srv", {}, "name"),
        ("backup", "tar czf x /srv", {"timeout": "-1h"}, "timeout"),
        ("backup", "tar czf x /srv", {"queue": "a b"}, "queue"),
    ],
)
def test_invalid_shell_tasks_are_refused_naming_the_field(
    app: taskwheel.App, name: str, command: str, options: dict[str, Any], field: str
) -> None:
    refused(lambda: app.shell_task(name, command, **options), field)
    assert app.tasks == {}


def test_the_pool_is_read_from_its_name(app: taskwheel.App) -> None:
    assert app.task(pool="process")(add).options.pool is Pool.PROCESS


# --- enqueueing a job --------------------------------------------------------------------

NAIVE = datetime(2030, 1, 1, 9, 0)
AWARE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("call", "field", "reason_part"),
    [
        # arguments the function cannot take
        (((), {}), "args", "missing a required argument: 'a'"),
        (((1, 2, 3), {}), "args", "too many positional arguments"),
        (((1,), {"c": 3}), "kwargs", "unexpected keyword argument 'c'"),
        (((1,), {"a": 1}), "kwargs", "multiple values for argument 'a'"),
        (((), {"b": 1}), "kwargs", "missing a required argument: 'a'"),
        # arguments that are not JSON
        (((object(),), {}), "args", "not JSON-serialisable"),
        ((({1, 2},), {}), "args", "not JSON-serialisable"),
        (((float("nan"),), {}), "args", "not JSON-serialisable"),
        (((1,), {"b": b"bytes"}), "kwargs", "not JSON-serialisable"),
        (((1,), {"b": float("inf")}), "kwargs", "not JSON-serialisable"),
        (((1,), {"b": {"nested": datetime.now(UTC)}}), "kwargs", "not JSON-serialisable"),
        # job options
        (((1,), {"timeout": -5}), "timeout", "negative"),
        (((1,), {"timeout": "5 minutes"}), "timeout", "malformed"),
        (((1,), {"timeout": 0}), "timeout", "greater than zero"),
        (((1,), {"delay": "-1s"}), "delay", "negative"),
        (((1,), {"delay": "soon"}), "delay", "malformed"),
        (((1,), {"delay": "1s", "at": AWARE}), "at", "not both"),
        (((1,), {"at": NAIVE}), "at", "no timezone"),
        (((1,), {"at": "2030-01-01T09:00:00Z"}), "at", "expected a datetime"),
        (((1,), {"deadline": "-1m"}), "deadline", "negative"),
        (((1,), {"deadline": NAIVE}), "deadline", "no timezone"),
        (((1,), {"priority": "high"}), "priority", "integer"),
        (((1,), {"priority": -1_000_001}), "priority", "between"),
        (((1,), {"queue": "no/spaces please"}), "queue", "letters, digits"),
        (((1,), {"max_attempts": 0}), "max_attempts", "from 1 to"),
        (((1,), {"max_attempts": 2**64}), "max_attempts", "from 1 to"),
        (((1,), {"max_attempts": True}), "max_attempts", "integer"),
        (((1,), {"idempotency_key": ""}), "idempotency_key", "1-500"),
        (((1,), {"idempotency_key": "k" * 501}), "idempotency_key", "1-500"),
        (((1,), {"idempotency_key": 12}), "idempotency_key", "1-500"),
    ],
)
def test_an_invalid_job_is_refused_naming_the_field_and_nothing_is_written(
    app: taskwheel.App,
    adder: taskwheel.Task[..., int],
    call: tuple[tuple[Any, ...], dict[str, Any]],
    field: str,
    reason_part: str,
) -> None:
    args, kwargs = call
    error = refused(lambda: adder.enqueue(*args, **kwargs), field)
    assert reason_part in error.reason
    assert jobs_in(app) == 0


def test_an_invalid_job_enqueued_by_name_is_refused_the_same_way(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    refused(lambda: app.enqueue("add", [1], {"b": object()}), "kwargs")
    refused(lambda: app.enqueue("add", [1, 2, 3]), "args")
    refused(lambda: app.enqueue("add", [1], timeout="-1s"), "timeout")
    refused(lambda: app.enqueue("add", "12"), "args")  # type: ignore[arg-type]
    refused(lambda: app.enqueue("add", [1], {2: "b"}), "kwargs")  # type: ignore[dict-item]
    refused(lambda: app.enqueue("add", [1], {}, colour="red"), "colour")
    assert jobs_in(app) == 0


def test_an_unknown_task_name_is_refused_listing_the_known_ones(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    with pytest.raises(UnknownTask) as caught:
        app.enqueue("ad", [1])
    assert caught.value.field == "task"
    assert caught.value.name == "ad"
    assert "'ad'" in str(caught.value)
    assert "known: add" in str(caught.value)
    assert jobs_in(app) == 0


def test_a_shell_task_refuses_jobs_missing_a_field_of_its_command(app: taskwheel.App) -> None:
    backup = app.shell_task("backup", "tar czf {target} {0}")
    error = refused(lambda: backup.enqueue("/srv"), "kwargs")
    assert "target" in error.reason
    refused(lambda: backup.enqueue(target="/tmp/b.tgz"), "args")
    assert jobs_in(app) == 0


def test_a_shell_task_takes_a_rate_and_a_fairness_key_as_a_python_task_does(
    app: taskwheel.App,
) -> None:
    upload = app.shell_task("upload", "rsync {0} backup:/", fairness_key="host:{0}",
                            rate=taskwheel.RateLimit(key="backup:{0}", rate="6/min",
                                                     burst=2))
    request = upload.prepare("web1")
    assert (request.rate_key, request.rate_declared, request.fairness_key) == (
        "backup:web1", (0.1, 2), "host:web1")
    job = upload.enqueue("web1").record
    assert job.status is JobStatus.WAITING  # for its tokens


def test_a_batch_with_one_bad_request_writes_none_of_it(
    app: taskwheel.App, adder: taskwheel.Task[..., int], tmp_path: Path
) -> None:
    other = taskwheel.App(f"sqlite:///{tmp_path}/taskwheel.db", namespace="other")
    try:
        foreign = other.task(add).prepare(5)
        good = [adder.prepare(n) for n in range(3)]
        refused(lambda: app.enqueue_many([*good, foreign]), "namespace")
        refused(lambda: app.enqueue_many([*good, {"task": "add"}]), "requests")  # type: ignore[list-item]
        assert jobs_in(app) == 0
        assert jobs_in(other) == 0
    finally:
        other.close()


def test_a_prepared_request_writes_nothing_until_enqueued(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    request = adder.prepare(1, b=2, delay=timedelta(minutes=5))
    assert jobs_in(app) == 0
    assert (request.args, request.kwargs, request.delay) == ([1], {"b": 2}, 300.0)
    app.enqueue_many([request])
    assert jobs_in(app) == 1


def test_arguments_are_stored_as_given_or_refused(
    app: taskwheel.App, adder: taskwheel.Task[..., int]
) -> None:
    # Either fix passes: refuse them naming "args", or give back what was stored.
    lossy = {1: "one", "1": "uno"}
    refusal: InvalidInput | None = None
    try:
        handle = adder.enqueue(lossy)
    except InvalidInput as error:
        refusal = error
    if refusal is not None:
        assert refusal.field == "args"
        assert jobs_in(app) == 0
    else:
        assert handle.record.args == handle.refresh().record.args
