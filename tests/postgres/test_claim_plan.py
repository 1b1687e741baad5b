"""The claim's plans on a table that has lived: with many finished jobs, delayed ones
due later and a backlog, analysed or never analysed (a bulk load, or autovacuum off),
claims read the ready jobs in order off jobs_ready and the earliest delayed job off
jobs_due, and promoting due jobs reads only those: never the whole table, never every
queued or delayed job. A plan is not a timing: it is
what keeps a claim's cost independent of the history and the backlog."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.postgres.store import PostgresExecutor, _request_columns
from taskwheel.stores.sql_files import load_queries

from .conftest import NS, QUEUE, new_job

_FILL = (
    "INSERT INTO {}.jobs (namespace, task, queue, args, kwargs, status, priority, run_at,"
    " max_attempts, attempt, fence, guarantee, deadline_policy, created_at, started_at,"
    " finished_at)"
    " SELECT %(ns)s, 'pg.noop', %(queue)s, '[]', '{{}}', %(status)s, 0, %(run_at)s + i * 1e-6,"
    " 1, 1, 1, 'at_least_once', 'expire', %(run_at)s, %(started)s, %(finished)s"
    " FROM generate_series(1, %(count)s) AS i"
)
_QUERIES = load_queries("taskwheel.stores.postgres", "queries.sql")


@pytest.mark.parametrize("analysed", [True, False], ids=["analysed", "never-analysed"])
def test_a_table_full_of_history_is_claimed_from_the_ready_and_due_indexes(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    analysed: bool,
) -> None:
    now = store.now()
    fill = sql.SQL(_FILL).format(sql.Identifier(schema))
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "succeeded", "run_at": now - 3660,
                         "started": now - 3600, "finished": now - 3600, "count": 200_000})
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "scheduled", "run_at": now + 86400,
                         "started": None, "finished": None, "count": 20_000})
    store.enqueue([new_job(n) for n in range(2_000)])
    if analysed:
        admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))
    params = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
              "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "ahead": 0.01,
              "now": None}

    plans = {}
    with psycopg.ClientCursor(admin) as cursor:  # the values inlined: a custom plan
        cursor.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        for name in ("claim_at_once", "claim_ready", "claim_jobs", "next_due_in_queues",
                     "promote_due"):
            with admin.transaction(force_rollback=True):
                rows = cursor.execute("EXPLAIN " + _QUERIES[name], params)
                plans[name] = "\n".join(row[0] for row in rows)

    for name, plan in plans.items():
        assert "Seq Scan on jobs" not in plan, (name, plan)
        assert "jobs_status" not in plan, (name, plan)
    assert "jobs_ready" in plans["claim_at_once"]
    assert "jobs_due" in plans["claim_at_once"]  # the earliest delayed job
    assert "jobs_ready" in plans["claim_ready"]
    assert "jobs_due" in plans["claim_ready"]  # next_due
    assert "jobs_ready" in plans["claim_jobs"]
    assert "jobs_due" in plans["next_due_in_queues"]
    assert "jobs_due" in plans["promote_due"]  # the due ones, not every delayed one


@pytest.mark.parametrize("analysed", [True, False], ids=["analysed", "never-analysed"])
def test_a_claim_reads_the_due_jobs_off_jobs_due_not_every_delayed_job(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    analysed: bool,
) -> None:
    """The one-statement claim also takes due delayed jobs: it reads them as a range of
    jobs_due, even on a small young table of delayed jobs, where reading every delayed
    job through jobs_status looks as cheap to the planner."""
    delayed = store.enqueue([new_job(n, delay=86400) for n in range(2_000)])
    admin.execute(sql.SQL("UPDATE {}.jobs SET run_at = run_at - 90000 WHERE id = ANY(%s)")
                  .format(sql.Identifier(schema)), ([job.id for job in delayed[:3]],))
    store.enqueue([new_job(1)])
    if analysed:
        admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))
    params = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
              "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "ahead": 0.01,
              "now": None}

    with psycopg.ClientCursor(admin) as cursor, admin.transaction(force_rollback=True):
        cursor.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        plan = "\n".join(row[0] for row in cursor.execute(
            "EXPLAIN " + _QUERIES["claim_at_once"], params))

    assert "Seq Scan on jobs" not in plan, plan
    assert "jobs_status" not in plan, plan
    assert "jobs_due" in plan
    assert "jobs_ready" in plan


def _claim_plan(admin: psycopg.Connection[tuple[Any, ...]], schema: str) -> str:
    params = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
              "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "ahead": 0.01,
              "now": None}
    with psycopg.ClientCursor(admin) as cursor, admin.transaction(force_rollback=True):
        cursor.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        rows = cursor.execute("EXPLAIN " + _QUERIES["claim_at_once"], params)
        return "\n".join(row[0] for row in rows)


def test_a_fresh_table_filled_by_one_big_enqueue_is_claimed_from_jobs_ready(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    """A table never analysed (a new database: autovacuum has not come by yet) looks
    empty to the planner, which then read every queued job of the namespace through
    jobs_status and sorted them, at every claim: the first big enqueue analyses it."""
    store.enqueue([new_job(n) for n in range(20_000)])
    plan = _claim_plan(admin, schema)
    assert "jobs_status" not in plan, plan
    assert "jobs_ready" in plan, plan


@pytest.mark.parametrize("seen", ["succeeded", "waiting"])
def test_a_table_analysed_while_nothing_was_queued_is_claimed_from_jobs_ready(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    seen: str,
) -> None:
    """Analysed while no job was queued (a quiet system between bursts, when autovacuum
    comes by; or a backlog all waiting for rate tokens), the statistics say a queued job
    is all but impossible: reading "every" queued job through jobs_status and sorting
    it then looked as cheap as jobs_ready, and every claim read and sorted the whole
    backlog once one arrived (14-33 ms a claim of 20,000 ready jobs)."""
    now = store.now()
    fill = sql.SQL(_FILL).format(sql.Identifier(schema))
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": seen, "run_at": now - 3660,
                         "started": None, "finished": now - 3600, "count": 50_000})
    admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))
    store.enqueue([new_job(n) for n in range(20_000)])  # the backlog that arrives
    store.enqueue([new_job(n, delay=3600) for n in range(20_000)])  # and delayed ones
    claim = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
             "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "ahead": 0.01, "now": None}
    params = {
        "claim_at_once": claim, "claim_ready": claim, "claim_jobs": claim,
        "claim_shares": {**claim, "starts": [0.0], "weights": [1.0]},
        "claim_reserved": {**claim, "namespace": NS, "queue": QUEUE, "rank_below": 5},
        "pass_frontier": {"namespace": NS, "rank": 0},
    }

    # The plans the claims run with: generic ones (the values are parameters).
    admin.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
    admin.execute("SET plan_cache_mode = force_generic_plan")
    for name, values in params.items():
        with admin.transaction(force_rollback=True):
            plan = "\n".join(str(row[0]) for row in admin.execute(
                "EXPLAIN " + _QUERIES[name], {"now": None, **values}))
        assert "jobs_status" not in plan, (name, plan)
        assert "jobs_ready" in plan, (name, plan)


def _statistics(admin: psycopg.Connection[tuple[Any, ...]], schema: str) -> float:
    """The jobs table's row count as its statistics have it (-1: never analysed)."""
    row = admin.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                        (f"{schema}.jobs",)).fetchone()
    assert row is not None
    return float(row[0])


