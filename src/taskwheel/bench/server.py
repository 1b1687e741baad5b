"""``taskwheel bench server``: the HTTP server measured from outside, as its clients see
it.

One ``taskwheel server`` process on a fresh database (a temporary SQLite file, or a
schema of its own on PostgreSQL, dropped afterwards); the load comes from threads of
this process, each with its own kept-alive connection (`HttpClient` and the pull
protocol's requests over ``http.client``):

- enqueue rate: ``clients`` threads each sending ``POST /jobs`` one job at a time, then
  ``POST /jobs/batch`` of ``batch_size`` jobs;
- enqueue→claim latency: one worker thread long-polling ``POST /claims`` (taking every
  ready job, reporting none) while another thread enqueues one job at a time at
  ``latency_rate`` per second; a job's latency is from just before its enqueue request
  is sent to the moment its claim's answer is read (both clocks are this process's), so
  it holds the enqueue request itself;
- drain rate: ``drain_jobs`` no-op jobs enqueued first, then ``http_workers`` threads
  each claiming up to ``claim_limit`` jobs at a time and reporting them succeeded in one
  request (``POST /reports``), until every job has succeeded.

The load generator shares the machine (and this process's GIL) with the server: on a
small machine the figures are a floor of what the server can do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from taskwheel.bench.app import APP_SPEC, QUEUE, BenchmarkError
from taskwheel.bench.databases import open_app, run_database, temporary_workdir
from taskwheel.bench.processes import LoggedProcess, polling, tree_cpu_seconds
from taskwheel.bench.report import Percentiles, Progress, machine, store_facts
from taskwheel.bench.settings import BenchStore, check_store
from taskwheel.errors import InvalidInput
from taskwheel.http_client import HttpClient
from taskwheel.keys import Role, generate_key
from taskwheel.lifecycle import JobStatus
from taskwheel.server.state import DEFAULT_MAX_BODY_BYTES
from taskwheel.validators import ALL_NAMESPACES

LATENCY_MARK = "latency-"  # the idempotency key of a latency job, then its number


@dataclass(frozen=True)
class ServerBenchSettings:
    """What ``taskwheel bench server`` measures, and with how much load."""

    store: BenchStore = BenchStore.SQLITE
    database_url: str | None = None
    clients: int = 8
    single_jobs: int = 5_000
    batch_jobs: int = 20_000
    batch_size: int = 500
    latency_jobs: int = 500
    latency_rate: float = 100.0
    drain_jobs: int = 5_000
    http_workers: int = 4
    claim_limit: int = 50
    timeout: float = 120.0

    @classmethod
    def build(cls, **given: Any) -> ServerBenchSettings:
        store, url = check_store(given.pop("store", None), given.pop("database_url", None))
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidInput(name, f"must be a number > 0, got {value!r}")
        return cls(store=store, database_url=url, **given)


@dataclass(frozen=True)
class Rate:
    """``server_cpu``: CPU seconds (user + system) of the server process over the
    phase, when measured: per request, a figure a shared machine's load moves far less
    than the rate."""

    jobs: int
    requests: int
    seconds: float
    server_cpu: float | None = None

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobs": self.jobs, "requests": self.requests, "seconds": round(self.seconds, 4),
            "jobs_per_s": round(self.per_s, 1),
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0}
        if self.server_cpu is not None and self.requests:
            out["server_cpu_us_per_request"] = round(self.server_cpu / self.requests * 1e6, 1)
        return out


@dataclass(frozen=True)
class ServerBenchResult:
    enqueue_single: Rate
    enqueue_batch: Rate
    claim_latency: Percentiles
    latency_rate: float
    drain: Rate
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "enqueue_single": self.enqueue_single.to_dict(),
            "enqueue_batch": self.enqueue_batch.to_dict(),
            "enqueue_to_claim_ms": {**self.claim_latency.to_dict(),
                                    "achieved_rate": round(self.latency_rate, 1)},
            "drain": self.drain.to_dict(),
            "settings": self.settings,
        }


def run_server_benchmark(settings: ServerBenchSettings,
                         progress: Progress | None = None) -> ServerBenchResult:
    say = progress or (lambda _line: None)
    postgres = settings.store is BenchStore.POSTGRES
    token = uuid.uuid4().hex[:8]
    namespace = f"bench-{token}-server"
    with temporary_workdir() as workdir, contextlib.ExitStack() as stack:
        url, throwaway = run_database(settings.database_url, postgres, workdir, token)
        store = open_app(stack, url, namespace, throwaway)
        # One namespace per phase (jobs left by one are not claimed in the next), under
        # one key of every namespace.
        key = generate_key(ALL_NAMESPACES, Role.OPERATE, "bench")
        store.create_api_key(key)
        port = free_port()
        say(f"starting taskwheel server on 127.0.0.1:{port} ({settings.store.value})")
        server = ServerProcess(url, port, workdir / "server.log")
        stack.callback(server.stop)
        server.wait_listening(settings.timeout)
        base = f"http://127.0.0.1:{port}"

        def client(phase: str) -> Callable[[], HttpClient]:
            return lambda: HttpClient(base, key.key, f"{namespace}-{phase}")

        say(f"enqueue: {settings.single_jobs:,} single requests from "
            f"{settings.clients} clients")
        cpu = tree_cpu_seconds(server.pid)
        single = _enqueue_single(client("single"), settings)
        cpu, single = _with_cpu(single, server.pid, cpu)
        say(f"enqueue: {settings.batch_jobs:,} jobs in batches of {settings.batch_size}")
        batch = _enqueue_batches(client("batch"), settings)
        cpu, batch = _with_cpu(batch, server.pid, cpu)
        say(f"latency: {settings.latency_jobs} jobs at {settings.latency_rate:g}/s through "
            "the long poll")
        puller = _Puller(port, key.key, f"{namespace}-latency")
        latency, achieved = _latency(client("latency"), puller, settings)
        say(f"drain: {settings.drain_jobs:,} no-op jobs by {settings.http_workers} "
            "HTTP workers")
        drain = _drain(client("drain"), port, key.key, f"{namespace}-drain", settings)
        server.check_alive()
        facts = {
            "machine": machine(),
            "store": store_facts(store, database_url="temporary file (deleted)"
                                 if not postgres else "a schema of its own (dropped)",
                                 namespace=namespace, schema_dropped=throwaway),
            "server": {"process": "taskwheel server (uvicorn, one process)",
                       "max_body_bytes": DEFAULT_MAX_BODY_BYTES},
            "load": {k: v for k, v in asdict(settings).items()
                     if k not in ("store", "database_url")},
        }
        return ServerBenchResult(single, batch, latency, achieved, drain, facts)


# -- the phases ---------------------------------------------------------------------------------


def _with_cpu(rate: Rate, pid: int, before: float) -> tuple[float, Rate]:
    """The server's CPU seconds now, and ``rate`` with what it spent since ``before``."""
    now = tree_cpu_seconds(pid)
    return now, Rate(rate.jobs, rate.requests, rate.seconds, server_cpu=now - before)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _in_threads(count: int, work: Callable[[int], int]) -> tuple[int, float]:
    """Run ``work(i)`` on ``count`` threads released together; (sum, seconds)."""
    start = threading.Barrier(count + 1)

    def body(i: int) -> int:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(body, i) for i in range(count)]
        start.wait()
        began = time.perf_counter()
        done = sum(future.result() for future in futures)
        return done, time.perf_counter() - began


