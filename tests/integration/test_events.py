"""What the worker, the scheduler and the maintenance announce on the event hook, and
that a failing handler never fails a job."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

import taskwheel
from taskwheel.clock import ManualClock
from taskwheel.events import Event, EventKind, Middleware
from taskwheel.maintenance import LEASE, MaintenanceSettings
from taskwheel.scheduler import Scheduler, SchedulerSettings, partition_lease
from waiting import wait_for

from . import sample_tasks
from .conftest import finished, migrated_app, running_worker

K = EventKind


class Recorder:
    """Every event, as a handler would see it (handlers run on several threads)."""

    def __init__(self, app: taskwheel.App) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        app.store.events.attach(self)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, job_id: int) -> list[tuple[EventKind, str | None]]:
        return [(e.kind, e.metadata.get("outcome")) for e in list(self.events)
                if e.job_id == job_id and e.kind is not K.JOB_ENQUEUED]

    def count(self, kind: EventKind, source: str | None = None) -> int:
        return sum(1 for e in list(self.events)
                   if e.kind is kind and (source is None or e.source == source))


def test_the_worker_announces_each_job_from_claim_to_outcome(app: taskwheel.App) -> None:
    seen = Recorder(app)

    @app.task(pass_context=True)
    def look(ctx: taskwheel.Context) -> list[bool]:
        mine = [e.kind for e in list(seen.events) if e.job_id == ctx.job_id]
        return [K.JOB_STARTED in mine, K.JOB_FINISHED in mine]

    flaky = app.task(name="flaky", retry=taskwheel.Retry(max_attempts=2, base="10ms",
                                                          jitter=0))(sample_tasks.fail_always)
    looked, doomed = look.enqueue(), flaky.enqueue()
    with running_worker(app) as worker:
        assert looked.result(timeout=10) == [True, False]  # started before, finished after
        wait_for(lambda: finished(doomed), what="the doomed job to end")
        wait_for(lambda: seen.count(K.JOB_DEAD) == 1, what="the dead job announced")
        stats = worker.stats
    assert seen.of(looked.id) == [(K.JOB_CLAIMED, None), (K.JOB_STARTED, None),
                                  (K.JOB_FINISHED, "succeeded")]
    assert seen.of(doomed.id) == [
        (K.JOB_CLAIMED, None), (K.JOB_STARTED, None), (K.JOB_FINISHED, "failed"),
        (K.JOB_RETRIED, None),
        (K.JOB_CLAIMED, None), (K.JOB_STARTED, None), (K.JOB_FINISHED, "failed"),
        (K.JOB_DEAD, None),
    ]
    done = next(e for e in seen.events if e.kind is K.JOB_FINISHED and e.job_id == looked.id)
    assert (done.task, done.queue, done.namespace, done.source) == (
        "look", "default", "default", worker.id)
    assert min(done.measurements["duration"], done.measurements["wait"]) >= 0
    retried = next(e for e in seen.events if e.kind is K.JOB_RETRIED)
    assert retried.metadata["delay"] == pytest.approx(0.01)
    # The worker's stats are the counts of what it announced.
    assert stats["claimed"] == seen.count(K.JOB_CLAIMED, worker.id) == 3
    assert (stats["succeeded"], stats["failed"]) == (1, 2)
    assert (stats["retried"], stats["dead"], stats["rejected"]) == (1, 1, 0)


def test_a_handler_that_raises_on_every_event_fails_no_job(app: taskwheel.App) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError(f"handler broke on {event.kind}")

    class BrokenMiddleware(Middleware):
        def before_job(self, event: Event) -> None:
            raise RuntimeError("before")

        def after_job(self, event: Event) -> None:
            raise RuntimeError("after")

    app.store.events.attach(broken)
    app.store.events.use(BrokenMiddleware())
    seen = Recorder(app)  # attached after the broken ones: it still hears everything
    task = app.task(sample_tasks.ok)
    flaky = app.task(name="flaky_once", pass_context=True,
                     retry=taskwheel.Retry(max_attempts=3, base="10ms", jitter=0))(
        sample_tasks.checkpoint_then_fail)
    handles = [task.enqueue(n) for n in range(30)]
    resumed = flaky.enqueue()
    with running_worker(app) as worker:
        assert [h.result(timeout=10) for h in handles] == list(range(30))
        assert resumed.result(timeout=10) == {"done": 5}
        late = task.enqueue("after all that")  # the worker is still running
        assert late.result(timeout=10) == "after all that"
        assert worker._loop is not None
    assert seen.count(K.JOB_FINISHED) == 33
    assert seen.count(K.JOB_RETRIED) == 1


def test_middleware_after_hooks_run_in_reverse_order_of_attachment(app: taskwheel.App) -> None:
    calls: list[str] = []

    class Named(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        def before_job(self, event: Event) -> None:
            calls.append(f"{self.name}.before")

        def after_job(self, event: Event) -> None:
            calls.append(f"{self.name}.after:{event.metadata['outcome']}")

    app.store.events.use(Named("outer"))
    detach = app.store.events.use(Named("inner"))
    assert not app.store.events.wants(K.JOB_DEAD)  # only overridden hooks listen
    task = app.task(sample_tasks.ok)
    with running_worker(app):
        assert task.enqueue(1).result(timeout=10) == 1
        detach()
        assert task.enqueue(2).result(timeout=10) == 2
    assert calls == ["outer.before", "inner.before", "inner.after:succeeded",
                     "outer.after:succeeded", "outer.before", "outer.after:succeeded"]


def test_a_replaced_attempts_late_report_is_rejected_and_announced(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker whose heartbeats stall (its connection stuck in the network) loses its
    job's lease: the maintenance rescues the job and another worker runs it again; the
    first attempt, ending before its worker learned it was replaced, reports an outcome
    that is refused and announced."""
    real_heartbeat = app.store.heartbeat
    stalled: set[str] = set()

    def heartbeat(worker_id: str, ttl: float, leases: Mapping[int, int]) -> dict[int, bool]:
        if worker_id in stalled and leases:
            time.sleep(1.5)  # past the lease (300 ms) and the first attempt's end
        return real_heartbeat(worker_id, ttl, leases)

    monkeypatch.setattr(app.store, "heartbeat", heartbeat)
    seen = Recorder(app)

    @app.task(pass_context=True)
    def slow_first(ctx: taskwheel.Context) -> int:
        if ctx.attempt == 1:
            time.sleep(1.0)  # the lease (300 ms) lapses meanwhile
        return ctx.attempt

    every = MaintenanceSettings.build(every="50ms")
    lease = {"lease_ttl": "300ms", "heartbeat": "100ms", "maintenance": every}
    with running_worker(app, concurrency=1, **lease) as first:
        stalled.add(first.id)
        job = slow_first.enqueue()
        wait_for(lambda: job.refresh().record.worker_id == first.id,
                 what="the first worker to claim the job")
        with running_worker(app, **lease) as second:
            assert job.result(timeout=10) == 2
            wait_for(lambda: seen.count(K.REPORT_REJECTED) == 1, what="the late report refused")
            stats = Counter(first.stats) + Counter(second.stats)
    assert job.record.worker_id == second.id
    history = seen.of(job.id)
    # The rescue is announced from the maintenance thread, maybe after the new claim.
    assert Counter(history) == Counter([
        (K.JOB_CLAIMED, None), (K.JOB_STARTED, None),
        (K.JOB_RESCUED, "requeued"),
        (K.JOB_CLAIMED, None), (K.JOB_STARTED, None), (K.JOB_FINISHED, "succeeded"),
        (K.JOB_FINISHED, "succeeded"), (K.REPORT_REJECTED, "succeeded"),
    ])
    assert history[:2] == [(K.JOB_CLAIMED, None), (K.JOB_STARTED, None)]
    rejected = next(e for e in seen.events if e.kind is K.REPORT_REJECTED)
    assert rejected.source == first.id
    assert (stats["rescued"], stats["rejected"], stats["succeeded"]) == (1, 1, 2)


