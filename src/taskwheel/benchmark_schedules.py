"""Schedule benchmarks: fire lateness at N active schedules, a burst of N schedules due
at one instant, the scheduler's CPU share and memory per schedule, and the time a
standby scheduler takes to fire after the active one is SIGKILLed. Measures and returns
figures; only the CLI prints.

Every process is real: ``taskwheel scheduler`` and ``taskwheel worker`` subprocesses
load the core benchmark's app (``taskwheel.benchmark:app``) and run its no-op task, so
both benchmarks time the same task and workers. Each phase works on a fresh temporary
SQLite file in a namespace of its own, deleted afterwards.

The schedules of the steady phase are created before any scheduler runs, with their
first fire times on or after one instant (the window's start) that is far enough ahead
for creation and the scheduler's start-up to finish first: no fire is missed before the
window, and in its first minute every schedule fires exactly once, evenly spread.

Example:
    >>> settings = ScheduleBenchSettings.build(schedules=1_000, duration="10s", burst=0)
    >>> run_schedule_benchmark(settings).steady.duplicates
    0
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskwheel.benchmark import (
    APP_SPEC,
    BenchmarkError,
    BenchSettings,
    Percentiles,
    WorkerFleet,
    app,
    describe,
    drop_schema,
    epoch,
    noop,
    phase_database,
    polling,
    rounded,
)
from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.jobs import Job, JobFilter
from taskwheel.scheduler import SchedulerSettings, partition_lease, partition_of
from taskwheel.scheduler.partitions import PARTITION_PREFIX
from taskwheel.stores import Store

PERIOD = 60.0  # every steady-phase schedule fires once a minute
FAILOVER_EVERY = 0.1  # the failover schedule's interval
FAILOVER_MAX_CATCH_UP = 1_000  # the standby creates every instant missed (100 s worth)
_ALL = 2**31  # JobFilter limit for "every job of the namespace"
_MICRO = 1_000_000

Progress = Callable[[str], None]


# -- settings ---------------------------------------------------------------------------


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(name, f"must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class ScheduleBenchSettings:
    """What `run_schedule_benchmark` measures. Build with `build` to validate.

    ``schedules``: active schedules of the steady phase, each ``every="60s"``, their
    fire times spread evenly over a minute. ``duration``: the measured window (from the
    first fire); 65 s or more lets every schedule fire at least once. ``workers``: idle
    worker processes running the fired jobs. ``burst``: schedules all due at one
    instant (0: no burst phase). ``timeout``: the longest any wait may take.
    """

    schedules: int = 10_000
    duration: float = 65.0
    workers: int = 2
    burst: int = 10_000
    timeout: float = 120.0
    postgres_url: str | None = None  # None: temporary SQLite files

    @classmethod
    def build(
        cls,
        *,
        schedules: int = 10_000,
        duration: DurationLike = "65s",
        workers: int = 2,
        burst: int = 10_000,
        timeout: DurationLike = "120s",
        postgres_url: str | None = None,
    ) -> ScheduleBenchSettings:
        """Validated settings; every error names its option.

        Example:
            >>> ScheduleBenchSettings.build(schedules=100_000, burst=0).duration
            65.0
        """
        return cls(
            schedules=_count("schedules", schedules, 1),
            duration=parse_duration(duration, "duration", allow_zero=False),
            workers=_count("workers", workers, 1),
            burst=_count("burst", burst, 0),
            timeout=parse_duration(timeout, "timeout", allow_zero=False),
            postgres_url=postgres_url,
        )


@dataclass(frozen=True)
class FailoverSettings:
    """``runs``: how many times the active scheduler is killed. ``timeout``: the longest
    a standby may take to fire, or a new scheduler to start."""

    runs: int = 5
    timeout: float = 30.0
    postgres_url: str | None = None  # None: a temporary SQLite file

    @classmethod
    def build(
        cls, *, runs: int = 5, timeout: DurationLike = "30s", postgres_url: str | None = None
    ) -> FailoverSettings:
        return cls(
            runs=_count("runs", runs, 1),
            timeout=parse_duration(timeout, "timeout", allow_zero=False),
            postgres_url=postgres_url,
        )


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Creation:
    """``count`` schedules written one `App.add_schedule` call (one transaction) each."""

    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seconds": round(self.seconds, 3),
                "per_s": round(self.per_s, 1)}


@dataclass(frozen=True)
class SchedulerUsage:
    """The steady phase's scheduler process, read from ``/proc``.

    ``rss_bytes``: VmRSS at the window's end (every schedule on the wheel by then);
    ``empty_rss_bytes``: VmRSS of a scheduler holding the lease over an empty database.
    """

    cpu_seconds: float
    wall_seconds: float
    rss_bytes: int
    rss_at_window_start_bytes: int
    peak_rss_bytes: int
    empty_rss_bytes: int
    schedules: int

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.wall_seconds

    @property
    def memory_per_schedule_bytes(self) -> float:
        return (self.rss_bytes - self.empty_rss_bytes) / self.schedules

    @property
    def memory_per_schedule_at_window_start_bytes(self) -> float:
        """The same before the first fire: the wheel loaded (every fire time within
        the horizon of the scheduler's first load), nothing fired yet."""
        return (self.rss_at_window_start_bytes - self.empty_rss_bytes) / self.schedules

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_share": round(self.cpu_share, 4),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "memory_per_schedule_bytes": round(self.memory_per_schedule_bytes, 1),
            "memory_per_schedule_at_window_start_bytes": round(
                self.memory_per_schedule_at_window_start_bytes, 1),
            "rss_bytes": self.rss_bytes,
            "empty_rss_bytes": self.empty_rss_bytes,
            "rss_at_window_start_bytes": self.rss_at_window_start_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
        }


