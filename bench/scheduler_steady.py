"""The scheduler's CPU a fire, in-process: what `bench schedules`' steady phase measures,
without the processes that share its two cores.

One process, a fresh SQLite file: ``--schedules`` schedules of the no-op task every 60 s,
their fires spread evenly over a minute (each its own spec, as in `bench schedules`), one
`Scheduler` stepped by hand on a manual clock moved ``--step`` at a time; after a warm-up
of 4 s, the process's CPU (user and system, every thread: the checkpointer's too) over a
``--window`` of store time. Prints the CPU, the fires in the window and the CPU a fire.
It runs against older trees too, to compare in one sitting (alternate the two):

    .venv/bin/python bench/scheduler_steady.py
    PYTHONPATH=<other tree>/src .venv/bin/python bench/scheduler_steady.py
"""

from __future__ import annotations

import argparse
import sqlite3
import inspect
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from taskwheel.app import App
from taskwheel.clock import ManualClock
from taskwheel.scheduler.scheduler import Scheduler

EPOCH = 1_900_000_000.0  # store time at the start: any instant will do


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=30.0, help="store seconds measured")
    parser.add_argument("--step", type=float, default=0.01, help="store seconds a step")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        cpu, fired = measure(Path(directory) / "steady.db", options.schedules,
                             options.window, options.step)
    print(f"schedules {options.schedules:,}  window {options.window:g}s  fires {fired:,}  "
          f"cpu {cpu:.3f}s  per fire {cpu / max(fired, 1) * 1e6:.1f}us")


def measure(path: Path, schedules: int, window: float, step: float) -> tuple[float, int]:
    clock = ManualClock(EPOCH)
    # Trees before `migrate=` made their schema on open.
    migrating = {"migrate": True} if "migrate" in inspect.signature(App).parameters else {}
    app = App(f"sqlite:///{path}", namespace="bench", clock=clock, **migrating)

    @app.task(name="noop")
    def noop() -> None:
        pass

    for i in range(schedules):
        first = EPOCH + 5 + i * 60 / schedules
        app.add_schedule(f"s{i:06d}", noop, every="60s",
                         start=datetime.fromtimestamp(first, tz=UTC))
    app.schedules.clear()  # written; nothing to declare again
    scheduler = Scheduler(app)

    def run(seconds: float) -> None:
        for _ in range(round(seconds / step)):
            clock.advance(step)
            scheduler.step()

    run(4.0)  # leases taken, the wheel loaded
    start_fires = _fired(path)
    before = os.times()
    run(window)
    after = os.times()
    return (after.user - before.user) + (after.system - before.system), _fired(path) - start_fires


def _fired(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM taskwheel_jobs").fetchone()[0])


if __name__ == "__main__":
    main()
