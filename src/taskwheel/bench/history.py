"""A jobs table that has lived: the scale benchmark's bulk fill of finished jobs (each
with its attempt row) and of jobs scheduled for later, written straight into the tables
by set-based statements (never the enqueue API, which would take hours for ten million
rows), and the table-level knobs the benchmark turns: PostgreSQL's per-table
``autovacuum_enabled`` and ``ANALYZE``.

The rows look like what taskwheel leaves behind: a finished job is ``succeeded`` with
one attempt and an attempt row, finished an hour ago (inside every retention, so the
maintenance pruner of the workers under test leaves it alone); a job scheduled for later
is due in a day (the promoter leaves it alone). They sit in the namespace and queue of
the drain itself, the worst place for them: the same leading index keys.

Example:
    >>> fill = HistoryFill(finished=1_000, scheduled=100)
    >>> fill.rows
    1100
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from taskwheel.bench.app import QUEUE

TASK = "taskwheel.bench.app:noop"
CHUNK = 200_000  # rows per transaction: a long write would stall the idle workers
FINISHED_AGO = 3_600.0  # seconds: inside any retention, so nothing is pruned meanwhile
SCHEDULED_AHEAD = 86_400.0  # seconds: nothing falls due during the run

# One statement per dialect and kind; the ids the fill gives are read back as
# "greater than the largest before", so the attempts of a chunk are one more statement.
_COLUMNS = ("namespace, task, queue, args, kwargs, status, priority, run_at, max_attempts, "
            "attempt, fence, guarantee, deadline_policy, worker_id, started_at, created_at, "
            "finished_at")
_VALUES = ("{namespace}, {task}, {queue}, '[]', '{{}}', {status}, 0, {base} + i * 0.000001, 1, "
           "{attempt}, {attempt}, 'at_least_once', 'expire', {worker}, {started}, "
           "{base} + i * 0.000001, {finished}")
_SQLITE_JOBS = (
    f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count) "
    f"INSERT INTO taskwheel_jobs ({_COLUMNS}) SELECT "
    + _VALUES.format(namespace=":namespace", task=":task", queue=":queue", status=":status",
                     base=":base", attempt=":attempt", worker=":worker", started=":started",
                     finished=":finished")
    + " FROM n"
)
_POSTGRES_JOBS = (
    f"INSERT INTO jobs ({_COLUMNS}) SELECT "
    + _VALUES.format(namespace="%(namespace)s", task="%(task)s", queue="%(queue)s",
                     status="%(status)s", base="%(base)s", attempt="%(attempt)s",
                     worker="%(worker)s", started="%(started)s::double precision",
                     finished="%(finished)s::double precision")
    + " FROM generate_series(0, %(count)s - 1) AS i"
)
_ATTEMPTS = (
    "INSERT INTO {table} (namespace, job_id, attempt, fence, worker_id, started_at, "
    "ended_at, outcome) SELECT namespace, id, 1, 1, worker_id, started_at, finished_at, "
    "'succeeded' FROM {jobs} WHERE id > {after} AND status = 'succeeded'"
)


@dataclass(frozen=True)
class HistoryFill:
    """How many rows a fill writes: ``finished`` succeeded jobs (and as many attempt
    rows), ``scheduled`` jobs due in a day."""

    finished: int
    scheduled: int

    @property
    def rows(self) -> int:
        return self.finished + self.scheduled


@dataclass(frozen=True)
class FillResult:
    rows: int
    seconds: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "seconds": round(self.seconds, 2),
                "rows_per_s": round(self.rows / self.seconds) if self.seconds else None,
                "method": self.method}


class HistoryTables(Protocol):
    """The jobs and attempts tables of one benchmark database."""

    def fill(self, fill: HistoryFill, namespace: str) -> FillResult: ...

    def analyze(self) -> None: ...

    def close(self) -> None: ...


def open_tables(url: str) -> HistoryTables:
    """The tables of the store ``url`` names (migrated already)."""
    if url.startswith("sqlite:"):
        return SqliteTables(url.removeprefix("sqlite:").removeprefix("//"))
    return PostgresTables(url)


class SqliteTables:
    """The SQLite file's tables; every write takes the store's ``<db>-writelock`` first,
    as the store does, so idle workers polling meanwhile only wait."""

    method = ("recursive CTE: WITH RECURSIVE n(i) ... INSERT INTO taskwheel_jobs SELECT "
              f"... FROM n, then INSERT INTO taskwheel_attempts SELECT ... FROM "
              f"taskwheel_jobs, {CHUNK:,} rows per transaction")

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.lock = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o644)

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield
            self.conn.execute("COMMIT")
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)

    def fill(self, fill: HistoryFill, namespace: str) -> FillResult:
        begin = time.perf_counter()
        for params in _chunks(fill, namespace):
            with self._write():
                after = self.conn.execute("SELECT coalesce(max(id), 0) FROM taskwheel_jobs")
                last = int(after.fetchone()[0])
                self.conn.execute(_SQLITE_JOBS, params)
                if params["status"] == "succeeded":
                    self.conn.execute(_ATTEMPTS.format(
                        table="taskwheel_attempts", jobs="taskwheel_jobs", after=last))
        return FillResult(fill.rows, time.perf_counter() - begin, self.method)

    def analyze(self) -> None:
        with self._write():
            self.conn.execute("ANALYZE")

    def close(self) -> None:
        self.conn.close()
        os.close(self.lock)


class PostgresTables:
    """The tables of the benchmark's own schema on a PostgreSQL server."""

    method = ("set-based: INSERT INTO jobs SELECT ... FROM generate_series(...), then "
              f"INSERT INTO attempts SELECT ... FROM jobs, {CHUNK:,} rows per transaction")

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        from taskwheel.stores.postgres.connection import ConnectionSettings

        settings = ConnectionSettings.from_url(url)
        self.conn = psycopg.connect(
            make_conninfo(settings.conninfo, options=f"-c search_path={settings.schema}"),
            autocommit=True,
        )

    def fill(self, fill: HistoryFill, namespace: str) -> FillResult:
        begin = time.perf_counter()
        for params in _chunks(fill, namespace):
            with self.conn.transaction():
                row = self.conn.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()
                last = int(row[0]) if row else 0
                self.conn.execute(_POSTGRES_JOBS, params)
                if params["status"] == "succeeded":
                    self.conn.execute(_ATTEMPTS.format(
                        table="attempts", jobs="jobs", after=last))
        return FillResult(fill.rows, time.perf_counter() - begin, self.method)

    def set_autovacuum(self, enabled: bool) -> None:
        """The per-table storage parameter on jobs and attempts (the server's global
        settings are never touched)."""
        value = "on" if enabled else "off"
        for table in ("jobs", "attempts"):
            self.conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = {value})")

    def autovacuum(self) -> dict[str, Any]:
        """What decides whether autovacuum visits the tables: the server's switch and
        the tables' own parameter; it runs only when both are on."""
        shown = self.conn.execute("SHOW autovacuum").fetchone()
        server = str(shown[0]) if shown else "?"
        tables = {}
        for table in ("jobs", "attempts"):
            row = self.conn.execute(
                "SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class "
                "WHERE oid = %s::regclass", (table,)).fetchone()
            options = str(row[0]) if row else ""
            off = ("autovacuum_enabled=off", "autovacuum_enabled=false")
            tables[table] = "off" if any(o in options for o in off) else "on"
        return {"server": server, "tables": tables,
                "effective": "on" if server == "on" and "off" not in tables.values() else "off"}

    def analyzed(self) -> dict[str, Any]:
        """When the jobs table was last analysed, by hand or by autovacuum."""
        row = self.conn.execute(
            "SELECT last_analyze, last_autoanalyze, n_live_tup FROM pg_stat_user_tables "
            "WHERE relid = 'jobs'::regclass").fetchone()
        if row is None:
            return {}
        return {"last_analyze": str(row[0]), "last_autoanalyze": str(row[1]),
                "live_rows_estimate": int(row[2])}

    def analyze(self) -> None:
        self.conn.execute("ANALYZE jobs, attempts")

    def close(self) -> None:
        self.conn.close()


def _chunks(fill: HistoryFill, namespace: str) -> Iterator[dict[str, Any]]:
    """The parameters of each chunk's statement: finished jobs first, then scheduled."""
    now = time.time()
    kinds: tuple[tuple[int, dict[str, Any]], ...] = (
        (fill.finished, {"status": "succeeded", "base": now - FINISHED_AGO - 60,
                         "attempt": 1, "worker": "bench:history",
                         "started": now - FINISHED_AGO, "finished": now - FINISHED_AGO}),
        (fill.scheduled, {"status": "scheduled", "base": now + SCHEDULED_AHEAD,
                          "attempt": 0, "worker": None, "started": None, "finished": None}),
    )
    for total, values in kinds:
        done = 0
        while done < total:
            count = min(CHUNK, total - done)
            yield {"namespace": namespace, "task": TASK, "queue": QUEUE, "count": count,
                   **values, "base": values["base"] + done * 0.000001}
            done += count
