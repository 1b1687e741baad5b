"""The worker runs every kind of task, and nothing a task does takes the worker down."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel import AttemptOutcome, JobStatus, Retry
from taskwheel.errors import StoreError
from waiting import wait_for

from . import sample_tasks
from .conftest import finished, migrated_app, running_worker

NO_RETRY = Retry(max_attempts=1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_async_timeout_cancels_the_coroutine(app: taskwheel.App, tmp_path: Path) -> None:
    task = app.task(timeout="200ms", retry=NO_RETRY)(sample_tasks.sleep_async)
    marker = str(tmp_path / "marker")
    job = task.enqueue(30, marker)
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to time out")
    assert job.status is JobStatus.DEAD
    [attempt] = job.attempts()
    assert attempt.outcome is AttemptOutcome.TIMED_OUT
    assert "timed out after 0.2s" in (attempt.error or "")
    assert Path(marker).read_text().split() == ["cancelled"]


def test_process_timeout_kills_the_whole_process_group(app: taskwheel.App, tmp_path: Path) -> None:
    task = app.task(timeout="1s", retry=NO_RETRY, pool="process")(
        sample_tasks.spawn_grandchild_and_sleep
    )
    pidfile = tmp_path / "pids"
    job = task.enqueue(str(pidfile))
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to time out")
    assert job.attempts()[0].outcome is AttemptOutcome.TIMED_OUT
    child, grandchild = map(int, pidfile.read_text().split())
    wait_for(lambda: not pid_alive(child) and not pid_alive(grandchild), timeout=5,
             what="the process group to be killed")


def test_shell_timeout_kills_the_whole_process_group(app: taskwheel.App, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = app.shell_task(
        "hang", "sleep 60 & echo $! > {pidfile}; wait", timeout="300ms", retry=1
    )
    job = task.enqueue(pidfile=str(pidfile))
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to time out")
    assert job.attempts()[0].outcome is AttemptOutcome.TIMED_OUT
    grandchild = int(pidfile.read_text())
    wait_for(lambda: not pid_alive(grandchild), timeout=5, what="the background sleep to be killed")


def test_shell_task_result_and_failure(app: taskwheel.App) -> None:
    echo = app.shell_task("echo", "echo hello {0}")
    failing = app.shell_task("fails", "echo oops >&2; exit 4", retry=1)
    good, bad = echo.enqueue("world; rm -rf /"), failing.enqueue()
    with running_worker(app):
        wait_for(lambda: finished(good) and finished(bad), what="both shell jobs to end")
    assert good.result() == {"exit_code": 0, "stdout": "hello world; rm -rf /\n", "stderr": ""}
    assert bad.status is JobStatus.DEAD
    assert bad.record.last_error == "command failed, process exited with code 4: oops"


def test_thread_timeout_is_marked_and_the_task_is_told_to_stop(
    app: taskwheel.App, tmp_path: Path
) -> None:
    task = app.task(timeout="300ms", retry=NO_RETRY, pass_context=True, pool="thread")(
        sample_tasks.wait_until_cancelled
    )
    marker = tmp_path / "marker"
    job = task.enqueue(str(marker), 30)
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to time out")
        wait_for(lambda: "saw-cancel" in marker.read_text(), what="thread sees ctx.cancelled")
    [attempt] = job.attempts()
    assert attempt.outcome is AttemptOutcome.TIMED_OUT
    assert "thread cannot be killed" in (attempt.error or "")


@pytest.mark.parametrize("pool", ["async", "thread", "process"])
def test_a_raising_task_retries_then_lands_in_the_dead_letter_queue(
    app: taskwheel.App, pool: str
) -> None:
    task = app.task(retry=Retry(max_attempts=3, base="10ms", jitter=0), pool=pool)(
        sample_tasks.fail_always
    )
    job = task.enqueue()
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to use up its attempts")
    assert job.status is JobStatus.DEAD
    attempts = job.attempts()
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.outcome is AttemptOutcome.FAILED for a in attempts)
    assert job.record.last_error == "ValueError: this task always fails"
    assert "raise ValueError" in (attempts[-1].traceback or "")
    # Replay from the DLQ starts it again with a full set of attempts.
    [replayed] = app.store.replay_dead(app.namespace, [job.id])
    assert replayed == job.id
    assert job.refresh().status is JobStatus.QUEUED
    assert job.record.attempt == 0


@pytest.mark.parametrize(
    ("body", "pool", "outcome", "error"),
    [
        (sample_tasks.exit_three, "async", AttemptOutcome.FAILED, "SystemExit: 3"),
        (sample_tasks.exit_three, "thread", AttemptOutcome.FAILED, "SystemExit: 3"),
        (sample_tasks.exit_three, "process", AttemptOutcome.CRASHED, "exited with code 3"),
        (sample_tasks.hard_exit, "process", AttemptOutcome.CRASHED, "exited with code 7"),
        (sample_tasks.segfault, "process", AttemptOutcome.CRASHED, "killed by SIGSEGV"),
    ],
)
def test_exits_and_crashes_fail_the_attempt_not_the_worker(
    app: taskwheel.App, body: object, pool: str, outcome: AttemptOutcome, error: str
) -> None:
    crash = app.task(retry=NO_RETRY, pool=pool)(body)  # type: ignore[call-overload]
    after = app.task(pool=pool)(sample_tasks.ok)
    bad = crash.enqueue()
    with running_worker(app, concurrency=1):
        wait_for(lambda: finished(bad), what="the crashing job to end")
        good = after.enqueue(42)
        assert good.result(timeout=20) == 42
    [attempt] = bad.attempts()
    assert attempt.outcome is outcome
    assert error in (attempt.error or "")


def test_checkpoint_is_handed_to_the_retry(app: taskwheel.App) -> None:
    for pool in ("thread", "process"):
        task = app.task(
            name=f"resume_{pool}", pass_context=True, pool=pool,
            retry=Retry(max_attempts=2, base="10ms", jitter=0),
        )(sample_tasks.checkpoint_then_fail)
        job = task.enqueue()
        with running_worker(app):
            assert job.result(timeout=20) == {"done": 5}
        assert [a.outcome for a in job.attempts()] == [
            AttemptOutcome.FAILED, AttemptOutcome.SUCCEEDED
        ]


def test_an_unserialisable_result_fails_clearly(app: taskwheel.App) -> None:
    task = app.task(retry=NO_RETRY)(sample_tasks.returns_unserialisable)
    bad_result = task.enqueue()
    with running_worker(app):
        wait_for(lambda: finished(bad_result), what="the job to end")
    assert "result is not JSON-serialisable" in (bad_result.record.last_error or "")


def test_a_worker_leaves_jobs_of_tasks_it_lacks_to_the_workers_that_have_them(
    app: taskwheel.App,
) -> None:
    """A rolling deploy: a job of a task only the newer code has is not claimed by a
    worker of the older code (it would fail it, attempt after attempt, until dead); it
    waits, untouched, for a worker that has the task."""
    app.task(sample_tasks.ok)
    known = app.enqueue("ok", ["ok"])
    with closing(taskwheel.App(app.database_url)) as newer:  # the newer deploy's code
        newer.task(name="only_elsewhere")(sample_tasks.ok)
        unknown = newer.enqueue("only_elsewhere", ["ok"])
        with running_worker(app):
            assert known.result(timeout=20) == "ok"
            # Both were ready when it claimed: the unknown task's job was passed over.
            assert unknown.refresh().status is JobStatus.QUEUED
        assert (unknown.record.attempt, unknown.attempts()) == (0, [])
        with running_worker(newer):
            assert unknown.result(timeout=20) == "ok"


def test_task_reads_its_attempt_and_fencing_token(app: taskwheel.App) -> None:
    @app.task(pass_context=True)
    def whoami(ctx: taskwheel.Context) -> list[int]:
        return [ctx.job_id, ctx.attempt, ctx.fencing_token]

    job = whoami.enqueue()
    with running_worker(app):
        assert job.result(timeout=10) == [job.id, 1, 1]
    assert job.attempts()[0].fence == 1


def test_a_saturated_worker_keeps_running_its_jobs(app: taskwheel.App) -> None:
    """More ready jobs than capacity: the fetch loop must yield to the jobs it started."""

    @app.task
    async def noop(i: int) -> int:
        return i

    handles = app.enqueue_many(noop.prepare(i) for i in range(300))
    # Burst mode wakes the fetch loop after every report, also while it is saturated.
    with running_worker(app, concurrency=4, batch_size=4, burst=True):
        wait_for(lambda: all(finished(h) for h in handles[-5:]), timeout=30, what="all jobs")
    assert {h.refresh().status for h in handles} == {JobStatus.SUCCEEDED}


def run_in_burst(app: taskwheel.App, **settings: Any) -> taskwheel.Worker:
    """Run a burst worker to its end (it must end by itself)."""
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(burst=True, **settings))
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False},
                              daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        worker.stop(hard=True)
        thread.join(5)
        raise AssertionError("the burst worker did not exit")
    return worker


def test_a_burst_worker_exits_once_its_queues_are_drained(app: taskwheel.App) -> None:
    """Delayed jobs of other queues, or of its queues but due far later, are not its to
    wait for; a retry of its own due within the horizon is."""

    @app.task(retry=Retry(max_attempts=2, base="200ms", jitter=0), pass_context=True)
    def flaky(ctx: taskwheel.Context) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first time")
        return ctx.attempt

    elsewhere = app.task(name="elsewhere", queue="other")(sample_tasks.ok)
    retried = flaky.enqueue()
    later = flaky.enqueue(at=datetime(9999, 1, 1, tzinfo=UTC))
    other = elsewhere.enqueue(delay="1s")

    worker = run_in_burst(app)

    assert retried.refresh().status is JobStatus.SUCCEEDED, "it waited for the retry"
    assert later.refresh().status is JobStatus.SCHEDULED
    assert other.refresh().status is JobStatus.SCHEDULED
    assert worker.stats["succeeded"] == 1


def test_a_worker_the_store_refuses_for_good_stops_instead_of_retrying_forever(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage is waited out; a refusal that will not change (a permission the role
    lacks, a read-only file) ends the worker with the store's reason."""

    def refuse(registration: object) -> None:
        raise StoreError("register_worker", "permission denied for table workers")

    monkeypatch.setattr(app.store, "register_worker", refuse)
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build())
    with pytest.raises(StoreError, match="permission denied"):
        worker.run(install_signal_handlers=False)


