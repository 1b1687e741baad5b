"""The claim's plan on a table that has lived: with many finished jobs and delayed ones
due later, analysed, the one-statement claim still reads only indexes. A plan is not a
timing: it is what makes a claim's cost independent of the history the table holds."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.sql_files import load_queries

from .conftest import NS, QUEUE, new_job

_FILL = (
    "INSERT INTO {}.jobs (namespace, task, queue, args, kwargs, status, priority, run_at,"
    " max_attempts, attempt, fence, guarantee, deadline_policy, created_at, started_at,"
    " finished_at)"
    " SELECT %(ns)s, 'pg.noop', %(queue)s, '[]', '{{}}', %(status)s, 0, %(run_at)s + i * 1e-6, 1,"
    " 1, 1, 'at_least_once', 'expire', %(run_at)s, %(started)s, %(finished)s"
    " FROM generate_series(1, %(count)s) AS i"
)


def test_an_analysed_table_full_of_history_is_claimed_from_indexes_only(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    now = store.now()
    fill = sql.SQL(_FILL).format(sql.Identifier(schema))
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "succeeded", "run_at": now - 3660,
                         "started": now - 3600, "finished": now - 3600, "count": 200_000})
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "scheduled", "run_at": now + 86400,
                         "started": None, "finished": None, "count": 20_000})
    store.enqueue([new_job(n) for n in range(200)])
    admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))

    claim = load_queries("taskwheel.stores.postgres", "queries.sql")["claim_at_once"]
    params = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
              "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "now": None}
    with psycopg.ClientCursor(admin) as cursor:  # the values inlined: a custom plan
        cursor.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        with admin.transaction(force_rollback=True):
            plan = "\n".join(row[0] for row in cursor.execute("EXPLAIN " + claim, params))

    assert "Seq Scan on jobs" not in plan, plan
    assert "jobs_due" in plan  # the earliest delayed job, read off its index
    assert "jobs_ready" in plan
