"""The scale benchmark: whether taskwheel's costs stay flat as the work grows.

Three parts, each skippable:

- **history**: the drain rate with ``finished`` finished jobs (and their attempt rows)
  and ``scheduled`` jobs due in a day already in the jobs table, as a ratio to the drain
  rate on the same, empty table measured just before in the same run, by the same
  warmed-up workers. The table is filled by `taskwheel.bench.history` (set-based SQL, not
  the enqueue API). The loaded drain is measured twice: as filled, before anything
  analysed the table (what a bulk load or a burst of history looks like to the planner
  until statistics catch up), and after ``ANALYZE``. On PostgreSQL the whole part runs
  once per autovacuum mode, the jobs and attempts tables' own ``autovacuum_enabled``
  (the server's settings are never changed; autovacuum visits a table only when the
  server's switch is on too, and the report says which held);
- **schedules**: the schedules benchmark's steady phase (`taskwheel.bench.schedules`) at
  ``schedules`` schedules with one scheduler, then with ``schedulers`` sharing the
  partitions: fire lateness, start-up, memory per schedule and CPU per scheduler;
- **wheel**: the timing wheel's cost per tick at each of ``timers``
  (`taskwheel.bench.wheel_ticks`).

Example:
    >>> settings = ScaleBenchSettings.build(finished=10_000, scheduled=1_000,
    ...                                     drain_jobs=1_000, schedules=0, timers=[])
    >>> run_scale_benchmark(settings).history[0].loaded.jobs
    1000
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taskwheel.bench.app import app, noop
from taskwheel.bench.core import CpuMeter, DrainResult, drain_of
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.history import FillResult, HistoryFill, PostgresTables, open_tables
from taskwheel.bench.processes import WorkerFleet
from taskwheel.bench.report import Progress, machine, ratio, spread, store_facts
from taskwheel.bench.schedules import ScheduleBenchResult, run_schedule_benchmark
from taskwheel.bench.settings import (
    BenchStore,
    FleetSettings,
    ScheduleBenchSettings,
    check_store,
)
from taskwheel.bench.wheel_ticks import TickCost, measure_tick_cost
from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput

WARM_UP_JOBS = 500
# The sizes of issue's targets: the documented full run.
FULL = {"finished": 10_000_000, "scheduled": 1_000_000, "schedules": 1_000_000,
        "timers": (10_000, 100_000, 1_000_000)}


@dataclass(frozen=True)
class ScaleBenchSettings:
    """See the module's docstring. ``drain_jobs``: the jobs of each drain;
    ``autovacuum``: on PostgreSQL, the table modes measured (``on``, ``off``)."""

    store: BenchStore = BenchStore.SQLITE
    postgres_url: str | None = None
    finished: int = 500_000
    scheduled: int = 50_000
    drain_jobs: int = 10_000
    autovacuum: tuple[bool, ...] = (True, False)
    schedules: int = 10_000
    schedulers: int = 4
    duration: float = 30.0
    period: float = 60.0
    timers: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    repeat: int = 1
    workers: int = 2
    timeout: float = 600.0

    @classmethod
    def build(
        cls, *, store: BenchStore | str | None = None, database_url: str | None = None,
        finished: int = 500_000, scheduled: int = 50_000, drain_jobs: int = 10_000,
        autovacuum: Sequence[str] = ("on", "off"), schedules: int = 10_000,
        schedulers: int = 4, duration: DurationLike = "30s", period: DurationLike = "60s",
        timers: Sequence[int] = (10_000, 100_000, 1_000_000), repeat: int = 1,
        workers: int = 2, timeout: DurationLike = "10m",
    ) -> ScaleBenchSettings:
        """Validated settings (each error names its option).

        Example:
            >>> ScaleBenchSettings.build(timers=[1000]).timers
            (1000,)
        """
        kind, url = check_store(store, database_url)
        if kind is BenchStore.SQLITE and url is not None:
            raise InvalidInput("database_url", "the scale benchmark makes its own SQLite "
                               "files; give a PostgreSQL URL or none")
        for name, value, least in (("finished", finished, 0), ("scheduled", scheduled, 0),
                                   ("drain_jobs", drain_jobs, 1), ("schedules", schedules, 0),
                                   ("repeat", repeat, 1), ("workers", workers, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidInput(name, f"must be an integer >= {least}, got {value!r}")
        modes = []
        for mode in autovacuum:
            if mode not in ("on", "off"):
                raise InvalidInput("autovacuum", f"unknown mode {mode!r} (use on, off)")
            if (mode == "on") not in modes:
                modes.append(mode == "on")
        if not modes:
            raise InvalidInput("autovacuum", "give on, off or both")
        sizes = tuple(timers)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
            raise InvalidInput("timers", f"must be integers >= 1, got {list(sizes)!r}")
        schedule_settings = ScheduleBenchSettings.build(
            schedules=max(schedules, 1), duration=duration, burst=0, schedulers=schedulers,
            period=period)
        return cls(
            store=kind, postgres_url=url, finished=finished, scheduled=scheduled,
            drain_jobs=drain_jobs, autovacuum=tuple(modes), schedules=schedules,
            schedulers=schedule_settings.schedulers, duration=schedule_settings.duration,
            period=schedule_settings.period, timers=sizes, repeat=repeat, workers=workers,
            timeout=parse_duration(timeout, "timeout", allow_zero=False),
        )

    @property
    def fill(self) -> HistoryFill:
        return HistoryFill(finished=self.finished, scheduled=self.scheduled)


@dataclass(frozen=True)
class HistoryRun:
    """One run of the history part: the empty drain, the fill, the loaded drains.
    ``autovacuum``: on PostgreSQL, the tables' parameter and what held in effect."""

    empty: DrainResult
    fill: FillResult
    loaded: DrainResult
    analysed: DrainResult
    autovacuum: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, float | None]:
        """Each loaded drain's rate over the empty one's, and the same for CPU per job."""
        return {
            "loaded_rate": ratio(self.loaded.per_s, self.empty.per_s),
            "analysed_rate": ratio(self.analysed.per_s, self.empty.per_s),
            "loaded_cpu_per_job": ratio(_cpu(self.loaded), _cpu(self.empty)),
            "analysed_cpu_per_job": ratio(_cpu(self.analysed), _cpu(self.empty)),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "autovacuum": self.autovacuum,
            "fill": self.fill.to_dict(),
            **{name: {"per_s": round(drain.per_s, 1), "cpu_us_per_job": _cpu(drain),
                      "jobs": drain.jobs, "seconds": round(drain.seconds, 3)}
               for name, drain in (("empty", self.empty), ("loaded", self.loaded),
                                   ("analysed", self.analysed))},
            "ratio_to_empty": self.ratios(),
        }