@dataclass(frozen=True)
class SteadyResult:
    """N schedules firing evenly over a minute, measured over one window.

    ``fires``: jobs whose fire time is inside the window; ``expected_fires``: the fire
    times inside the window by the schedules' definitions. ``ready_margin_s``: how long
    before the window the scheduler held the lease and the workers were registered
    (negative: the window began first, and its first fires time the start-up).
    """

    creation: Creation
    window_start: float
    window_seconds: float
    fires: int
    expected_fires: int
    fires_before_window: int
    duplicates: int
    fire_lateness: Percentiles
    start_lateness: Percentiles
    scheduler: SchedulerUsage
    ready_margin_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedules": self.creation.count,
            "create": self.creation.to_dict(),
            "fires": self.fires,
            "expected_fires": self.expected_fires,
            "duplicates": self.duplicates,
            "fire_lateness_ms": rounded(asdict(self.fire_lateness)),
            "start_lateness_ms": rounded(asdict(self.start_lateness)),
            "scheduler": self.scheduler.to_dict(),
            "window": {
                "start": _iso(self.window_start),
                "seconds": self.window_seconds,
                "ready_margin_s": round(self.ready_margin_s, 3),
                "fires_before_window": self.fires_before_window,
            },
        }


@dataclass(frozen=True)
class BurstResult:
    """N schedules due at one instant. ``all_created_s``: the last job's ``created_at``
    minus the instant."""

    creation: Creation
    instant: float
    fires: int
    duplicates: int
    all_created_s: float
    fire_lateness: Percentiles
    start_lateness: Percentiles
    ready_margin_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedules": self.creation.count,
            "create": self.creation.to_dict(),
            "fires": self.fires,
            "duplicates": self.duplicates,
            "all_created_s": round(self.all_created_s, 4),
            "fire_lateness_ms": rounded(asdict(self.fire_lateness)),
            "start_lateness_ms": rounded(asdict(self.start_lateness)),
            "instant": _iso(self.instant),
            "ready_margin_s": round(self.ready_margin_s, 3),
        }


@dataclass(frozen=True)
class ScheduleBenchResult:
    steady: SteadyResult
    burst: BurstResult | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench schedules --format json`` prints."""
        return {
            **self.steady.to_dict(),
            "burst": None if self.burst is None else self.burst.to_dict(),
            "settings": self.settings,
        }


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
            "killed_at": _iso(self.killed_at),
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench failover --format json`` prints."""
        times = self.seconds()
        return {
            "failover_s": {
                "min": round(min(times), 4),
                "median": round(statistics.median(times), 4),
                "max": round(max(times), 4),
            },
            "runs": [run.to_dict() for run in self.runs],
            "instants": self.instants,
            "lost_instants": self.lost_instants,
            "duplicates": self.duplicates,
            "settings": self.settings,
        }


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


# -- the schedules benchmark -------------------------------------------------------------


