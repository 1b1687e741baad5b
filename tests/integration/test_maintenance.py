"""Maintenance: small duties run by whichever process holds the one maintenance lease,
a scheduler or a worker; driven step by step with a manual clock, on both stores.

Time moves only when a test moves it: `Maintenance.step(now)` does what is due and says
when to call it next, as `Scheduler.step` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel.clock import ManualClock
from taskwheel.errors import StoreUnavailable
from taskwheel.events import Event, EventKind
from taskwheel.jobs import AttemptOutcome, JobFilter, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance import LEASE, Maintenance, MaintenanceSettings
from taskwheel.scheduler import Scheduler, SchedulerSettings
from taskwheel.stores.base import WorkerRegistration
from taskwheel.worker import Worker, WorkerSettings
from waiting import wait_for

from . import sample_tasks
from .conftest import migrated_app, running_worker

T0 = 1_700_000_000.0  # whole seconds: times survive the round trip through datetimes


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(backend: str, tmp_path: Path, clock: ManualClock) -> Iterator[taskwheel.App]:
    with migrated_app(backend, tmp_path, clock) as application:
        application.task(name="report")(sample_tasks.ok)
        application.task(name="once", guarantee="at_most_once")(sample_tasks.ok)
        yield application


def maintenance(app: taskwheel.App, holder: str, **settings: Any) -> Maintenance:
    return Maintenance(app.store, app.namespace, holder, MaintenanceSettings.build(**settings),
                       lease_ttl=3.0, renew=1.0, standby_poll=0.5)


def recorded(app: taskwheel.App, *kinds: EventKind) -> list[Event]:
    seen: list[Event] = []
    app.store.events.attach(seen.append, kinds)
    return seen


def passes(events: list[Event], duty: str) -> list[float]:
    return [e.at for e in events if e.kind is EventKind.MAINTENANCE_RAN
            and e.metadata["duty"] == duty]


def test_each_duty_runs_on_its_own_interval_while_the_lease_is_held(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    events = recorded(app, EventKind.MAINTENANCE_RAN)
    m = maintenance(app, "m1", every="2s", rescue_every="1s", prune_every="5s")
    wake = m.step(clock.now())
    assert m.holding
    while wake <= T0 + 10:
        assert wake > clock.now()  # a step never asks to be called again at once
        clock.set(wake)
        wake = m.step(clock.now())
    assert passes(events, "rescue") == [T0 + s for s in range(11)]
    assert passes(events, "expire") == [T0 + s for s in range(0, 11, 2)]
    assert passes(events, "release") == [T0 + s for s in range(0, 11, 2)]
    assert passes(events, "prune") == [T0, T0 + 5, T0 + 10]
    assert passes(events, "promote") == [T0 + s for s in range(0, 11, 2)]


def test_the_promoter_runs_at_the_instant_the_next_delayed_job_falls_due(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    job = app.enqueue("report", ["later"], delay="10.5s")
    m = maintenance(app, "m1", every="1m")
    assert m.step(clock.now()) == T0 + 1  # the lease's renewal comes first
    clock.set(T0 + 1)
    assert m.step(clock.now()) == T0 + 2
    while clock.now() < T0 + 10:
        clock.set(m.step(clock.now()))
    assert clock.now() == T0 + 10
    assert m.step(clock.now()) == T0 + 10.5  # the due instant, before the next renewal
    clock.set(T0 + 10.5)
    m.step(clock.now())
    assert job.refresh().status is JobStatus.QUEUED
    assert m.stats["promoted"] == 1


def test_exactly_one_process_maintains_and_a_standby_takes_over_when_the_lease_lapses(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    first, second = maintenance(app, "first"), maintenance(app, "second")
    leases = recorded(app, EventKind.LEASE_WON, EventKind.LEASE_LOST)
    ran = recorded(app, EventKind.MAINTENANCE_RAN)
    for tick in range(20):
        clock.set(T0 + tick / 4)
        first.step(clock.now())
        second.step(clock.now())
        assert first.holding != second.holding
    # (every process rescues expired leases, the holder alone does the rest)
    assert {e.source for e in ran if e.metadata["duty"] != "rescue"} == {"first"}
    # `first` stops (killed): its lease lapses 3 s after its last renewal (at T0 + 4).
    clock.set(T0 + 6.9)
    assert second.step(clock.now()) == T0 + 7.4  # still held: look again after 0.5 s
    assert not second.holding
    clock.set(T0 + 7.4)
    second.step(clock.now())
    assert second.holding
    assert app.store.lease_holder(app.namespace, LEASE) == "second"
    assert [(e.kind, e.source) for e in leases] == [
        (EventKind.LEASE_WON, "first"), (EventKind.LEASE_WON, "second")
    ]
    # `first` comes back: it finds the lease taken and stands down.
    first.step(clock.now())
    assert not first.holding
    assert (leases[-1].kind, leases[-1].source) == (EventKind.LEASE_LOST, "first")
    second.resign()
    first.step(clock.now() + 0.5)
    assert first.holding


def test_a_standby_rescues_expired_leases_without_waiting_for_the_maintenance_lease(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    # The holder of the maintenance lease dies holding a job whose lease runs out
    # before the maintenance lease does: the job is rescued when its own lease
    # expires, not once the maintenance lease has lapsed as well.
    first, second = maintenance(app, "first"), maintenance(app, "second")
    first.step(clock.now())
    second.step(clock.now())
    assert first.holding
    job = app.enqueue("report", ["x"])
    [claimed] = app.store.claim_jobs(app.namespace, "first", ["default"], 1, lease_ttl=2).jobs
    assert claimed.id == job.id
    clock.set(T0 + 1)
    first.step(clock.now())  # the last renewal: the maintenance lease lasts until T0 + 4
    rescued = recorded(app, EventKind.JOB_RESCUED)
    clock.set(T0 + 2.5)  # `first` is dead; the job's lease expired at T0 + 2
    while clock.now() < T0 + 3.5:
        clock.set(max(clock.now(), second.step(clock.now())))
    assert app.store.lease_holder(app.namespace, LEASE) == "first"
    assert not second.holding
    assert [(e.job_id, e.source) for e in rescued] == [(job.id, "second")]
    assert job.refresh().status is JobStatus.QUEUED
    # The other duties stay with the lease holder.
    assert {duty: count for duty, count in second.stats.items() if count} == {"rescued": 1}


def test_a_scheduler_and_a_worker_compete_for_the_same_lease(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    scheduler = Scheduler(app, SchedulerSettings.build(), sync=False)
    worker = Worker(app, WorkerSettings.build(lease_ttl="3s", heartbeat="1s"))
    worker.maintenance.step(clock.now())  # the worker comes first
    scheduler.step()
    assert worker.maintenance.holding
    assert not scheduler.leader
    assert scheduler.partitions  # it fires schedules all the same
    # The worker dies: 3 s later the scheduler maintains.
    clock.set(T0 + 3.1)
    scheduler.step()
    assert scheduler.leader
    assert app.store.lease_holder(app.namespace, LEASE) == scheduler.id
    worker.maintenance.step(clock.now())
    assert not worker.maintenance.holding
    scheduler.resign()
    worker.maintenance.step(clock.now() + 1)
    assert worker.maintenance.holding


def test_the_rescuer_requeues_or_fails_expired_leases_and_announces_each_job(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    again = app.enqueue("report", ["again"])
    once = app.enqueue("once", ["once"])
    claim = app.store.claim_jobs(app.namespace, "ghost", ["default"], 10, lease_ttl=5)
    assert {j.id for j in claim.jobs} == {again.id, once.id}
    rescued = recorded(app, EventKind.JOB_RESCUED)
    m = maintenance(app, "m1")
    m.step(clock.now())
    assert rescued == []  # their leases live
    clock.set(T0 + 6)
    m.step(clock.now())
    assert {(e.job_id, e.metadata["outcome"], e.source) for e in rescued} == {
        (again.id, "requeued", "m1"), (once.id, "failed", "m1")
    }
    assert again.refresh().status is JobStatus.QUEUED
    assert once.refresh().status is JobStatus.DEAD
    assert [a.outcome for a in again.attempts()] == [AttemptOutcome.LEASE_EXPIRED]
    assert m.stats["rescued"] == 2


def test_a_duty_that_fails_is_retried_and_the_others_still_run(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(namespace: str) -> int:
        raise RuntimeError("the expiry query broke")

    monkeypatch.setattr(app.store, "expire_missed_deadlines", broken)
    app.enqueue("report", ["x"])
    app.store.claim_jobs(app.namespace, "ghost", ["default"], 1, lease_ttl=1)
    m = maintenance(app, "m1")
    m.step(clock.now())
    clock.set(T0 + 2)
    m.step(clock.now())
    assert m.stats["rescued"] == 1
    assert m.duties[2].name == "expire"
    assert m.duties[2].next_at == T0 + 3  # tried again after its interval


def lost_the_store_with_a_vanished_worker_s_job(
    app: taskwheel.App, clock: ManualClock, grace: str,
) -> tuple[taskwheel.JobHandle, Maintenance]:
    """A job claimed by a worker that vanished (its lease ends at T0 + 1), and a
    maintenance with ``grace`` whose owner lost the store at T0."""
    job = app.enqueue("report", ["x"])
    app.store.claim_jobs(app.namespace, "ghost", ["default"], 1, lease_ttl=1)
    m = maintenance(app, "m1", rescue_grace=grace)
    m.step(clock.now())
    m.forget()
    return job, m


def status_after_a_step(
    m: Maintenance, clock: ManualClock, job: taskwheel.JobHandle, moment: float,
) -> JobStatus:
    clock.set(moment)
    m.step(clock.now())
    return job.refresh().status


def test_once_the_store_is_back_the_rescue_waits_its_grace(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of reach, the store lets every lease lapse by its clock, the live workers'
    too: once it is back, nothing is rescued until it has been back for the grace (a
    live worker renews meanwhile). Back means a step that reached it: the owner's loss
    of the store (`forget`), or a rescue that failed, starts the wait over."""
    job, m = lost_the_store_with_a_vanished_worker_s_job(app, clock, "4s")
    # Back at T0 + 2 (the lease expired at T0 + 1): the grace runs until T0 + 6.
    assert status_after_a_step(m, clock, job, T0 + 2) is JobStatus.RUNNING
    assert status_after_a_step(m, clock, job, T0 + 5.5) is JobStatus.RUNNING
    assert m.stats["rescued"] == 0

    rescue = app.store.rescue_expired_leases
    failing = [True]

    def unreachable(namespace: str) -> Any:
        if failing[0]:
            raise StoreUnavailable("rescue_expired_leases", "connection refused")
        return rescue(namespace)

    monkeypatch.setattr(app.store, "rescue_expired_leases", unreachable)
    # The grace is over, and the rescue fails: out of reach again.
    assert status_after_a_step(m, clock, job, T0 + 6.5) is JobStatus.RUNNING
    failing[0] = False
    # Back at T0 + 7.5: nothing until T0 + 11.5 (the rescue's passes a second apart).
    for moment in (T0 + 7.5, T0 + 11):
        assert status_after_a_step(m, clock, job, moment) is JobStatus.RUNNING
    assert status_after_a_step(m, clock, job, T0 + 12) is JobStatus.QUEUED
    assert m.stats["rescued"] == 1


