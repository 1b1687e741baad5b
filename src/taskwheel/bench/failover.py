"""The failover benchmark: the time a standby scheduler takes to fire after the active
one is SIGKILLed. Two real ``taskwheel scheduler`` processes share one database (a
temporary SQLite file, or a PostgreSQL schema dropped afterwards) and one schedule
every 100 ms with ``misfire="catch_up"``, so a lost or duplicated instant would show.

Example:
    >>> result = run_failover_benchmark(FailoverSettings.build(runs=1))
    >>> (result.lost_instants, result.duplicates)
    (0, 0)
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from taskwheel.bench.app import BenchmarkError, app, noop
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.processes import LeaseWatch, SchedulerProcess, polling
from taskwheel.bench.report import (
    Progress,
    all_jobs,
    count_duplicates,
    epoch,
    iso,
    scheduler_run_facts,
)
from taskwheel.bench.settings import FailoverSettings
from taskwheel.jobs import Job, JobFilter
from taskwheel.scheduler import SchedulerSettings, partition_lease, partition_of
from taskwheel.schedules import DEFAULT_MISFIRE_GRACE
from taskwheel.stores import Store

FAILOVER_EVERY = 0.1  # the failover schedule's interval
FAILOVER_MAX_CATCH_UP = 1_000  # the standby creates every instant missed (100 s worth)


@dataclass(frozen=True)
class FailoverRun:
    """One kill: ``first_fire_s`` is the failover time (kill → the first ``created_at``
    after it); ``lease_taken_s`` when the benchmark first saw the standby hold the lease
    (polled every 5 ms); ``first_batch_jobs`` the jobs of the standby's first fire."""

    run: int
    killed_pid: int
    killed_at: float
    first_fire_s: float
    lease_taken_s: float | None  # None: the poll never saw it before the first fire
    first_batch_jobs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "killed_pid": self.killed_pid,
            "killed_at": iso(self.killed_at),
            "failover_s": round(self.first_fire_s, 4),
            "lease_taken_s": None if self.lease_taken_s is None
            else round(self.lease_taken_s, 4),
            "first_batch_jobs": self.first_batch_jobs,
        }


