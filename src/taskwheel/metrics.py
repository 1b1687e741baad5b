"""Prometheus metrics: what happened, from the event hook; how the queues stand, from the
store at scrape time.

Two halves, each registered in a registry of its own choosing (never the process-wide
default, so two apps in one process do not collide):

- `EventMetrics` attaches to a store's `Events` and counts what the worker, scheduler,
  maintenance and store announce in *this process*: jobs enqueued, started, finished by
  outcome, retried, dead, rescued, reports rejected; run durations and enqueue->start
  waits (histograms, the waits by priority); schedule fires by result, misfires and
  lateness; leases won and lost; maintenance work. Prometheus sums them across
  processes (every worker exposes its own with ``taskwheel worker --metrics-port``).
- `StoreGauges` reads the store when scraped (`Store.queue_depths`: one statement
  for the jobs, one for the workers): jobs by namespace, queue, state and priority, the
  oldest ready job's age per priority, the dead-letter queue, workers alive. Whoever
  scrapes any server sees the whole cluster.

Label cardinality is bounded: no job ids in labels, and at most ``max_tasks`` task
names and ``max_queues`` queue names per process (`MetricsSettings`); names past the
cap are counted under ``_other``.

Example:
    >>> exposition, detach = metrics_exposition(app.store)
    >>> print(exposition.render().decode())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from taskwheel.events import Event, EventKind, Events
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.metrics")
OTHER = "_other"
PREFIX = "taskwheel"

# Seconds: a no-op job runs in microseconds, a report in hours.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
                    900, 3600)
# Seconds from due to claimed: a healthy queue answers in milliseconds.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Caps on label values: beyond them a name is counted as ``_other``."""

    max_tasks: int = 1000
    max_queues: int = 2000


