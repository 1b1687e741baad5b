"""``taskwheel bench watching``: what watching a deployment costs.

Two measures, each on fresh databases (temporary SQLite files, or schemas of their own
on PostgreSQL, dropped afterwards):

- **The scrape.** A database holding ``queues`` x ``priorities`` bands of ready jobs
  (``jobs_per_band`` each), a running and a dead job per queue and 50 workers; then the
  whole of ``/metrics`` (the store's gauges: one grouped statement over the unfinished
  and dead jobs, one over the workers; and the event metrics) is rendered ``scrapes``
  times in this process, as ``taskwheel server`` renders it for each request: the wall
  time and this process's CPU time of each. Then a ``taskwheel server`` on the same
  database answers ``GET /metrics`` ``scrapes`` times: the wall time of each request as
  a client sees it, and the server process's CPU over all of them.
- **The drain, watched and not.** ``runs`` pairs of drains of ``jobs`` no-op jobs by
  ``workers`` idle ``taskwheel worker`` processes (the core benchmark's drain), each
  with a ``taskwheel server`` running on its database. In the *plain* drain nothing
  talks to the server; in the *watched* one ``tabs`` live streams (each watching the
  overview, queues and workers topics, as open dashboard pages do) are open and read,
  and ``/metrics`` is scraped every ``scrape_every`` seconds, from before the jobs are
  made ready until the last one has finished. The pair's order alternates from run to
  run. Printed: each mode's drain rate, the ratio of the medians (watched / plain), and
  the server's and workers' CPU per drain.

Figures are printed, never asserted.
"""

from __future__ import annotations

import contextlib
import http.client
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taskwheel.bench.app import BenchmarkError
from taskwheel.bench.core import CpuMeter, DrainResult, measure_drain
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.processes import WorkerFleet, polling, process_cpu_seconds
from taskwheel.bench.report import Progress, machine, store_facts
from taskwheel.bench.server import ServerProcess, free_port
from taskwheel.bench.settings import BenchSettings, BenchStore, FleetSettings, check_store
from taskwheel.errors import InvalidInput
from taskwheel.jobs import AttemptOutcome, NewJob, Outcome
from taskwheel.keys import Role, generate_key
from taskwheel.lifecycle import JobStatus
from taskwheel.metrics import metrics_exposition
from taskwheel.stores.base import Store, WorkerRegistration
from taskwheel.stores.claims import ClaimRequest
from taskwheel.validators import ALL_NAMESPACES

TAB_TOPICS = "overview,queues,workers"


@dataclass(frozen=True)
class WatchingBenchSettings:
    """What ``taskwheel bench watching`` measures (see the module's docstring)."""

    store: BenchStore = BenchStore.SQLITE
    database_url: str | None = None  # the PostgreSQL server, for the postgres store
    queues: int = 1_000
    priorities: int = 10
    jobs_per_band: int = 1
    scrapes: int = 15
    jobs: int = 20_000
    runs: int = 3
    tabs: int = 5
    scrape_every: float = 1.0
    workers: int = 2
    concurrency: int = 100
    timeout: float = 120.0

    @classmethod
    def build(cls, **given: Any) -> WatchingBenchSettings:
        """Validated settings: every count a whole number > 0 (``tabs`` may be 0)."""
        store, url = check_store(given.pop("store", None), given.pop("database_url", None))
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(name, f"must be a number, got {value!r}")
            if value < 0 or (value == 0 and name != "tabs"):
                raise InvalidInput(name, f"must be > 0, got {value!r}")
        return cls(store=store, database_url=url, **given)


def spread(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """Median, min and max, rounded to ``digits`` decimals."""
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


@dataclass(frozen=True)
class ScrapeResult:
    bands: int
    jobs: int
    answer_bytes: int
    render_ms: list[float]
    render_cpu_ms: list[float]
    http_ms: list[float]
    server_cpu_ms_per_scrape: float

    def to_dict(self) -> dict[str, Any]:
        return {"bands": self.bands, "jobs": self.jobs, "answer_bytes": self.answer_bytes,
                "scrapes": len(self.render_ms), "render_ms": spread(self.render_ms),
                "render_cpu_ms": spread(self.render_cpu_ms), "http_ms": spread(self.http_ms),
                "server_cpu_ms_per_scrape": round(self.server_cpu_ms_per_scrape, 2)}


@dataclass(frozen=True)
class DrainRun:
    watched: bool
    drain: DrainResult
    server_cpu_s: float
    scrapes: int = 0
    tab_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "watched" if self.watched else "plain",
                "drain_per_s": round(self.drain.per_s, 1),
                "drain_seconds": round(self.drain.seconds, 3),
                "workers_cpu_us_per_job": self.drain.cpu.per_job_us(self.drain.jobs),
                "server_cpu_s": round(self.server_cpu_s, 3),
                "scrapes": self.scrapes, "tab_events": self.tab_events}


