"""What each benchmark measures and how: small frozen dataclasses, each built and
validated by its ``build`` (every error names its option).

Example:
    >>> FailoverSettings.build(runs=3, timeout="1m").timeout
    60.0
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import StrEnum

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.stores import DATABASE_URL_ENV, POSTGRES_SCHEMES
from taskwheel.tasks import Pool


class BenchStore(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


# The leads of the delayed-start benchmark: each job is enqueued this many seconds before
# it falls due, drawn evenly between the two (seeded: every run draws the same leads).
DELAYED_LEADS = (0.010, 2.0)


@dataclass(frozen=True)
class FleetSettings:
    """The ``taskwheel worker`` processes a benchmark starts: how many, and each one's
    ``--concurrency``, ``--pool`` and ``--batch-size`` (``claim_batch``)."""

    workers: int = 2
    concurrency: int = 100
    pool: Pool = Pool.ASYNC
    claim_batch: int = 100


@dataclass(frozen=True)
class BenchSettings:
    """What the core benchmark measures and how. Build with `BenchSettings.build` to
    validate.

    ``store``: the backend measured. ``database_url``: for SQLite, None for a fresh
    temporary file, deleted afterwards; for PostgreSQL, the server (its schema, when the
    URL names none, is a fresh one dropped afterwards).
    ``jobs``: jobs enqueued in batches and drained. ``single_jobs``: jobs enqueued one
    call each. ``enqueue_batch``: jobs per `App.enqueue_many` call. ``claim_batch``:
    the workers' ``--batch-size``. ``latency_jobs`` are enqueued at ``latency_rate``
    per second; then ``delayed_jobs`` delayed ones, each with a lead drawn evenly from
    `DELAYED_LEADS` (how late each starts after it falls due). ``timeout``: the longest
    a drain or latency phase may take. ``keys``: when not 0, the drained jobs carry a
    concurrency key each, spread evenly over that many keys of ``key_limit`` slots
    (`taskwheel.limits`).
    """

    database_url: str | None = None
    store: BenchStore = BenchStore.SQLITE
    jobs: int = 20_000
    single_jobs: int = 5_000
    enqueue_batch: int = 1_000
    workers: int = 2
    concurrency: int = 100
    pool: Pool = Pool.ASYNC
    claim_batch: int = 100
    latency_jobs: int = 1_000
    latency_rate: float = 100.0
    delayed_jobs: int = 300
    timeout: float = 120.0
    keys: int = 0
    key_limit: int = 1

    @classmethod
    def build(
        cls,
        *,
        database_url: str | None = None,
        store: BenchStore | str | None = None,
        jobs: int = 20_000,
        single_jobs: int | None = None,
        enqueue_batch: int = 1_000,
        workers: int = 2,
        concurrency: int = 100,
        pool: Pool | str = Pool.ASYNC,
        claim_batch: int = 100,
        latency_jobs: int = 1_000,
        latency_rate: float = 100.0,
        delayed_jobs: int = 300,
        timeout: float = 120.0,
        keys: int = 0,
        key_limit: int = 1,
    ) -> BenchSettings:
        """Validated settings. ``store`` None: the backend ``database_url`` names
        (SQLite without one); PostgreSQL takes its URL from ``$TASKWHEEL_DATABASE_URL``
        when ``database_url`` is None.

        Example:
            >>> BenchSettings.build(jobs=50_000, workers=4).single_jobs
            5000
        """
        counts = {
            "jobs": jobs, "enqueue_batch": enqueue_batch, "workers": workers,
            "concurrency": concurrency, "claim_batch": claim_batch,
            "latency_jobs": latency_jobs, "delayed_jobs": delayed_jobs,
        }
        if single_jobs is not None:
            counts["single_jobs"] = single_jobs
        for name, value in counts.items():
            _count(name, value, 1)
        _count("keys", keys, 0)
        _count("key_limit", key_limit, 1)
        rate, limit = _positive("latency_rate", latency_rate), _positive("timeout", timeout)
        try:
            pool_kind = Pool(pool)
        except ValueError:
            raise InvalidInput("pool", f"unknown pool {pool!r} (use async, thread, process)") \
                from None
        kind, url = check_store(store, database_url)
        return cls(
            database_url=url,
            store=kind,
            jobs=jobs,
            single_jobs=min(jobs, 5_000) if single_jobs is None else single_jobs,
            enqueue_batch=enqueue_batch,
            workers=workers,
            concurrency=concurrency,
            pool=pool_kind,
            claim_batch=claim_batch,
            latency_jobs=latency_jobs,
            latency_rate=rate,
            delayed_jobs=delayed_jobs,
            timeout=limit,
            keys=keys,
            key_limit=key_limit,
        )

    @property
    def fleet(self) -> FleetSettings:
        return FleetSettings(workers=self.workers, concurrency=self.concurrency,
                             pool=self.pool, claim_batch=self.claim_batch)


@dataclass(frozen=True)
class ScheduleBenchSettings:
    """What `taskwheel.bench.schedules.run_schedule_benchmark` measures.

    ``schedules``: active schedules of the steady phase, each firing once a ``period``
    (60 s unless given), their fire times spread evenly over it. ``duration``: the
    measured window (from the first fire); a period and 5 s lets every schedule fire at
    least once. ``workers``: idle
    worker processes running the fired jobs. ``burst``: schedules all due at one
    instant (0: no burst phase). ``timeout``: the longest any wait may take.
    ``schedulers``: scheduler processes of the steady phase, sharing the partitions.
    """

    schedules: int = 10_000
    duration: float = 65.0
    workers: int = 2
    burst: int = 10_000
    timeout: float = 120.0
    postgres_url: str | None = None  # None: temporary SQLite files
    schedulers: int = 1
    period: float = 60.0

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
        schedulers: int = 1,
        period: DurationLike = "60s",
    ) -> ScheduleBenchSettings:
        """Validated settings.

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
            schedulers=_schedulers(schedulers),
            period=_period(period),
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


