"""Cancellation, leases, heartbeats and rescue, with a real worker on a real database."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel import AttemptOutcome, Guarantee, JobStatus, Retry
from taskwheel.errors import StoreUnavailable
from taskwheel.jobs import Claim
from taskwheel.maintenance import LEASE, MaintenanceSettings
from taskwheel.stores.claims import ClaimRequest
from waiting import wait_for

from . import sample_tasks
from .conftest import RawDatabase, finished, running_worker


def test_cancelling_a_queued_job_is_immediate_and_it_never_runs(
    app: taskwheel.App, tmp_path: Path
) -> None:
    task = app.task(sample_tasks.append_name)
    out = tmp_path / "ran"
    doomed = task.enqueue(str(out), "doomed", delay="1h")
    assert doomed.cancel().status is JobStatus.CANCELLED
    kept = task.enqueue(str(out), "kept")
    with running_worker(app):
        wait_for(lambda: finished(kept), what="the kept job to run")
    assert out.read_text().split() == ["kept"]
    assert doomed.refresh().status is JobStatus.CANCELLED
    assert doomed.attempts() == []


def enqueue_waiting_for_cancel(app: taskwheel.App, pool: str, marker: Path) -> taskwheel.JobHandle:
    """A job of a task in ``pool`` that writes "started" to ``marker``, then waits for its
    context to say cancelled and writes "saw-cancel"."""
    body = (sample_tasks.wait_until_cancelled if pool == "thread"
            else sample_tasks.wait_until_cancelled_async)
    task = app.task(pass_context=True, pool=pool)(body)
    return task.enqueue(*([str(marker), 30] if pool == "thread" else [str(marker)]))


@pytest.mark.parametrize("pool", ["thread", "async"])
def test_a_running_job_sees_cancelled_in_its_context(
    app: taskwheel.App, tmp_path: Path, pool: str
) -> None:
    marker = tmp_path / "marker"
    job = enqueue_waiting_for_cancel(app, pool, marker)
    # Long heartbeats: the cancel must arrive by notification, not with a heartbeat.
    with running_worker(app, heartbeat="20s", lease_ttl="60s"):
        wait_for(lambda: marker.exists() and "started" in marker.read_text(),
                 what="the job to start")
        assert job.cancel().status is JobStatus.RUNNING
        assert job.record.cancel_requested
        wait_for(lambda: finished(job), timeout=5, what="cancelled job to end")
    assert job.status is JobStatus.CANCELLED
    assert marker.read_text().split() == ["started", "saw-cancel"]
    assert job.attempts()[-1].outcome is AttemptOutcome.CANCELLED


def given_back_once_started(app: taskwheel.App, worker: taskwheel.Worker,
                            job: taskwheel.JobHandle, marker: Path) -> taskwheel.Job:
    """Once the job's code has written "started", its lease given back to the store
    behind the worker's back (as a rescue takes it): the record of the attempt it ran."""
    wait_for(lambda: marker.exists() and "started" in marker.read_text(),
             what="the job to start")
    first = job.refresh().record
    assert app.store.release_jobs(worker.id, {job.id: first.fence}) == [job.id]
    return first


