"""Benchmarks: enqueue rate (single and batch), drain rate of no-op jobs with worker
processes, and enqueue→start latency. Measures and returns figures; only the CLI prints.

The worker processes it starts are real ``taskwheel worker`` commands loading this
module's `app` (``--app taskwheel.benchmark:app``), so the tasks they run are defined
here, at import. Every run works in namespaces of its own (``bench-<random>-enqueue``
and ``bench-<random>-run``): a database that holds other jobs is left untouched, and
the jobs the enqueue phases leave queued are never seen by the workers nor sit in
front of the drain's jobs in the ready index. On PostgreSQL the run has a schema of its
own too, dropped afterwards, unless the URL names one (``?schema=``).

Example:
    >>> result = run_benchmark(BenchSettings.build(jobs=2_000))
    >>> result.drain.per_s > 0
    True
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from taskwheel.app import App
from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.jobs import Job
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.stores import DATABASE_URL_ENV, POSTGRES_SCHEMES, Store
from taskwheel.tasks import Pool

QUEUE = "bench"
APP_SPEC = "taskwheel.benchmark:app"

# Worker processes point this app at the benchmark's database and namespace with
# --database-url and --namespace; the benchmark itself with `App.configure`.
app = App(namespace="bench", migrate=True)  # every run makes its own database


@app.task(queue=QUEUE)
async def noop() -> None:
    """The drain and enqueue benchmarks' job: does nothing, so only taskwheel is timed."""


@app.task(queue=QUEUE)
async def stamp() -> float:
    """The latency benchmark's job: the wall-clock time its code started."""
    return time.time()


class BenchmarkError(TaskwheelError):
    """A benchmark could not complete (a worker died, jobs failed or never finished)."""


# -- settings and results ---------------------------------------------------------------


class BenchStore(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class BenchSettings:
    """What to measure and how. Build with `BenchSettings.build` to validate.

    ``store``: the backend measured. ``database_url``: for SQLite, None for a fresh
    temporary file, deleted afterwards; for PostgreSQL, the server (its schema, when the
    URL names none, is a fresh one dropped afterwards).
    ``jobs``: jobs enqueued in batches and drained. ``single_jobs``: jobs enqueued one
    call each. ``enqueue_batch``: jobs per `App.enqueue_many` call. ``claim_batch``:
    the workers' ``--batch-size``. ``latency_jobs`` are enqueued at ``latency_rate``
    per second. ``timeout``: the longest a drain or latency phase may take.
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
    timeout: float = 120.0

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
        timeout: float = 120.0,
    ) -> BenchSettings:
        """Validated settings; every error names its option. ``store`` None: the
        backend ``database_url`` names (SQLite without one); PostgreSQL takes its URL
        from ``$TASKWHEEL_DATABASE_URL`` when ``database_url`` is None.

        Example:
            >>> BenchSettings.build(jobs=50_000, workers=4).single_jobs
            5000
        """
        counts = {
            "jobs": jobs, "enqueue_batch": enqueue_batch, "workers": workers,
            "concurrency": concurrency, "claim_batch": claim_batch,
            "latency_jobs": latency_jobs,
        }
        if single_jobs is not None:
            counts["single_jobs"] = single_jobs
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(name, f"must be an integer >= 1, got {value!r}")
        for name, number in (("latency_rate", latency_rate), ("timeout", timeout)):
            if isinstance(number, bool) or not isinstance(number, int | float) or not (
                math.isfinite(number) and number > 0
            ):
                raise InvalidInput(name, f"must be a number > 0, got {number!r}")
        try:
            pool_kind = Pool(pool)
        except ValueError:
            raise InvalidInput("pool", f"unknown pool {pool!r} (use async, thread, process)") \
                from None
        kind, url = _check_store(store, database_url)
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
            latency_rate=float(latency_rate),
            timeout=float(timeout),
        )


def _check_store(
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


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of a sample, in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    count: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Percentiles:
        ordered = sorted(samples_ms)
        if not ordered:
            raise ValueError("no samples")

        def rank(p: float) -> float:
            return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

        return cls(
            p50=rank(50), p95=rank(95), p99=rank(99), max=ordered[-1],
            mean=sum(ordered) / len(ordered), count=len(ordered),
        )


@dataclass(frozen=True)
class EnqueueResult:
    jobs: int
    seconds: float
    calls: int

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds


@dataclass(frozen=True)
class DrainResult:
    """``seconds``: from the first claim's ``started_at`` to the last ``finished_at``.

    ``claims`` and ``reports`` count the distinct claim and report transactions, read
    off the rows (a claim stamps one ``started_at`` on its whole batch, a report one
    ``finished_at``).
    """

    jobs: int
    seconds: float
    wall_seconds: float  # enqueue returned → every job seen finished (includes polling)
    jobs_by_worker: dict[str, int]
    claims: int
    reports: int

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds


@dataclass(frozen=True)
class LatencyResult:
    """``to_code``: enqueue call → the task's first line (what a user feels).
    ``to_claim``: enqueue call → the claim's ``started_at`` (the store's part)."""

    to_code: Percentiles
    to_claim: Percentiles
    achieved_rate: float


@dataclass(frozen=True)
class BenchResult:
    enqueue_single: EnqueueResult
    enqueue_batch: EnqueueResult
    drain: DrainResult
    latency: LatencyResult
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench --format json`` prints."""
        return {
            "enqueue_single_per_s": round(self.enqueue_single.per_s, 1),
            "enqueue_batch_per_s": round(self.enqueue_batch.per_s, 1),
            "drain_per_s": round(self.drain.per_s, 1),
            "latency_ms": rounded(asdict(self.latency.to_code)),
            "claim_latency_ms": rounded(asdict(self.latency.to_claim)),
            "details": {
                "enqueue_single": {**asdict(self.enqueue_single)},
                "enqueue_batch": {**asdict(self.enqueue_batch)},
                "drain": {**asdict(self.drain)},
                "latency_achieved_rate_per_s": round(self.latency.achieved_rate, 2),
            },
            "settings": self.settings,
        }


def rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


# -- the run ------------------------------------------------------------------------------

Progress = Callable[[str], None]


def run_benchmark(settings: BenchSettings, progress: Progress | None = None) -> BenchResult:
    """Run every benchmark in turn on one database; see ``bench/README.md``.

    Order: single enqueue, batch enqueue (no worker running), then worker processes
    are started and left idle, then latency, then drain. ``progress`` receives one
    line per phase.
    """
    say = progress or (lambda _line: None)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="taskwheel-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        token = uuid.uuid4().hex[:8]
        url, throwaway = _database(settings, workdir, token)
        prefix = f"bench-{token}"
        enqueue_ns, run_ns = f"{prefix}-enqueue", f"{prefix}-run"

        app.close()
        app.configure(database_url=url, namespace=enqueue_ns)
        stack.callback(app.close)
        store = app.store  # opened and migrated here, outside every timing
        if throwaway:
            stack.callback(drop_schema, store)  # after the workers stopped

        say(f"enqueue: {settings.single_jobs} jobs, one call each")
        single = measure_single_enqueue(settings.single_jobs)
        say(f"enqueue: {settings.jobs} jobs in batches of {settings.enqueue_batch}")
        batch = measure_batch_enqueue(settings.jobs, settings.enqueue_batch)

        app.configure(namespace=run_ns)
        say(f"starting {settings.workers} worker processes (c={settings.concurrency}, "
            f"pool={settings.pool.value})")
        fleet = stack.enter_context(
            WorkerFleet(settings, url=url, namespace=run_ns, logs=workdir)
        )
        fleet.wait_registered(store)
        say(f"latency: {settings.latency_jobs} jobs at {settings.latency_rate:g}/s")
        latency = measure_latency(fleet, settings)
        say(f"drain: {settings.jobs} no-op jobs")
        drain = measure_drain(fleet, settings)
        fleet.stop()
        return BenchResult(
            enqueue_single=single,
            enqueue_batch=batch,
            drain=drain,
            latency=latency,
            settings=describe(settings, store, url, prefix, throwaway),
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _database(settings: BenchSettings, workdir: Path, token: str) -> tuple[str, bool]:
    """The URL to measure on, and whether it names a schema to drop afterwards."""
    if settings.store is BenchStore.SQLITE:
        return settings.database_url or f"sqlite:///{workdir / 'bench.db'}", False
    assert settings.database_url is not None
    parts = urlsplit(settings.database_url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "schema" for key, _ in params):
        return settings.database_url, False
    params.append(("schema", f"taskwheel_bench_{token}"))
    return urlunsplit(parts._replace(query=urlencode(params))), True


def phase_database(base_url: str | None, workdir: Path, phase: str) -> tuple[str, bool]:
    """A fresh database for one phase of a benchmark, and whether it is a schema to drop
    afterwards: a SQLite file in ``workdir`` when ``base_url`` is None, else a new
    schema on the PostgreSQL server ``base_url`` names."""
    if base_url is None:
        return f"sqlite:///{workdir / f'{phase}.db'}", False
    parts = urlsplit(base_url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    params.append(("schema", f"taskwheel_bench_{uuid.uuid4().hex[:8]}_{phase}"))
    return urlunsplit(parts._replace(query=urlencode(params))), True


def postgres_url_for(store: BenchStore | str | None, database_url: str | None) -> str | None:
    """The PostgreSQL server to measure the scheduler on, None for a temporary SQLite
    file (a SQLite URL is refused: each phase needs a fresh database)."""
    kind, url = _check_store(store, database_url)
    if kind is BenchStore.SQLITE:
        if url is not None:
            raise InvalidInput("database_url", "the scheduler benchmarks make their own "
                               "SQLite files; give a PostgreSQL URL or none")
        return None
    return url


def drop_schema(store: Store) -> None:
    from taskwheel.stores.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        store.drop_schema()


def _shown_url(settings: BenchSettings, url: str) -> str:
    """The URL for the report: without its password, if it has one."""
    if settings.database_url is None:
        return "temporary file (deleted)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def measure_single_enqueue(count: int) -> EnqueueResult:
    """``noop.enqueue()`` ``count`` times: one transaction (and commit) per job."""
    for _ in range(100):  # warm-up: statement cache, code paths; not counted
        noop.enqueue()
    started = time.perf_counter()
    for _ in range(count):
        noop.enqueue()
    return EnqueueResult(jobs=count, seconds=time.perf_counter() - started, calls=count)


def measure_batch_enqueue(count: int, batch: int) -> EnqueueResult:
    """`App.enqueue_many` of ``batch`` fresh `Task.prepare` requests per call."""
    app.enqueue_many(noop.prepare() for _ in range(min(batch, 1_000)))  # warm-up
    calls = 0
    started = time.perf_counter()
    remaining = count
    while remaining:
        size = min(batch, remaining)
        app.enqueue_many(noop.prepare() for _ in range(size))
        remaining -= size
        calls += 1
    return EnqueueResult(jobs=count, seconds=time.perf_counter() - started, calls=calls)


def measure_latency(fleet: WorkerFleet, settings: BenchSettings) -> LatencyResult:
    """Enqueue ``stamp`` jobs on a monotonic schedule while the workers sit idle.

    The enqueue time is read just before each ``stamp.enqueue()`` call; the task
    returns ``time.time()`` from its first line. Same host, same clock.
    """
    interval = 1.0 / settings.latency_rate
    enqueued_at: dict[int, float] = {}
    begin = time.monotonic()
    for n in range(settings.latency_jobs):
        pause = begin + n * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        now = time.time()
        enqueued_at[stamp.enqueue().id] = now
    achieved = settings.latency_jobs / max(time.monotonic() - begin, 1e-9)
    jobs = fleet.wait_finished(list(enqueued_at), settings.timeout)
    to_code = [(float(job.result) - enqueued_at[job.id]) * 1000 for job in jobs]
    to_claim = [
        (epoch(job.started_at) - enqueued_at[job.id]) * 1000 for job in jobs
    ]
    return LatencyResult(
        to_code=Percentiles.of(to_code),
        to_claim=Percentiles.of(to_claim),
        achieved_rate=achieved,
    )


def measure_drain(fleet: WorkerFleet, settings: BenchSettings) -> DrainResult:
    """Make ``jobs`` no-op jobs ready in one transaction while the workers are idle,
    and time the workers from their first claim to the last job's finish."""
    handles = app.enqueue_many(noop.prepare() for _ in range(settings.jobs))
    enqueued = time.monotonic()
    jobs = fleet.wait_finished([h.id for h in handles], settings.timeout)
    wall = time.monotonic() - enqueued
    first_start = min(epoch(job.started_at) for job in jobs)
    last_finish = max(epoch(job.finished_at) for job in jobs)
    by_worker: dict[str, int] = {}
    for job in jobs:
        name = job.worker_id or "?"
        by_worker[name] = by_worker.get(name, 0) + 1
    return DrainResult(
        jobs=len(jobs),
        seconds=last_finish - first_start,
        wall_seconds=wall,
        jobs_by_worker=by_worker,
        claims=len({(job.worker_id, job.started_at) for job in jobs}),
        reports=len({(job.worker_id, job.finished_at) for job in jobs}),
    )


def epoch(moment: Any) -> float:
    if moment is None:
        raise BenchmarkError("a finished job has no start or finish time")
    return float(moment.timestamp())


# -- worker processes ---------------------------------------------------------------------


class WorkerFleet:
    """``taskwheel worker`` subprocesses on the benchmark's database and namespace."""

    def __init__(self, settings: BenchSettings, *, url: str, namespace: str, logs: Path) -> None:
        self.settings = settings
        self.url = url
        self.namespace = namespace
        self.logs = logs
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable, "-m", "taskwheel.cli.main", "worker", "--app", APP_SPEC,
            "--database-url", self.url, "--namespace", self.namespace, "-q", QUEUE,
            "-c", str(s.concurrency), "--pool", s.pool.value, "--batch-size", str(s.claim_batch),
            "--log-level", "warning",
        ]

    def __enter__(self) -> WorkerFleet:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")}
        for n in range(self.settings.workers):
            log = self.logs / f"worker-{n + 1}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    self.command(), env=env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append((proc, log))
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (the workers are idle by then), SIGKILL after 30 s."""
        for proc, _ in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()

    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.processes]

    def check_alive(self) -> None:
        for proc, log in self.processes:
            code = proc.poll()
            if code is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise BenchmarkError(
                    f"worker process {proc.pid} exited with code {code}: " + " | ".join(tail)
                )

    def wait_registered(self, store: Store, timeout: float = 30.0) -> None:
        """Until every worker has registered (its wake-up listener is open by then)."""
        for _ in polling(timeout, f"{self.settings.workers} workers to register"):
            self.check_alive()
            if len(store.stats(self.namespace).workers) >= self.settings.workers:
                return

    def wait_finished(self, job_ids: list[int], timeout: float) -> list[Job]:
        """Until every job has ended; their records. Any job that did not succeed fails
        the benchmark: its figure would time an error path."""
        store = app.store
        want = len(job_ids)
        # The namespace is the benchmark's own and the jobs were committed before this
        # call: once none of its jobs is pending, these have all ended.
        for _ in polling(timeout, f"{want} jobs to finish", pause=0.05):
            self.check_alive()
            stats = store.stats(self.namespace)
            pending = sum(
                count for queue in stats.queues for status, count in queue.counts.items()
                if JobStatus(status) not in TERMINAL
            )
            if not pending:
                break
        jobs = store.get_jobs(self.namespace, job_ids)
        failed = [job for job in jobs if job.status is not JobStatus.SUCCEEDED]
        if failed or len(jobs) != want:
            example = failed[0] if failed else None
            detail = (
                f"; job {example.id} is {example.status.value}: {example.last_error}"
                if example else ""
            )
            raise BenchmarkError(f"{len(failed)} of {want} benchmark jobs did not succeed{detail}")
        return jobs


def polling(timeout: float, what: str, pause: float = 0.02) -> Iterator[None]:
    limit = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() >= limit:
            raise BenchmarkError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(pause)


# -- what was measured on what ------------------------------------------------------------


def describe(
    settings: BenchSettings, store: Store, url: str, namespace: str, throwaway: bool = False
) -> dict[str, Any]:
    """The machine, the store and its settings, and how each figure was measured."""
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable_cpus = os.cpu_count() or 0
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "usable_cpus": usable_cpus,
            "platform": platform.platform(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
        },
        "store": {
            "database_url": _shown_url(settings, url),
            "namespace_prefix": namespace,
            **({"schema_dropped_afterwards": True} if throwaway else {}),
            **store.describe(),
        },
        "workers": settings.workers,
        "concurrency": settings.concurrency,
        "pool": settings.pool.value,
        "claim_batch_size": settings.claim_batch,
        "enqueue_batch_size": settings.enqueue_batch,
        "jobs": settings.jobs,
        "single_enqueue_jobs": settings.single_jobs,
        "latency_jobs": settings.latency_jobs,
        "latency_rate_per_s": settings.latency_rate,
        "methods": {
            "enqueue_single": "noop.enqueue() in a loop, one transaction each, after 100 "
                              "uncounted warm-up calls; jobs / elapsed perf_counter",
            "enqueue_batch": "app.enqueue_many(noop.prepare() ...) per batch, request "
                             "building included; no worker running",
            "drain": "workers started and idle first (excluded: process start-up); all jobs "
                     "made ready by one enqueue_many transaction; jobs / (last finished_at - "
                     "first started_at) read from the job rows",
            "latency": "stamp.enqueue() paced on a monotonic schedule with idle workers; "
                       "latency = time.time() at the task's first line - time.time() just "
                       "before the enqueue call (claim latency: the row's started_at instead)",
            "percentiles": "nearest rank",
        },
    }