@dataclass(frozen=True)
class FailoverResult:
    """Every run, and over the whole benchmark: ``instants`` fired (distinct fire
    times), ``lost_instants`` (fire times between the first and the last that no job
    stands for) and ``duplicates`` ((schedule, fire time) pairs with several jobs)."""

    runs: list[FailoverRun]
    instants: int
    lost_instants: int
    duplicates: int
    settings: dict[str, Any] = field(default_factory=dict)

    def seconds(self) -> list[float]:
        return [run.first_fire_s for run in self.runs]

    @property
    def over_grace(self) -> int:
        """Runs whose failover took longer than the default misfire grace: there, a
        schedule with the default policies would have folded or skipped instants."""
        return sum(1 for seconds in self.seconds() if seconds > DEFAULT_MISFIRE_GRACE)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench failover --format json`` prints."""
        times = self.seconds()
        return {
            "failover_s": {
                "min": round(min(times), 4),
                "median": round(statistics.median(times), 4),
                "max": round(max(times), 4),
            },
            "default_misfire_grace_s": DEFAULT_MISFIRE_GRACE,
            "runs_over_default_grace": self.over_grace,
            "runs": [run.to_dict() for run in self.runs],
            "instants": self.instants,
            "lost_instants": self.lost_instants,
            "duplicates": self.duplicates,
            "settings": self.settings,
        }


def run_failover_benchmark(
    settings: FailoverSettings, progress: Progress | None = None
) -> FailoverResult:
    """Two schedulers on one database and one schedule every 100 ms (catch_up): kill
    the lease holder, time the standby's first job, start a new standby; ``runs``
    times. ``progress`` receives one line per run."""
    say = progress or (lambda _line: None)
    lease = SchedulerSettings.build()  # what `taskwheel scheduler` runs with by default
    with temporary_workdir() as workdir, contextlib.ExitStack() as stack:
        url, namespace, throwaway = fresh_database(workdir, "failover", settings.postgres_url)
        store = open_app(stack, url, namespace, throwaway)
        tick = app.add_schedule("failover-tick", noop, every=f"{FAILOVER_EVERY * 1000:g}ms",
                                misfire="catch_up", max_catch_up=FAILOVER_MAX_CATCH_UP)
        app.schedules.clear()  # written; the benchmark app declares nothing
        # The scheduler to kill is the one holding the schedule's partition.
        partition = partition_of(tick.id, lease.partitions)
        watch = LeaseWatch(store, namespace, partition_lease(partition))
        schedulers: list[SchedulerProcess] = []

        def start() -> SchedulerProcess:
            number = len(schedulers) + 1
            process = stack.enter_context(SchedulerProcess(
                url, namespace, workdir / f"scheduler-{number}.log"))
            schedulers.append(process)
            for _ in polling(settings.timeout, f"scheduler {number} to start"):
                process.check_alive()
                if process.started():
                    break
            return process

        first = start()
        for _ in polling(settings.timeout, "the first scheduler to fire"):
            first.check_alive()
            if watch.pid() == first.pid and _newest_job(store, namespace) is not None:
                break
        start()
        runs: list[FailoverRun] = []
        for number in range(1, settings.runs + 1):
            # A random moment of the holder's renewal cycle: the lease has between
            # lease_ttl - renew and lease_ttl left when it dies.
            time.sleep(1.0 + random.uniform(0, lease.renew))
            run = _kill_the_holder(number, store=store, namespace=namespace, watch=watch,
                                   schedulers=schedulers, timeout=settings.timeout)
            runs.append(run)
            say(f"run {number}: killed {run.killed_pid}; the standby fired after "
                f"{run.first_fire_s:.3f}s")
            if number < settings.runs:
                start()
        for process in schedulers:
            process.stop()
        jobs = all_jobs(store, namespace)
        instants = sorted({round(epoch(job.fire_at) * 1000) for job in jobs})
        step_ms = round(FAILOVER_EVERY * 1000)
        described = scheduler_run_facts(store, namespace, workers=0)
    return FailoverResult(
        runs=runs,
        instants=len(instants),
        lost_instants=(instants[-1] - instants[0]) // step_ms + 1 - len(instants),
        duplicates=count_duplicates(jobs),
        settings={
            **described,
            "runs": settings.runs,
            "schedule": {"every": f"{FAILOVER_EVERY:g}s", "misfire": "catch_up",
                         "max_catch_up": FAILOVER_MAX_CATCH_UP},
            "methods": {
                "failover_s": "two `taskwheel scheduler` processes sharing the partitions; "
                              "the holder of the schedule's partition lease (its pid read "
                              "from the lease row's holder id) is SIGKILLed at a "
                              "random moment of its renewal cycle; failover = the first "
                              "created_at after the kill - time.time() right after the SIGKILL; "
                              "a new standby is started before the next run",
                "lease_taken_s": "the lease row polled every 5 ms until the standby holds it",
                "lost_instants": "100 ms fire times between the first and the last job "
                                 "that no job stands for",
                "duplicates": "(schedule_id, fire_at) pairs with more than one job",
            },
        },
    )


def _kill_the_holder(
    number: int, *, store: Store, namespace: str, watch: LeaseWatch,
    schedulers: list[SchedulerProcess], timeout: float,
) -> FailoverRun:
    """SIGKILL the scheduler holding the lease; time the standby's first job."""
    alive = [process for process in schedulers if process.alive()]
    if len(alive) != 2:
        raise BenchmarkError(f"run {number}: {len(alive)} schedulers running, not 2")
    # Once both share the partitions, the holder of the schedule's stays put.
    for _ in polling(timeout, f"run {number}: the schedulers to share the partitions"):
        holder = watch.pid()
        if holder in (alive[0].pid, alive[1].pid) and watch.sharing(
            {alive[0].pid, alive[1].pid}
        ):
            break
    one, other = alive
    active, standby = (one, other) if one.pid == holder else (other, one)
    killed_at = active.kill()
    schedulers.remove(active)
    lease_taken: float | None = None
    for _ in polling(timeout, f"run {number}: the standby to fire", pause=0.005):
        standby.check_alive()
        if lease_taken is None and watch.pid() == standby.pid:
            lease_taken = time.time() - killed_at
        newest = _newest_job(store, namespace)
        if newest is not None and epoch(newest.created_at) > killed_at:
            break
    recent = store.list_jobs(namespace, JobFilter(limit=FAILOVER_MAX_CATCH_UP * 2))
    after = [epoch(job.created_at) for job in recent if epoch(job.created_at) > killed_at]
    first = min(after)
    return FailoverRun(
        run=number,
        killed_pid=active.pid,
        killed_at=killed_at,
        first_fire_s=first - killed_at,
        lease_taken_s=lease_taken,
        first_batch_jobs=sum(1 for moment in after if moment == first),
    )


def _newest_job(store: Store, namespace: str) -> Job | None:
    newest = store.list_jobs(namespace, JobFilter(limit=1))
    return newest[0] if newest else None