@pytest.mark.parametrize("pool", ["thread", "async"])
def test_an_attempt_whose_lease_the_store_took_back_is_stopped_and_reports_nothing(
    app: taskwheel.App, tmp_path: Path, pool: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The store takes a job's lease back from a live worker (here given back and
    claimed by another, as a rescue after a stall would): the worker's next heartbeat
    finds its attempt no longer held and stops it, and its end writes nothing over the
    attempt that replaced it."""
    marker = tmp_path / "marker"
    job = enqueue_waiting_for_cancel(app, pool, marker)
    # A lease far longer than the test: only the store's answer can stop the attempt.
    with running_worker(app, heartbeat="100ms", lease_ttl="60s", cancel_grace="200ms",
                        concurrency=1) as worker:
        given_back_once_started(app, worker, job, marker)
        taken = app.store.claim_jobs(app.namespace, "elsewhere", ["default"], 1, 60).jobs
        assert [j.id for j in taken] == [job.id]
        wait_for(lambda: "saw-cancel" in marker.read_text(), timeout=5,
                 what="the worker to stop the attempt it no longer holds")
        wait_for(lambda: worker.stats["interrupted"] == 1, timeout=5,
                 what="the attempt to end")
        now = job.refresh().record
    assert (now.status, now.worker_id, now.fence) == (
        JobStatus.RUNNING, "elsewhere", taken[0].fence)
    assert [a.outcome for a in job.attempts()][:1] == [AttemptOutcome.INTERRUPTED]
    assert worker.stats["rejected"] == 0  # nothing was reported to be refused
    assert any("is no longer this worker's" in r.getMessage() for r in caplog.records)


def test_a_job_claimed_again_by_the_worker_that_runs_it_stops_the_older_attempt(
    app: taskwheel.App, tmp_path: Path
) -> None:
    """The job's lease went back to the store while its attempt runs here, and this
    worker claims it again: the older attempt is stopped at once (its token is stale;
    the heartbeats are too far apart to be what stops it), then the newer one runs."""
    task = app.task(pass_context=True)(sample_tasks.wait_until_cancelled_unless_claimed_again)
    marker = tmp_path / "marker"
    job = task.enqueue(str(marker))
    with running_worker(app, heartbeat="20s", lease_ttl="60s", cancel_grace="10s",
                        concurrency=2) as worker:
        first = given_back_once_started(app, worker, job, marker)
        assert job.result(timeout=5) == first.fence + 1
    assert marker.read_text().split() == [
        "started", str(first.fence), "saw-cancel", "started", str(first.fence + 1)]
    assert [a.outcome for a in job.attempts()] == [
        AttemptOutcome.INTERRUPTED, AttemptOutcome.SUCCEEDED]
    assert worker.stats["rejected"] == 0


def test_a_claim_waiting_for_its_older_attempt_never_starts_once_its_lease_is_taken_back(
    app: taskwheel.App, tmp_path: Path, raw_database: RawDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job claimed again here waits for its older attempt (a thread that ignores the
    cancel) to end; meanwhile the store gives the job to another worker: the next
    heartbeat drops the waiting claim, which never starts, and neither attempt writes
    anything."""
    task = app.task(pass_context=True, pool="thread")(sample_tasks.record_token_then_sleep)
    marker = tmp_path / "marker"
    job = task.enqueue(str(marker), 1.5)
    with running_worker(app, heartbeat="100ms", lease_ttl="60s", concurrency=2) as worker:
        first = given_back_once_started(app, worker, job, marker)
        wait_for(lambda: job.refresh().record.fence == first.fence + 1,
                 what="the worker to claim the job again")
        # Rescued and claimed elsewhere at once, as a lapse past the lease would have it.
        raw_database.execute("UPDATE {jobs} SET worker_id = 'elsewhere', fence = fence + 1"
                             " WHERE id = ?", (job.id,))
        wait_for(lambda: any("will not start" in r.getMessage() for r in caplog.records),
                 timeout=5, what="the heartbeat to drop the waiting claim")
        wait_for(lambda: worker.stats["interrupted"] == 1, timeout=5,
                 what="the older attempt to end")
        now = job.refresh().record
    assert (now.status, now.worker_id, now.fence) == (
        JobStatus.RUNNING, "elsewhere", first.fence + 2)
    assert marker.read_text().split() == ["started", str(first.fence)]
    assert worker.stats["rejected"] == 0


def test_a_process_that_ignores_cancel_is_killed_after_the_grace(
    app: taskwheel.App, tmp_path: Path
) -> None:
    task = app.task(pool="process")(sample_tasks.ignore_sigterm_and_sleep)
    marker = tmp_path / "marker"
    job = task.enqueue(str(marker))
    with running_worker(app, cancel_grace="300ms", heartbeat="20s", lease_ttl="60s"):
        wait_for(marker.exists, what="the job to start")
        job.cancel()
        wait_for(lambda: finished(job), timeout=10, what="the job to be killed")
    assert job.status is JobStatus.CANCELLED
    assert job.attempts()[-1].outcome is AttemptOutcome.CANCELLED