def test_small_enqueues_into_a_fresh_table_analyse_nothing(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    for n in range(5):
        store.enqueue([new_job(n)])
    assert _statistics(admin, schema) < 0  # never analysed


def test_a_store_analyses_the_jobs_table_as_its_enqueues_make_it_grow(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    """With autovacuum off (or behind), nothing else gives the table statistics: the
    store looks every 1,000 jobs it enqueues, however small its batches, and analyses
    a table never analysed, and again one ten times the size its statistics say."""
    for batch in range(9):
        store.enqueue([new_job(batch, n) for n in range(100)])
    assert _statistics(admin, schema) < 0  # 900 jobs: not looked at yet
    store.enqueue([new_job(9, n) for n in range(100)])
    first = _statistics(admin, schema)
    assert first >= 900

    for batch in range(10, 40):
        store.enqueue([new_job(batch, n) for n in range(100)])
    assert _statistics(admin, schema) == first  # 4,000 jobs: close enough still
    for batch in range(40, 130):
        store.enqueue([new_job(batch, n) for n in range(100)])
    assert _statistics(admin, schema) >= 5 * first  # grown tenfold: analysed again


def test_an_analysis_that_cannot_be_made_never_fails_the_enqueue_before_it(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The look at the statistics runs after the enqueue committed: a failure there
    (here an ANALYZE that waits for a lock, which gives up at once) is logged, and the
    caller gets its jobs, not an error that would make it enqueue them again."""
    with admin.transaction():
        admin.execute(sql.SQL("LOCK TABLE {}.jobs IN SHARE UPDATE EXCLUSIVE MODE")
                      .format(sql.Identifier(schema)))  # as a VACUUM holds it
        written = store.enqueue([new_job(n) for n in range(1_000)])
        assert len(written) == 1_000
        assert "left the jobs table's statistics as they are" in caplog.text
    assert _statistics(admin, schema) < 0
    assert store.enqueue([new_job(n) for n in range(1_000)])  # the next look analyses
    assert _statistics(admin, schema) >= 1_000


def test_a_keyed_enqueue_looks_its_key_up_by_index_after_the_table_grew(
    url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    """The plan a connection keeps for the enqueue statement was made on the new,
    empty table: it read every row of jobs for the key of a keyed enqueue (a hash join
    over a sequential scan), which on 25,000 rows took 13 ms an enqueue, and more as the
    table grew. One connection, so that the plan the test reads is the one in use."""
    store = PostgresStore(url + "&pool_max_size=1")
    try:
        store.migrate()
        for n in range(20):  # made and kept while the table is small
            store.enqueue([dataclasses.replace(new_job(n), idempotency_key=f"early-{n}")])
        for batch in range(30):
            store.enqueue([new_job(batch, n) for n in range(500)])
        keyed = dataclasses.replace(new_job(0), idempotency_key="late")
        store.enqueue([keyed])

        with store._db.pool.connection() as conn:
            found = conn.execute(
                "SELECT name FROM pg_prepared_statements"
                " WHERE statement LIKE '%%INSERT INTO jobs%%json_to_recordset%%'"
                " OR statement LIKE '%%json_to_recordset%%INSERT INTO jobs%%'").fetchall()
            assert len(found) == 1, found
            name = found[0]["name"]
            requests = _request_columns([keyed])["requests"]
            with conn.transaction(force_rollback=True):
                # (namespaces, now, requests, unless_limited), as the untyped literals
                # the prepared statement's parameters take.
                plan = "\n".join(str(row["QUERY PLAN"]) for row in conn.execute(
                    sql.SQL("EXPLAIN EXECUTE {}({}, NULL, {}, true)").format(
                        sql.Identifier(name), sql.Literal("{" + NS + "}"),
                        sql.Literal(requests))))
    finally:
        store.close()
    assert "Seq Scan on jobs" not in plan, plan
    assert "jobs_idempotency" in plan, plan


def _report_params(store: PostgresStore) -> dict[str, Any]:
    """Claim 100 jobs as worker w1: the parameters of the statements that report them
    (finish_attempts), renew their leases (heartbeat) and give them back (release_jobs)."""
    claimed = store.claim(ClaimRequest(worker_id="w1", namespaces=(NS,), queues=(QUEUE,),
                                       limit=100, lease_ttl=30.0)).jobs
    assert len(claimed) == 100
    ids, fences = [job.id for job in claimed], [job.fence for job in claimed]
    outcomes = json.dumps([{"id": i, "fence": f, "status": "succeeded", "outcome": "succeeded",
                            "result": "null", "error": None, "traceback": None,
                            "retry_delay": 0} for i, f in zip(ids, fences, strict=True)])
    return {"outcomes": outcomes, "id": ids, "fence": fences, "worker_id": "w1",
            "lease_ttl": 30.0, "now": None, "alone": True, "channel": "taskwheel",
            "finished_tail": "\nfinished", "terminal": ["succeeded"]}


@pytest.mark.parametrize("name", ["finish_attempts", "heartbeat", "release_jobs"])
def test_reports_find_their_jobs_by_id_when_the_statistics_saw_nothing_running(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    name: str,
) -> None:
    """Analysed while no job ran (after a quiet spell, or at the store's own look
    during a burst of enqueues), the statistics say a running job is all but
    impossible: the report's plan scanned the whole table for its running rows and
    joined each with every outcome (250 outcomes on 5,000 rows: 50-140 ms a report,
    the tail of a short drain)."""
    now = store.now()
    fill = sql.SQL(_FILL).format(sql.Identifier(schema))
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "succeeded", "run_at": now - 3660,
                         "started": now - 3600, "finished": now - 3600, "count": 5_000})
    store.enqueue([new_job(n) for n in range(2_000)])
    admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))  # none running
    params = _report_params(store)
    admin.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
    for mode in ("force_generic_plan", "force_custom_plan"):  # as prepared, and not
        admin.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Identifier(mode)))
        with admin.transaction(force_rollback=True):
            plan = "\n".join(str(row[0]) for row in admin.execute(
                "EXPLAIN " + _QUERIES[name], params))
        assert "Seq Scan on jobs" not in plan, (mode, plan)
        assert "jobs_pkey" in plan, (mode, plan)
    admin.execute("RESET plan_cache_mode")


def test_a_small_analysed_table_updates_the_claimed_jobs_by_primary_key(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    """A claim takes up to 100 jobs: on a table of a thousand rows analysed while they
    were ready, the planner found hashing the whole table cheaper than 100 lookups by
    id, and every claim (of one job, with idle workers) scanned it: ~2 ms of each job's
    wait to start on this machine."""
    store.enqueue([new_job(n) for n in range(1_000)])  # the store analyses the new table
    request = ClaimRequest(worker_id="w0", namespaces=(NS,), queues=(QUEUE,), limit=100,
                           lease_ttl=30.0)
    while claimed := store.claim(request).jobs:
        store.finish_attempts([Outcome(job.id, job.fence, JobStatus.SUCCEEDED,
                                       AttemptOutcome.SUCCEEDED, "null") for job in claimed])
    store.enqueue([new_job(1)])  # statistics still say a thousand ready jobs
    params = {"namespaces": [NS], "namespace_count": 1, "queues": [QUEUE], "tasks": None,
              "worker_id": "w1", "limit": 100, "lease_ttl": 30.0, "ahead": 0.01,
              "now": None}
    with psycopg.ClientCursor(admin) as cursor:
        cursor.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        for name in ("claim_at_once", "claim_ready", "claim_jobs"):
            with admin.transaction(force_rollback=True):
                plan = "\n".join(row[0] for row in cursor.execute(
                    "EXPLAIN " + _QUERIES[name], params))
            assert "Seq Scan on jobs" not in plan, (name, plan)


@pytest.mark.parametrize("statement", ["claim_at_once", "claim_ready", "claim_jobs"])
def test_a_claim_keeps_its_generic_plan_once_the_table_has_statistics(
    store: PostgresStore, statement: str,
) -> None:
    """Run again on a connection, a statement is prepared (at its fifth run), and the
    server then chooses at each run between the generic plan and a new custom one. With
    statistics it chose custom plans for the claim, planned anew each time: 4 ms of
    planning for a 1.5 ms claim in every job's wait to start. The claim runs with the
    generic plan (its plans are the ones above) from its first run on a connection, and
    nothing else on the connection does."""
    store.enqueue([new_job(n) for n in range(1_000)])  # the store analyses the new table
    request = ClaimRequest(worker_id="w0", namespaces=(NS,), queues=(QUEUE,), limit=1,
                           lease_ttl=30.0, alarm=statement == "claim_ready")
    with psycopg.connect(store._db.conninfo, autocommit=True, row_factory=dict_row) as conn:
        executor = PostgresExecutor(conn, now=None, channel="unused", autocommit=True)
        for _ in range(12):
            if statement != "claim_jobs":
                assert executor.claim_at_once(request) is not None
            else:
                assert len(executor.claim_jobs(request).jobs) == 1
        [prepared] = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%claimed_namespaces%'").fetchall()
        setting = conn.execute("SHOW plan_cache_mode").fetchone()
    assert prepared["generic_plans"] == 12, prepared
    assert prepared["custom_plans"] == 0, prepared
    assert setting == {"plan_cache_mode": "auto"}


def test_reports_and_heartbeats_find_their_jobs_by_id_whatever_ran_before(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    """jobs_running keeps an entry for every job that ran since the table was last
    vacuumed. To a planner whose statistics say few jobs run, a bitmap scan of it looked
    cheaper than 100 lookups by id: every report then read all those entries and their
    pages (7,900 to find 100 rows), a cost that grew with the history."""
    now = store.now()
    fill = sql.SQL(_FILL).format(sql.Identifier(schema))
    admin.execute(fill, {"ns": NS, "queue": QUEUE, "status": "running", "run_at": now - 3660,
                         "started": now - 3600, "finished": None, "count": 50_000})
    admin.execute(sql.SQL("UPDATE {}.jobs SET status = 'succeeded', finished_at = %s")
                  .format(sql.Identifier(schema)), (now,))  # their entries stay until vacuum
    store.enqueue([new_job(n) for n in range(100)])
    admin.execute(sql.SQL("ANALYZE {}.jobs").format(sql.Identifier(schema)))
    params = _report_params(store)
    with psycopg.ClientCursor(admin) as cursor:
        cursor.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        for name in ("finish_attempts", "heartbeat", "release_jobs"):
            with admin.transaction(force_rollback=True):
                plan = "\n".join(row[0] for row in cursor.execute(
                    "EXPLAIN " + _QUERIES[name], params))
            assert "jobs_pkey" in plan, (name, plan)
            assert "jobs_running" not in plan, (name, plan)
            assert "jobs_worker" not in plan, (name, plan)
