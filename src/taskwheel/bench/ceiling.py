"""The raw ceiling: the store's own claim and finish statements in a tight loop, with no
framework around them — what the hardware and the SQL allow, measured in the same run
as the framework's figures, so each can be read as a ratio to it.

Each process claims up to ``batch`` ready jobs with the dialect's ``claim_jobs``
statement (as written in its ``queries.sql``), then reports every one succeeded with
``finish_attempts`` (the attempt row included), and goes again until a claim finds
nothing. Nothing else: no job objects, no event loop, no task call, no heartbeat, no
wake-ups. On SQLite a write takes the store's ``<db>-writelock`` first, as the store
does; on PostgreSQL each statement commits on its own, as the store's claim does.

Run as ``python -m taskwheel.bench.ceiling URL NAMESPACE QUEUE BATCH START``: connected,
it waits for the wall-clock instant START (so the loops of several processes begin
together), runs, and prints one JSON line, ``{"jobs", "first", "last", "cpu_seconds",
"server_cpu_seconds"}`` (wall times from ``time.time()``; CPU of this process and of its
PostgreSQL server process, user + system, during the loop).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from taskwheel.bench.app import BenchmarkError
from taskwheel.bench.processes import process_cpu_seconds
from taskwheel.stores.sql_files import load_queries
from taskwheel.stores.sqlite.connection import Q, statement

WORKER = f"ceiling:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run(url: str, namespace: str, queue: str, batch: int, start: float) -> dict[str, Any]:
    """The loop on the store ``url`` names, until no job is ready. Its CPU is the
    loop's (connecting included, the interpreter's start and imports not)."""
    if not url.startswith("sqlite:"):
        import psycopg  # noqa: F401  (imported before the CPU is read)

        import taskwheel.stores.postgres.connection  # noqa: F401
    global _START
    _START = start
    before = _cpu()
    server = 0.0
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        first, last, jobs = _sqlite(path, namespace, queue, batch)
    else:
        first, last, jobs, server = _postgres(url, namespace, queue, batch)
    return {"jobs": jobs, "first": first, "last": last, "cpu_seconds": _cpu() - before,
            "server_cpu_seconds": server}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sqlite(path: str, namespace: str, queue: str, batch: int) -> tuple[float, float, int]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    lock = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o644)

    @contextlib.contextmanager
    def write() -> Iterator[None]:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("COMMIT")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    _wait_for_start()
    claim, (finish, record) = statement("claim_jobs"), Q["finish_attempts"]
    params = {"namespaces": json.dumps([namespace]), "queues": json.dumps([queue]),
              "tasks": None, "worker_id": WORKER, "limit": batch, "lease_ttl": 60.0}
    first, jobs = 0.0, 0
    while True:
        now = time.time()
        with write():
            # RETURNING *: id is the first column, fence the one the schema puts it at.
            cursor = conn.execute(claim, {**params, "now": now})
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        if not rows:
            return first, time.time(), jobs
        first = first or now
        id_at, fence_at = columns.index("id"), columns.index("fence")
        # The batch's outcomes as the store reports them: one round, all applied.
        outcomes = json.dumps([[row[id_at], row[fence_at], "succeeded", "succeeded", "null",
                                None, None, 0.0] for row in rows])
        with write():
            conn.execute(finish, {"outcomes": outcomes, "now": now, "alone": True}).fetchall()
            conn.execute(record, {"applied": outcomes, "now": now})
        jobs += len(rows)


def _postgres(
    url: str, namespace: str, queue: str, batch: int
) -> tuple[float, float, int, float]:
    """The loop on PostgreSQL; with the CPU its server process spent (read from /proc
    while the connection is still open: it is gone once the loop disconnects)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from taskwheel.stores.postgres.connection import ConnectionSettings
    from taskwheel.stores.postgres.notifier import FINISHED_TAIL

    queries = load_queries("taskwheel.stores.postgres", "queries.sql")
    settings = ConnectionSettings.from_url(url)
    conn = psycopg.connect(
        make_conninfo(settings.conninfo, options=f"-c search_path={settings.schema}"),
        autocommit=True,
    )
    params = {"namespaces": [namespace], "namespace_count": 1, "queues": [queue],
              "tasks": None, "worker_id": WORKER, "limit": batch, "lease_ttl": 60.0,
              "now": None}
    backend = conn.info.backend_pid
    _wait_for_start()
    server = _server_cpu(backend)
    first, jobs = 0.0, 0
    while True:
        now = time.time()
        cursor = conn.execute(queries["claim_jobs"], params)
        rows = cursor.fetchall()
        if not rows:
            return first, time.time(), jobs, _server_cpu(backend) - server
        first = first or now
        columns = [column.name for column in cursor.description or ()]
        id_at, fence_at = columns.index("id"), columns.index("fence")
        conn.execute(queries["finish_attempts"], {"outcomes": json.dumps([
            {"id": row[id_at], "fence": row[fence_at], "status": "succeeded",
             "outcome": "succeeded", "result": "null", "error": None, "traceback": None,
             "retry_delay": 0.0} for row in rows]), "now": None,
            # As the store reports jobs whose end moves nothing else (finish_alone).
            "alone": True, "channel": "taskwheel_bench", "finished_tail": FINISHED_TAIL,
            "terminal": ["succeeded"]})
        jobs += len(rows)


_START = 0.0


def _wait_for_start() -> None:
    """Sleep until the agreed start (the other loops are connected by then)."""
    time.sleep(max(0.0, _START - time.time()))


def _server_cpu(pid: int) -> float:
    """The database server process's CPU, when it runs on this host (else 0)."""
    try:
        return process_cpu_seconds(pid)
    except BenchmarkError:
        return 0.0


def main(argv: list[str]) -> None:
    url, namespace, queue, batch, start = argv
    print(json.dumps(run(url, namespace, queue, int(batch), float(start))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
