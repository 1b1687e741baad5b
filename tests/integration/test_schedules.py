"""Schedules fired by the scheduler, driven step by step with a manual clock.

Time moves only when a test moves it: `Scheduler.step` does what is due at the
store clock's now, so misfire, overlap, lease and maintenance behaviour is checked
at exact instants, without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import taskwheel
import taskwheel.scheduler.scheduler as scheduler_module
from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, LeaseLost, ScheduleNotFound
from taskwheel.jobs import AttemptOutcome, Job, JobFilter, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.scheduler import (
    LEASE,
    Scheduler,
    SchedulerSettings,
    partition_lease,
    partition_of,
)
from taskwheel.schedules import FireResult, plan_fires
from waiting import wait_for

from .conftest import RawDatabase, migrated_app

# 2026-01-05 00:00:00 UTC, a Monday: whole minutes from here are fire times of
# "every 60s" and "* * * * *".
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0 + 0.5)


@pytest.fixture
def app(backend: str, tmp_path: Path, clock: ManualClock) -> Iterator[taskwheel.App]:
    with migrated_app(backend, tmp_path, clock) as application:

        @application.task(queue="reports")
        def report(name: str) -> str:
            return name

        yield application


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def scheduler(app: taskwheel.App, **settings: Any) -> Scheduler:
    return Scheduler(app, SchedulerSettings.build(**settings), sync=False)


def fired_jobs(app: taskwheel.App) -> list[Job]:
    jobs = [j for j in app.store.list_jobs(app.namespace, JobFilter(limit=10_000))
            if j.schedule_id is not None]
    return sorted(jobs, key=lambda j: j.id)


def fire_times(app: taskwheel.App) -> list[float]:
    return [j.fire_at.timestamp() for j in fired_jobs(app) if j.fire_at is not None]


def run_step(s: Scheduler, clock: ManualClock, to: float) -> None:
    clock.set(to)
    s.step()


def finish(app: taskwheel.App, job_id: int) -> None:
    claim = app.store.claim_jobs(app.namespace, "w1", ["reports"], 100, 30)
    for job in claim.jobs:
        if job.id == job_id:
            app.store.finish_attempts([Outcome(job.id, job.fence, JobStatus.SUCCEEDED,
                                               AttemptOutcome.SUCCEEDED, "null")])
        else:
            app.store.release_jobs("w1", {job.id: job.fence})


# -- declaring -------------------------------------------------------------------------------


def test_declared_schedules_are_upserted_by_name_and_unchanged_ones_left_alone(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.schedule("nightly", "report", cron="0 3 * * *", timezone="Europe/Berlin",
                 args=["sales"])
    [(first, changed)] = app.sync_schedules()
    assert changed
    assert first.next_fire_at == datetime(2026, 1, 5, 2, tzinfo=UTC)

    app.store.set_schedule_paused(app.namespace, "nightly", True)
    [(again, changed)] = app.sync_schedules()
    assert not changed
    assert again.paused
    assert again.updated_at >= first.updated_at

    app.schedule("nightly", "report", cron="0 4 * * *", timezone="Europe/Berlin",
                 args=["sales"])
    [(updated, changed)] = app.sync_schedules()
    assert changed
    assert updated.id == first.id
    assert updated.paused
    assert updated.next_fire_at == datetime(2026, 1, 5, 3, tzinfo=UTC)


def another_app(app: taskwheel.App, name: str) -> taskwheel.App:
    """A second app on the same store and namespace (say, another service's)."""
    other = taskwheel.App(app.database_url, store=app.store, namespace=app.namespace,
                          name=name)
    other.task(name="report", queue="reports")(lambda name: name)
    return other


def undeclared_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "no longer" in r.getMessage()]


def test_the_app_name_defaults_to_the_module_that_creates_it() -> None:
    assert taskwheel.App("sqlite://:memory:").name == __name__
    assert taskwheel.App("sqlite://:memory:", name="billing").name == "billing"
    with pytest.raises(InvalidInput, match="name"):
        taskwheel.App("sqlite://:memory:", name="two words")


def test_a_schedule_removed_from_the_code_is_reported_once_and_keeps_firing(
    app: taskwheel.App, caplog: pytest.LogCaptureFixture,
) -> None:
    app.schedule("kept", "report", every="1h", args=["k"])
    app.schedule("dropped", "report", every="1h", args=["d"])
    assert scheduler(app).sync_schedules() == []
    assert {s.name: s.declared_by for s in app.client.list_schedules()} == {
        "kept": app.name, "dropped": app.name
    }

    del app.schedules["dropped"]  # the next deploy no longer declares it
    caplog.set_level("WARNING", logger="taskwheel.scheduler")
    found = scheduler(app).sync_schedules()

    assert [s.name for s in found] == ["dropped"]
    [line] = undeclared_lines(caplog)
    assert "dropped" in line
    assert "--prune-undeclared" in line
    assert not app.get_schedule("dropped").paused  # reported, not touched