def _cpu(drain: DrainResult) -> float:
    """The worker processes' CPU per job (µs): PostgreSQL's share is read off every
    server process of the host, which other clients' backends coming and going make
    unreliable on a shared machine (see `CpuMeter`)."""
    return drain.cpu.per_job_us(drain.jobs)["client"]


@dataclass(frozen=True)
class ScaleBenchResult:
    history: list[HistoryRun]
    schedules: list[ScheduleBenchResult]  # one scheduler, then several sharing
    wheel: list[TickCost]
    settings: dict[str, Any] = field(default_factory=dict)

    def history_summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per autovacuum mode ("-" on SQLite), each ratio's median, min and max."""
        modes: dict[str, list[HistoryRun]] = {}
        for run in self.history:
            modes.setdefault(run.autovacuum.get("tables", {}).get("jobs", "-"), []).append(run)
        summary = {}
        for mode, runs in modes.items():
            ratios = [run.ratios() for run in runs]
            summary[mode] = {name: spread([r[name] for r in ratios]) for name in ratios[0]}
        return summary

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench scale --format json`` prints."""
        return {
            "history": {"summary": self.history_summary(),
                        "runs": [run.to_dict() for run in self.history]},
            "schedules": [_schedules_dict(result) for result in self.schedules],
            "wheel": [cost.to_dict() for cost in self.wheel],
            "settings": self.settings,
        }


def _schedules_dict(result: ScheduleBenchResult) -> dict[str, Any]:
    steady = result.steady
    return {
        "schedules": steady.creation.count,
        "period_s": result.settings["period_s"],
        "schedulers": len(steady.schedulers),
        "fire_lateness_ms": steady.fire_lateness.to_dict(),
        "startup_s": round(steady.startup_s, 3),
        "fires": steady.fires,
        "expected_fires": steady.expected_fires,
        "duplicates": steady.duplicates,
        "window": {"ready_margin_s": round(steady.ready_margin_s, 3),
                   "moved_s": round(steady.window_moved_s, 3),
                   "fires_before_window": steady.fires_before_window},
        "per_scheduler": [usage.to_dict() for usage in steady.schedulers],
    }


def run_scale_benchmark(
    settings: ScaleBenchSettings, progress: Progress | None = None
) -> ScaleBenchResult:
    """The history part (each mode, ``repeat`` times), the schedules part, the wheel."""
    say = progress or (lambda _line: None)
    history: list[HistoryRun] = []
    described: dict[str, Any] = {"machine": machine()}
    if settings.finished or settings.scheduled:
        modes = settings.autovacuum if settings.store is BenchStore.POSTGRES else (None,)
        for n in range(settings.repeat):
            for mode in modes:
                label = "" if mode is None else f", table autovacuum {'on' if mode else 'off'}"
                say(f"history run {n + 1}/{settings.repeat}{label}")
                run, store_described = measure_history(settings, mode, say)
                history.append(run)
                described["store"] = store_described
    schedules: list[ScheduleBenchResult] = []
    if settings.schedules:
        for count in dict.fromkeys((1, settings.schedulers)):
            say(f"schedules: {settings.schedules:,} with {count} scheduler(s)")
            schedules.append(run_schedule_benchmark(ScheduleBenchSettings.build(
                schedules=settings.schedules, duration=settings.duration,
                workers=settings.workers, burst=0, timeout=settings.timeout,
                postgres_url=settings.postgres_url, schedulers=count,
                period=settings.period), say))
    wheel = []
    for timers in settings.timers:
        say(f"wheel: {timers:,} timers")
        wheel.append(measure_tick_cost(timers))
    described["methods"] = _methods(settings)
    described["sizes"] = {"finished": settings.finished, "scheduled": settings.scheduled,
                          "drain_jobs": settings.drain_jobs, "schedules": settings.schedules,
                          "schedulers": settings.schedulers, "duration_s": settings.duration,
                          "timers": list(settings.timers), "repeat": settings.repeat,
                          "workers": settings.workers, "full_run": {
                              k: list(v) if isinstance(v, tuple) else v
                              for k, v in FULL.items()}}
    return ScaleBenchResult(history=history, schedules=schedules, wheel=wheel,
                            settings=described)


def measure_history(
    settings: ScaleBenchSettings, autovacuum: bool | None, say: Progress
) -> tuple[HistoryRun, dict[str, Any]]:
    """One fresh database: warm-up, the empty drain, the fill, the loaded drain as
    filled, ``ANALYZE``, the loaded drain again. ``autovacuum``: on PostgreSQL, the
    tables' own parameter (None on SQLite)."""
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_workdir())
        url, namespace, throwaway = fresh_database(workdir, "history", settings.postgres_url)
        store = open_app(stack, url, namespace, throwaway)
        tables = open_tables(url)
        stack.callback(tables.close)
        state: dict[str, Any] = {}
        if isinstance(tables, PostgresTables) and autovacuum is not None:
            tables.set_autovacuum(autovacuum)
            state = tables.autovacuum()
        meter = CpuMeter(settings.store)
        logs = workdir / namespace
        logs.mkdir()
        fleet = stack.enter_context(WorkerFleet(
            FleetSettings(workers=settings.workers), url=url, namespace=namespace, logs=logs))
        fleet.wait_registered(store, settings.timeout)
        drain_jobs(fleet, WARM_UP_JOBS, settings.timeout, meter)
        say(f"drain: {settings.drain_jobs:,} jobs on the empty table")
        empty = drain_jobs(fleet, settings.drain_jobs, settings.timeout, meter)
        say(f"fill: {settings.finished:,} finished jobs and {settings.scheduled:,} due in a "
            f"day")
        filled = tables.fill(settings.fill, namespace)
        say(f"filled in {filled.seconds:.1f}s; drain: {settings.drain_jobs:,} jobs")
        loaded = drain_jobs(fleet, settings.drain_jobs, settings.timeout, meter)
        tables.analyze()
        say(f"analysed; drain: {settings.drain_jobs:,} jobs")
        analysed = drain_jobs(fleet, settings.drain_jobs, settings.timeout, meter)
        if isinstance(tables, PostgresTables):
            state = {**state, "analysed": tables.analyzed()}
        fleet.stop()
        facts = store_facts(store, database_url="a schema of its own (dropped)" if throwaway
                            else "temporary file (deleted)", namespace=namespace,
                            schema_dropped=throwaway)
        return HistoryRun(empty=empty, fill=filled, loaded=loaded, analysed=analysed,
                          autovacuum=state), facts
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def drain_jobs(fleet: WorkerFleet, count: int, timeout: float, meter: CpuMeter) -> DrainResult:
    """``count`` no-op jobs made ready in one transaction, drained by ``fleet``."""
    handles = app.enqueue_many(noop.prepare() for _ in range(count))
    return drain_of(fleet, app.store, [h.id for h in handles], meter, timeout)


