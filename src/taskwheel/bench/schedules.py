"""The schedules benchmark: fire lateness at N active schedules, a burst of N schedules
due at one instant, and the scheduler's CPU share and memory per schedule.

Every process is real: a ``taskwheel scheduler`` and ``taskwheel worker`` subprocesses
load the benchmark app and run its no-op task, so this benchmark and the core one time
the same task and workers. Each phase works on a fresh database (a temporary SQLite
file, or a PostgreSQL schema dropped afterwards) in a namespace of its own.

The schedules of the steady phase are created before any scheduler runs, with their
first fire times on or after one instant that is far enough ahead for creation and the
scheduler's start-up to finish first: no fire is missed before the window, and in its
first period (a minute unless asked otherwise) every schedule fires exactly once,
evenly spread. The window begins there,
or, when the schedulers were not all ready by then (every partition held, shared out
evenly, every load done, the workers registered, and the instants that fell due
meanwhile fired), `READY_MARGIN` after they were: the start-up's lateness is the
start-up figure's, never the window's.

Example:
    >>> settings = ScheduleBenchSettings.build(schedules=1_000, duration="10s", burst=0)
    >>> run_schedule_benchmark(settings).steady.duplicates
    0
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskwheel.bench.app import BenchmarkError, app, noop
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.processes import (
    LeaseWatch,
    SchedulerProcess,
    WorkerFleet,
    polling,
    process_cpu_seconds,
    process_memory,
)
from taskwheel.bench.report import (
    MICRO,
    Percentiles,
    Progress,
    all_jobs,
    count_duplicates,
    epoch,
    iso,
    micros,
    scheduler_run_facts,
)
from taskwheel.bench.settings import FleetSettings, ScheduleBenchSettings
from taskwheel.jobs import Job
from taskwheel.scheduler import SchedulerSettings
from taskwheel.scheduler.partitions import PARTITION_PREFIX
from taskwheel.stores import Store

READY_MARGIN = 1.0  # seconds between every process ready and a window moved later
CREATE_BATCH = 1000  # schedules a transaction while the benchmark writes them


@dataclass(frozen=True)
class Creation:
    """``count`` schedules written by `App.add_schedules`, `CREATE_BATCH` a call (one
    transaction each)."""

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
    ``empty_rss_bytes``: VmRSS of a scheduler holding the lease over an empty database;
    ``schedules``: its share of them (all, or N / the schedulers sharing the partitions);
    ``load_seconds``: the time its loads of the horizon took, as it logged them.
    """

    cpu_seconds: float
    wall_seconds: float
    rss_bytes: int
    rss_at_window_start_bytes: int
    peak_rss_bytes: int
    empty_rss_bytes: int
    schedules: int
    load_seconds: float = 0.0

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
            "schedules": self.schedules,
            "load_seconds": round(self.load_seconds, 3),
        }