# -- the scheduler ------------------------------------------------------------------------

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + 0.5)


@pytest.fixture
def scheduled_app(
    backend: str, tmp_path: Path, clock: ManualClock
) -> Iterator[taskwheel.App]:
    with migrated_app(backend, tmp_path, clock) as application:
        application.task(name="report")(sample_tasks.ok)
        yield application


def test_the_scheduler_announces_fires_misfires_and_its_leases(
    scheduled_app: taskwheel.App, clock: ManualClock,
) -> None:
    app = scheduled_app
    seen = Recorder(app)
    schedule = app.add_schedule("minutely", "report", every="60s", args=["m"],
                                misfire="run_once")
    s = Scheduler(app, SchedulerSettings.build(partitions=4), sync=False)
    s.step()
    won = {e.metadata["lease"] for e in seen.events if e.kind is K.LEASE_WON}
    assert won == {LEASE, *(partition_lease(k) for k in range(4))}
    clock.set(T0 + 60)
    s.step()
    clock.set(T0 + 5 * 60 + 30)  # down for four and a half minutes
    s.step()
    fired = [e for e in seen.events if e.kind is K.SCHEDULE_FIRED]
    assert [(e.metadata["fire_at"], e.metadata["result"], e.task) for e in fired] == [
        (T0 + 60, "created", "report"), (T0 + 120, "created", "report")]
    assert all(e.metadata["schedule"] == "minutely" and e.job_id for e in fired)
    [missed] = [e for e in seen.events if e.kind is K.SCHEDULE_MISFIRED]
    assert missed.metadata == {"schedule_id": schedule.id, "schedule": "minutely",
                               "policy": "run_once", "missed_from": T0 + 120,
                               "next_fire_at": T0 + 360}
    assert missed.measurements == {"late": 210.0, "fires": 1}
    assert (s.stats["fired"], s.stats["misfired"]) == (2, 1)
    s.resign()
    lost = {e.metadata["lease"]: e.metadata["reason"] for e in seen.events
            if e.kind is K.LEASE_LOST}
    assert lost == {lease: "resigned" for lease in won}
    assert Counter(e.source for e in seen.events if e.kind in (K.LEASE_WON, K.LEASE_LOST)) == {
        s.id: 10}


@pytest.mark.parametrize(("late", "misfired"), [(0.05, False), (0.15, False), (0.35, True)])
def test_a_fire_that_drops_instants_at_the_catch_up_bound_is_a_misfire(
    scheduled_app: taskwheel.App, clock: ManualClock, late: float, misfired: bool,
) -> None:
    """Every 100 ms, at most two fires per plan: 350 ms late, within the 1 s grace, two
    instants fire and the third is dropped."""
    app = scheduled_app
    seen = Recorder(app)
    schedule = app.add_schedule("fast", "report", every="100ms", args=["f"], max_catch_up=2)
    due = schedule.next_fire_epoch
    assert due is not None
    s = Scheduler(app, SchedulerSettings.build(), sync=False)
    s.step()
    clock.set(due + late)
    s.step()
    assert (s.stats["misfired"] == 1) is misfired
    assert seen.count(K.SCHEDULE_MISFIRED) == s.stats["misfired"]
