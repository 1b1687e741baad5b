"""The test helpers applications use (`taskwheel.testing`, the ``tw`` fixture of the
pytest plugin taskwheel installs): jobs run on ``drain()`` in the test's thread with
the real serialisation, ``assert_enqueued`` and friends, a clock the test moves that
drives delayed jobs, retries with backoff, deadlines, cron across a DST night and
misfires, and workflows run step by step -- nothing sleeps.

Every test of ``tw`` runs on both stores: SQLite, the default, and PostgreSQL, chosen
by overriding the ``taskwheel_database_url`` fixture (a schema of its own per test).

The last test holds the in-process mode to the real thing: for the same jobs, it and a
real worker end every job in the same state, after the same attempts, with the same
result (a hypothesis property).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskwheel
from pg_server import postgres_url
from taskwheel.errors import InvalidInput
from taskwheel.lifecycle import JobStatus
from taskwheel.testing import InProcess
from taskwheel.workflows import RunStatus

# Saturday 2026-03-28 12:00 UTC: Europe/Berlin springs forward the next night, at 02:00
# local (01:00 UTC) straight to 03:00.
BEFORE_DST = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def make_app() -> taskwheel.App:
    app = taskwheel.App("sqlite://:memory:", name="testing-plugin")

    @app.task
    def send(to: str) -> str:
        return f"sent to {to}"

    @app.task(pass_context=True, retry=taskwheel.Retry(max_attempts=3, backoff="exponential",
                                                        base="10s", jitter=0))
    def flaky(ctx: taskwheel.Context, fail_times: int, value: Any) -> Any:
        if ctx.attempt <= fail_times:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return value

    @app.task
    async def shout(word: str) -> str:
        await asyncio.sleep(0)
        return word.upper()

    @app.task
    def fan_out(count: int) -> int:
        app.enqueue_many(send.prepare(f"{n}@b.c") for n in range(count))
        return count

    return app


@pytest.fixture
def taskwheel_app() -> taskwheel.App:
    return make_app()


@pytest.fixture(params=["sqlite", "postgres"])
def taskwheel_database_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else postgres_url()


def test_drain_runs_enqueued_jobs_through_the_store_in_the_tests_thread(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    taskwheel_app.enqueue("send", ["a@b.c"])
    taskwheel_app.enqueue("fan_out", [2])
    ran = tw.drain()
    assert [(job.task, job.status, job.result) for job in ran] == [
        ("send", JobStatus.SUCCEEDED, "sent to a@b.c"),
        ("fan_out", JobStatus.SUCCEEDED, 2),
        ("send", JobStatus.SUCCEEDED, "sent to 0@b.c"),
        ("send", JobStatus.SUCCEEDED, "sent to 1@b.c"),
    ]
    assert tw.drain() == []


def test_arguments_go_through_json_as_in_production(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    with pytest.raises(InvalidInput, match="args"):
        taskwheel_app.enqueue("send", [{1, 2}])
    taskwheel_app.enqueue("flaky", [0, {"when": (1, 2)}])  # a tuple comes back a list
    [job] = tw.drain()
    assert job.result == {"when": [1, 2]}
    taskwheel_app.enqueue("flaky", [0, "x"], kwargs={})
    taskwheel_app.enqueue("flaky", [0, 1.5])
    assert [job.result for job in tw.drain()] == ["x", 1.5]


def test_assert_enqueued_counts_matching_jobs_and_says_what_was_enqueued(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    send = taskwheel_app.get_task("send")
    send.enqueue("a@b.c")
    send.enqueue("a@b.c")
    send.enqueue(to="d@e.f")
    assert len(tw.assert_enqueued(send, args=["a@b.c"], count=2)) == 2
    tw.assert_enqueued("send", kwargs={"to": "d@e.f"})
    tw.assert_not_enqueued("shout")
    with pytest.raises(AssertionError, match=r"expected 1 job\(s\) of 'send' with "
                       r"args=\['a@b.c'\], found 2; enqueued: \[send\(args=\['a@b.c'\]"):
        tw.assert_enqueued(send, args=["a@b.c"], count=1)
    with pytest.raises(AssertionError, match="found 1"):
        tw.assert_not_enqueued(send, kwargs={"to": "d@e.f"})
    tw.drain()
    tw.assert_enqueued(send, count=3, status=JobStatus.SUCCEEDED)


def test_a_delayed_job_runs_when_the_clock_reaches_it(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    taskwheel_app.enqueue("send", ["later@b.c"], delay="1h")
    assert tw.drain() == []
    assert tw.advance("59m") == []
    [job] = tw.advance("1m")
    assert job.status is JobStatus.SUCCEEDED
    assert job.started_at == job.run_at  # on time, by the test's clock


def test_retries_wait_their_backoff_on_the_tests_clock(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    start = tw.clock.now()
    handle = taskwheel_app.enqueue("flaky", [2, "done"])
    [first] = tw.drain()
    assert (first.status, first.attempt) == (JobStatus.SCHEDULED, 1)
    assert tw.advance("9s") == []
    [second] = tw.advance("1s")  # exponential from 10 s: 10 s, then 20 s
    assert (second.status, second.attempt) == (JobStatus.SCHEDULED, 2)
    [third] = tw.advance("1m")
    assert (third.status, third.result) == (JobStatus.SUCCEEDED, "done")
    starts = [a.started_at.timestamp() - start for a in handle.attempts()]
    assert starts == [0.0, 10.0, 30.0]


def test_a_deadline_passes_while_nothing_runs(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    handle = taskwheel_app.enqueue("send", ["a@b.c"], deadline="30m")
    tw.advance("31m", run=False)  # every process down meanwhile
    assert tw.drain() == []
    assert handle.refresh().status is JobStatus.EXPIRED


def test_a_cron_schedule_fires_on_time_across_a_dst_night(tmp_path: Path) -> None:
    app = make_app()
    app.schedule("night", "send", cron="30 2 * * *", timezone="Europe/Berlin",
                 args=["night@b.c"], dst_gap="run_after_gap")
    with InProcess(app, directory=tmp_path, start=BEFORE_DST) as tw:
        ran = tw.advance("2d")
    runs = [job.run_at for job in ran]
    assert runs == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),   # 02:30 does not exist: 03:00 CEST
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]
    assert all(job.status is JobStatus.SUCCEEDED for job in ran)


@pytest.mark.parametrize(("misfire", "expected"), [("skip", 0), ("run_once", 1)])
def test_fires_missed_while_everything_was_down_follow_the_misfire_policy(
    tw: InProcess, taskwheel_app: taskwheel.App, misfire: str, expected: int
) -> None:
    taskwheel_app.add_schedule("hourly", "send", every="1h", args=["h@b.c"], misfire=misfire)
    tw.advance("5h", run=False)
    assert len(tw.drain()) == expected
    next_fire = taskwheel_app.get_schedule("hourly").next_fire_at
    assert next_fire is not None
    assert len(tw.advance_to(next_fire)) == 1  # and on time again afterwards


def test_a_workflow_runs_to_its_end_step_by_step(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    flow = taskwheel.Workflow("greet")
    first = flow.step(taskwheel_app.get_task("send"), ["a@b.c"], name="first")
    flow.step(taskwheel_app.get_task("flaky"), [1, "second"], after=[first], name="second")
    run = taskwheel_app.submit(flow)
    step = tw.run_next()
    assert step is not None
    assert step.step == "first"
    assert run.refresh().record.step("second").job.status is JobStatus.QUEUED
    ended = tw.run_workflow(run)  # the second step fails once, waits its backoff, succeeds
    assert ended.status is RunStatus.SUCCEEDED
    assert {s.name: s.job.result for s in ended.steps} == {"first": "sent to a@b.c",
                                                           "second": "second"}


def test_async_tasks_run_in_the_tests_event_loop(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    taskwheel_app.enqueue("shout", ["hey"])
    taskwheel_app.enqueue("send", ["a@b.c"])

    async def in_loop() -> list[Any]:
        with pytest.raises(RuntimeError, match="drain_async"):
            tw.drain()
        return [job.result for job in await tw.drain_async()]

    assert asyncio.run(in_loop()) == ["HEY", "sent to a@b.c"]
    taskwheel_app.enqueue("shout", ["sync"])
    assert [job.result for job in tw.drain()] == ["SYNC"]  # a loop of its own


def test_the_app_gets_its_own_store_back_after_the_test(tmp_path: Path) -> None:
    app = make_app()
    with InProcess(app, directory=tmp_path) as tw:
        app.enqueue("send", ["a@b.c"])
        assert len(tw.jobs()) == 1
    assert app.list_jobs() == []  # its own (in-memory) store again


def test_a_schedule_declared_after_the_harness_began_fires_too(
    tw: InProcess, taskwheel_app: taskwheel.App
) -> None:
    taskwheel_app.schedule("ping", taskwheel_app.get_task("send"), every="10m", args=["x"])
    assert [job.result for job in tw.advance("30m")] == ["sent to x"] * 3


# -- on PostgreSQL ---------------------------------------------------------------------------


def schemas_named(prefix: str) -> set[str]:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            [prefix + "%"]).fetchall()
    return {row[0] for row in rows}


def test_postgres_jobs_enqueued_in_the_application_s_transaction_run_under_tw(
    tmp_path: Path,
) -> None:
    """The application's own psycopg connection to the database: its job lands in the
    harness's schema when it commits, and none when it rolls back."""
    app = make_app()
    with InProcess(app, directory=tmp_path, database_url=postgres_url()) as tw, \
            psycopg.connect(postgres_url()) as conn:
        conn.execute("CREATE TEMP TABLE signups (email text)")
        conn.execute("INSERT INTO signups VALUES ('a@b.c')")
        app.get_task("send").enqueue("a@b.c", using=conn)
        assert tw.jobs() == []  # not committed yet (drain would wait for the commit)
        conn.commit()
        app.get_task("send").enqueue("d@e.f", using=conn)
        conn.rollback()
        assert [(job.args, job.result) for job in tw.drain()] == [(["a@b.c"],
                                                                    "sent to a@b.c")]
        tw.assert_enqueued("send", count=1)