@dataclass(frozen=True)
class WatchingBenchResult:
    scrape: ScrapeResult
    runs: list[DrainRun]
    settings: dict[str, Any] = field(default_factory=dict)

    def rates(self, watched: bool) -> list[float]:
        return [run.drain.per_s for run in self.runs if run.watched is watched]

    @property
    def ratio(self) -> float:
        """The watched drain's median rate over the plain one's."""
        return statistics.median(self.rates(True)) / statistics.median(self.rates(False))

    @property
    def pair_ratios(self) -> list[float]:
        """Each run's watched rate over its plain one's: the two drains of a pair run
        one after the other, under much the same load of the machine."""
        ratios = []
        for first, second in zip(self.runs[0::2], self.runs[1::2], strict=True):
            watched, plain = (first, second) if first.watched else (second, first)
            ratios.append(watched.drain.per_s / plain.drain.per_s)
        return ratios

    def to_dict(self) -> dict[str, Any]:
        return {
            "scrape": self.scrape.to_dict(),
            "drain": {
                "plain_per_s": spread(self.rates(False)),
                "watched_per_s": spread(self.rates(True)),
                "watched_over_plain": round(self.ratio, 4),
                "pair_ratios": {**spread(self.pair_ratios, 4),
                                "each": [round(r, 4) for r in self.pair_ratios]},
                "runs": [run.to_dict() for run in self.runs],
            },
            "settings": self.settings,
        }


def run_watching_benchmark(settings: WatchingBenchSettings,
                           progress: Progress | None = None) -> WatchingBenchResult:
    say = progress or (lambda _line: None)
    postgres = settings.database_url if settings.store is BenchStore.POSTGRES else None
    with temporary_workdir() as workdir:
        say(f"scrape: {settings.queues:,} queues x {settings.priorities} priorities, "
            f"{settings.scrapes} scrapes")
        scrape, facts = _measure_scrape(settings, workdir, postgres)
        runs: list[DrainRun] = []
        for index in range(settings.runs):
            order = (False, True) if index % 2 == 0 else (True, False)
            for watched in order:
                mode = (f"{settings.tabs} tabs and /metrics every {settings.scrape_every:g} s"
                        if watched else "nothing watching")
                say(f"drain {index + 1}/{settings.runs}: {settings.jobs:,} jobs, {mode}")
                runs.append(_measure_drain(settings, workdir, postgres, watched=watched))
    return WatchingBenchResult(scrape, runs, {
        "machine": machine(), "store": facts,
        "load": {k: v for k, v in asdict(settings).items()
                 if k not in ("store", "database_url")}})


# -- the scrape ---------------------------------------------------------------------------------