def run_schedule_benchmark(
    settings: ScheduleBenchSettings, progress: Progress | None = None
) -> ScheduleBenchResult:
    """The empty-database baseline, the steady phase, then the burst; see
    ``bench/README.md``. ``progress`` receives one line per phase."""
    say = progress or (lambda _line: None)
    with _workdir() as workdir:
        say("scheduler over an empty database: its memory")
        empty_rss = measure_empty_scheduler(workdir, settings.timeout, settings.postgres_url)
        say(f"steady: {settings.schedules:,} schedules every {PERIOD:g}s, "
            f"window {settings.duration:g}s")
        steady, described = measure_steady(settings, workdir, empty_rss, say)
        burst = None
        if settings.burst:
            say(f"burst: {settings.burst:,} schedules due at one instant")
            burst = measure_burst(settings, workdir, say)
    return ScheduleBenchResult(
        steady=steady,
        burst=burst,
        settings={**described, **_schedule_methods(settings)},
    )


def measure_empty_scheduler(
    workdir: Path, timeout: float, postgres_url: str | None = None
) -> int:
    """VmRSS of a ``taskwheel scheduler`` holding the lease over an empty database, a
    second after it took the lease (what the steady phase's figure is compared with)."""
    url, namespace, throwaway = _fresh_database(workdir, "empty", postgres_url)
    with contextlib.ExitStack() as stack:
        store = _open_app(stack, url, namespace, throwaway)
        sched = stack.enter_context(
            SchedulerProcess(url, namespace, workdir / "scheduler-empty.log"))
        watch = LeaseWatch(store, namespace)
        for _ in polling(timeout, "the scheduler to take the lease"):
            sched.check_alive()
            if watch.pid() == sched.pid:
                break
        time.sleep(1.0)
        return process_memory(sched.pid)[0]