def _enqueue_single(client: Callable[[], HttpClient], s: ServerBenchSettings) -> Rate:
    shares = _split(s.single_jobs, s.clients)

    def work(i: int) -> int:
        with client() as http:
            for _ in range(shares[i]):
                http.enqueue("noop")
        return shares[i]

    jobs, seconds = _in_threads(s.clients, work)
    return Rate(jobs, jobs, seconds)


def _enqueue_batches(client: Callable[[], HttpClient], s: ServerBenchSettings) -> Rate:
    batches = _split(s.batch_jobs, max(1, -(-s.batch_jobs // s.batch_size)))
    shares = [batches[i::s.clients] for i in range(s.clients)]
    calls = len(batches)

    def work(i: int) -> int:
        with client() as http:
            for size in shares[i]:
                http.enqueue_many([{"task": "noop"}] * size)
        return sum(shares[i])

    jobs, seconds = _in_threads(s.clients, work)
    return Rate(jobs, calls, seconds)


class _Puller:
    """A worker of the pull protocol on one kept-alive connection."""

    def __init__(self, port: int, key: str, namespace: str, name: str = "bench") -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._base = f"/api/v1/namespaces/{namespace}"
        self.worker_id = str(self.post("/workers", {"name": name, "queues": [QUEUE]})
                             ["worker_id"])

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self._connection.request("POST", self._base + path, json.dumps(body).encode(),
                                 self._headers)
        response = self._connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise BenchmarkError(f"POST {path}: {response.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def claim(self, limit: int, wait: float) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.post("/claims", {
            "worker_id": self.worker_id, "queues": [QUEUE], "limit": limit,
            "lease_ttl": 60, "wait": wait})["jobs"]
        return jobs

    def complete(self, jobs: list[dict[str, Any]]) -> None:
        """Report the jobs succeeded, in one request (``POST /reports``)."""
        answer = self.post("/reports", {"reports": [
            {"job_id": job["id"], "fence": job["fence"], "outcome": "succeeded"}
            for job in jobs]})
        refused = [r["job_id"] for r in answer["results"] if r["stale"]]
        if refused:
            raise BenchmarkError(f"reports refused as stale: {refused[:10]}")

    def close(self) -> None:
        self._connection.close()


def _latency(client: Callable[[], HttpClient], puller: _Puller,
             s: ServerBenchSettings) -> tuple[Percentiles, float]:
    sent: dict[int, float] = {}
    claimed: dict[int, float] = {}
    stop = threading.Event()

    def pull() -> None:
        # Every job ready is taken at once and none is reported: the figure is the wake-up
        # and the claim, not how fast one worker gets through its jobs.
        while not stop.is_set() and len(claimed) < s.latency_jobs:
            jobs = puller.claim(s.latency_jobs, wait=1.0)
            now = time.perf_counter()
            for job in jobs:
                claimed[int(job["idempotency_key"].removeprefix(LATENCY_MARK))] = now

    worker = threading.Thread(target=pull, name="bench-puller", daemon=True)
    worker.start()
    time.sleep(0.2)  # the puller's first claim is waiting before the first enqueue
    interval = 1.0 / s.latency_rate
    began = time.perf_counter()
    with client() as http:
        for seq in range(s.latency_jobs):
            due = began + seq * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent[seq] = time.perf_counter()
            http.enqueue("noop", idempotency_key=f"{LATENCY_MARK}{seq}")
    for _ in polling(s.timeout, "the latency jobs to be claimed"):
        if len(claimed) >= s.latency_jobs:
            break
    stop.set()
    worker.join(timeout=5)
    puller.close()
    elapsed = max(sent.values()) - began
    rate = (len(sent) - 1) / elapsed if elapsed > 0 else float(len(sent))
    return Percentiles.of([(claimed[i] - sent[i]) * 1000 for i in sent]), rate


def _drain(client: Callable[[], HttpClient], port: int, key: str, namespace: str,
           s: ServerBenchSettings) -> Rate:
    with client() as http:
        for size in _split(s.drain_jobs, max(1, -(-s.drain_jobs // 1000))):
            http.enqueue_many([{"task": "noop"}] * size)
    pullers = [_Puller(port, key, namespace, f"drain{i}") for i in range(s.http_workers)]
    remaining = [s.drain_jobs]
    lock = threading.Lock()
    requests = [0] * s.http_workers

    def work(i: int) -> int:
        puller, done = pullers[i], 0
        while True:
            with lock:
                if remaining[0] <= 0:
                    return done
            jobs = puller.claim(s.claim_limit, wait=0.5)
            requests[i] += 1
            if jobs:  # what a worker of the protocol does: the claim's jobs, one report
                puller.complete(jobs)
                requests[i] += 1
            done += len(jobs)
            with lock:
                remaining[0] -= len(jobs)

    try:
        jobs, seconds = _in_threads(s.http_workers, work)
    finally:
        for puller in pullers:
            puller.close()
    with client() as http:
        left = http.list_jobs(status=JobStatus.QUEUED, limit=1)
    if left or jobs != s.drain_jobs:
        raise BenchmarkError(f"drained {jobs} of {s.drain_jobs} jobs")
    return Rate(jobs, sum(requests), seconds)


# -- the server process ----------------------------------------------------------------------


class ServerProcess(LoggedProcess):
    """A ``taskwheel server`` process of the benchmarks' app on ``url``."""

    def __init__(self, url: str, port: int, log: Path) -> None:
        command = [sys.executable, "-m", "taskwheel.cli.main", "server", "--app", APP_SPEC,
                   "--database-url", url, "--port", str(port), "--log-level", "warning"]
        super().__init__("server", command, log)
        self.port = port

    def wait_listening(self, timeout: float) -> None:
        for _ in polling(timeout, "the server to listen"):
            self.check_alive()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return

    def stop(self) -> None:
        self.terminate()
        self.reap(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