def test_a_declared_schedule_that_can_never_fire_is_written_and_warned_about(
    app: taskwheel.App, caplog: pytest.LogCaptureFixture,
) -> None:
    past = datetime.fromtimestamp(app.store.now() - 86_400, UTC)
    app.schedule("ended", "report", every="1h", args=["e"], end=past)
    app.schedule("once", "report", at=past, args=["o"])
    app.schedule("live", "report", every="1h", args=["l"])
    caplog.set_level("WARNING", logger="taskwheel.scheduler")

    scheduler(app).sync_schedules()

    never = sorted(r.getMessage() for r in caplog.records if "will never fire" in r.getMessage())
    assert len(never) == 2
    assert never[0].startswith("schedule ended:")
    assert "change its end" in never[0]
    assert never[1].startswith("schedule once:")
    assert "change its at" in never[1]
    assert {s.name: s.next_fire_at is None for s in app.client.list_schedules()} == {
        "ended": True, "once": True, "live": False}


def test_prune_undeclared_pauses_the_schedules_removed_from_the_code(
    app: taskwheel.App, caplog: pytest.LogCaptureFixture,
) -> None:
    app.schedule("kept", "report", every="1h", args=["k"])
    app.schedule("dropped", "report", every="1h", args=["d"])
    app.sync_schedules()
    del app.schedules["dropped"]
    caplog.set_level("WARNING", logger="taskwheel.scheduler")

    scheduler(app, prune_undeclared=True).sync_schedules()

    assert app.get_schedule("dropped").paused
    assert not app.get_schedule("kept").paused
    [line] = undeclared_lines(caplog)
    assert "dropped" in line
    assert "paused" in line
    caplog.clear()
    assert scheduler(app, prune_undeclared=True).sync_schedules() == []  # once
    assert undeclared_lines(caplog) == []


def test_apps_sharing_a_namespace_do_not_prune_each_others_schedules(
    app: taskwheel.App, caplog: pytest.LogCaptureFixture,
) -> None:
    billing = another_app(app, "billing")
    billing.schedule("invoices", "report", every="1h", args=["i"])
    billing.sync_schedules()
    app.schedule("mine", "report", every="1h", args=["m"])
    # a schedule written by hand (the command line, a script): nobody's declaration
    app.client.upsert_schedule(
        billing.schedule("by-hand", "report", every="1h", args=["h"])
    )
    del billing.schedules["by-hand"]
    caplog.set_level("WARNING", logger="taskwheel.scheduler")

    assert scheduler(app, prune_undeclared=True).sync_schedules() == []

    assert not app.get_schedule("invoices").paused
    assert not app.get_schedule("by-hand").paused
    assert app.get_schedule("by-hand").declared_by is None
    assert app.get_schedule("mine").declared_by == app.name
    assert undeclared_lines(caplog) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"every": "0s"}, "every"),
        ({"every": "-5m"}, "every"),
        ({"every": "1m", "misfire": "sometimes"}, "misfire"),
        ({"every": "1m", "overlap": "never"}, "overlap"),
        ({"cron": "0 9 * * *", "dst_gap": "jump"}, "dst_gap"),
        ({"cron": "0 9 * * *", "dst_fold": "twice"}, "dst_fold"),
        ({"every": "1m", "start": datetime(2026, 2, 1, tzinfo=UTC),
          "end": datetime(2026, 1, 1, tzinfo=UTC)}, "end"),
        ({"cron": "0 9 * * *", "every": "1m"}, "trigger"),
        ({}, "trigger"),
        ({"every": "1m", "timezone": "UTC"}, "timezone"),
        ({"every": "1m", "colour": "red"}, "colour"),
        ({"every": "1m", "args": [object()]}, "args"),
        ({"every": "1m", "args": []}, "args"),  # report takes one argument
        ({"every": "1m", "jitter": "soon"}, "jitter"),
    ],
)
def test_bad_schedule_input_names_the_field_and_writes_nothing(
    app: taskwheel.App, options: dict[str, object], field: str,
) -> None:
    options.setdefault("args", ["x"])
    with pytest.raises(InvalidInput) as caught:
        app.add_schedule("bad", "report", **options)
    assert caught.value.field == field
    assert app.store.list_schedules(app.namespace) == []
    assert "bad" not in app.schedules


def test_a_schedule_of_an_unknown_task_is_refused(app: taskwheel.App) -> None:
    with pytest.raises(InvalidInput) as caught:
        app.add_schedule("ghost", "no_such_task", every="1m")
    assert "no_such_task" in str(caught.value)
    assert app.store.list_schedules(app.namespace) == []


# -- firing on time --------------------------------------------------------------------------