def measure_steady(
    settings: ScheduleBenchSettings, workdir: Path, empty_rss: int, say: Progress
) -> tuple[SteadyResult, dict[str, Any]]:
    n = settings.schedules
    url, namespace, throwaway = _fresh_database(workdir, "steady", settings.postgres_url)
    with contextlib.ExitStack() as stack:
        store = _open_app(stack, url, namespace, throwaway)
        rate = _calibrate(store, namespace)
        window_us = _after(_lead(n, rate))
        step_us = int(PERIOD * _MICRO)
        anchors = [window_us + i * step_us // n for i in range(n)]
        creation = _create(n, lambda i: {"every": f"{PERIOD:g}s",
                                         "start": _datetime(anchors[i])})
        say(f"created {n:,} schedules in {creation.seconds:.2f}s ({creation.per_s:,.0f}/s)")

        sched = stack.enter_context(
            SchedulerProcess(url, namespace, workdir / "scheduler-steady.log"))
        fleet = stack.enter_context(_fleet(settings.workers, url, namespace, workdir))
        margin = _wait_ready(store, url, namespace, sched=sched, fleet=fleet,
                             first_fire_us=window_us, timeout=settings.timeout)
        window_start = window_us / _MICRO
        window_end_us = window_us + int(settings.duration * _MICRO)
        say(f"ready {margin:.2f}s before the first fire; measuring {settings.duration:g}s")

        def alive() -> None:
            sched.check_alive()
            fleet.check_alive()

        _sleep_until(window_start, alive)
        wall_start, cpu_start = time.time(), process_cpu_seconds(sched.pid)
        rss_start = process_memory(sched.pid)[0]
        _sleep_until(window_end_us / _MICRO, alive)
        wall_end, cpu_end = time.time(), process_cpu_seconds(sched.pid)
        rss_end, peak = process_memory(sched.pid)
        say("window over: waiting for its last fires and jobs")
        _wait_fired(store, namespace, (window_end_us - 1) / _MICRO, sched, settings.timeout)
        sched.stop()
        jobs = _finished_jobs(store, namespace, fleet, settings.timeout)
        described = _describe(store, namespace, settings.workers)

    in_window = [job for job in jobs if window_us <= _micros(job.fire_at) < window_end_us]
    if not in_window:
        raise BenchmarkError("no schedule fired inside the window")
    expected = sum(
        (window_end_us - 1 - anchor) // step_us + 1 for anchor in anchors if anchor < window_end_us
    )
    result = SteadyResult(
        creation=creation,
        window_start=window_start,
        window_seconds=settings.duration,
        fires=len(in_window),
        expected_fires=expected,
        fires_before_window=sum(1 for job in jobs if _micros(job.fire_at) < window_us),
        duplicates=count_duplicates(jobs),
        fire_lateness=Percentiles.of(_lateness(in_window, "created_at")),
        start_lateness=Percentiles.of(_lateness(in_window, "started_at")),
        scheduler=SchedulerUsage(
            cpu_seconds=cpu_end - cpu_start,
            wall_seconds=wall_end - wall_start,
            rss_bytes=rss_end,
            rss_at_window_start_bytes=rss_start,
            peak_rss_bytes=peak,
            empty_rss_bytes=empty_rss,
            schedules=n,
        ),
        ready_margin_s=margin,
    )
    return result, described


def measure_burst(
    settings: ScheduleBenchSettings, workdir: Path, say: Progress
) -> BurstResult:
    n = settings.burst
    url, namespace, throwaway = _fresh_database(workdir, "burst", settings.postgres_url)
    with contextlib.ExitStack() as stack:
        store = _open_app(stack, url, namespace, throwaway)
        instant_us = _after(_lead(n, _calibrate(store, namespace)))
        at = _datetime(instant_us)
        creation = _create(n, lambda _i: {"at": at})
        say(f"created {n:,} schedules in {creation.seconds:.2f}s ({creation.per_s:,.0f}/s)")
        sched = stack.enter_context(
            SchedulerProcess(url, namespace, workdir / "scheduler-burst.log"))
        fleet = stack.enter_context(_fleet(settings.workers, url, namespace, workdir))
        margin = _wait_ready(store, url, namespace, sched=sched, fleet=fleet,
                             first_fire_us=instant_us, timeout=settings.timeout)
        _wait_fired(store, namespace, instant_us / _MICRO, sched, settings.timeout)
        sched.stop()
        jobs = _finished_jobs(store, namespace, fleet, settings.timeout)
    instant = instant_us / _MICRO
    return BurstResult(
        creation=creation,
        instant=instant,
        fires=len(jobs),
        duplicates=count_duplicates(jobs),
        all_created_s=max(epoch(job.created_at) for job in jobs) - instant,
        fire_lateness=Percentiles.of(_lateness(jobs, "created_at")),
        start_lateness=Percentiles.of(_lateness(jobs, "started_at")),
        ready_margin_s=margin,
    )


# -- the failover benchmark ---------------------------------------------------------------


def run_failover_benchmark(
    settings: FailoverSettings, progress: Progress | None = None
) -> FailoverResult:
    """Two schedulers on one database and one schedule every 100 ms (catch_up): kill
    the lease holder, time the standby's first job, start a new standby; ``runs``
    times. ``progress`` receives one line per run."""
    say = progress or (lambda _line: None)
    lease = SchedulerSettings.build()  # what `taskwheel scheduler` runs with by default
    with _workdir() as workdir, contextlib.ExitStack() as stack:
        url, namespace, throwaway = _fresh_database(workdir, "failover",
                                                    settings.postgres_url)
        store = _open_app(stack, url, namespace, throwaway)
        tick = app.add_schedule("failover-tick", noop, every=f"{FAILOVER_EVERY * 1000:g}ms",
                                misfire="catch_up", max_catch_up=FAILOVER_MAX_CATCH_UP)
        app.schedules.clear()  # written; the module's app declares nothing
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
        jobs = store.list_jobs(namespace, JobFilter(limit=_ALL))
        instants = sorted({round(epoch(job.fire_at) * 1000) for job in jobs})
        step_ms = round(FAILOVER_EVERY * 1000)
        described = _describe(store, namespace, workers=0)
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


# -- the phases' parts --------------------------------------------------------------------


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="taskwheel-bench-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fresh_database(
    workdir: Path, phase: str, postgres_url: str | None
) -> tuple[str, str, bool]:
    """A new database (a SQLite file, or a PostgreSQL schema), a namespace of the
    benchmark's own, and whether the database is a schema to drop afterwards."""
    url, throwaway = phase_database(postgres_url, workdir, phase)
    return url, f"bench-{uuid.uuid4().hex[:8]}-{phase}", throwaway


def _open_app(
    stack: contextlib.ExitStack, url: str, namespace: str, throwaway: bool = False
) -> Store:
    """Point the benchmark app at the phase's database; its store, opened and migrated
    here, outside every timing. A throwaway schema is dropped once the processes
    entered on ``stack`` after this have stopped."""
    app.close()
    app.configure(database_url=url, namespace=namespace)
    stack.callback(app.close)
    store = app.store
    if throwaway:
        stack.callback(drop_schema, store)
    return store