def test_once_the_store_is_back_the_rescue_waits_for_the_slowest_heartbeat(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    """A registered worker that beats every 3 s may take that long to renew once the
    store is back: the rescue waits twice as long, more than a shorter grace."""
    app.store.register_worker(WorkerRegistration(
        id="slow", namespace=app.namespace, hostname="h", pid=1, queues=["default"],
        concurrency=1, pool="async", heartbeat_interval=3.0))
    job, m = lost_the_store_with_a_vanished_worker_s_job(app, clock, "1s")
    # Back at T0 + 2: nothing until T0 + 8.
    for moment in (T0 + 2, T0 + 3, T0 + 5, T0 + 7):
        assert status_after_a_step(m, clock, job, moment) is JobStatus.RUNNING, moment - T0
    assert status_after_a_step(m, clock, job, T0 + 8) is JobStatus.QUEUED


def test_the_pruner_keeps_finished_jobs_for_the_retention_period(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    done = app.enqueue("report", ["done"])
    [job] = app.store.claim_jobs(app.namespace, "w1", ["default"], 1, 30).jobs
    app.store.finish_attempts([Outcome(job.id, job.fence, JobStatus.SUCCEEDED,
                                       AttemptOutcome.SUCCEEDED, '"done"')])
    m = maintenance(app, "m1", retention="1h", prune_every="10m")
    ran = recorded(app, EventKind.MAINTENANCE_RAN)
    for minute in range(0, 60, 5):
        clock.set(T0 + 60 * minute + 1)
        m.step(clock.now())
    assert done.refresh().status is JobStatus.SUCCEEDED  # an hour has not passed
    assert passes(ran, "prune") == [T0 + 1 + 600 * n for n in range(6)]
    clock.set(T0 + 3601)  # the next pass, ten minutes after the last
    m.step(clock.now())
    assert app.store.list_jobs(app.namespace, JobFilter()) == []
    assert m.stats["pruned"] == 1


def test_a_worker_alone_holds_the_maintenance_lease_and_rescues(
    backend: str, tmp_path: Path
) -> None:
    """No scheduler: a worker's maintenance returns a vanished worker's job."""
    with migrated_app(backend, tmp_path) as app:
        task = app.task(sample_tasks.ok)
        job = task.enqueue("again")
        app.store.claim_jobs(app.namespace, "ghost", ["default"], 1, lease_ttl=0.3)
        settings = MaintenanceSettings.build(every="100ms")
        with running_worker(app, lease_ttl="1s", maintenance=settings) as worker:
            assert job.result(timeout=20) == "again"
            assert app.store.lease_holder(app.namespace, LEASE) == worker.id
            assert worker.stats["rescued"] == 1
        assert app.store.lease_holder(app.namespace, LEASE) is None  # given back at stop
        assert [a.outcome for a in job.attempts()] == [
            AttemptOutcome.LEASE_EXPIRED, AttemptOutcome.SUCCEEDED
        ]


def test_a_stopping_worker_hands_the_lease_to_another_at_once(
    backend: str, tmp_path: Path
) -> None:
    with migrated_app(backend, tmp_path) as app, running_worker(app, lease_ttl="60s") as first:
        wait_for(lambda: first.maintenance.holding, what="the first worker to maintain")
        with running_worker(app, lease_ttl="60s", heartbeat="100ms") as second:
            assert not second.maintenance.holding
            first.stop()
            wait_for(lambda: second.maintenance.holding, timeout=5,
                     what="the second worker to take over (far sooner than 60 s)")


def test_maintenance_resumes_a_pause_when_its_time_has_come(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    job = app.enqueue("report").record
    app.client.pause_queue(job.queue, duration="5s")
    m = maintenance(app, "m1", every="1s")
    m.step(clock.now())
    assert app.store.claim_jobs(app.namespace, "w1", [job.queue], 10, 30).jobs == []
    clock.advance(5)
    m.step(clock.now())
    assert app.client.pauses() == []
    assert [j.id for j in app.store.claim_jobs(app.namespace, "w1", [job.queue], 10, 30).jobs
            ] == [job.id]


def test_the_sqlite_pruner_reads_only_the_jobs_it_deletes(tmp_path: Path) -> None:
    """A pass of the pruner holds SQLite's one write lock: it must find its jobs through
    the status index, a range of finished_at per ended status and queue, each lane found
    by one seek, not by reading every finished job."""
    import sqlite3

    from taskwheel.stores.sqlite.connection import Q

    app = taskwheel.App(f"sqlite:///{tmp_path / 'p.db'}", migrate=True)
    app.store.namespaces()  # opened and migrated
    [select] = [sql for sql in Q["prune"] if sql.lstrip().startswith("INSERT INTO temp")]
    conn = sqlite3.connect(tmp_path / "p.db")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS taskwheel_prunable (id INTEGER PRIMARY KEY)")
    plan = " ".join(row[3] for row in conn.execute(
        "EXPLAIN QUERY PLAN " + select, {"namespace": "default", "before": 0.0, "limit": 10}))
    conn.close()
    app.close()
    assert ("USING INDEX taskwheel_jobs_status (namespace=? AND status=? AND queue=? "
            "AND finished_at<?)") in plan, plan
    assert "SCAN taskwheel_jobs" not in plan, plan
    assert "SCAN job" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_the_lease_holder_admits_rated_jobs_and_a_failover_admits_nothing_extra(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    """The admitter runs with the lease (every ``promote_every``); after the holder
    dies, the next holder continues from the same bucket: no start is admitted twice
    and the starts stay within burst + rate * t."""
    call = app.task(name="call", rate=taskwheel.RateLimit(key="api", rate="1/s", burst=3))(
        sample_tasks.ok)
    ids = [call.enqueue().id for _ in range(20)]
    first, second = maintenance(app, "first"), maintenance(app, "second")
    admitted: list[float] = []
    app.store.events.attach(lambda e: admitted.extend([e.at] * int(e.measurements["admitted"])),
                            [EventKind.RATE_ADMITTED])
    for tick in range(16):  # `first` holds the lease for 4 s
        clock.set(T0 + tick / 4)
        first.step(clock.now())
        second.step(clock.now())
        app.store.claim_jobs(app.namespace, "w", ["default"], 100, 60.0)  # start at once
    # `first` dies; its lease lapses 3 s after its last renewal; `second` takes over.
    for tick in range(16, 60):
        clock.set(T0 + tick / 4)
        second.step(clock.now())
        app.store.claim_jobs(app.namespace, "w", ["default"], 100, 60.0)
    assert app.store.lease_holder(app.namespace, LEASE) == "second"
    started = [job for job in app.store.get_jobs(app.namespace, ids)
               if job.status is JobStatus.RUNNING]
    assert len(started) == len(admitted)
    assert len(admitted) >= 3 + 5  # the burst, then about a token a second
    for a in admitted:
        for b in admitted:
            if a <= b:
                assert sum(1 for at in admitted if a <= at <= b) <= 3 + 1.0 * (b - a)