def test_postgres_each_harness_has_a_schema_of_its_own_dropped_when_it_closes(
    tmp_path: Path,
) -> None:
    before = schemas_named("taskwheel_test_")
    first, second = make_app(), make_app()
    with InProcess(first, database_url=postgres_url()) as one, \
            InProcess(second, database_url=postgres_url()) as two:
        first.enqueue("send", ["a@b.c"])
        assert len(one.jobs()) == 1
        assert two.jobs() == []
        made = schemas_named("taskwheel_test_") - before
        assert len(made) == 2
    assert schemas_named("taskwheel_test_") - before == set()


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="database_url"):
        InProcess(make_app(), database_url=f"sqlite:///{tmp_path / 'x.db'}")


# -- the in-process mode and a real worker agree -------------------------------------------------

JOBS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),   # attempts that fail before one succeeds
        st.integers(min_value=1, max_value=3),   # max_attempts
        st.one_of(st.integers(-5, 5), st.text(max_size=3), st.just("not json")),
    ),
    min_size=1, max_size=6,
)


def run_with_real_worker(directory: Path, jobs: list[tuple[int, int, Any]]) -> list[Any]:
    app = make_app_for(f"sqlite:///{directory / 'worker.db'}")
    app.migrate()
    try:
        handles = [enqueue_case(app, case) for case in jobs]
        worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(
            burst=True, poll_interval="20ms", concurrency=4))
        worker.run(install_signal_handlers=False)
        return [ended(app, handle.id) for handle in handles]
    finally:
        app.close()