def _fleet(workers: int, url: str, namespace: str, workdir: Path) -> WorkerFleet:
    logs = workdir / namespace
    logs.mkdir()
    return WorkerFleet(BenchSettings.build(workers=workers), url=url, namespace=namespace,
                       logs=logs)


def _create(count: int, trigger: Callable[[int], dict[str, Any]]) -> Creation:
    """Write ``count`` schedules of the no-op task, one `App.add_schedule` each (its
    validation and one transaction); ``trigger(i)`` gives schedule i's timing."""
    begin = time.perf_counter()
    for i in range(count):
        app.add_schedule(f"s{i:06d}", noop, **trigger(i))
    seconds = time.perf_counter() - begin
    app.schedules.clear()  # written; the module's app declares nothing
    return Creation(count, seconds)


def _calibrate(store: Store, namespace: str, sample: int = 200) -> float:
    """Schedules written per second, timed on a throwaway namespace of the same file
    (no scheduler ever loads it), to know how far ahead the first fire must be."""
    app.configure(namespace=f"{namespace}-calibration")
    try:
        far = datetime.fromtimestamp(store.now() + 86_400, UTC)
        rate = _create(sample, lambda _i: {"at": far}).per_s
    finally:
        app.configure(namespace=namespace)
    return rate


def _lead(count: int, rate: float) -> float:
    """Seconds from now to the first fire: creation with a 50 % margin, plus the
    processes' start-up and the scheduler's first load of the wheel."""
    return 3.0 + 1.5 * count / rate + count * 20e-6


def _after(seconds: float) -> int:
    """Epoch microseconds, ``seconds`` from now, rounded up to a whole millisecond."""
    return math.ceil((time.time() + seconds) * 1000) * 1000


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // _MICRO, UTC).replace(microsecond=micros % _MICRO)


def _micros(moment: datetime | None) -> int:
    return round(epoch(moment) * _MICRO)


def _wait_ready(
    store: Store, url: str, namespace: str, *, sched: SchedulerProcess, fleet: WorkerFleet,
    first_fire_us: int, timeout: float,
) -> float:
    """Until the scheduler holds the lease and every worker registered; how long
    before the first fire that was."""
    fleet.wait_registered(store, timeout)
    watch = LeaseWatch(store, namespace)
    for _ in polling(timeout, "the scheduler to take the lease"):
        sched.check_alive()
        if watch.pid() == sched.pid:
            break
    return first_fire_us / _MICRO - time.time()


def _wait_fired(
    store: Store, namespace: str, until: float, sched: SchedulerProcess, timeout: float
) -> None:
    """Until no schedule has a fire time at or before ``until`` left to fire."""
    limit_s = max(0.0, until - time.time()) + timeout
    for _ in polling(limit_s, "the scheduler to fire every instant of the window", 0.05):
        sched.check_alive()
        if time.time() > until and not store.schedules_due(namespace, until):
            return


def _finished_jobs(
    store: Store, namespace: str, fleet: WorkerFleet, timeout: float
) -> list[Job]:
    """Every job of the namespace once the workers have run them all (no more fires:
    the scheduler has stopped)."""
    ids = [job.id for job in store.list_jobs(namespace, JobFilter(limit=_ALL))]
    if not ids:
        raise BenchmarkError("the scheduler created no job")
    return fleet.wait_finished(ids, timeout)


def _lateness(jobs: Sequence[Job], stamp: str) -> list[float]:
    """``stamp`` (created_at or started_at) minus the fire time, in milliseconds."""
    return [(epoch(getattr(job, stamp)) - epoch(job.fire_at)) * 1000 for job in jobs]


def count_duplicates(jobs: Sequence[Job]) -> int:
    """(schedule, fire time) pairs that more than one job stands for."""
    pairs = Counter((job.schedule_id, _micros(job.fire_at)) for job in jobs)
    return sum(1 for seen in pairs.values() if seen > 1)


def _sleep_until(moment: float, check: Callable[[], None]) -> None:
    """Sleep until the wall-clock ``moment``, checking the processes every half second."""
    while (left := moment - time.time()) > 0:
        check()
        time.sleep(min(left, 0.5))


# -- processes ----------------------------------------------------------------------------


