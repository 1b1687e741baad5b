"""The core benchmark: enqueue rate (single and batch), drain rate of no-op jobs with
worker processes, and enqueue→start latency, all on one database.

The run works in namespaces of its own (``bench-<random>-enqueue`` and
``bench-<random>-run``): a database that holds other jobs is left untouched, and the jobs
the enqueue phases leave queued are never seen by the workers nor sit in front of the
drain's jobs in the ready index. On PostgreSQL the run has a schema of its own too,
dropped afterwards, unless the URL names one (``?schema=``).

Example:
    >>> result = run_benchmark(BenchSettings.build(jobs=2_000))
    >>> result.drain.per_s > 0
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskwheel.bench.app import QUEUE, BenchmarkError, app, keyed_noop, noop, stamp
from taskwheel.bench.databases import open_app, run_database, temporary_workdir
from taskwheel.bench.processes import WorkerFleet, server_cpu_seconds, tree_cpu_seconds
from taskwheel.bench.report import Percentiles, Progress, epoch, machine, store_facts
from taskwheel.bench.settings import DELAYED_LEADS, BenchSettings, BenchStore
from taskwheel.stores import Store


@dataclass(frozen=True)
class Cpu:
    """CPU seconds (user + system) a phase cost: ``client``, the processes of taskwheel
    doing it (the benchmark's own for enqueue, the workers' for a drain, the loop's for
    the ceiling); ``server``, the database server's (PostgreSQL on this host; 0 for
    SQLite, whose work is the client's)."""

    client: float = 0.0
    server: float = 0.0

    def per_job_us(self, jobs: int) -> dict[str, float]:
        return {"client": round(self.client / jobs * 1e6, 1),
                "server": round(self.server / jobs * 1e6, 1),
                "total": round((self.client + self.server) / jobs * 1e6, 1)}


class CpuMeter:
    """Reads the CPU a phase costs: of this process or of given process trees, and of
    the database server when it is PostgreSQL on this host."""

    def __init__(self, store: BenchStore) -> None:
        self.postgres = store is BenchStore.POSTGRES

    def _server(self) -> float:
        return server_cpu_seconds() if self.postgres else 0.0

    @contextlib.contextmanager
    def own(self) -> Iterator[list[Cpu]]:
        """CPU of this process (and the server) while the block runs: ``[Cpu]``."""
        out: list[Cpu] = []
        before, server = _own_cpu(), self._server()
        yield out
        out.append(Cpu(client=_own_cpu() - before, server=self._server() - server))

    @contextlib.contextmanager
    def trees(self, pids: list[int]) -> Iterator[list[Cpu]]:
        """CPU of the process trees of ``pids`` (and the server) while the block runs."""
        out: list[Cpu] = []
        before = sum(tree_cpu_seconds(pid) for pid in pids)
        server = self._server()
        yield out
        out.append(Cpu(client=sum(tree_cpu_seconds(pid) for pid in pids) - before,
                       server=self._server() - server))


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class EnqueueResult:
    jobs: int
    seconds: float
    calls: int
    cpu: Cpu = field(default_factory=Cpu)

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
    cpu: Cpu = field(default_factory=Cpu)

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
class CeilingResult:
    """The raw ceiling (`taskwheel.bench.ceiling`): ``jobs`` claimed and finished by
    the store's own statements in a tight loop in ``processes`` processes, from the
    first claim to the last finish."""

    jobs: int
    seconds: float
    processes: int
    cpu: Cpu

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds


@dataclass(frozen=True)
class DelayedResult:
    """Delayed jobs on idle workers, leads drawn from `DELAYED_LEADS`: ``to_code``, how
    late the task's first line ran after the job fell due; ``to_claim``, the same for
    the claim's ``started_at`` (the store's part; 0 for a job claimed ahead of its due
    time, whose ``started_at`` is its due time)."""

    to_code: Percentiles
    to_claim: Percentiles