def test_each_instant_fires_exactly_once_with_its_fire_time_on_the_job(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    schedule = app.add_schedule("minutely", "report", every="60s", args=["m"])
    s = scheduler(app)
    s.step()
    assert fired_jobs(app) == []  # not due yet
    for minute in (1, 2, 3):
        run_step(s, clock, T0 + 60 * minute + 0.002)
        s.step()  # a second look at the same instant adds nothing
    assert fire_times(app) == [T0 + 60, T0 + 120, T0 + 180]
    jobs = fired_jobs(app)
    assert {j.status for j in jobs} == {JobStatus.QUEUED}
    assert all(j.queue == "reports" and j.args == ["m"] for j in jobs)
    current = app.get_schedule("minutely")
    assert current.next_fire_at == utc(T0 + 240)
    assert current.last_job_id == jobs[-1].id
    assert current.id == schedule.id


def test_the_wheel_wakes_the_scheduler_at_the_next_fire_time(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("minutely", "report", every="60s", args=["m"])
    # Lease renewal, membership looks and maintenance further off than the fire time;
    # the horizon moves a slice (horizon / 120 = 2.5 s) at a time.
    s = scheduler(app, lease_ttl="10m", standby_poll="5m", horizon="5m", maintenance="10m")
    wake = s.step()
    wakes = 0
    while not fired_jobs(app):  # wake-ups may come early (to extend, to cascade); never late
        assert clock.now() < wake <= T0 + 60
        clock.set(wake)
        wake = s.step()
        wakes += 1
    assert fire_times(app) == [T0 + 60]
    assert clock.now() == T0 + 60
    assert wakes <= 60 / 2.5 + 3


class _Clocks:
    """The two clocks the scheduler's loop reads: the store's (``clock``) and the
    monotonic one it sleeps by, moved together; and the sleeps the loop asked for."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.monotonic_now = 1_000.0
        self.sleeps: list[float] = []

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.monotonic_now += seconds

    def monotonic(self) -> float:
        return self.monotonic_now

    def __getattr__(self, name: str) -> Any:  # the rest of the time module
        return getattr(time, name)


def test_the_loop_sleeps_from_the_end_of_a_step_to_the_time_it_returned(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step takes time (a fire is a transaction): the sleep after it is measured from
    when it ended, not from when it began, or the loop wakes early by the step's length
    and steps once more for nothing before every fire."""
    s = scheduler(app, lease_ttl="10m", standby_poll="5m", horizon="5m", maintenance="10m")
    clocks = _Clocks(clock)
    step = s.step

    def slow_step() -> float:
        began = clock.now()
        step()
        clocks.advance(0.5)
        return began + 5.0  # the next step: 4.5 s after this one ended

    def select_once(*descriptors: Any) -> tuple[list[int], list[int], list[int]]:
        clocks.sleeps.append(descriptors[3])
        s.stop()  # one sleep is enough
        return [], [], []

    monkeypatch.setattr(s, "step", slow_step)
    monkeypatch.setattr(scheduler_module, "time", clocks)
    monkeypatch.setattr(scheduler_module, "select", SimpleNamespace(select=select_once))
    s.run(install_signal_handlers=False)
    assert clocks.sleeps == [4.5]


def test_a_once_schedule_fires_once_then_is_done(app: taskwheel.App, clock: ManualClock) -> None:
    app.add_schedule("launch", "report", at=datetime(2026, 1, 5, 0, 10, tzinfo=UTC),
                     args=["go"])
    s = scheduler(app)
    run_step(s, clock, T0 + 600)
    run_step(s, clock, T0 + 6000)
    assert fire_times(app) == [T0 + 600]
    assert app.get_schedule("launch").next_fire_at is None


def test_start_and_end_bound_the_fire_times(app: taskwheel.App, clock: ManualClock) -> None:
    app.add_schedule("window", "report", every="60s", args=["w"],
                     start=datetime(2026, 1, 5, 0, 2, tzinfo=UTC),
                     end=datetime(2026, 1, 5, 0, 4, tzinfo=UTC))
    s = scheduler(app)
    for minute in range(1, 8):
        run_step(s, clock, T0 + 60 * minute)
    assert fire_times(app) == [T0 + 120, T0 + 180, T0 + 240]
    assert app.get_schedule("window").next_fire_at is None


def test_the_preview_of_a_stored_schedule_keeps_within_its_start_and_end(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("january", "report", cron="0 9 * * *", args=["j"],
                     start=datetime(2027, 1, 1, tzinfo=UTC),
                     end=datetime(2027, 1, 3, 23, 59, tzinfo=UTC))
    fires = app.get_schedule("january").upcoming(utc(T0), 10)
    assert [fire.at for fire in fires] == [
        datetime(2027, 1, day, 9, tzinfo=UTC) for day in (1, 2, 3)
    ]
    # from inside the window, the remaining fires only
    fires = app.get_schedule("january").upcoming(datetime(2027, 1, 2, 12, tzinfo=UTC), 10)
    assert [fire.at for fire in fires] == [datetime(2027, 1, 3, 9, tzinfo=UTC)]


def test_the_preview_of_a_schedule_whose_end_passed_is_empty(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("window", "report", every="60s", args=["w"],
                     end=datetime(2026, 1, 5, 0, 4, tzinfo=UTC))
    assert [fire.at for fire in app.get_schedule("window").upcoming(utc(T0 + 120), 5)] == [
        utc(T0 + 180), utc(T0 + 240)
    ]
    clock.set(T0 + 600)
    assert app.get_schedule("window").upcoming(utc(T0 + 600), 5) == []


def test_the_preview_of_a_paused_or_done_schedule_is_empty(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("held", "report", every="60s", args=["x"])
    app.store.set_schedule_paused(app.namespace, "held", True)
    assert app.get_schedule("held").upcoming(utc(T0), 5) == []
    app.store.set_schedule_paused(app.namespace, "held", False)
    assert len(app.get_schedule("held").upcoming(utc(T0), 5)) == 5

    app.add_schedule("launch", "report", at=utc(T0 + 600), args=["go"])
    run_step(scheduler(app), clock, T0 + 600)
    done = app.get_schedule("launch")
    assert done.next_fire_at is None
    # asked from before its only fire, a done schedule still fires nothing more
    assert done.upcoming(utc(T0), 5) == []


def test_jitter_delays_each_job_by_a_stable_amount_and_it_is_promoted_when_due(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    schedule = app.add_schedule("spread", "report", every="60s", args=["j"], jitter="30s")
    s = scheduler(app)
    run_step(s, clock, T0 + 60)
    [job] = fired_jobs(app)
    delay = job.run_at.timestamp() - (T0 + 60)
    assert 0 <= delay <= 30
    assert delay == pytest.approx(schedule.definition.run_at(T0 + 60) - (T0 + 60))
    assert job.status is JobStatus.SCHEDULED
    wake = s.step()
    assert wake <= job.run_at.timestamp() + 0.001  # the scheduler wakes to promote it
    run_step(s, clock, job.run_at.timestamp())
    assert app.job(job.id).status is JobStatus.QUEUED


# -- misfire ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        # down from 00:00:30 to 00:05:30: 01, 02, 03, 04 and 05 were missed
        ("catch_up", [60, 120, 180]),  # oldest first, at most max_catch_up=3
        ("skip", []),
        ("run_once", [60]),  # one job, keyed by the first missed time
    ],
)
def test_misfire_policies_after_downtime(
    app: taskwheel.App, clock: ManualClock, misfire: str, expected: list[int],
) -> None:
    app.add_schedule("m", "report", every="60s", args=["x"], misfire=misfire, max_catch_up=3)
    s = scheduler(app)
    run_step(s, clock, T0 + 5 * 60 + 30)
    assert fire_times(app) == [T0 + t for t in expected]
    assert all(j.run_at.timestamp() == T0 + 330 for j in fired_jobs(app))  # all due now
    assert app.get_schedule("m").next_fire_at == utc(T0 + 360)  # then on schedule
    run_step(s, clock, T0 + 360)
    assert fire_times(app)[-1] == T0 + 360


def test_a_fire_late_by_less_than_the_grace_is_on_time(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("g", "report", every="60s", args=["x"], misfire="skip",
                     misfire_grace="5s")
    s = scheduler(app)
    run_step(s, clock, T0 + 64)  # 4 s late: within the grace
    run_step(s, clock, T0 + 126)  # 6 s late: a misfire, skipped
    assert fire_times(app) == [T0 + 60]
    assert app.get_schedule("g").next_fire_at == utc(T0 + 180)


def test_times_missed_while_paused_go_through_the_misfire_policy(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("p", "report", every="60s", args=["x"], misfire="run_once")
    s = scheduler(app)
    run_step(s, clock, T0 + 60)
    app.store.set_schedule_paused(app.namespace, "p", True)
    for minute in range(2, 6):
        run_step(s, clock, T0 + 60 * minute)
    assert fire_times(app) == [T0 + 60]
    listener = app.store.notifier.listen()
    assert listener is not None
    try:
        app.store.set_schedule_paused(app.namespace, "p", False)
        # What `run` does when the listener wakes (PostgreSQL's wake-up takes a moment).
        s.on_notifications(wait_for(listener.read, what="the schedule change's wake-up"))
    finally:
        listener.close()
    run_step(s, clock, T0 + 5 * 60 + 10)
    assert fire_times(app) == [T0 + 60, T0 + 120]  # one job for the four missed times
    assert app.get_schedule("p").next_fire_at == utc(T0 + 360)


# -- overlap ---------------------------------------------------------------------------------


def test_overlap_skip_fires_nothing_while_the_previous_job_is_unfinished(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("o", "report", every="60s", args=["x"], overlap="skip")
    s = scheduler(app)
    run_step(s, clock, T0 + 60)
    run_step(s, clock, T0 + 120)  # the 00:01 job has not run
    assert fire_times(app) == [T0 + 60]
    assert s.stats["overlap_skipped"] == 1
    finish(app, fired_jobs(app)[0].id)
    run_step(s, clock, T0 + 180)
    assert fire_times(app) == [T0 + 60, T0 + 180]


def test_overlap_queue_one_keeps_one_job_waiting_until_the_previous_ends(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("q", "report", every="60s", args=["x"], overlap="queue_one")
    s = scheduler(app)
    run_step(s, clock, T0 + 60)
    run_step(s, clock, T0 + 120)
    run_step(s, clock, T0 + 180)  # one is already waiting: this one is dropped
    first, second = fired_jobs(app)
    assert fire_times(app) == [T0 + 60, T0 + 120]
    assert second.status is JobStatus.WAITING
    finish(app, first.id)  # ending the first makes the waiting one ready, in that transaction
    assert app.job(second.id).status is JobStatus.QUEUED


def test_overlap_allow_fires_regardless(app: taskwheel.App, clock: ManualClock) -> None:
    app.add_schedule("a", "report", every="60s", args=["x"])
    s = scheduler(app)
    for minute in (1, 2, 3):
        run_step(s, clock, T0 + 60 * minute)
    assert [j.status for j in fired_jobs(app)] == [JobStatus.QUEUED] * 3


# -- no duplicates, whatever the schedulers do ------------------------------------------------


def test_a_burst_is_fired_in_pieces_across_partitions_under_each_one_s_lease(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A transaction per partition wrote a step of a few fires in each of many
    # partitions as that many transactions: a piece takes the fires in the order they
    # fell due, whatever their partitions, and holds the lease of each.
    for bound in ("FIRE_BATCH", "FIRE_LEAST", "FIRE_MOST"):  # pieces of 8, however quick
        monkeypatch.setattr(scheduler_module, bound, 8)
    for n in range(60):
        app.add_schedule(f"burst-{n}", "report", at=utc(T0 + 60), args=[str(n)])
    calls: list[tuple[list[int], list[str]]] = []
    fire_due = app.store.fire_due

    def counted(namespace: str, ids: Any, now: float, lease: Any = None, *,
                leases: Any = ()) -> Any:
        calls.append((list(ids), [name for name, _ in leases]))
        return fire_due(namespace, ids, now, lease, leases=leases)

    monkeypatch.setattr(app.store, "fire_due", counted)
    s = scheduler(app, partitions=4)
    run_step(s, clock, T0 + 60)
    assert [len(ids) for ids, _ in calls] == [8] * 7 + [4]
    for ids, leases in calls:
        assert sorted(leases) == sorted({partition_lease(partition_of(i, 4)) for i in ids})
    assert sorted(fire_times(app)) == [T0 + 60] * 60


def test_a_piece_that_meets_a_lost_partition_fires_the_others_and_not_it(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [app.add_schedule(f"burst-{n}", "report", at=utc(T0 + 60), args=[str(n)]).id
           for n in range(40)]
    s = scheduler(app, partitions=4)
    clock.set(T0 + 30)
    s.step()
    assert s.partitions == frozenset(range(4))
    # Another scheduler takes partition 2 behind this one's back.
    app.store.resign(app.namespace, partition_lease(2), s.id)
    assert app.store.elect(app.namespace, partition_lease(2), "thief", 3600.0)
    run_step(s, clock, T0 + 60)
    fired = [job.schedule_id for job in fired_jobs(app)]
    ours = {i for i in ids if partition_of(i, 4) != 2}
    assert sorted(fired) == sorted(ours)
    assert len(ours) < len(ids)  # the burst spans the partitions
    assert 2 not in s.partitions


@pytest.mark.parametrize(("seconds_per_fire", "sizes"), [
    (0.0001, [8, 16, 32, 64, 80]),  # quick pieces grow, up to twice as large each
    (0.01, [8, 4, 2, 2, 2]),  # slow ones shrink, down to half, to the least
])
def test_a_burst_s_pieces_grow_or_shrink_toward_the_time_a_piece_aims_at(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    seconds_per_fire: float, sizes: list[int],
) -> None:
    monkeypatch.setattr(scheduler_module, "FIRE_BATCH", 8)
    monkeypatch.setattr(scheduler_module, "FIRE_LEAST", 2)
    monkeypatch.setattr(scheduler_module, "FIRE_PIECE", 0.01)
    for n in range(sum(sizes)):
        app.add_schedule(f"burst-{n}", "report", at=utc(T0 + 60), args=[str(n)])
    calls: list[int] = []
    fire_due = app.store.fire_due

    def timed(namespace: str, ids: Any, now: float, lease: Any = None, *,
              leases: Any = ()) -> Any:
        calls.append(len(ids))
        clock.advance(seconds_per_fire * len(ids))
        return fire_due(namespace, ids, now, lease, leases=leases)

    monkeypatch.setattr(app.store, "fire_due", timed)
    s = scheduler(app, partitions=1)
    run_step(s, clock, T0 + 60)
    assert calls == sizes
    assert len(fire_times(app)) == sum(sizes)


def test_a_lone_scheduler_holds_every_partition_and_maintains(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    s = scheduler(app)
    s.step()
    assert s.partitions == frozenset(range(16))
    assert s.leader
    assert app.store.lease_holder(app.namespace, LEASE) == s.id


def test_two_schedulers_share_the_partitions_and_fire_each_instant_once(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)]).id
           for n in range(40)]
    first, second = scheduler(app), scheduler(app)
    for tick in range(1, 4 * 60 * 10 + 1):  # four minutes in steps of 100 ms
        clock.set(T0 + 0.5 + tick / 10)
        first.step()
        second.step()
    assert first.partitions | second.partitions == frozenset(range(16))
    assert not first.partitions & second.partitions
    assert len(first.partitions) == len(second.partitions) == 8
    assert first.leader != second.leader  # one of them maintains
    per_schedule: dict[int, list[float]] = {}
    for job in fired_jobs(app):
        assert job.schedule_id is not None
        assert job.fire_at is not None
        per_schedule.setdefault(job.schedule_id, []).append(job.fire_at.timestamp())
    # The first minute may be handed over mid-way; never twice, never missed.
    assert per_schedule == {i: [T0 + 60 * m for m in (1, 2, 3, 4)] for i in ids}


def test_a_dead_schedulers_partitions_go_to_the_survivor_when_its_leases_lapse(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)]).id
           for n in range(40)]
    doomed, survivor = scheduler(app), scheduler(app)
    for tick in range(1, 31):  # three seconds: the partitions are shared out
        clock.set(T0 + 0.5 + tick / 10)
        doomed.step()
        survivor.step()
    assert len(survivor.partitions) == 8
    # `doomed` stops (SIGKILL): no renewal. Its leases lapse 1.5 s after its last one.
    for tick in range(31, 31 + 20):
        clock.set(T0 + 0.5 + tick / 10)
        survivor.step()
    assert survivor.partitions == frozenset(range(16))
    assert survivor.leader
    run_step(survivor, clock, T0 + 60)
    assert sorted(j.schedule_id for j in fired_jobs(app)) == sorted(ids)
    assert set(fire_times(app)) == {T0 + 60}


def test_with_one_partition_one_scheduler_fires_and_the_other_stands_by(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("h", "report", every="60s", args=["x"])
    active = scheduler(app, partitions=1)
    standby = scheduler(app, partitions=1)
    active.step()
    standby.step()
    assert (active.partitions, active.leader) == (frozenset({0}), True)
    assert (standby.partitions, standby.leader) == (frozenset(), False)
    run_step(active, clock, T0 + 60)
    standby.step()
    assert fire_times(app) == [T0 + 60]
    # The active one stops renewing (killed); its leases lapse by the store's clock.
    clock.set(T0 + 60 + 1.6)
    standby.step()
    assert standby.leader
    run_step(standby, clock, T0 + 120)
    assert fire_times(app) == [T0 + 60, T0 + 120]


def test_a_scheduler_that_lost_its_partition_fires_nothing_of_it(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    schedule = app.add_schedule("l", "report", every="60s", args=["x"])
    lease = partition_lease(partition_of(schedule.id, 16))
    deposed = scheduler(app)
    deposed.step()
    clock.set(T0 + 1)
    assert app.store.elect(app.namespace, lease, "someone-else", 10) is False  # still held
    clock.set(T0 + 60)  # lapsed without renewal (TTL 1.5 s); another takes it
    assert app.store.elect(app.namespace, lease, "someone-else", 10)
    plan = plan_fires(app.get_schedule("l"), clock.now())
    assert plan is not None
    with pytest.raises(LeaseLost):
        app.store.fire_schedules(app.namespace, [plan], (lease, deposed.id))
    # The wheel expiry path gives it up quietly.
    deposed._fire([schedule.id], clock.now())
    assert fired_jobs(app) == []
    assert partition_of(schedule.id, 16) not in deposed.partitions


def slow_firing(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    per_schedule: float,
) -> list[int]:
    """Make each fire take ``per_schedule`` seconds of the store's clock (a slow disk, a
    busy machine: firing a burst outlasts the lease's TTL); the ids of the calls, in
    order."""
    real = app.store.fire_due
    calls: list[list[int]] = []

    def fire(namespace: str, ids: Any, now: float, lease: Any = None, *,
             leases: Any = ()) -> Any:
        clock.advance(per_schedule * len(ids))
        calls.append(list(ids))
        return real(namespace, ids, now, lease, leases=leases)

    monkeypatch.setattr(app.store, "fire_due", fire)
    return calls


def test_a_burst_that_outlasts_the_lease_is_fired_without_losing_a_partition(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)]).id
           for n in range(800)]
    s = scheduler(app)  # lease 1.5 s, renewed every 0.5 s
    s.step()
    assert s.partitions == frozenset(range(16))
    slow_firing(app, clock, monkeypatch, per_schedule=0.003)  # 2.4 s for the 800
    run_step(s, clock, T0 + 60)  # one step fires the whole burst
    assert clock.now() >= T0 + 60 + 2.4  # the firing outlasted the lease...
    assert s.partitions == frozenset(range(16))  # ...which was renewed meanwhile
    assert s.stats["terms"] == 1
    assert sorted(j.schedule_id for j in fired_jobs(app) if j.schedule_id) == sorted(ids)
    assert set(fire_times(app)) == {T0 + 60}


def test_a_partition_lost_in_the_middle_of_a_burst_fires_nothing_more(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    schedules = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)])
                 for n in range(800)]
    s = scheduler(app)
    s.step()
    calls = slow_firing(app, clock, monkeypatch, per_schedule=0.003)
    real = app.store.fire_due
    lost = 15
    lease = partition_lease(lost)

    def taken_after_the_first(namespace: str, ids: Any, now: float, held: Any = None, *,
                              leases: Any = ()) -> Any:
        if len(calls) == 1:  # another scheduler takes partition 15 mid-burst
            app.store.resign(app.namespace, lease, s.id)
            assert app.store.elect(app.namespace, lease, "someone-else", 60)
        return real(namespace, ids, now, held, leases=leases)

    monkeypatch.setattr(app.store, "fire_due", taken_after_the_first)
    run_step(s, clock, T0 + 60)
    assert lost not in s.partitions
    assert s.partitions == frozenset(range(15))
    fired = {j.schedule_id for j in fired_jobs(app)}
    # The lost partition's schedules fired while it was held (the first piece, which
    # spans the partitions) and nothing of it after; nothing else was missed or doubled.
    before = {i for i in calls[0] if partition_of(i, 16) == lost}
    assert before
    assert fired == {x.id for x in schedules if partition_of(x.id, 16) != lost} | before
    assert len(fired_jobs(app)) == len(fired)
    for x in schedules:
        if partition_of(x.id, 16) == lost and x.id not in before:  # left to its new holder
            stored = app.get_schedule(x.name)
            assert stored.next_fire_at is not None
            assert stored.next_fire_at.timestamp() == T0 + 60


def test_a_load_that_outlasts_the_lease_renews_it_between_slices(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fire times spread over the minute ahead: the horizon is loaded a slice at a time.
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)],
                            start=utc(T0 + 1 + n / 2)).id for n in range(100)]
    real = app.store.schedules_due
    holders: list[str | None] = []

    def slow(namespace: str, until: float, after: float | None = None,
             partitions: Any = None) -> list[tuple[int, float]]:
        rows = real(namespace, until, after=after, partitions=partitions)
        clock.advance(0.025 * len(rows))  # 2.5 s for the 100: longer than the lease
        holders.append(app.store.lease_holder(app.namespace, partition_lease(0)))
        return rows

    monkeypatch.setattr(app.store, "schedules_due", slow)
    s = scheduler(app)
    s.step()
    assert clock.now() > T0 + 2.9  # the load took 2.5 s of the clock
    assert len(s._timers) == len(ids)  # the whole horizon is loaded...
    assert set(holders) == {s.id}  # ...and the lease was never let lapse meanwhile
    while clock.now() < T0 + 60.5:
        run_step(s, clock, clock.now() + 0.1)
    assert sorted(j.schedule_id for j in fired_jobs(app) if j.schedule_id) == sorted(ids)
    assert s.stats["terms"] == 1