def test_heartbeats_keep_a_long_job_leased(app: taskwheel.App) -> None:
    task = app.task(sample_tasks.slow_success)
    job = task.enqueue(1.5)
    with running_worker(app, lease_ttl="400ms", heartbeat="100ms"):
        assert job.result(timeout=20) == "done"
    # Never rescued: one attempt, never a lease_expired one.
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]


def test_an_async_task_blocking_the_event_loop_loses_no_lease(
    app: taskwheel.App, caplog: pytest.LogCaptureFixture
) -> None:
    """Heartbeats run on a thread of their own: a task that blocks the loop for three
    leases neither loses its own lease nor gets an innocent job claimed with it declared
    vanished, and the worker says its loop was blocked."""

    @app.task
    async def hog() -> str:
        time.sleep(1.5)  # blocking code on the event loop (a CPU loop, a blocking call)
        return "hogged"

    @app.task
    async def innocent() -> str:
        return "fine"

    every = MaintenanceSettings.build(every="50ms")
    with running_worker(app, queues=["elsewhere"], maintenance=every) as rescuer:
        # The other worker holds the maintenance lease: a lapsed lease is rescued at once.
        wait_for(lambda: app.store.lease_holder(app.namespace, LEASE) == rescuer.id,
                 what="the other worker to hold the maintenance lease")
        jobs = [hog.enqueue(), innocent.enqueue()]
        with caplog.at_level(logging.WARNING, logger="taskwheel.worker"), running_worker(
            app, lease_ttl="500ms", heartbeat="100ms", maintenance=every
        ):
            assert [job.result(timeout=20) for job in jobs] == ["hogged", "fine"]
    for job in jobs:
        assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]
    assert "event loop has been blocked" in caplog.text


def test_a_finished_job_keeps_its_lease_while_its_outcome_waits_to_be_written(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose body has ended is the worker's until its outcome is written: while
    the report takes three leases (a database that stalls, a lock wait), the heartbeat
    renews the job's lease, so the job is neither rescued nor run again."""
    task = app.task(sample_tasks.ok)
    store = app.store
    finish = store.finish_attempts
    stalled: list[int] = []

    def slow_finish(outcomes: Any, *args: Any, **kwargs: Any) -> Any:
        if not stalled:
            stalled.extend(o.job_id for o in outcomes)
            time.sleep(1.5)
        return finish(outcomes, *args, **kwargs)

    every = MaintenanceSettings.build(every="50ms")
    with running_worker(app, queues=["elsewhere"], maintenance=every) as rescuer:
        wait_for(lambda: app.store.lease_holder(app.namespace, LEASE) == rescuer.id,
                 what="the other worker to hold the maintenance lease")
        monkeypatch.setattr(store, "finish_attempts", slow_finish)
        job = task.enqueue("once")
        with running_worker(app, lease_ttl="500ms", heartbeat="100ms", maintenance=every):
            assert job.result(timeout=20) == "once"
    assert stalled == [job.id]
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]