def _measure_scrape(settings: WatchingBenchSettings, workdir: Path,
                    postgres: str | None) -> tuple[ScrapeResult, dict[str, Any]]:
    url, namespace, throwaway = fresh_database(workdir, "scrape", postgres)
    with contextlib.ExitStack() as stack:
        store = open_app(stack, url, namespace, throwaway)
        jobs = fill(store, namespace, settings.queues, settings.priorities,
                    settings.jobs_per_band)
        exposition, detach = metrics_exposition(store)
        stack.callback(detach)
        size = len(exposition.render())  # a warm-up, and the answer's size
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(settings.scrapes):
            began, began_cpu = time.perf_counter(), time.process_time()
            exposition.render()
            wall.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        server = _start_server(stack, url, workdir / "scrape-server.log", settings.timeout)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        stack.callback(connection.close)
        _get(connection, "/metrics")  # the server's first scrape, uncounted
        through: list[float] = []
        cpu_before = process_cpu_seconds(server.pid)
        for _ in range(settings.scrapes):
            began = time.perf_counter()
            _get(connection, "/metrics")
            through.append((time.perf_counter() - began) * 1000)
        server_cpu = (process_cpu_seconds(server.pid) - cpu_before) * 1000 / settings.scrapes
        facts = store_facts(store, database_url="temporary file (deleted)" if postgres is None
                            else "a schema of its own per phase (dropped)",
                            namespace=namespace, schema_dropped=throwaway)
        return ScrapeResult(settings.queues * settings.priorities, jobs, size, wall, cpu,
                            through, server_cpu), facts
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def fill(store: Store, namespace: str, queues: int, priorities: int, per_band: int) -> int:
    """Ready jobs in every (queue, priority) band, a running and a dead job per queue,
    and 50 workers; how many jobs."""
    names = [f"q{n:04d}" for n in range(queues)]

    def job(queue: str, priority: int) -> NewJob:
        return NewJob(task="noop", args=[], kwargs={}, args_json="[]", kwargs_json="{}",
                      queue=queue, priority=priority, namespace=namespace, max_attempts=1)

    batch = [job(name, priority) for name in names for priority in range(priorities)
             for _ in range(per_band)]
    for start in range(0, len(batch), 5_000):
        store.enqueue(batch[start:start + 5_000])
    # A running and a dead job per queue: every state the scrape groups.
    store.enqueue([job(name, priorities + 100) for name in names] * 2)
    claimed = store.claim(ClaimRequest("bench-w", (namespace,), tuple(names), 2 * queues,
                                       600.0)).jobs
    store.finish_attempts([Outcome(j.id, j.fence, JobStatus.DEAD, AttemptOutcome.FAILED,
                                   error="boom") for j in claimed[:queues]])
    for n in range(50):
        store.register_worker(WorkerRegistration(
            f"bench-w{n}", namespace, "bench", n, names[n::50], 8, "async", 1.0))
    return len(batch) + 2 * queues


# -- the drain ----------------------------------------------------------------------------------


def _measure_drain(settings: WatchingBenchSettings, workdir: Path, postgres: str | None,
                   *, watched: bool) -> DrainRun:
    phase = f"{'watched' if watched else 'plain'}_{uuid.uuid4().hex[:4]}"
    url, namespace, throwaway = fresh_database(workdir, phase, postgres)
    with contextlib.ExitStack() as stack:
        store = open_app(stack, url, namespace, throwaway)
        key = generate_key(ALL_NAMESPACES, Role.READ, "bench-watching")
        store.create_api_key(key)
        server = _start_server(stack, url, workdir / f"{phase}-server.log", settings.timeout)
        fleet = stack.enter_context(WorkerFleet(
            FleetSettings(workers=settings.workers, concurrency=settings.concurrency),
            url=url, namespace=namespace, logs=workdir))
        fleet.wait_registered(store)
        watchers = _Watchers(server.port, key.key, namespace, settings) if watched else None
        if watchers is not None:
            stack.enter_context(watchers.running())
        drain_settings = BenchSettings.build(database_url=settings.database_url,
                                             store=settings.store, jobs=settings.jobs,
                                             workers=settings.workers,
                                             concurrency=settings.concurrency,
                                             timeout=settings.timeout)
        cpu_before = process_cpu_seconds(server.pid)
        drain = measure_drain(fleet, store, drain_settings, CpuMeter(settings.store))
        server_cpu = process_cpu_seconds(server.pid) - cpu_before
        server.check_alive()
        if watchers is None:
            return DrainRun(False, drain, server_cpu)
        return DrainRun(True, drain, server_cpu, watchers.scrapes, watchers.events)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