@dataclass(frozen=True)
class SteadyResult:
    """N schedules firing evenly over a minute, measured over one window.

    ``fires``: jobs whose fire time is inside the window; ``expected_fires``: the fire
    times inside the window by the schedules' definitions. ``ready_margin_s``: how long
    before the first fire every scheduler was ready and the workers registered
    (negative: they were late, and the window was moved to `READY_MARGIN` after they
    were ready by ``window_moved_s``).
    ``startup_s``: from the scheduler processes' spawn to every partition held and every
    scheduler's horizon loaded. ``schedulers``: one usage per scheduler process.
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
    schedulers: tuple[SchedulerUsage, ...]
    ready_margin_s: float
    startup_s: float
    window_moved_s: float = 0.0

    @property
    def scheduler(self) -> SchedulerUsage:
        """The first scheduler's usage (the only one, unless the partitions are shared)."""
        return self.schedulers[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedules": self.creation.count,
            "create": self.creation.to_dict(),
            "fires": self.fires,
            "expected_fires": self.expected_fires,
            "duplicates": self.duplicates,
            "fire_lateness_ms": self.fire_lateness.to_dict(),
            "start_lateness_ms": self.start_lateness.to_dict(),
            "scheduler": self.scheduler.to_dict(),
            "schedulers": [usage.to_dict() for usage in self.schedulers],
            "startup_s": round(self.startup_s, 3),
            "window": {
                "start": iso(self.window_start),
                "seconds": self.window_seconds,
                "ready_margin_s": round(self.ready_margin_s, 3),
                "moved_s": round(self.window_moved_s, 3),
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
            "fire_lateness_ms": self.fire_lateness.to_dict(),
            "start_lateness_ms": self.start_lateness.to_dict(),
            "instant": iso(self.instant),
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


# -- the run ------------------------------------------------------------------------------


def run_schedule_benchmark(
    settings: ScheduleBenchSettings, progress: Progress | None = None
) -> ScheduleBenchResult:
    """The empty-database baseline, the steady phase, then the burst; see
    ``bench/README.md``. ``progress`` receives one line per phase."""
    say = progress or (lambda _line: None)
    with temporary_workdir() as workdir:
        say("scheduler over an empty database: its memory")
        empty_rss = measure_empty_scheduler(workdir, settings.timeout, settings.postgres_url)
        say(f"steady: {settings.schedules:,} schedules every {settings.period:g}s, "
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
    url, namespace, throwaway = fresh_database(workdir, "empty", postgres_url)
    with contextlib.ExitStack() as stack:
        store = open_app(stack, url, namespace, throwaway)
        sched = stack.enter_context(
            SchedulerProcess(url, namespace, workdir / "scheduler-empty.log"))
        sched.wait_lease(LeaseWatch(store, namespace), timeout)
        time.sleep(1.0)
        return process_memory(sched.pid)[0]


def measure_steady(
    settings: ScheduleBenchSettings, workdir: Path, empty_rss: int, say: Progress
) -> tuple[SteadyResult, dict[str, Any]]:
    n = settings.schedules
    url, namespace, throwaway = fresh_database(workdir, "steady", settings.postgres_url)
    with contextlib.ExitStack() as stack:
        store = open_app(stack, url, namespace, throwaway)
        rate = _calibrate(store, namespace)
        first_fire_us = _after(_lead(n, rate))
        step_us = int(settings.period * MICRO)
        anchors = [first_fire_us + i * step_us // n for i in range(n)]
        creation = _create(n, lambda i: {"every": f"{settings.period:g}s",
                                         "start": _datetime(anchors[i])})
        say(f"created {n:,} schedules in {creation.seconds:.2f}s ({creation.per_s:,.0f}/s)")

        spawned = time.time()
        scheds = [stack.enter_context(SchedulerProcess(
            url, namespace, workdir / f"scheduler-steady-{k + 1}.log"))
            for k in range(settings.schedulers)]
        fleet = stack.enter_context(_fleet(settings.workers, url, namespace, workdir))
        startup = _wait_loaded(store, namespace, scheds, settings.timeout) - spawned
        fleet.wait_registered(store, settings.timeout)
        margin = first_fire_us / MICRO - time.time()
        # Not ready in time (a slow start-up, several schedulers sharing out the
        # partitions): the window begins a margin after they all were and had fired
        # the instants that fell due meanwhile, not before.
        if margin < READY_MARGIN:
            _wait_caught_up(store, namespace, scheds, settings.timeout)
        window_us = max(first_fire_us, _after(READY_MARGIN))
        window_start = window_us / MICRO
        window_end_us = window_us + int(settings.duration * MICRO)
        say(f"{len(scheds)} scheduler(s) loaded in {startup:.2f}s; ready {margin:.2f}s "
            f"before the first fire; measuring {settings.duration:g}s"
            + ("" if window_us == first_fire_us else
               f" from {(window_us - first_fire_us) / MICRO:.2f}s after the first fire"))

        def alive() -> None:
            for sched in scheds:
                sched.check_alive()
            fleet.check_alive()

        _sleep_until(window_start, alive)
        wall_start = time.time()
        starts = [(process_cpu_seconds(p.pid), process_memory(p.pid)[0]) for p in scheds]
        _sleep_until(window_end_us / MICRO, alive)
        wall_end = time.time()
        ends = [(process_cpu_seconds(p.pid), *process_memory(p.pid)) for p in scheds]
        say("window over: waiting for its last fires and jobs")
        _wait_fired(store, namespace, (window_end_us - 1) / MICRO, scheds, settings.timeout)
        loads = [_load_seconds(sched) for sched in scheds]
        for sched in scheds:
            sched.stop()
        jobs = _finished_jobs(store, namespace, fleet, settings.timeout)
        described = scheduler_run_facts(store, namespace, settings.workers)

    in_window = [job for job in jobs if window_us <= micros(job.fire_at) < window_end_us]
    if not in_window:
        raise BenchmarkError("no schedule fired inside the window")
    expected = sum(fires_within(anchor, step_us, window_us, window_end_us) for anchor in anchors)
    result = SteadyResult(
        creation=creation,
        window_start=window_start,
        window_seconds=settings.duration,
        fires=len(in_window),
        expected_fires=expected,
        fires_before_window=sum(1 for job in jobs if micros(job.fire_at) < window_us),
        duplicates=count_duplicates(jobs),
        fire_lateness=Percentiles.of(_lateness(in_window, "created_at")),
        start_lateness=Percentiles.of(_lateness(in_window, "started_at")),
        schedulers=tuple(
            SchedulerUsage(
                cpu_seconds=cpu_end - cpu_start,
                wall_seconds=wall_end - wall_start,
                rss_bytes=rss_end,
                rss_at_window_start_bytes=rss_start,
                peak_rss_bytes=peak,
                empty_rss_bytes=empty_rss,
                schedules=max(1, n // len(ends)),
                load_seconds=load,
            )
            for (cpu_start, rss_start), (cpu_end, rss_end, peak), load
            in zip(starts, ends, loads, strict=True)
        ),
        ready_margin_s=margin,
        startup_s=startup,
        window_moved_s=(window_us - first_fire_us) / MICRO,
    )
    return result, described


def fires_within(first: int, period: int, start: int, end: int) -> int:
    """How many of ``first + k * period`` (k >= 0) fall in [``start``, ``end``).

    Example:
        >>> [fires_within(10, 60, start, 131) for start in (0, 11, 71, 131)]
        [3, 2, 1, 0]
    """
    if end <= first:
        return 0
    lowest = max(0, -((first - start) // period))  # ceil((start - first) / period)
    highest = (end - 1 - first) // period
    return max(0, highest - lowest + 1)


def measure_burst(
    settings: ScheduleBenchSettings, workdir: Path, say: Progress
) -> BurstResult:
    n = settings.burst
    url, namespace, throwaway = fresh_database(workdir, "burst", settings.postgres_url)
    with contextlib.ExitStack() as stack:
        store = open_app(stack, url, namespace, throwaway)
        instant_us = _after(_lead(n, _calibrate(store, namespace)))
        at = _datetime(instant_us)
        creation = _create(n, lambda _i: {"at": at})
        say(f"created {n:,} schedules in {creation.seconds:.2f}s ({creation.per_s:,.0f}/s)")
        sched = stack.enter_context(
            SchedulerProcess(url, namespace, workdir / "scheduler-burst.log"))
        fleet = stack.enter_context(_fleet(settings.workers, url, namespace, workdir))
        margin = _wait_ready(store, namespace, sched=sched, fleet=fleet,
                             first_fire_us=instant_us, timeout=settings.timeout)
        _wait_fired(store, namespace, instant_us / MICRO, [sched], settings.timeout)
        sched.stop()
        jobs = _finished_jobs(store, namespace, fleet, settings.timeout)
    instant = instant_us / MICRO
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


# -- the phases' parts --------------------------------------------------------------------


def _fleet(workers: int, url: str, namespace: str, workdir: Path) -> WorkerFleet:
    logs = workdir / namespace
    logs.mkdir()
    return WorkerFleet(FleetSettings(workers=workers), url=url, namespace=namespace, logs=logs)


def _create(count: int, trigger: Callable[[int], dict[str, Any]]) -> Creation:
    """Write ``count`` schedules of the no-op task, `CREATE_BATCH` an `App.add_schedules`
    call (each validated, one transaction a call); ``trigger(i)`` gives schedule i's
    timing."""
    begin = time.perf_counter()
    for first in range(0, count, CREATE_BATCH):
        app.add_schedules(app.define_schedule(f"s{i:06d}", noop, **trigger(i))
                          for i in range(first, min(count, first + CREATE_BATCH)))
    return Creation(count, time.perf_counter() - begin)


def _calibrate(store: Store, namespace: str, sample: int = CREATE_BATCH) -> float:
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


def _datetime(us: int) -> datetime:
    """Epoch microseconds as a UTC datetime, exactly."""
    return datetime.fromtimestamp(us // MICRO, UTC).replace(microsecond=us % MICRO)


def _wait_ready(
    store: Store, namespace: str, *, sched: SchedulerProcess, fleet: WorkerFleet,
    first_fire_us: int, timeout: float,
) -> float:
    """Until the scheduler holds the lease and every worker registered; how long
    before the first fire that was."""
    fleet.wait_registered(store, timeout)
    sched.wait_lease(LeaseWatch(store, namespace), timeout)
    return first_fire_us / MICRO - time.time()


def _wait_loaded(
    store: Store, namespace: str, scheds: Sequence[SchedulerProcess], timeout: float
) -> float:
    """Until every partition is held (shared among ``scheds`` when there are several)
    and each scheduler has loaded every partition it took (its log says so); when."""
    pids = {sched.pid for sched in scheds}
    for _ in polling(timeout, "the schedulers to take the partitions and load them"):
        for sched in scheds:
            sched.check_alive()
        if _shared_out(store, namespace, pids) and all(_loads_done(sched) for sched in scheds):
            return time.time()
    raise AssertionError("unreachable")  # pragma: no cover - polling raises


def _wait_caught_up(
    store: Store, namespace: str, scheds: Sequence[SchedulerProcess], timeout: float
) -> None:
    """Until no schedule is overdue by more than a tenth of a second: the instants that
    fell due during a late start-up are fired (otherwise the window's first fires
    would wait behind them)."""
    for _ in polling(timeout, "the schedulers to fire what fell due during start-up", 0.05):
        for sched in scheds:
            sched.check_alive()
        if not store.schedules_due(namespace, time.time() - 0.1):
            return


def _shared_out(store: Store, namespace: str, pids: set[int]) -> bool:
    """Whether every partition is held, by ``pids`` alone, each holding its even share
    (they hand partitions over for a while after a newcomer joins: until then some still
    load theirs)."""
    holders = store.lease_holders(namespace, PARTITION_PREFIX)
    shares = Counter(int(holder.rsplit(":", 2)[1]) for holder in holders.values())
    count = SchedulerSettings().partitions
    return (len(holders) == count and set(shares) == pids
            and max(shares.values()) - min(shares.values()) <= 1)


def _loads_done(sched: SchedulerProcess) -> bool:
    """Whether the scheduler has loaded every set of partitions it took so far."""
    log = sched.log.read_text(errors="replace")
    taken = log.count(" holds partitions ")
    return taken > 0 and log.count(" fire times of partitions ") == taken


def _load_seconds(sched: SchedulerProcess) -> float:
    """The time the scheduler's loads of the horizon took, from its log lines."""
    total = 0.0
    for line in sched.log.read_text(errors="replace").splitlines():
        if " fire times of partitions " in line and line.endswith("s"):
            total += float(line.rsplit(" in ", 1)[1].removesuffix("s"))
    return total


def _wait_fired(
    store: Store, namespace: str, until: float, scheds: Sequence[SchedulerProcess],
    timeout: float,
) -> None:
    """Until no schedule has a fire time at or before ``until`` left to fire."""
    limit_s = max(0.0, until - time.time()) + timeout
    for _ in polling(limit_s, "the scheduler to fire every instant of the window", 0.05):
        for sched in scheds:
            sched.check_alive()
        if time.time() > until and not store.schedules_due(namespace, until):
            return


def _finished_jobs(
    store: Store, namespace: str, fleet: WorkerFleet, timeout: float
) -> list[Job]:
    """Every job of the namespace once the workers have run them all (no more fires:
    the scheduler has stopped)."""
    ids = [job.id for job in all_jobs(store, namespace)]
    if not ids:
        raise BenchmarkError("the scheduler created no job")
    return fleet.wait_finished(store, ids, timeout)


def _lateness(jobs: Sequence[Job], moment: str) -> list[float]:
    """``moment`` (created_at or started_at) minus the fire time, in milliseconds."""
    return [(epoch(getattr(job, moment)) - epoch(job.fire_at)) * 1000 for job in jobs]


def _sleep_until(moment: float, check: Callable[[], None]) -> None:
    """Sleep until the wall-clock ``moment``, checking the processes every half second."""
    while (left := moment - time.time()) > 0:
        check()
        time.sleep(min(left, 0.5))


def _schedule_methods(settings: ScheduleBenchSettings) -> dict[str, Any]:
    return {
        "schedules": settings.schedules,
        "duration_s": settings.duration,
        "burst": settings.burst,
        "schedulers": settings.schedulers,
        "period_s": settings.period,
        "methods": {
            "create": f"app.add_schedules(...) of {CREATE_BATCH} from the benchmark "
                      "process: each schedule validated, one store.upsert_schedules "
                      "transaction a call, no scheduler or worker running",
            "steady": f"every=\"{settings.period:g}s\", schedule i first fires at window "
                      f"start + i*{settings.period:g}/N s, the window beginning after "
                      "creation and start-up; "
                      "one `taskwheel scheduler` and idle `taskwheel worker` processes",
            "fire_lateness": "created_at - fire_at of each job whose fire_at is in the window",
            "start_lateness": "started_at (the claim) - fire_at of the same jobs",
            "expected_fires": "fire times inside the window by the schedules' definitions",
            "duplicates": "(schedule_id, fire_at) pairs with more than one job",
            "cpu_share": "(utime + stime) of the scheduler process from /proc/<pid>/stat "
                         "over the window / the window's wall time",
            "memory_per_schedule": "(VmRSS of the scheduler at the window's end - VmRSS of "
                                   "a scheduler holding the lease over an empty database, "
                                   "1 s after taking it) / N (the wheel holds the fire "
                                   "times within the scheduler's horizon, not all N when "
                                   "the period is longer)",
            "burst": "N schedules at=one instant; all_created_s = max(created_at) - instant",
            "startup": "spawn of the scheduler processes -> every partition lease held (shared "
                       "by all of them when there are several) and each one's log saying it "
                       "loaded the partitions it took; polled every 20 ms",
            "schedulers": "with several, the partitions are shared; each one's CPU and memory "
                          "per schedule are its own, over its share N / schedulers",
            "percentiles": "nearest rank",
        },
    }
