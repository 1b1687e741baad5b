"""Two ``taskwheel scheduler`` processes on one database; the active one is SIGKILLed.

The standby takes the lease when it lapses and fires the following instants: every
whole second of the run has exactly one job, none lost and none duplicated.
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import time

from .conftest import Project, wait_for


def fire_times(project: Project) -> list[float]:
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        rows = db.execute(
            "SELECT fire_at FROM taskwheel_jobs WHERE schedule_id IS NOT NULL ORDER BY fire_at"
        ).fetchall()
    return [row[0] for row in rows]


def lease_holder(project: Project) -> str | None:
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        row = db.execute(
            "SELECT holder FROM taskwheel_leases WHERE name = 'scheduler' AND expires_at > ?",
            (time.time(),),
        ).fetchone()
    return None if row is None else str(row[0])


def test_the_standby_fires_every_instant_after_the_active_scheduler_is_killed(
    project: Project,
) -> None:
    assert project.run("migrate").returncode == 0
    first = project.start_scheduler()
    wait_for(lambda: len(fire_times(project)) >= 2, what="the first scheduler to fire")
    second = project.start_scheduler()
    wait_for(lambda: "started" in second.log_text(), what="the standby to start")
    holder = wait_for(lambda: lease_holder(project), what="a lease holder")
    active, standby = (first, second) if f":{first.pid}:" in holder else (second, first)
    assert f":{active.pid}:" in holder

    fired_before = len(fire_times(project))
    active.signal(signal.SIGKILL)
    active.wait()
    killed_at = time.time()
    wait_for(lambda: (lease_holder(project) or "").count(f":{standby.pid}:") == 1,
             timeout=10, what="the standby to take the lease")
    wait_for(lambda: max(fire_times(project)) > killed_at + 2, timeout=10,
             what="the standby to fire instants after the kill")
    standby.signal(signal.SIGTERM)
    assert standby.wait() == 0

    times = fire_times(project)
    assert len(times) > fired_before
    assert len(times) == len(set(times)), "an instant fired twice"
    steps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert steps == {1.0}, f"instants lost: gaps of {sorted(steps)} s"
    assert all(t == int(t) for t in times)  # whole seconds, as every="1s" promises