class _Watchers:
    """``tabs`` live streams of the dashboard's topics, read to their end, and a scraper
    of ``/metrics`` every ``scrape_every`` seconds, on threads of this process."""

    def __init__(self, port: int, key: str, namespace: str,
                 settings: WatchingBenchSettings) -> None:
        self.port = port
        self.key = key
        self.namespace = namespace
        self.settings = settings
        self.stop = threading.Event()
        self.scrapes = 0
        self.events = 0
        self._lock = threading.Lock()
        self._opened = threading.Semaphore(0)
        self._errors: list[BaseException] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._tab, daemon=True)
                   for _ in range(self.settings.tabs)]
        threads.append(threading.Thread(target=self._scrape, daemon=True))
        for thread in threads:
            thread.start()
        try:
            # Every tab shows its first versions before the drain begins.
            for _ in range(self.settings.tabs):
                if not self._opened.acquire(timeout=self.settings.timeout):
                    raise BenchmarkError("a dashboard stream did not open")
            yield
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(15)
        if self._errors:
            raise BenchmarkError(f"watching failed: {self._errors[0]!r}")

    def _tab(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        path = (f"/api/v1/namespaces/{self.namespace}/stream?topics="
                f"{TAB_TOPICS.replace(',', '%2C')}")
        opened = False
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
            answer = connection.getresponse()
            if answer.status != 200:
                raise BenchmarkError(f"GET {path}: {answer.status}")
            while not self.stop.is_set():
                try:
                    line = answer.readline()
                except TimeoutError:
                    continue  # nothing changed for a while: read on until told to stop
                if not line:
                    return
                if line.startswith(b"data: "):
                    with self._lock:
                        self.events += 1
                    if not opened:
                        opened = True
                        self._opened.release()
        except BaseException as exc:
            if not self.stop.is_set():
                self._errors.append(exc)
        finally:
            connection.close()

    def _scrape(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while not self.stop.wait(self.settings.scrape_every):
                _get(connection, "/metrics")
                self.scrapes += 1
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            connection.close()


# -- helpers ------------------------------------------------------------------------------------


def _start_server(
    stack: contextlib.ExitStack, url: str, log: Path, timeout: float
) -> ServerProcess:
    server = ServerProcess(url, free_port(), log)
    stack.callback(server.stop)
    server.wait_listening(timeout)
    for _ in polling(timeout, "the server to answer"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/login")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        finally:
            connection.close()
    return server


def _get(connection: http.client.HTTPConnection, path: str) -> bytes:
    connection.request("GET", path)
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise BenchmarkError(f"GET {path}: {answer.status} {body[:200]!r}")
    return body


def summary_lines(result: WatchingBenchResult) -> list[tuple[str, str, str]]:
    """(figure, value, how) rows for people."""
    scrape = result.to_dict()["scrape"]
    drain = result.to_dict()["drain"]

    def ms(found: dict[str, float]) -> str:
        return f"{found['median']:.1f} ms [{found['min']:.1f}-{found['max']:.1f}]"

    def rate(found: dict[str, float]) -> str:
        return f"{found['median']:,.0f} jobs/s [{found['min']:,.0f}-{found['max']:,.0f}]"

    s = result.settings["load"]
    bands = f"{s['queues']:,} queues x {s['priorities']} priorities, {scrape['jobs']:,} jobs"
    plain = [run for run in result.runs if not run.watched]
    watched = [run for run in result.runs if run.watched]
    return [
        ("/metrics render, wall", ms(scrape["render_ms"]),
         f"{bands}; {scrape['scrapes']} renders, {scrape['answer_bytes']:,} bytes"),
        ("/metrics render, CPU", ms(scrape["render_cpu_ms"]), "this process's CPU per render"),
        ("GET /metrics, wall", ms(scrape["http_ms"]),
         f"through taskwheel server; its CPU {scrape['server_cpu_ms_per_scrape']:.1f} ms "
         "per scrape"),
        ("drain, plain", rate(drain["plain_per_s"]),
         f"{len(plain)} runs; server CPU "
         f"{statistics.median(r.server_cpu_s for r in plain):.2f} s per drain (median)"),
        ("drain, watched", rate(drain["watched_per_s"]),
         f"{len(watched)} runs, {s['tabs']} tabs and /metrics every {s['scrape_every']:g} s; "
         f"server CPU {statistics.median(r.server_cpu_s for r in watched):.2f} s per drain"),
        ("watched / plain", f"{drain['watched_over_plain']:.1%}", "ratio of the medians"),
        ("watched / plain, by pair",
         f"{drain['pair_ratios']['median']:.1%} [{drain['pair_ratios']['min']:.1%}-"
         f"{drain['pair_ratios']['max']:.1%}]",
         "each run's watched drain over its plain one (run back to back)"),
    ]


__all__ = ["WatchingBenchResult", "WatchingBenchSettings", "run_watching_benchmark"]