class LabelCap:
    """Keeps the first ``limit`` distinct values of a label; later ones are ``_other``,
    so a runaway set of names cannot grow the series without bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return ""
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


class EventMetrics:
    """Counters and histograms fed by the event hook (see the module's docstring for
    the names)."""

    def __init__(self, registry: CollectorRegistry,
                 settings: MetricsSettings | None = None) -> None:
        settings = settings or MetricsSettings()
        self.task = LabelCap(settings.max_tasks)
        self.queue = LabelCap(settings.max_queues)
        job = ("namespace", "queue", "task")

        def counter(name: str, doc: str, labels: tuple[str, ...] = job) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)

        self.enqueued = counter("jobs_enqueued_total", "Jobs created (not those returned "
                                "for an idempotency key).")
        self.started = counter("jobs_started_total", "Attempts started.")
        self.finished = counter("jobs_finished_total", "Attempts ended, by outcome "
                                "(succeeded, failed, timed_out, crashed, cancelled, "
                                "interrupted).", (*job, "outcome"))
        self.retried = counter("jobs_retried_total", "Failed attempts that will be retried.")
        self.dead = counter("jobs_dead_total", "Jobs whose attempts ran out (into the "
                            "dead-letter queue).")
        self.rescued = counter("jobs_rescued_total", "Jobs of a vanished worker: requeued "
                               "or failed (lease expired, or its process died).",
                               ("namespace", "outcome"))
        self.rejected = counter("reports_rejected_total", "Outcomes refused: a stale "
                                "fencing token (the job was taken over).")
        self.fires = counter("schedule_fires_total", "Schedule fires applied, by result "
                             "(created, waiting, duplicate, overlap_skipped, stale).",
                             ("namespace", "result"))
        self.misfires = counter("schedule_misfires_total", "Plans that caught up or "
                                "skipped missed fire times, by misfire policy.",
                                ("namespace", "policy"))
        self.leases_won = counter("leases_won_total", "Leases taken (maintenance, "
                                  "scheduler partitions).", ("lease",))
        self.leases_lost = counter("leases_lost_total", "Leases lost or given up, by "
                                   "reason.", ("lease", "reason"))
        self.held = Gauge(f"{PREFIX}_leases_held", "1 while this process holds the lease "
                          "(maintenance, scheduler partitions), else 0.", ("lease",),
                          registry=registry)
        self.maintained = counter("maintenance_jobs_total", "Jobs touched by maintenance, "
                                  "by duty.", ("duty",))
        self.duration = Histogram(f"{PREFIX}_job_duration_seconds", "Run time of an "
                                  "attempt's code.", job, registry=registry,
                                  buckets=DURATION_BUCKETS)
        self.wait = Histogram(f"{PREFIX}_job_wait_seconds", "From due to claimed.",
                              ("namespace", "queue", "priority"), registry=registry,
                              buckets=WAIT_BUCKETS)
        self.lateness = Histogram(f"{PREFIX}_schedule_lateness_seconds", "From a fire "
                                  "time to the fire applied.", ("namespace",),
                                  registry=registry, buckets=LATENESS_BUCKETS)
        self._handlers: dict[EventKind, Callable[[Event], None]] = {
            EventKind.JOB_ENQUEUED: lambda e: self.enqueued.labels(*self._job(e)).inc(),
            EventKind.JOB_STARTED: lambda e: self.started.labels(*self._job(e)).inc(),
            EventKind.JOB_FINISHED: self._finished,
            EventKind.JOB_RETRIED: lambda e: self.retried.labels(*self._job(e)).inc(),
            EventKind.JOB_DEAD: lambda e: self.dead.labels(*self._job(e)).inc(),
            EventKind.REPORT_REJECTED: lambda e: self.rejected.labels(*self._job(e)).inc(),
            EventKind.JOB_CLAIMED: self._claimed,
            EventKind.JOB_RESCUED: lambda e: self.rescued.labels(
                e.namespace or "", str(e.metadata.get("outcome", ""))).inc(),
            EventKind.SCHEDULE_FIRED: self._fired,
            EventKind.SCHEDULE_MISFIRED: lambda e: self.misfires.labels(
                e.namespace or "", str(e.metadata.get("policy", ""))).inc(),
            EventKind.LEASE_WON: self._won,
            EventKind.LEASE_LOST: self._lost,
            EventKind.MAINTENANCE_RAN: self._maintained,
        }

    def attach(self, events: Events) -> Callable[[], None]:
        """Listen to ``events``; returns a function that detaches."""
        return events.attach(self.handle, list(self._handlers))

    def handle(self, event: Event) -> None:
        self._handlers[event.kind](event)

    def _job(self, event: Event) -> tuple[str, str, str]:
        return event.namespace or "", self.queue(event.queue), self.task(event.task)

    def _finished(self, event: Event) -> None:
        labels = self._job(event)
        self.finished.labels(*labels, str(event.metadata.get("outcome", ""))).inc()
        duration = event.measurements.get("duration")
        if duration is not None:
            self.duration.labels(*labels).observe(duration)

    def _claimed(self, event: Event) -> None:
        wait = event.measurements.get("wait")
        if wait is not None:
            self.wait.labels(event.namespace or "", self.queue(event.queue),
                             str(event.metadata.get("priority", ""))).observe(max(0.0, wait))

    def _fired(self, event: Event) -> None:
        namespace = event.namespace or ""
        self.fires.labels(namespace, str(event.metadata.get("result", ""))).inc()
        fire_at = event.metadata.get("fire_at")
        if isinstance(fire_at, int | float) and event.metadata.get("result") in (
                "created", "waiting"):
            self.lateness.labels(namespace).observe(max(0.0, event.at - fire_at))

    def _won(self, event: Event) -> None:
        lease = str(event.metadata.get("lease", ""))
        self.leases_won.labels(lease).inc()
        self.held.labels(lease).set(1)

    def _lost(self, event: Event) -> None:
        lease = str(event.metadata.get("lease", ""))
        self.leases_lost.labels(lease, str(event.metadata.get("reason", ""))).inc()
        self.held.labels(lease).set(0)

    def _maintained(self, event: Event) -> None:
        count = event.measurements.get("count", 0)
        if count:
            self.maintained.labels(str(event.metadata.get("duty", ""))).inc(count)


class StoreGauges:
    """Gauges read from the store at each scrape (`Store.queue_depths`), written
    straight in Prometheus's text format: a scrape of 1,000 queues x 10 priorities is
    tens of thousands of samples, and building a client-library object per sample
    costs more than the query."""

    def __init__(self, store: Store, settings: MetricsSettings | None = None) -> None:
        self.store = store
        self.max_queues = (settings or MetricsSettings()).max_queues

    def render(self) -> str:
        depths = self.store.queue_depths()
        names = {band.queue for band in depths.bands}
        kept = names if len(names) <= self.max_queues else set(
            sorted(names)[:self.max_queues])
        # Each (namespace, queue)'s labels are written once, not once per band.
        where: dict[tuple[str, str], str] = {}
        counts: dict[tuple[str, str, int], int] = {}  # (labels, state, priority)
        ages: dict[tuple[str, int], float] = {}  # (labels, priority)
        dlq: dict[str, int] = {}
        now = depths.now
        for namespace, name, status, priority, count, first_ready in depths.bands:
            queue = name if name in kept else OTHER
            labels = where.get((namespace, queue))
            if labels is None:
                labels = where[(namespace, queue)] = (
                    f'namespace="{_v(namespace)}",queue="{_v(queue)}"')
            if status == "dead":
                dlq[labels] = dlq.get(labels, 0) + count
                continue
            band = (labels, status, priority)
            counts[band] = counts.get(band, 0) + count
            if first_ready is not None:
                aged = (labels, priority)
                ages[aged] = max(ages.get(aged, 0.0), now - first_ready)
        alive: dict[str, int] = {}
        serving: dict[tuple[str, str], int] = {}
        for worker in depths.workers:
            alive.setdefault(worker.namespace, 0)
            if worker.alive:
                alive[worker.namespace] += 1
                for name in worker.queues:
                    key = (worker.namespace, name if name in kept else OTHER)
                    serving[key] = serving.get(key, 0) + 1
        out: list[str] = []
        _family(out, "queue_jobs", "Jobs not finished, by state and priority.")
        out += [f'{PREFIX}_queue_jobs{{{labels},state="{st}",priority="{p}"}} {n}'
                for (labels, st, p), n in counts.items()]
        _family(out, "queue_oldest_ready_age_seconds",
                "How long the oldest ready job has been ready, by priority.")
        out += [f'{PREFIX}_queue_oldest_ready_age_seconds{{{labels},priority="{p}"}} '
                f'{age:.3f}' for (labels, p), age in ages.items()]
        _family(out, "dlq_jobs", "Jobs in the dead-letter queue.")
        out += [f'{PREFIX}_dlq_jobs{{{labels}}} {n}' for labels, n in dlq.items()]
        _family(out, "workers_alive", 'Workers that heartbeated within three of their '
                'intervals, by namespace ("*": serving several).')
        out += [f'{PREFIX}_workers_alive{{namespace="{_v(ns)}"}} {n}'
                for ns, n in alive.items()]
        _family(out, "queue_workers_alive", "Live workers serving a queue.")
        out += [f'{PREFIX}_queue_workers_alive{{namespace="{_v(ns)}",queue="{_v(q)}"}} {n}'
                for (ns, q), n in serving.items()]
        out.append("")
        return "\n".join(out)


def _family(out: list[str], name: str, doc: str) -> None:
    out.append(f"# HELP {PREFIX}_{name} {doc}")
    out.append(f"# TYPE {PREFIX}_{name} gauge")


def _v(value: str) -> str:
    """A label value as the text format writes it."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