@dataclass(frozen=True)
class BenchResult:
    enqueue_single: EnqueueResult
    enqueue_batch: EnqueueResult
    drain: DrainResult
    latency: LatencyResult
    delayed: DelayedResult
    ceiling: CeilingResult
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench --format json`` prints."""
        return {
            "enqueue_single_per_s": round(self.enqueue_single.per_s, 1),
            "enqueue_batch_per_s": round(self.enqueue_batch.per_s, 1),
            "drain_per_s": round(self.drain.per_s, 1),
            "ceiling_per_s": round(self.ceiling.per_s, 1),
            "ratio_to_ceiling": {
                "drain": round(self.drain.per_s / self.ceiling.per_s, 3),
                "enqueue_batch": round(self.enqueue_batch.per_s / self.ceiling.per_s, 3),
                "enqueue_single": round(self.enqueue_single.per_s / self.ceiling.per_s, 3),
            },
            "cpu_us_per_job": {
                "enqueue_single": self.enqueue_single.cpu.per_job_us(self.enqueue_single.jobs),
                "enqueue_batch": self.enqueue_batch.cpu.per_job_us(self.enqueue_batch.jobs),
                "drain": self.drain.cpu.per_job_us(self.drain.jobs),
                "ceiling": self.ceiling.cpu.per_job_us(self.ceiling.jobs),
            },
            "latency_ms": self.latency.to_code.to_dict(),
            "claim_latency_ms": self.latency.to_claim.to_dict(),
            "delayed_start_lateness_ms": self.delayed.to_code.to_dict(),
            "delayed_claim_lateness_ms": self.delayed.to_claim.to_dict(),
            "details": {
                "enqueue_single": asdict(self.enqueue_single),
                "enqueue_batch": asdict(self.enqueue_batch),
                "drain": asdict(self.drain),
                "ceiling": asdict(self.ceiling),
                "latency_achieved_rate_per_s": round(self.latency.achieved_rate, 2),
            },
            "settings": self.settings,
        }


def run_benchmark(settings: BenchSettings, progress: Progress | None = None) -> BenchResult:
    """Run every phase in turn on one database; see ``bench/README.md``.

    Order: single enqueue, batch enqueue (no worker running), then worker processes
    are started and left idle, then latency, then drain. ``progress`` receives one
    line per phase.
    """
    say = progress or (lambda _line: None)
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_workdir())
        token = uuid.uuid4().hex[:8]
        url, throwaway = run_database(
            settings.database_url, settings.store is BenchStore.POSTGRES, workdir, token)
        prefix = f"bench-{token}"
        enqueue_ns, run_ns = f"{prefix}-enqueue", f"{prefix}-run"
        store = open_app(stack, url, enqueue_ns, throwaway)  # dropped after the workers

        meter = CpuMeter(settings.store)
        say(f"enqueue: {settings.single_jobs} jobs, one call each")
        single = measure_single_enqueue(settings.single_jobs, meter)
        say(f"enqueue: {settings.jobs} jobs in batches of {settings.enqueue_batch}")
        batch = measure_batch_enqueue(settings.jobs, settings.enqueue_batch, meter)
        say(f"ceiling: {settings.jobs} jobs claimed and finished by the raw statements in "
            f"{settings.workers} processes")
        app.configure(namespace=f"{prefix}-ceiling")
        ceiling = measure_ceiling(url, f"{prefix}-ceiling", settings, meter)

        app.configure(namespace=run_ns)
        say(f"starting {settings.workers} worker processes (c={settings.concurrency}, "
            f"pool={settings.pool.value})")
        fleet = stack.enter_context(
            WorkerFleet(settings.fleet, url=url, namespace=run_ns, logs=workdir)
        )
        fleet.wait_registered(store)
        say(f"latency: {settings.latency_jobs} jobs at {settings.latency_rate:g}/s")
        latency = measure_latency(fleet, store, settings)
        low, high = DELAYED_LEADS
        say(f"delayed starts: {settings.delayed_jobs} jobs due {low * 1000:g} ms to {high:g} s "
            f"after their enqueue")
        delayed = measure_delayed(fleet, store, settings)
        say(f"drain: {settings.jobs} no-op jobs")
        drain = measure_drain(fleet, store, settings, meter)
        fleet.stop()
        return BenchResult(
            enqueue_single=single,
            enqueue_batch=batch,
            drain=drain,
            latency=latency,
            delayed=delayed,
            ceiling=ceiling,
            settings=describe(settings, store, url, prefix, throwaway),
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def measure_single_enqueue(count: int, meter: CpuMeter) -> EnqueueResult:
    """``noop.enqueue()`` ``count`` times: one transaction (and commit) per job."""
    for _ in range(100):  # warm-up: statement cache, code paths; not counted
        noop.enqueue()
    with meter.own() as cpu:
        started = time.perf_counter()
        for _ in range(count):
            noop.enqueue()
        seconds = time.perf_counter() - started
    return EnqueueResult(jobs=count, seconds=seconds, calls=count, cpu=cpu[0])


def measure_batch_enqueue(count: int, batch: int, meter: CpuMeter) -> EnqueueResult:
    """`App.enqueue_many` of ``batch`` fresh `Task.prepare` requests per call."""
    app.enqueue_many(noop.prepare() for _ in range(min(batch, 1_000)))  # warm-up
    calls = 0
    with meter.own() as cpu:
        started = time.perf_counter()
        remaining = count
        while remaining:
            size = min(batch, remaining)
            app.enqueue_many(noop.prepare() for _ in range(size))
            remaining -= size
            calls += 1
        seconds = time.perf_counter() - started
    return EnqueueResult(jobs=count, seconds=seconds, calls=calls, cpu=cpu[0])


def measure_ceiling(
    url: str, namespace: str, settings: BenchSettings, meter: CpuMeter
) -> CeilingResult:
    """``jobs`` no-op jobs made ready in ``namespace`` (the app's, set by the caller),
    then ``workers`` processes of `taskwheel.bench.ceiling` started together; the rate
    from the first claim of any to the last finish of any."""
    remaining = settings.jobs
    while remaining:
        size = min(settings.enqueue_batch, remaining)
        app.enqueue_many(noop.prepare() for _ in range(size))
        remaining -= size
    # Started together: every loop connects, then begins at the same instant.
    start = time.time() + 2.0
    command = [sys.executable, "-m", "taskwheel.bench.ceiling", url, namespace, QUEUE,
               str(settings.claim_batch), repr(start)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")}
    loops = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(settings.workers)]
    answers = []
    for loop in loops:
        out, _ = loop.communicate(timeout=settings.timeout)
        if loop.returncode != 0 or not out.strip():
            raise BenchmarkError(f"the ceiling loop exited with code {loop.returncode}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
    server = sum(float(a["server_cpu_seconds"]) for a in answers)
    jobs = sum(int(a["jobs"]) for a in answers)
    if jobs != settings.jobs:
        raise BenchmarkError(f"the ceiling loops finished {jobs} of {settings.jobs} jobs")
    first = min(float(a["first"]) for a in answers if a["jobs"])
    last = max(float(a["last"]) for a in answers if a["jobs"])
    return CeilingResult(
        jobs=jobs, seconds=last - first, processes=len(loops),
        cpu=Cpu(client=sum(float(a["cpu_seconds"]) for a in answers), server=server),
    )


def measure_latency(fleet: WorkerFleet, store: Store, settings: BenchSettings) -> LatencyResult:
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
    jobs = fleet.wait_finished(store, list(enqueued_at), settings.timeout)
    to_code = [(float(job.result) - enqueued_at[job.id]) * 1000 for job in jobs]
    to_claim = [
        (epoch(job.started_at) - enqueued_at[job.id]) * 1000 for job in jobs
    ]
    return LatencyResult(
        to_code=Percentiles.of(to_code),
        to_claim=Percentiles.of(to_claim),
        achieved_rate=achieved,
    )


def measure_delayed(fleet: WorkerFleet, store: Store, settings: BenchSettings) -> DelayedResult:
    """Enqueue ``stamp`` jobs with leads drawn evenly from `DELAYED_LEADS` (seeded),
    paced at the latency rate, while the workers sit idle; lateness = when the task's
    first line ran (``time.time()``) - when the job fell due (its ``run_at``)."""
    draw = random.Random(0)
    low, high = DELAYED_LEADS
    interval = 1.0 / settings.latency_rate
    ids = []
    begin = time.monotonic()
    for n in range(settings.delayed_jobs):
        pause = begin + n * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        ids.append(stamp.enqueue(delay=draw.uniform(low, high)).id)
    jobs = fleet.wait_finished(store, ids, settings.timeout + high)
    to_code = [(float(job.result) - epoch(job.run_at)) * 1000 for job in jobs]
    to_claim = [(epoch(job.started_at) - epoch(job.run_at)) * 1000 for job in jobs]
    return DelayedResult(to_code=Percentiles.of(to_code), to_claim=Percentiles.of(to_claim))


def measure_drain(
    fleet: WorkerFleet, store: Store, settings: BenchSettings, meter: CpuMeter
) -> DrainResult:
    """Make ``jobs`` no-op jobs ready in one transaction while the workers are idle,
    and time the workers from their first claim to the last job's finish (`drain_of`);
    with ``keys``, jobs of that many concurrency-limited keys."""
    if settings.keys:
        for key in range(settings.keys):
            app.client.set_limit(f"bench:{key}", settings.key_limit)
        handles = app.enqueue_many(keyed_noop.prepare(n % settings.keys)
                                   for n in range(settings.jobs))
    else:
        handles = app.enqueue_many(noop.prepare() for _ in range(settings.jobs))
    return drain_of(fleet, store, [h.id for h in handles], meter, settings.timeout)


def drain_of(
    fleet: WorkerFleet, store: Store, job_ids: list[int], meter: CpuMeter, timeout: float
) -> DrainResult:
    """Time the drain of ``job_ids``, just made ready all at once while the workers
    were idle: from the first claim's ``started_at`` to the last ``finished_at``. CPU:
    the worker processes' (and the server's) from here to the last job seen finished,
    idle polling included."""
    with meter.trees(fleet.pids) as cpu:
        enqueued = time.monotonic()
        jobs = fleet.wait_drained(store, job_ids, timeout)
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
        cpu=cpu[0],
    )


def describe(
    settings: BenchSettings, store: Store, url: str, namespace: str, throwaway: bool = False
) -> dict[str, Any]:
    """The machine, the store and its settings, and how each figure was measured."""
    return {
        "machine": machine(),
        "store": store_facts(store, database_url=_shown_url(settings, url),
                             namespace=namespace, schema_dropped=throwaway),
        "workers": settings.workers,
        "concurrency": settings.concurrency,
        "pool": settings.pool.value,
        "claim_batch_size": settings.claim_batch,
        "enqueue_batch_size": settings.enqueue_batch,
        "jobs": settings.jobs,
        "drain_keys": settings.keys,
        "drain_key_limit": settings.key_limit,
        "single_enqueue_jobs": settings.single_jobs,
        "latency_jobs": settings.latency_jobs,
        "latency_rate_per_s": settings.latency_rate,
        "delayed_jobs": settings.delayed_jobs,
        "delayed_leads_s": list(DELAYED_LEADS),
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


def _shown_url(settings: BenchSettings, url: str) -> str:
    """The URL for the report: without its password, if it has one."""
    if settings.database_url is None:
        return "temporary file (deleted)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# The figures `summarise` reads from each run's `BenchResult.to_dict`, by path.
SUMMARY_FIGURES = {
    "enqueue_single_per_s": ("enqueue_single_per_s",),
    "enqueue_batch_per_s": ("enqueue_batch_per_s",),
    "drain_per_s": ("drain_per_s",),
    "ceiling_per_s": ("ceiling_per_s",),
    "drain_to_ceiling": ("ratio_to_ceiling", "drain"),
    "enqueue_batch_to_ceiling": ("ratio_to_ceiling", "enqueue_batch"),
    "enqueue_single_to_ceiling": ("ratio_to_ceiling", "enqueue_single"),
    "cpu_us_per_job_enqueue_single": ("cpu_us_per_job", "enqueue_single", "total"),
    "cpu_us_per_job_enqueue_batch": ("cpu_us_per_job", "enqueue_batch", "total"),
    "cpu_us_per_job_drain": ("cpu_us_per_job", "drain", "total"),
    "cpu_us_per_job_ceiling": ("cpu_us_per_job", "ceiling", "total"),
    "latency_p50_ms": ("latency_ms", "p50"),
    "latency_p99_ms": ("latency_ms", "p99"),
    "delayed_lateness_p50_ms": ("delayed_start_lateness_ms", "p50"),
    "delayed_lateness_p99_ms": ("delayed_start_lateness_ms", "p99"),
}


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each figure of several runs as its median, min and max (a noisy machine's
    figures are read as a median and a spread, never one run)."""
    summary = {}
    for name, path in SUMMARY_FIGURES.items():
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(float(value))
        summary[name] = {"median": round(statistics.median(values), 3),
                         "min": round(min(values), 3), "max": round(max(values), 3)}
    return summary
