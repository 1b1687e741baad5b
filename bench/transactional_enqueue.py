"""Transactional enqueue against plain enqueue: N jobs, one ``enqueue`` call each.

    python bench/transactional_enqueue.py --database-url postgresql://... [--jobs 10000]
        [--repeat 3]

- ``plain``: ``task.enqueue(...)`` through the store's pool, each its own transaction
  (one round trip and one commit each);
- ``in one transaction``: ``task.enqueue(..., using=conn)`` on the caller's psycopg
  connection, all inside one transaction committed at the end (the commit counted);
- ``awaited, one transaction``: ``await task.enqueue_async(..., using=aconn)`` on the
  caller's psycopg ``AsyncConnection``, likewise;
- ``own INSERT``: for scale, the caller inserting N rows of its own (one column) in one
  transaction, one statement each.

Each run uses a fresh schema (dropped afterwards). Figures are printed as median
[min-max] over the runs, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid

import psycopg

import taskwheel
from taskwheel.stores.postgres import PostgresStore


def one_run(url: str, jobs: int) -> dict[str, float]:
    schema = f"taskwheel_bench_tx_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(url, schema=schema)
    store.migrate()
    app = taskwheel.App(url, store=store)

    @app.task
    def noop(n: int) -> None:
        return None

    figures: dict[str, float] = {}
    try:
        began = time.perf_counter()
        for n in range(jobs):
            noop.enqueue(n)
        figures["plain"] = time.perf_counter() - began

        with psycopg.connect(url) as conn:
            began = time.perf_counter()
            for n in range(jobs):
                noop.enqueue(n, using=conn)
            conn.commit()
            figures["in one transaction"] = time.perf_counter() - began

            conn.execute("CREATE TEMP TABLE own (n integer)")
            began = time.perf_counter()
            for n in range(jobs):
                conn.execute("INSERT INTO own (n) VALUES (%s)", [n])
            conn.commit()
            figures["own INSERT"] = time.perf_counter() - began
        figures["awaited, one transaction"] = asyncio.run(awaited(url, noop, jobs))
        assert len(app.client.list_jobs(taskwheel.JobFilter(limit=4 * jobs))) == 3 * jobs
    finally:
        app.close()
        PostgresStore(url, schema=schema).drop_schema()
    return figures


async def awaited(url: str, task: taskwheel.Task[..., None], jobs: int) -> float:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        began = time.perf_counter()
        for n in range(jobs):
            await task.enqueue_async(n, using=conn)
        await conn.commit()
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("TASKWHEEL_DATABASE_URL"))
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    if not options.database_url:
        parser.error("--database-url (a PostgreSQL URL) is required")
    runs = [one_run(options.database_url, options.jobs) for _ in range(options.repeat)]
    print(f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{options.jobs} enqueues, {options.repeat} runs")
    for name in runs[0]:
        seconds = [run[name] for run in runs]
        rates = [options.jobs / s for s in seconds]
        print(f"  {name:>20}: {statistics.median(seconds):6.2f} s "
              f"[{min(seconds):.2f}-{max(seconds):.2f}]  "
              f"{statistics.median(rates):8.0f} jobs/s [{min(rates):.0f}-{max(rates):.0f}]")


if __name__ == "__main__":
    main()