def test_a_sparse_horizon_is_loaded_in_a_few_reads(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The slices widen while reading them is quick: a standby taking over a partition
    # of few schedules fires its first one without reading 240 empty slices first.
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)],
                            start=utc(T0 + 1 + 10 * n)).id for n in range(5)]
    real = app.store.schedules_due
    reads: list[int] = []

    def counted(namespace: str, until: float, after: float | None = None,
                partitions: Any = None) -> list[tuple[int, float]]:
        rows = real(namespace, until, after=after, partitions=partitions)
        clock.advance(0.0002)  # a quick read
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(app.store, "schedules_due", counted)
    s = scheduler(app)
    s.step()
    assert len(s._timers) == len(ids)  # the whole horizon is loaded...
    assert sum(reads) == len(ids)  # ...each schedule read once...
    assert len(reads) <= 12  # ...in a few widening slices (240 equal ones before)


def test_schedulers_sharing_the_partitions_read_only_their_own_schedules(
    app: taskwheel.App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [app.add_schedule(f"s{n}", "report", every="60s", args=[str(n)]).id
           for n in range(40)]
    first, second = scheduler(app), scheduler(app)
    for tick in range(1, 31):  # three seconds: the partitions are shared out
        clock.set(T0 + 0.5 + tick / 10)
        first.step()
        second.step()
    assert len(first.partitions) == len(second.partitions) == 8
    read: list[int] = []
    real = app.store.schedules_due

    def reading(namespace: str, until: float, after: float | None = None,
                partitions: Any = None) -> list[tuple[int, float]]:
        rows = real(namespace, until, after=after, partitions=partitions)
        read.extend(schedule_id for schedule_id, _ in rows)
        return rows

    monkeypatch.setattr(app.store, "schedules_due", reading)
    for tick in range(31, 31 + 61 * 10):  # a minute: every next fire time comes into view
        clock.set(T0 + 0.5 + tick / 10)
        first.step()
        second.step()
    assert len(fire_times(app)) == len(ids)
    # Each schedule's next fire time was read once, by its partition's holder alone.
    assert sorted(read) == sorted(ids)


def test_the_same_plan_applied_twice_creates_one_job(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("d", "report", every="60s", args=["x"])
    clock.set(T0 + 60)
    plan = plan_fires(app.get_schedule("d"), clock.now())
    assert plan is not None
    first = app.store.fire_schedules(app.namespace, [plan])
    second = app.store.fire_schedules(app.namespace, [plan])
    assert [f.result for f in first] == [FireResult.CREATED]
    assert [f.result for f in second] == [FireResult.STALE]
    assert fire_times(app) == [T0 + 60]


def test_the_unique_constraint_refuses_a_second_job_for_one_instant(
    app: taskwheel.App, clock: ManualClock, raw_database: RawDatabase,
) -> None:
    """Even if a schedule's next fire time were set back (a restore, a bug), the
    (schedule, fire time) key refuses the duplicate."""
    app.add_schedule("u", "report", every="60s", args=["x"])
    clock.set(T0 + 60)
    plan = plan_fires(app.get_schedule("u"), clock.now())
    assert plan is not None
    app.store.fire_schedules(app.namespace, [plan])
    raw_database.execute("UPDATE {schedules} SET next_fire_at = ?", (T0 + 60,))
    again = app.store.fire_schedules(app.namespace, [plan])
    assert [f.result for f in again] == [FireResult.DUPLICATE]
    assert fire_times(app) == [T0 + 60]


def test_trigger_fires_now_without_moving_the_schedule(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("t", "report", every="1h", args=["x"])
    fired = app.store.trigger_schedule(app.namespace, "t")
    assert fired.result is FireResult.CREATED
    assert app.job(fired.job_id or 0).status is JobStatus.QUEUED
    assert app.get_schedule("t").next_fire_at == utc(T0 + 3600)
    with pytest.raises(ScheduleNotFound):
        app.store.trigger_schedule(app.namespace, "nope")


def test_removed_and_paused_schedules_on_the_wheel_do_not_fire(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    app.add_schedule("gone", "report", every="60s", args=["x"])
    app.add_schedule("held", "report", every="60s", args=["x"])
    s = scheduler(app)
    s.step()  # both are on the wheel now
    app.store.remove_schedule(app.namespace, "gone")
    app.store.set_schedule_paused(app.namespace, "held", True)
    run_step(s, clock, T0 + 60)
    assert fired_jobs(app) == []


# -- maintenance -----------------------------------------------------------------------------


def test_the_scheduler_promotes_a_delayed_job_at_its_due_time(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    job = app.enqueue("report", ["later"], delay="10s")
    s = scheduler(app)
    wake = s.step()
    assert wake <= T0 + 0.5 + 10 + 0.001
    run_step(s, clock, T0 + 0.5 + 9.9)
    assert job.refresh().status is JobStatus.SCHEDULED
    run_step(s, clock, T0 + 0.5 + 10)
    assert job.refresh().status is JobStatus.QUEUED


def test_finished_jobs_past_retention_are_pruned_and_dead_ones_kept(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    done = app.enqueue("report", ["done"])
    dead = app.enqueue("report", ["dead"])
    claim = app.store.claim_jobs(app.namespace, "w1", ["reports"], 10, 30)
    fences = {j.id: j.fence for j in claim.jobs}
    app.store.finish_attempts([
        Outcome(done.id, fences[done.id], JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, "1"),
        Outcome(dead.id, fences[dead.id], JobStatus.DEAD, AttemptOutcome.FAILED, error="x"),
    ])
    s = scheduler(app, retention="1h")
    run_step(s, clock, T0 + 1800)
    assert done.refresh().status is JobStatus.SUCCEEDED  # not old enough
    run_step(s, clock, T0 + 3700)
    with pytest.raises(taskwheel.JobNotFound):
        done.refresh()
    assert dead.refresh().status is JobStatus.DEAD
    assert s.stats["pruned"] == 1


def test_pruning_forgets_the_leases_of_schedulers_that_died_long_ago(
    app: taskwheel.App, clock: ManualClock, raw_database: RawDatabase,
) -> None:
    assert app.store.elect(app.namespace, "scheduler-member:killed", "killed", 1.5)
    s = scheduler(app, retention="1h")
    run_step(s, clock, T0 + 1800)
    run_step(s, clock, T0 + 3700)
    names = {row[0] for row in raw_database.execute("SELECT name FROM {leases}")}
    assert "scheduler-member:killed" not in names
    assert f"scheduler-member:{s.id}" in names  # the living keep theirs


def test_waiting_jobs_whose_deadline_passed_expire(
    app: taskwheel.App, clock: ManualClock,
) -> None:
    job = app.enqueue("report", ["x"], delay="5m", deadline="10m")  # and no worker
    s = scheduler(app)
    run_step(s, clock, T0 + 601)
    assert job.refresh().status is JobStatus.EXPIRED