def _methods(settings: ScaleBenchSettings) -> dict[str, str]:
    return {
        "history": "a fresh database per run; idle workers warmed up by a drain of "
                   f"{WARM_UP_JOBS} jobs; drain of the empty table, then the fill, then "
                   "the same drain as filled (no ANALYZE yet), then ANALYZE and the drain "
                   "again; each drain: jobs made ready by one enqueue_many, jobs / (last "
                   "finished_at - first started_at), CPU of the workers (and PostgreSQL) per "
                   "job; ratios: loaded / empty of the same run",
        "fill": "finished jobs: succeeded, one attempt row each, finished 1 h ago (inside "
                "the workers' retention, so nothing is pruned meanwhile); later jobs: "
                "scheduled, due in a day; in the drain's own namespace and queue",
        "autovacuum": "PostgreSQL: ALTER TABLE jobs/attempts SET (autovacuum_enabled = on|"
                      "off) in the run's own schema; 'effective' is on only when the "
                      "server's autovacuum is on too (this benchmark never changes it)",
        "schedules": "the steady phase of `taskwheel bench schedules` (burst 0) with one "
                     f"scheduler, then {settings.schedulers} sharing the partitions",
        "wheel": "taskwheel.bench.wheel_ticks: advance() one 1 ms tick at a time over "
                 "5,000 ticks; idle: every timer due after the stretch; firing: timers "
                 "spread over 60 s, the stretch inside it; medians of 3",
    }

