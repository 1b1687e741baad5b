"""Pauses on PostgreSQL, where enqueues run concurrently with the pause: a job written by
a transaction still open when a queue is paused is held by the pause once it commits
(the pause waits for it), and a job someone inserts by hand, from a session whose
search_path is not the store's schema, is held too."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.gates import GateKind, Pause
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

from .conftest import NS, QUEUE

_INSERT = ("INSERT INTO {}.jobs (namespace, task, queue, args, kwargs, status, priority,"
           " run_at, max_attempts, guarantee, deadline_policy, created_at) VALUES"
           " (%s, 'pg.noop', %s, '[]', '{{}}', 'queued', 0, 0, 1, 'at_least_once', 'expire', 0)"
           " RETURNING id")


def _insert(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> int:
    [(job_id,)] = conn.execute(sql.SQL(_INSERT).format(sql.Identifier(schema)),
                               (NS, QUEUE)).fetchall()
    return int(job_id)


def _claimable(store: PostgresStore) -> list[int]:
    return [job.id for job in store.claim_jobs(NS, "w1", [QUEUE], 10, 30.0).jobs]


def test_a_job_committed_after_a_pause_began_is_held_by_it(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    paused: list[Pause] = []
    with admin.transaction():
        job_id = _insert(admin, schema)  # an enqueue that has not committed yet
        pausing = threading.Thread(
            target=lambda: paused.append(store.pause(NS, GateKind.QUEUE, QUEUE)), daemon=True)
        pausing.start()

        def pause_waits() -> bool:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            return bool(admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
                " AND wait_event_type = 'Lock'", (url.rsplit("application_name=", 1)[1],)
            ).fetchone())

        wait_for(pause_waits, what="the pause to wait for the open enqueue")
    pausing.join(10)

    assert [pause.held for pause in paused] == [1]
    assert _claimable(store) == []
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 1
    assert _claimable(store) == [job_id]


def test_a_job_inserted_from_another_search_path_is_held(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    store.pause(NS, GateKind.QUEUE, QUEUE)
    job_id = _insert(admin, schema)
    admin.execute(sql.SQL("UPDATE {}.jobs SET status = 'cancelled' WHERE id = %s").format(
        sql.Identifier(schema)), (job_id,))
    admin.execute(sql.SQL("UPDATE {}.jobs SET status = 'queued' WHERE id = %s").format(
        sql.Identifier(schema)), (job_id,))
    assert _claimable(store) == []
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 1
    assert _claimable(store) == [job_id]


def test_resuming_due_pauses_takes_no_gate_lock_when_none_is_due(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    store.pause(NS, GateKind.QUEUE, QUEUE)  # no end: never due
    gates = f"{schema}:gates"
    with admin.transaction():
        # Someone holds the gates' lock (a pause under way): maintenance's check of due
        # pauses must not queue behind it, nor behind every job becoming ready.
        admin.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (gates,))
        resumed: list[int] = []
        checking = threading.Thread(target=lambda: resumed.append(store.resume_due_pauses(NS)),
                                    daemon=True)
        checking.start()
        checking.join(30)
        assert resumed == [0]  # answered while the lock was held
    assert [pause.name for pause in store.list_pauses(NS)] == [QUEUE]


def test_an_admission_passes_its_jobs_through_the_pause_gate_and_leaves_the_gate_on(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """admit_rated queues its rows past the gate's row trigger (migration 0020): its own
    statement must block a job whose queue was paused after the pass read it, and the
    trigger must judge every later row of the transaction again."""
    waiting = _insert(admin, schema)
    ready = _insert(admin, schema)
    admin.execute(sql.SQL("UPDATE {}.jobs SET status = 'waiting', rate_key = 'k'"
                          " WHERE id = %s").format(sql.Identifier(schema)), (waiting,))
    admin.execute(sql.SQL("UPDATE {}.jobs SET status = 'succeeded' WHERE id = %s")
                  .format(sql.Identifier(schema)), (ready,))
    admin.execute(sql.SQL("INSERT INTO {}.pauses (namespace, kind, name, paused_at)"
                          " VALUES (%s, 'queue', %s, 0)").format(sql.Identifier(schema)),
                  (NS, QUEUE))  # as if paused between the pass's read and its admission
    with store.executor("admit_rated_jobs") as tx:
        assert tx.admit_rated(NS, [waiting]) == 1
        setting = tx._conn.execute(
            "SELECT current_setting('taskwheel.admitting', true) AS setting").fetchone()
        tx._conn.execute("UPDATE jobs SET status = 'queued' WHERE id = %s", (ready,))

    assert setting is not None
    assert setting["setting"] in ("", None)
    rows = dict(admin.execute(sql.SQL("SELECT id, blocked FROM {}.jobs WHERE id = ANY(%s)")
                              .format(sql.Identifier(schema)), ([waiting, ready],)).fetchall())
    assert rows == {waiting: True, ready: True}  # both held by the pause
    assert _claimable(store) == []
