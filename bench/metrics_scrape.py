"""The cost of one Prometheus scrape of a big deployment: 1,000 queues x 10 priorities.

    python bench/metrics_scrape.py [--database-url URL] [--queues 1000] [--priorities 10]
                                   [--jobs-per-band 1] [--scrapes 15]

Fills a fresh database (SQLite: a temporary file; PostgreSQL: the URL's server, in a
schema of its own, dropped afterwards) with ready jobs in every (queue, priority) band,
a running and a dead job per queue and 50 workers; then renders the whole of
``/metrics`` (the store's gauges, one statement for the jobs and one for the workers,
and the event metrics) ``--scrapes`` times, as ``taskwheel server`` does for each
request. Prints the median [min-max] in milliseconds, of the wall clock and of this
process's CPU; the target is 100 ms. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid

from taskwheel.bench.databases import drop_schema
from taskwheel.jobs import AttemptOutcome, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.metrics import metrics_exposition
from taskwheel.stores import open_store
from taskwheel.stores.base import Store, WorkerRegistration
from taskwheel.stores.claims import ClaimRequest

NS = "bench-metrics"


def job(queue: str, priority: int) -> NewJob:
    return NewJob(task="bench.noop", args=[], kwargs={}, args_json="[]", kwargs_json="{}",
                  queue=queue, priority=priority, namespace=NS, max_attempts=1)


def fill(store: Store, queues: int, priorities: int, per_band: int) -> int:
    names = [f"q{n:04d}" for n in range(queues)]
    batch = [job(name, priority) for name in names for priority in range(priorities)
             for _ in range(per_band)]
    for start in range(0, len(batch), 5_000):
        store.enqueue(batch[start:start + 5_000])
    # A running and a dead job per queue: every state the scrape groups.
    store.enqueue([job(name, 100) for name in names] * 2)
    claimed = store.claim(ClaimRequest("bench-w", (NS,), tuple(names), 2 * queues, 600.0)).jobs
    store.finish_attempts([Outcome(j.id, j.fence, JobStatus.DEAD, AttemptOutcome.FAILED,
                                   error="boom") for j in claimed[:queues]])
    for n in range(50):
        store.register_worker(WorkerRegistration(
            f"bench-w{n}", NS, "bench", n, names[n::50], 8, "async", 1.0))
    return len(batch) + 2 * queues


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--priorities", type=int, default=10)
    parser.add_argument("--jobs-per-band", type=int, default=1)
    parser.add_argument("--scrapes", type=int, default=15)
    options = parser.parse_args()
    url = options.database_url
    directory = None
    if url is None:
        directory = tempfile.TemporaryDirectory()
        url = f"sqlite:///{os.path.join(directory.name, 'bench.db')}"
    made_schema = url.startswith("postgres") and "schema=" not in url
    if made_schema:  # a schema of its own, dropped afterwards
        url += ("&" if "?" in url else "?") + f"schema=bench_metrics_{uuid.uuid4().hex[:8]}"
    store = open_store(url)
    store.migrate()
    try:
        jobs = fill(store, options.queues, options.priorities, options.jobs_per_band)
        exposition, detach = metrics_exposition(store)
        size = len(exposition.render())  # warm-up, and the answer's size
        times, cpu = [], []
        for _ in range(options.scrapes):
            began, began_cpu = time.perf_counter(), time.process_time()
            exposition.render()
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        detach()
        print(json.dumps({
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()}",
            "python": sys.version.split()[0],
            "store": store.describe(),
            "queues": options.queues, "priorities": options.priorities, "jobs": jobs,
            "answer_bytes": size, "scrapes": options.scrapes,
            "scrape_ms": _spread(times),
            # This process's CPU per scrape: what the machine's other load does not inflate
            # (the database server's share, for PostgreSQL, is not in it).
            "scrape_cpu_ms": _spread(cpu),
        }, indent=2, default=str))
    finally:
        if url.startswith("postgres") and directory is None and made_schema:
            drop_schema(store)
        store.close()
        if directory is not None:
            directory.cleanup()


if __name__ == "__main__":
    main()
