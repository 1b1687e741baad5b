"""Two ``taskwheel scheduler`` processes on one database; the active one is SIGKILLed.

The two share the schedules' partitions; the one holding the partition of the
schedule is killed, and the other takes the partition when its lease lapses and fires
the following instants: every whole second of the run has exactly one job, none lost
and none duplicated.
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import time

from taskwheel.scheduler import SchedulerSettings, partition_lease, partition_of
from waiting import wait_for

from .conftest import Project


def fire_times(project: Project, schedule: str = "every-second") -> list[float]:
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        rows = db.execute(
            "SELECT fire_at FROM taskwheel_jobs JOIN taskwheel_schedules s"
            " ON s.id = schedule_id WHERE s.name = ? ORDER BY fire_at", (schedule,),
        ).fetchall()
    return [row[0] for row in rows]


def lease_holders(project: Project, prefix: str) -> dict[str, str]:
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        rows = db.execute(
            "SELECT name, holder FROM taskwheel_leases WHERE name LIKE ? AND expires_at > ?",
            (f"{prefix}%", time.time()),
        ).fetchall()
    return {str(name): str(holder) for name, holder in rows}


def partition_holder(project: Project, schedule: str = "every-second") -> str | None:
    """The holder of the lease of the partition ``schedule`` belongs to."""
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        [schedule_id] = db.execute(
            "SELECT id FROM taskwheel_schedules WHERE name = ?", (schedule,)
        ).fetchone()
    lease = partition_lease(partition_of(schedule_id, SchedulerSettings().partitions))
    return lease_holders(project, lease).get(lease)


def pids_holding_partitions(project: Project) -> set[str]:
    return {holder.split(":")[1] for holder in lease_holders(project, "scheduler:").values()}


def test_the_standby_fires_every_instant_after_the_active_scheduler_is_killed(
    project: Project,
) -> None:
    assert project.run("migrate").returncode == 0
    times, fired_before = fire_across_a_kill(project, "every-second")
    assert len(times) > fired_before
    assert_every_second(times)


def test_failover_stays_within_the_default_misfire_grace(project: Project) -> None:
    # A schedule with the default policies (run_once, the default grace): an instant
    # the standby fires later than the grace is folded into one job with the instants
    # after it, so the grace must cover the failover.
    assert project.run("migrate").returncode == 0
    added = project.run("schedules", "add", "defaults", "--app", "acceptance_app:app",
                        "--task", "tick", "--every", "1s")
    assert added.returncode == 0, added.stderr
    times, fired_before = fire_across_a_kill(project, "defaults")
    assert len(times) > fired_before
    assert_every_second(times)


def fire_across_a_kill(project: Project, schedule: str) -> tuple[list[float], int]:
    """Two schedulers; SIGKILL the one holding the partition of ``schedule``; the fire
    times of ``schedule`` over the run and how many there were before the kill."""
    first = project.start_scheduler()
    wait_for(lambda: len(fire_times(project, schedule)) >= 2, timeout=20,
             what="the first scheduler to fire")
    second = project.start_scheduler()
    wait_for(lambda: "started" in second.log_text(), timeout=20, what="the standby to start")
    both = {str(first.pid), str(second.pid)}
    wait_for(lambda: pids_holding_partitions(project) == both,
             timeout=20, what="the schedulers to share the partitions")
    holder = wait_for(lambda: partition_holder(project, schedule), timeout=20,
                      what="a partition holder")
    active, standby = (first, second) if f":{first.pid}:" in holder else (second, first)
    assert f":{active.pid}:" in holder

    fired_before = len(fire_times(project, schedule))
    active.signal(signal.SIGKILL)
    active.wait()
    killed_at = time.time()
    wait_for(lambda: (partition_holder(project, schedule) or "").count(f":{standby.pid}:") == 1,
             timeout=10, what="the standby to take the partition")
    wait_for(lambda: max(fire_times(project, schedule)) > killed_at + 2, timeout=10,
             what="the standby to fire instants after the kill")
    standby.signal(signal.SIGTERM)
    assert standby.wait() == 0
    return fire_times(project, schedule), fired_before


def assert_every_second(times: list[float]) -> None:
    assert len(times) == len(set(times)), "an instant fired twice"
    steps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert steps == {1.0}, f"instants lost: gaps of {sorted(steps)} s"
    assert all(t == int(t) for t in times)  # whole seconds, as every="1s" promises