@dataclass(frozen=True)
class WorkflowBenchSettings:
    """``steps`` per run (each shape); ``workers`` idle worker processes with
    ``concurrency`` each; ``timeout``: the longest a run may take."""

    steps: int = 1_000
    workers: int = 2
    concurrency: int = 100
    timeout: float = 120.0

    @classmethod
    def build(cls, *, steps: int = 1_000, workers: int = 2, concurrency: int = 100,
              timeout: float = 120.0) -> WorkflowBenchSettings:
        """Validated settings.

        Example:
            >>> WorkflowBenchSettings.build(steps=10).workers
            2
        """
        return cls(
            steps=_count("steps", steps, 3),
            workers=_count("workers", workers, 1),
            concurrency=_count("concurrency", concurrency, 1),
            timeout=_positive("timeout", timeout),
        )

    @property
    def fleet(self) -> FleetSettings:
        return FleetSettings(workers=self.workers, concurrency=self.concurrency)


def check_store(
    store: BenchStore | str | None, url: str | None
) -> tuple[BenchStore, str | None]:
    """The backend and its URL: worker processes share the database, so a SQLite one
    must be a file, and a PostgreSQL one must be given."""
    try:
        kind = BenchStore(store) if store is not None else (
            BenchStore.POSTGRES if url and url.startswith(POSTGRES_SCHEMES)
            else BenchStore.SQLITE
        )
    except ValueError:
        raise InvalidInput("store", f"unknown store {store!r} (use sqlite, postgres)") from None
    if kind is BenchStore.POSTGRES:
        url = url or os.environ.get(DATABASE_URL_ENV)
        if not url:
            raise InvalidInput("database_url", f"--store postgres needs the server's URL "
                               f"(postgresql://...), or ${DATABASE_URL_ENV}")
        if not url.startswith(POSTGRES_SCHEMES):
            raise InvalidInput("database_url", f"not a PostgreSQL URL: {url!r}")
        return kind, url
    return kind, _check_sqlite_url(url)


def postgres_url_for(store: BenchStore | str | None, database_url: str | None) -> str | None:
    """The PostgreSQL server to measure the scheduler on, None for a temporary SQLite
    file (a SQLite URL is refused: each phase needs a fresh database)."""
    kind, url = check_store(store, database_url)
    if kind is BenchStore.SQLITE:
        if url is not None:
            raise InvalidInput("database_url", "the scheduler benchmarks make their own "
                               "SQLite files; give a PostgreSQL URL or none")
        return None
    return url


def _check_sqlite_url(url: str | None) -> str | None:
    if url is None:
        return None
    if url.startswith(POSTGRES_SCHEMES):
        raise InvalidInput("store", "a PostgreSQL --database-url needs --store postgres")
    if "://" in url and not url.startswith("sqlite:"):
        raise InvalidInput("database_url", f"not a SQLite URL: {url!r} (use sqlite:///path.db)")
    if ":memory:" in url:
        raise InvalidInput(
            "database_url", "an in-memory database cannot be shared with worker processes"
        )
    return url


def _schedulers(value: object) -> int:
    """Scheduler processes sharing the partitions: each must be able to hold one."""
    from taskwheel.scheduler import SchedulerSettings

    partitions = SchedulerSettings().partitions
    count = _count("schedulers", value, 1)
    if count > partitions:
        raise InvalidInput("schedulers", f"must be at most {partitions} (the partitions "
                           f"they share), got {count}")
    return count


def _period(value: DurationLike) -> float:
    """The steady schedules' interval: from a second to a day, in whole seconds."""
    seconds = parse_duration(value, "period", allow_zero=False, longest=86_400.0)
    if seconds < 1 or seconds != int(seconds):
        raise InvalidInput("period", f"must be whole seconds, at least 1s, got {value!r}")
    return seconds


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(name, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise InvalidInput(name, f"must be a number > 0, got {value!r}")
    return float(value)
