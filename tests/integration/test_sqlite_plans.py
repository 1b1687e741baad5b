"""SQLite's plans on a table that has lived: with many finished jobs and delayed ones,
analysed, the statements that maintenance and claims run under the write lock read an
index, never the whole table. A plan is not a timing: it is what makes their cost
independent of the history the table holds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from taskwheel.stores.sqlite.connection import Q
from taskwheel.stores.sqlite.store import SQLiteStore

NS = "plans"
_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count)
INSERT INTO taskwheel_jobs (namespace, task, queue, args, kwargs, status, priority, run_at,
    max_attempts, attempt, fence, guarantee, deadline_policy, created_at, finished_at,
    schedule_id, fire_at)
SELECT :ns, 'plans.noop', 'default', '[]', '{}', :status, 0, :run_at + i * 1e-6, 1, 1, 1,
       'at_least_once', 'expire', :run_at, :finished, i % 100, :run_at + i
FROM n
"""


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    """A migrated file with 200,000 finished jobs (fired by 100 schedules) and 20,000
    due in a day, analysed."""
    path = Path(tmp_path_factory.mktemp("plans")) / "plans.db"
    store = SQLiteStore(str(path))
    store.migrate()
    now = store.now()
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(_FILL, {"ns": NS, "status": "succeeded", "run_at": now - 3660,
                         "finished": now - 3600, "count": 200_000})
    conn.execute(_FILL.replace("i % 100", "NULL"), {
        "ns": NS, "status": "scheduled", "run_at": now + 86400, "finished": None,
        "count": 20_000})
    conn.execute("ANALYZE")
    return conn


@pytest.mark.parametrize("name", ["expire_missed", "claim_at_once", "claim_jobs",
                                  "promote_due", "next_due", "release_waiting"])
def test_an_analysed_table_full_of_history_is_read_through_an_index(
    analysed: sqlite3.Connection, name: str,
) -> None:
    params = {"namespaces": json.dumps([NS]), "namespace": NS, "now": 1e12,
              "queues": json.dumps(["default"]), "tasks": None, "worker_id": "w",
              "limit": 100, "lease_ttl": 30.0}
    for statement in Q[name]:
        plan = [row[3] for row in analysed.execute("EXPLAIN QUERY PLAN " + statement, params)]

        assert not [step for step in plan if step.startswith("SCAN taskwheel_jobs")], plan


def test_a_heartbeat_looks_its_leases_up_rather_than_scanning_them_for_each_row(
    analysed: sqlite3.Connection,
) -> None:
    """A heartbeat names each (job, fence) it renews. Joined to the worker's running
    rows, the list was scanned once per row (100 leases: 4 ms with the write lock held);
    read as the list an IN looks rows up in, it is read once."""
    params = {"now": 1e12, "lease_ttl": 30.0, "worker_id": "w",
              "leases": json.dumps([[n, 1] for n in range(1, 101)])}
    renew = Q["heartbeat"][0]
    plan = {row[0]: (row[1], row[3])
            for row in analysed.execute("EXPLAIN QUERY PLAN " + renew, params)}
    scans = [parent for parent, step in plan.values() if step.startswith("SCAN json_each")]

    assert scans, plan
    # Parent 0 is the statement itself: the list scanned as a loop of the join.
    assert all(plan.get(parent, (0, "a loop of the join"))[1].startswith("LIST SUBQUERY")
               for parent in scans), plan
    assert not [step for _, step in plan.values() if step.startswith("SCAN taskwheel_jobs")]


def test_an_admission_pass_sums_the_admitted_jobs_costs_off_their_index(
    analysed: sqlite3.Connection,
) -> None:
    """Every admission pass sums what each key's admitted and not started jobs cost. It
    read each such row for its cost (10,000 of them: 4.7 ms a sum); the index holds the
    cost and the status its condition names, so the sum reads the index alone."""
    (outstanding,) = Q["rate_outstanding"]
    plan = [row[3] for row in analysed.execute("EXPLAIN QUERY PLAN " + outstanding,
                                               {"namespace": NS})]

    assert plan == [plan[0]], plan
    assert "USING COVERING INDEX taskwheel_jobs_rate_admitted" in plan[0], plan
