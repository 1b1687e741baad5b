"""Two ``taskwheel scheduler`` processes on one database (SQLite, and PostgreSQL); the
active one is SIGKILLed.

The two share the schedules' partitions; the one holding the partition of the
schedule is killed, and the other takes the partition when its lease lapses and fires
the following instants: every whole second of the run has exactly one job, none lost
and none duplicated.
"""

from __future__ import annotations

import itertools
import signal
import time

from taskwheel.scheduler import SchedulerSettings, partition_lease, partition_of
from waiting import wait_for

from .conftest import Project


def fire_times(project: Project, schedule: str = "every-second") -> list[float]:
    schedule_id = project.store.get_schedule("default", schedule).id
    return sorted(job.fire_at.timestamp() for job in project.jobs()
                  if job.schedule_id == schedule_id and job.fire_at is not None)


def partition_holder(project: Project, schedule: str = "every-second") -> str | None:
    """The holder of the lease of the partition ``schedule`` belongs to."""
    schedule_id = project.store.get_schedule("default", schedule).id
    lease = partition_lease(partition_of(schedule_id, SchedulerSettings().partitions))
    return project.store.lease_holder("default", lease)


def pids_holding_partitions(project: Project) -> set[str]:
    held = project.store.lease_holders("default", "scheduler:")  # not scheduler-member:
    return {holder.split(":")[1] for holder in held.values()}


def test_the_standby_fires_every_instant_after_the_active_scheduler_is_killed(
    any_project: Project,
) -> None:
    times, fired_before = fire_across_a_kill(any_project, "every-second")
    assert len(times) > fired_before
    assert_every_second(times)


def test_failover_stays_within_the_default_misfire_grace(any_project: Project) -> None:
    # A schedule with the default policies (run_once, the default grace): an instant
    # the standby fires later than the grace is folded into one job with the instants
    # after it, so the grace must cover the failover.
    added = any_project.run("schedules", "add", "defaults", "--app", "acceptance_app:app",
                            "--task", "tick", "--every", "1s")
    assert added.returncode == 0, added.stderr
    # Killed just before a whole second: that instant is the standby's first, as late
    # as the failover is long (which the grace must cover), not up to a second less.
    times, fired_before = fire_across_a_kill(any_project, "defaults", kill_at_phase=0.95)
    assert len(times) > fired_before
    assert_every_second(times)


def fire_across_a_kill(
    project: Project, schedule: str, *, kill_at_phase: float | None = None
) -> tuple[list[float], int]:
    """Two schedulers; SIGKILL the one holding the partition of ``schedule`` (when the
    clock's fraction of a second is ``kill_at_phase``, if given); the fire times of
    ``schedule`` over the run and how many there were before the kill."""
    first = project.start_scheduler()
    wait_for(lambda: "started" in first.log_text(), timeout=20, what="the scheduler to start")
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

    if kill_at_phase is not None:
        # Real processes on the wall clock: the kill is placed within the second.
        time.sleep((kill_at_phase - time.time() % 1) % 1)
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
    # The first fire may fold instants missed before any scheduler ran (the schedule is
    # written first, and a process starts slowly on a busy machine): the failover is
    # judged from the first scheduler's second fire on.
    return fire_times(project, schedule)[1:], fired_before - 1


def assert_every_second(times: list[float]) -> None:
    assert len(times) == len(set(times)), "an instant fired twice"
    steps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert steps == {1.0}, f"instants lost: gaps of {sorted(steps)} s"
    assert all(t == int(t) for t in times)  # whole seconds, as every="1s" promises