def test_an_outcome_is_written_while_a_claim_is_still_on_its_way(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job that ends while the worker's claim waits on the store is reported at once,
    not behind that claim: the window in which a crash runs a finished job again stays
    one commit wide."""
    claim_waits = threading.Event()
    let_claim_go = threading.Event()

    @app.task
    def ends_once_a_claim_waits() -> None:
        assert claim_waits.wait(10), "no claim came while the job ran"

    @app.task
    def later() -> None:
        pass

    first = ends_once_a_claim_waits.enqueue()
    claim = app.store.claim

    def slow_claim(request: Any) -> Any:
        answer = claim(request)
        if any(job.id == first.id for job in answer.jobs):
            later.enqueue()  # wakes the worker: its next claim waits below
        elif first.refresh().status is JobStatus.RUNNING:
            claim_waits.set()
            assert let_claim_go.wait(10), "the test never let the claim go"
        return answer

    def first_claim_at_once(request: Any) -> Any:  # an idle worker's (`Store.try_claim`)
        answer = try_claim(request)
        if answer is not None and any(job.id == first.id for job in answer.jobs):
            later.enqueue()
        return answer

    try_claim = app.store.try_claim
    monkeypatch.setattr(app.store, "claim", slow_claim)
    monkeypatch.setattr(app.store, "try_claim", first_claim_at_once)
    try:
        with running_worker(app, concurrency=4):
            wait_for(lambda: first.refresh().status is JobStatus.SUCCEEDED, timeout=5,
                     what="the outcome written while a claim waits")
            let_claim_go.set()
    finally:
        let_claim_go.set()


def test_on_a_store_whose_writes_take_turns_a_claim_lets_waiting_outcomes_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite every write takes one lock in turn: a claim started while a finished
    job's outcome waits to be written would hold that lock ahead of it, and a crash in
    that time runs the job again. A worker of one slot, whose claim and report fall due
    at each job's end together, reports each end before it claims again."""
    calls: list[str] = []
    with migrated_app("sqlite", tmp_path) as app:
        assert app.store.one_writer

        @app.task
        def step() -> None:
            calls.append("end")  # on the job's thread, before the worker sees its end

        handles = [step.enqueue() for _ in range(20)]
        claim, finish = app.store.claim, app.store.finish_attempts

        def recorded_claim(request: Any) -> Any:
            calls.append("claim")
            return claim(request)

        def recorded_try_claim(request: Any) -> Any:
            calls.append("claim")
            return try_claim(request)

        def recorded_finish(outcomes: Any) -> Any:
            calls.append("finish")
            return finish(outcomes)

        try_claim = app.store.try_claim
        monkeypatch.setattr(app.store, "claim", recorded_claim)
        monkeypatch.setattr(app.store, "try_claim", recorded_try_claim)
        monkeypatch.setattr(app.store, "finish_attempts", recorded_finish)
        with running_worker(app, concurrency=1):
            wait_for(lambda: all(h.refresh().status is JobStatus.SUCCEEDED for h in handles),
                     timeout=20, what="every job reported")
    ends = [i for i, call in enumerate(calls) if call == "end"]
    assert len(ends) == 20
    after = [next(call for call in calls[i + 1:] if call != "end") for i in ends]
    assert after == ["finish"] * 20, calls


def test_an_idle_worker_claims_on_its_loop_and_a_busy_one_on_the_claims_thread(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing running, a worker tries the claim on its event loop first
    (`Store.try_claim`: SQLite answers it there when the lock is free, sparing the hop
    to a thread and back); with a job running, it claims on the claims' thread, so that
    a claim waiting for the lock never holds up the running jobs' loop. The lock may be
    held when the idle worker tries (its own heartbeat, the maintenance pass): then the
    claim goes to the claims' thread, and the record says the lock was busy."""
    # (call, its thread, the jobs it took or None for no answer, whether the lock was busy)
    seen: list[tuple[str, str, list[int] | None, bool]] = []
    release = threading.Event()
    with migrated_app(backend, tmp_path) as app:

        @app.task
        def holds() -> None:
            assert release.wait(10), "the test never let the job end"

        @app.task
        def quick() -> None:
            pass

        claim, try_claim = app.store.claim, app.store.try_claim
        if_free = app.store.executor_if_free
        busy: list[bool] = []

        @contextlib.contextmanager
        def recorded_if_free(operation: str) -> Iterator[Any]:
            with if_free(operation) as ex:
                busy.append(ex is None)
                yield ex

        def recorded(name: str, call: Any) -> Any:
            def run(request: Any) -> Any:
                busy.clear()
                answer = call(request)
                seen.append((name, threading.current_thread().name,
                             None if answer is None else [job.id for job in answer.jobs],
                             busy == [True]))
                return answer
            return run

        monkeypatch.setattr(app.store, "claim", recorded("claim", claim))
        monkeypatch.setattr(app.store, "try_claim", recorded("try_claim", try_claim))
        monkeypatch.setattr(app.store, "executor_if_free", recorded_if_free)
        try:
            with running_worker(app, concurrency=2) as worker:
                wait_for(lambda: worker.stats["claimed"] == 0 and bool(seen), timeout=5,
                         what="the idle worker's first claim")
                held = holds.enqueue()
                wait_for(lambda: held.refresh().status is JobStatus.RUNNING, timeout=5,
                         what="the first job running")
                second = quick.enqueue()
                wait_for(lambda: second.refresh().status is JobStatus.SUCCEEDED, timeout=5,
                         what="the second job run beside the first")
                release.set()
                wait_for(lambda: held.refresh().status is JobStatus.SUCCEEDED, timeout=5,
                         what="the first job's end")
        finally:
            release.set()
    took = {job_id: i for i, (_, _, ids, _) in enumerate(seen) for job_id in ids or ()}
    name, thread, _, _ = seen[took[held.id]]
    before = seen[took[held.id] - 1]
    if app.store.one_writer:
        if name == "claim":  # only when the try, just before, found the lock held
            assert (before[0], before[2], before[3]) == ("try_claim", None, True), seen
            thread = before[1]
        else:
            assert name == "try_claim", seen
        assert not thread.startswith("taskwheel-db")
    else:  # a store that never claims at once: every claim on the claims' thread
        assert (name, before[0], before[2]) == ("claim", "try_claim", None), seen
        assert thread.startswith("taskwheel-db")
    # With the first job running: on the claims' thread, with no try on the loop first.
    name, thread, _, _ = seen[took[second.id]]
    assert name == "claim", seen
    assert thread.startswith("taskwheel-db")
    assert seen[took[second.id] - 1][0::2] != ("try_claim", None), seen  # (call, jobs)