def test_once_the_store_is_back_live_workers_renew_their_leases_before_any_rescue(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store out of reach for longer than a lease: every lease lapses by the
    store's clock, though its worker lives. Once the store is back, the rescue waits its
    grace, so the worker's next heartbeat renews the lease and the job is not run a
    second time beside the first."""
    task = app.task(sample_tasks.slow_success)
    store = app.store
    down = threading.Event()

    def out_of_reach(name: str) -> Any:
        call = getattr(store, name)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if down.is_set():
                raise StoreUnavailable(name, "connection refused (the test's outage)", "test")
            return call(*args, **kwargs)
        return guarded

    for name in ("heartbeat", "rescue_expired_leases"):
        monkeypatch.setattr(store, name, out_of_reach(name))

    def lapsed(job: taskwheel.JobHandle) -> bool:
        expires = job.refresh().record.lease_expires_at
        return expires is not None and expires.timestamp() < store.now()

    every = MaintenanceSettings.build(every="50ms", rescue_grace="1s")
    with running_worker(app, queues=["elsewhere"], maintenance=every) as rescuer:
        wait_for(lambda: store.lease_holder(app.namespace, LEASE) == rescuer.id,
                 what="the other worker to hold the maintenance lease")
        job = task.enqueue(2.0)
        with running_worker(app, lease_ttl="500ms", heartbeat="100ms", maintenance=every):
            wait_for(lambda: job.refresh().status is JobStatus.RUNNING, what="the job to start")
            down.set()
            wait_for(lambda: lapsed(job), what="its lease to lapse while the store is away")
            down.clear()
            assert job.result(timeout=20) == "done"
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]


def test_a_vanished_workers_jobs_are_rescued_without_a_scheduler(app: taskwheel.App) -> None:
    again = app.task(sample_tasks.ok)
    once = app.task(name="once", guarantee="at_most_once")(sample_tasks.ok)
    rerun, never_twice = again.enqueue("again"), once.enqueue("once")
    # A worker claims both and vanishes without a heartbeat.
    claim = app.store.claim_jobs(app.namespace, "ghost", ["default"], 10, lease_ttl=0.3)
    assert {j.id for j in claim.jobs} == {rerun.id, never_twice.id}
    with running_worker(app, lease_ttl="400ms"):
        assert rerun.result(timeout=20) == "again"
        wait_for(lambda: finished(never_twice), what="the at-most-once job to end")
    assert never_twice.status is JobStatus.DEAD
    assert "at-most-once" in (never_twice.record.last_error or "")
    assert [a.outcome for a in rerun.attempts()] == [
        AttemptOutcome.LEASE_EXPIRED, AttemptOutcome.SUCCEEDED
    ]
    assert rerun.attempts()[0].worker_id == "ghost"
    assert never_twice.record.guarantee is Guarantee.AT_MOST_ONCE


def test_a_stale_worker_cannot_overwrite_the_attempt_that_replaced_it(app: taskwheel.App) -> None:
    task = app.task(sample_tasks.ok)
    job = task.enqueue("fresh")
    stale = app.store.claim_jobs(app.namespace, "ghost", ["default"], 1, lease_ttl=0.2).jobs[0]
    with running_worker(app, lease_ttl="300ms"):
        assert job.result(timeout=20) == "fresh"
    outcome = taskwheel.jobs.Outcome(
        job_id=job.id, fence=stale.fence, status=JobStatus.SUCCEEDED,
        outcome=AttemptOutcome.SUCCEEDED, result_json='"stale"',
    )
    assert app.store.finish_attempts([outcome]) == [job.id]
    assert job.refresh().record.result == "fresh"
    assert job.record.fence > stale.fence


def test_an_idle_worker_is_woken_by_enqueue_not_by_polling(app: taskwheel.App) -> None:
    task = app.task(sample_tasks.ok)
    with running_worker(app, poll_interval="60s") as worker:
        wait_for(lambda: worker._loop is not None, what="the worker's loop to start")
        time.sleep(0.2)  # let the worker reach its idle wait (a real-time gap is the point here)
        job = task.enqueue(1)
        assert job.result(timeout=5) == 1


def test_an_idle_worker_starts_a_delayed_job_when_it_falls_due_not_at_its_next_poll(
    app: taskwheel.App,
) -> None:
    """Enqueueing a delayed job moves every sleeping worker's alarm to its due time (a
    "due" wake-up carrying it): with a 60 s poll interval, the job still starts on time,
    and one due later than the alarm does not move it."""
    task = app.task(sample_tasks.ok)
    with running_worker(app, poll_interval="60s") as worker:
        wait_for(lambda: worker._loop is not None, what="the worker's loop to start")
        time.sleep(0.2)  # let the worker reach its idle wait (a real-time gap is the point here)
        later = task.enqueue(2, delay="30s")
        soon = task.enqueue(1, delay="300ms")
        assert soon.result(timeout=5) == 1
        record = soon.refresh().record
        assert record.started_at is not None
        late = record.started_at.timestamp() - record.run_at.timestamp()
        assert 0 <= late < 0.25, f"started {late:.3f}s after it fell due"
        assert later.refresh().status is JobStatus.SCHEDULED


def test_a_worker_claims_delayed_jobs_ahead_and_starts_their_code_when_they_fall_due(
    app: taskwheel.App,
) -> None:
    """A worker claims a plain delayed job up to `CLAIM_AHEAD` before it falls due and
    holds it: its code never starts before its due time (judged by this host's clock,
    which is the database's here), and its started_at is never before it either."""
    @app.task
    async def stamp() -> float:
        return time.time()

    with running_worker(app, poll_interval="60s"):
        handles = [stamp.enqueue(delay=lead) for lead in (0.05, 0.1, 0.15, 0.2, 0.3)]
        wait_for(lambda: all(finished(h) for h in handles), what="the delayed jobs")
    for handle in handles:
        job = handle.refresh().record
        assert job.status is JobStatus.SUCCEEDED
        assert job.started_at is not None
        assert job.started_at >= job.run_at
        assert job.result >= job.run_at.timestamp(), (job.result, job.run_at)


def counting_claims(app: taskwheel.App, monkeypatch: pytest.MonkeyPatch) -> list[ClaimRequest]:
    """The claims the app's store answers from now on, in order: on the claims'
    thread, or at once on an idle worker's loop (`Store.try_claim`, counted when it
    answered: otherwise the worker claims on its thread)."""
    claims: list[ClaimRequest] = []
    claim, try_claim = app.store.claim, app.store.try_claim

    def counted(request: ClaimRequest) -> Claim:
        claims.append(request)
        return claim(request)

    def counted_if_answered(request: ClaimRequest) -> Claim | None:
        answer = try_claim(request)
        if answer is not None:
            claims.append(request)
        return answer

    monkeypatch.setattr(app.store, "claim", counted)
    monkeypatch.setattr(app.store, "try_claim", counted_if_answered)
    return claims


def test_a_job_claimed_ahead_and_cancelled_before_it_falls_due_never_starts(
    app: taskwheel.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("taskwheel.worker.worker.CLAIM_AHEAD", 0.9)
    task = app.task(sample_tasks.append_name)
    out = tmp_path / "ran"
    claims = counting_claims(app, monkeypatch)
    with running_worker(app, poll_interval="60s"):
        # Started and listening (its first claim made) before the job exists: a worker
        # still starting on a loaded machine would claim it only once due, and run it.
        wait_for(lambda: claims, what="the worker's first claim")
        job = task.enqueue(str(out), "held", delay="800ms")
        wait_for(lambda: job.refresh().status is JobStatus.RUNNING,
                 what="the job to be claimed ahead of its due time")
        job.cancel()
        wait_for(lambda: finished(job), what="the cancel to end it")
    assert job.refresh().status is JobStatus.CANCELLED
    assert job.attempts()[-1].error == "cancelled before it fell due"
    assert not out.exists()


def test_a_worker_looks_ahead_once_at_a_delayed_job_it_does_not_take(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delayed job of another queue, due within the look ahead: the claim ahead leaves
    it, and the worker claims again at its due time (which makes it ready for its own
    workers), not over and over until then."""
    monkeypatch.setattr("taskwheel.worker.worker.CLAIM_AHEAD", 0.5)
    app.task(sample_tasks.ok)
    elsewhere = app.task(name="elsewhere", queue="other")(sample_tasks.ok)
    claims = counting_claims(app, monkeypatch)
    with running_worker(app, poll_interval="60s", queues=["default"]):
        wait_for(lambda: claims, what="the worker's first claim")
        job = elsewhere.enqueue(1, delay="600ms")
        wait_for(lambda: job.refresh().status is JobStatus.QUEUED, what="the job to fall due")
        wait_for(lambda: len(claims) >= 3, what="the claim at its due time")
    # The first, the one ahead, the one at its due time (which made it ready), and the
    # wake-up that readiness sends; looking again and again would be a hundred.
    assert len(claims) <= 5, len(claims)


def test_a_delayed_job_enqueued_while_a_claim_is_on_its_way_still_moves_the_alarm(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim's answer says when the next delayed job is due, as of its statement; a
    delayed job committed after that statement, whose wake-up arrives before the answer,
    still sets the worker's alarm (maintenance, which would promote it, looks only once
    an hour here, and the poll interval is a minute)."""
    task = app.task(sample_tasks.ok)
    store = app.store
    claim = store.claim
    slipped: list[taskwheel.JobHandle] = []

    def claim_then_enqueue(request: ClaimRequest) -> Claim:
        answer = claim(request)
        if not slipped and not answer.jobs and answer.next_due is None:
            slipped.append(task.enqueue(3, delay="300ms"))  # its wake-up is on its way
            wait_for(lambda: worker._due_heard is not None, what="the wake-up to be heard")
        return answer

    monkeypatch.setattr(store, "claim", claim_then_enqueue)
    # Every claim on the claims' thread, where a wake-up can arrive while it is on its
    # way (one at once on the loop is answered before the loop reads any).
    monkeypatch.setattr(store, "try_claim", lambda request: None)
    quiet = MaintenanceSettings.build(every="1h")
    with running_worker(app, poll_interval="60s", maintenance=quiet) as worker:
        wait_for(lambda: slipped, what="a claim to let a delayed job slip past it")
        [job] = slipped
        assert job.result(timeout=5) == 3


def test_a_delayed_job_never_starts_early(app: taskwheel.App, tmp_path: Path) -> None:
    stamp = app.task(name="stamp")(sample_tasks.ok)
    with running_worker(app, poll_interval="60s"):
        before = app.store.now()
        job = stamp.enqueue("late", delay="400ms")
        assert job.status is JobStatus.SCHEDULED
        assert job.result(timeout=10) == "late"
    due = job.record.run_at.timestamp()
    started = job.attempts()[0].started_at.timestamp()
    # Both times are the database's own, so the promise holds exactly ...
    assert started >= due
    # ... while `before` is the store's estimate of that clock, off by up to half a
    # round trip (a loaded machine's 0.3 ms was seen): the due time is the delay after it.
    assert due >= before + 0.4 - 0.01
    # ... and not much later: the worker timed its wake-up to the due time.
    assert started <= before + 0.4 + 0.5


def test_dispatch_order_is_priority_then_deadline_then_due_time(
    app: taskwheel.App, tmp_path: Path
) -> None:
    task = app.task(sample_tasks.append_name)
    out = str(tmp_path / "order")
    handles = [
        task.enqueue(out, "low", priority=0),
        task.enqueue(out, "high-no-deadline", priority=9),
        task.enqueue(out, "high-late-deadline", priority=9, deadline="2h"),
        task.enqueue(out, "high-early-deadline", priority=9, deadline="1h"),
        task.enqueue(out, "mid", priority=5),
    ]
    with running_worker(app, concurrency=1):
        wait_for(lambda: all(finished(h) for h in handles), what="every job to end")
    assert Path(out).read_text().split() == [
        "high-early-deadline", "high-late-deadline", "high-no-deadline", "mid", "low"
    ]


def test_a_job_past_its_deadline_expires_unless_its_task_runs_late(
    app: taskwheel.App, tmp_path: Path
) -> None:
    strict = app.task(sample_tasks.append_name)
    lenient = app.task(name="lenient", deadline_policy="run_late")(sample_tasks.append_name)
    out = str(tmp_path / "ran")
    expired = strict.enqueue(out, "strict", deadline="100ms")
    late = lenient.enqueue(out, "lenient", deadline="100ms")
    wait_for(lambda: app.store.now() > expired.record.deadline.timestamp() + 0.01,  # type: ignore[union-attr]
             what="the deadlines to pass")
    with running_worker(app):
        wait_for(lambda: finished(expired) and finished(late), what="both jobs to end")
    assert expired.status is JobStatus.EXPIRED
    assert late.status is JobStatus.SUCCEEDED
    assert Path(out).read_text().split() == ["lenient"]


def test_retry_backoff_waits_between_attempts(app: taskwheel.App) -> None:
    task = app.task(retry=Retry(max_attempts=3, base="150ms", backoff="exponential", jitter=0))(
        sample_tasks.fail_always
    )
    job = task.enqueue()
    with running_worker(app):
        wait_for(lambda: finished(job), what="the job to use up its attempts")
    a1, a2, a3 = job.attempts()
    # A retry claimed ahead of its due time (PostgreSQL) starts at it exactly: the
    # difference of two times rounded to the microsecond may miss the backoff by one.
    assert a2.started_at - a1.ended_at >= timedelta(seconds=0.15, microseconds=-1)
    assert a3.started_at - a2.ended_at >= timedelta(seconds=0.30, microseconds=-1)
