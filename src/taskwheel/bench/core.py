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
import random
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskwheel.bench.app import app, noop, stamp
from taskwheel.bench.databases import open_app, run_database, temporary_workdir
from taskwheel.bench.processes import WorkerFleet
from taskwheel.bench.report import Percentiles, Progress, epoch, machine, store_facts
from taskwheel.bench.settings import DELAYED_LEADS, BenchSettings, BenchStore
from taskwheel.stores import Store


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
class DelayedResult:
    """Delayed jobs on idle workers, leads drawn from `DELAYED_LEADS`: ``to_code``, how
    late the task's first line ran after the job fell due; ``to_claim``, the same for
    the claim's ``started_at`` (the store's part)."""

    to_code: Percentiles
    to_claim: Percentiles


@dataclass(frozen=True)
class BenchResult:
    enqueue_single: EnqueueResult
    enqueue_batch: EnqueueResult
    drain: DrainResult
    latency: LatencyResult
    delayed: DelayedResult
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench --format json`` prints."""
        return {
            "enqueue_single_per_s": round(self.enqueue_single.per_s, 1),
            "enqueue_batch_per_s": round(self.enqueue_batch.per_s, 1),
            "drain_per_s": round(self.drain.per_s, 1),
            "latency_ms": self.latency.to_code.to_dict(),
            "claim_latency_ms": self.latency.to_claim.to_dict(),
            "delayed_start_lateness_ms": self.delayed.to_code.to_dict(),
            "delayed_claim_lateness_ms": self.delayed.to_claim.to_dict(),
            "details": {
                "enqueue_single": asdict(self.enqueue_single),
                "enqueue_batch": asdict(self.enqueue_batch),
                "drain": asdict(self.drain),
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

        say(f"enqueue: {settings.single_jobs} jobs, one call each")
        single = measure_single_enqueue(settings.single_jobs)
        say(f"enqueue: {settings.jobs} jobs in batches of {settings.enqueue_batch}")
        batch = measure_batch_enqueue(settings.jobs, settings.enqueue_batch)

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
        drain = measure_drain(fleet, store, settings)
        fleet.stop()
        return BenchResult(
            enqueue_single=single,
            enqueue_batch=batch,
            drain=drain,
            latency=latency,
            delayed=delayed,
            settings=describe(settings, store, url, prefix, throwaway),
        )
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


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


def measure_drain(fleet: WorkerFleet, store: Store, settings: BenchSettings) -> DrainResult:
    """Make ``jobs`` no-op jobs ready in one transaction while the workers are idle,
    and time the workers from their first claim to the last job's finish."""
    handles = app.enqueue_many(noop.prepare() for _ in range(settings.jobs))
    enqueued = time.monotonic()
    jobs = fleet.wait_finished(store, [h.id for h in handles], settings.timeout)
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