class SchedulerProcess:
    """A ``taskwheel scheduler`` subprocess on the benchmark's database and namespace,
    logging at info level (it says when it started and when it took the lease)."""

    def __init__(self, url: str, namespace: str, log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")}
        command = [
            sys.executable, "-m", "taskwheel.cli.main", "scheduler", "--app", APP_SPEC,
            "--database-url", url, "--namespace", namespace, "--log-level", "info",
        ]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self) -> SchedulerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def started(self) -> bool:
        """Its loop runs: it stands by or holds the lease."""
        return " started (namespace " in self.log.read_text(errors="replace")

    def kill(self) -> float:
        """SIGKILL; the wall-clock time right after the signal was sent."""
        self.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        self.proc.wait()
        return killed_at

    def stop(self) -> None:
        """SIGTERM (it gives the lease back), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None and code != -signal.SIGKILL:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise BenchmarkError(
                f"scheduler process {self.pid} exited with code {code}: " + " | ".join(tail)
            )


class LeaseWatch:
    """Who holds a scheduler lease (partition 0's unless told): the process id
    inside the holder's id (``host:pid:suffix``), judged by the store clock like the
    lease itself."""

    def __init__(self, store: Store, namespace: str, lease: str = partition_lease(0)) -> None:
        self.store = store
        self.namespace = namespace
        self.lease = lease

    def pid(self) -> int | None:
        holder = self.store.lease_holder(self.namespace, self.lease)
        return None if holder is None else _pid_of(holder)

    def sharing(self, pids: set[int]) -> bool:
        """Whether each of ``pids`` holds some partition."""
        holders = self.store.lease_holders(self.namespace, PARTITION_PREFIX).values()
        return {_pid_of(holder) for holder in holders} == pids


def _pid_of(holder: str) -> int:
    return int(holder.rsplit(":", 2)[1])


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from ``/proc/<pid>/stat``."""
    stat = _proc(pid, "stat")
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; fields 3 on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    for line in _proc(pid, "status").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # kB
    return values["VmRSS"], values["VmHWM"]


def _proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except FileNotFoundError:
        raise BenchmarkError(
            f"/proc/{pid}/{name} is missing: the process has exited, or this is not Linux"
        ) from None


# -- what was measured on what ------------------------------------------------------------


def _describe(store: Store, namespace: str, workers: int) -> dict[str, Any]:
    """The machine and the store (as the core benchmark reports them) and the
    scheduler settings every scheduler process ran with."""
    kind = store.describe().get("kind")
    where = ("a schema of its own (dropped)" if kind == "postgres"
             else "temporary file (deleted)")
    core = describe(BenchSettings.build(workers=max(workers, 1)), store, where, namespace)
    return {
        "machine": core["machine"],
        "store": core["store"],
        "scheduler": asdict(SchedulerSettings.build()),
        **({"workers": workers, "worker_concurrency": core["concurrency"],
            "worker_pool": core["pool"]} if workers else {}),
    }


def _schedule_methods(settings: ScheduleBenchSettings) -> dict[str, Any]:
    return {
        "schedules": settings.schedules,
        "duration_s": settings.duration,
        "burst": settings.burst,
        "methods": {
            "create": "app.add_schedule(...) in a loop from the benchmark process: "
                      "validation and one store.upsert_schedule transaction each, no "
                      "scheduler or worker running",
            "steady": f"every=\"{PERIOD:g}s\", schedule i first fires at window start + "
                      f"i*{PERIOD:g}/N s, the window beginning after creation and start-up; "
                      "one `taskwheel scheduler` and idle `taskwheel worker` processes",
            "fire_lateness": "created_at - fire_at of each job whose fire_at is in the window",
            "start_lateness": "started_at (the claim) - fire_at of the same jobs",
            "expected_fires": "fire times inside the window by the schedules' definitions",
            "duplicates": "(schedule_id, fire_at) pairs with more than one job",
            "cpu_share": "(utime + stime) of the scheduler process from /proc/<pid>/stat "
                         "over the window / the window's wall time",
            "memory_per_schedule": "(VmRSS of the scheduler at the window's end - VmRSS of "
                                   "a scheduler holding the lease over an empty database, "
                                   "1 s after taking it) / N",
            "burst": "N schedules at=one instant; all_created_s = max(created_at) - instant",
            "percentiles": "nearest rank",
        },
    }
