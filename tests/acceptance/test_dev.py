"""``taskwheel dev``: a scheduler and a worker in one process run scheduled jobs."""

from __future__ import annotations

import signal
import sqlite3

from waiting import wait_for

from .conftest import Project


def succeeded_ticks(project: Project) -> int:
    with sqlite3.connect(project.root / "taskwheel.db") as db:
        row = db.execute(
            "SELECT count(*) FROM taskwheel_jobs"
            " WHERE schedule_id IS NOT NULL AND task = 'tick' AND status = 'succeeded'"
        ).fetchone()
    return int(row[0])


def test_dev_fires_the_declared_schedules_and_runs_their_jobs(fresh_project: Project) -> None:
    project = fresh_project  # `taskwheel dev` migrates the laptop's database itself
    dev = project.start("dev")
    wait_for(lambda: project.store.schema_version() == project.store.latest_schema_version(),
             timeout=20, what="taskwheel dev to migrate the database")
    wait_for(lambda: succeeded_ticks(project) >= 2, timeout=20,
             what="two scheduled jobs to run under taskwheel dev")
    dev.signal(signal.SIGTERM)
    assert dev.wait() == 0, dev.log_text()
    listed = project.run_json("schedules", "list")
    assert [s["name"] for s in listed] == ["every-second"]