# The content type of Prometheus's text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exposition:
    """What ``/metrics`` answers: the event metrics of a registry, then the store's
    gauges (when given), in Prometheus's text format."""

    def __init__(self, registry: CollectorRegistry, gauges: StoreGauges | None) -> None:
        self.registry = registry
        self.gauges = gauges

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        text = generate_latest(self.registry)
        if self.gauges is None:
            return text
        return text + self.gauges.render().encode()


def metrics_exposition(
    store: Store, *, gauges: bool = True, settings: MetricsSettings | None = None,
) -> tuple[Exposition, Callable[[], None]]:
    """``/metrics`` of a process over ``store``: the event metrics of its hook and
    (``gauges``) the store's gauges; and the function that detaches the event metrics."""
    registry = CollectorRegistry(auto_describe=False)
    detach = EventMetrics(registry, settings).attach(store.events)
    return Exposition(registry, StoreGauges(store, settings) if gauges else None), detach


class MetricsEndpoint:
    """``/metrics`` of one process on ``host:port``, served from a daemon thread.

    While the port is taken (a retiring worker process still serves it while its
    successor starts), binding is tried again every ``retry`` seconds until it is free.

    Example:
        >>> endpoint = MetricsEndpoint(exposition, "127.0.0.1", 9464).start()
        >>> endpoint.stop()
    """

    def __init__(self, exposition: Exposition, host: str, port: int,
                 retry: float = 0.5) -> None:
        self.exposition, self.host, self.port, self.retry = exposition, host, port, retry
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.bound = threading.Event()

    def start(self) -> MetricsEndpoint:
        try:
            self._bind()
        except OSError:
            log.info("metrics: %s:%d is taken; trying again every %gs", self.host,
                     self.port, self.retry)
            threading.Thread(target=self._keep_trying, name="taskwheel-metrics",
                             daemon=True).start()
        return self

    def _bind(self) -> None:
        exposition = self.exposition

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                try:
                    body = exposition.render()
                except Exception as exc:
                    log.exception("metrics: a scrape failed")
                    self.send_error(503, f"the store could not be read: {exc}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # a scrape every few seconds is not news

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        if self._stopped.is_set():
            server.server_close()
            return
        self._server = server
        threading.Thread(target=server.serve_forever, name="taskwheel-metrics",
                         daemon=True).start()
        self.bound.set()

    def _keep_trying(self) -> None:
        while not self._stopped.wait(self.retry):
            try:
                self._bind()
                return
            except OSError:
                continue

    def stop(self) -> None:
        self._stopped.set()
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