def run_in_process(directory: Path, jobs: list[tuple[int, int, Any]]) -> list[Any]:
    app = make_app_for("sqlite://:memory:")
    with InProcess(app, directory=directory) as tw:
        handles = [enqueue_case(app, case) for case in jobs]
        tw.advance("1m")
        return [ended(app, handle.id) for handle in handles]


def make_app_for(url: str) -> taskwheel.App:
    app = taskwheel.App(url, name="equivalence")

    @app.task(pass_context=True, retry=taskwheel.Retry(max_attempts=3, backoff="fixed",
                                                        base="10ms", jitter=0))
    def flaky(ctx: taskwheel.Context, fail_times: int, value: Any) -> Any:
        if ctx.attempt <= fail_times:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return {1, 2} if value == "not json" else value  # a set: not a JSON result

    return app


def enqueue_case(app: taskwheel.App, case: tuple[int, int, Any]) -> Any:
    fail_times, max_attempts, value = case
    return app.enqueue("flaky", [fail_times, value], max_attempts=max_attempts)


def ended(app: taskwheel.App, job_id: int) -> tuple[Any, ...]:
    job = app.job(job_id).record
    attempts = app.client.attempts(job_id)
    return (job.status, job.attempt, job.result, job.last_error,
            [(a.outcome, a.error) for a in attempts])


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=JOBS)
def test_in_process_mode_and_a_real_worker_end_jobs_alike(
    tmp_path_factory: pytest.TempPathFactory, jobs: list[tuple[int, int, Any]]
) -> None:
    directory = tmp_path_factory.mktemp("equivalence")
    assert run_in_process(directory, jobs) == run_with_real_worker(directory, jobs)
