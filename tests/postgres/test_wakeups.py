"""LISTEN/NOTIFY wake-ups: a transaction that makes jobs ready wakes the listeners when it
commits (and not if it rolls back); one LISTEN connection serves a process; a listener
whose connection is killed LISTENs again."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from taskwheel.notify import due_of
from taskwheel.stores.postgres import PostgresListener, PostgresStore
from waiting import notifications_until, wait_for

from .conftest import NS, QUEUE, new_job, sessions_of, terminate

MARKER = "marker"  # a namespace whose wake-up shows that the ones before it arrived


def events_until_marker(listener: PostgresListener) -> list[tuple[str, str]]:
    """The events a listener receives up to the marker's wake-up. Notifications arrive
    in commit order, so one that was sent before the marker has arrived by then."""
    return notifications_until(listener, (MARKER, "jobs"))


def send_marker(store: PostgresStore) -> None:
    store.enqueue([new_job(namespace=MARKER)])


def test_an_enqueue_in_another_process_wakes_a_listener(url: str, store: PostgresStore) -> None:
    listener = store.notifier.listen()
    elsewhere = PostgresStore(url)  # connections of its own, as another process has
    try:
        elsewhere.enqueue([new_job(1)])
        send_marker(elsewhere)

        assert events_until_marker(listener) == [(NS, "jobs")]
    finally:
        elsewhere.close()
        listener.close()


def test_a_delayed_job_tells_when_it_falls_due_and_a_rollback_wakes_nobody(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    listener = store.notifier.listen()
    try:
        [later] = store.enqueue([new_job(delay=60)])  # due later: sleepers move alarms
        try:
            with admin.transaction():
                admin.execute(
                    sql.SQL(
                        "INSERT INTO {}.jobs (namespace, task, queue, args, kwargs, status,"
                        " priority, run_at, max_attempts, guarantee, deadline_policy,"
                        " created_at) VALUES (%s, 't', %s, '[]', '{{}}', 'queued', 0, 0, 1,"
                        " 'at_least_once', 'expire', 0)"
                    ).format(sql.Identifier(schema)),
                    ("rolled-back", QUEUE),
                )
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        send_marker(store)

        events = events_until_marker(listener)
        assert [(ns, due_of(event)) for ns, event in events] == [
            (NS, later.run_at.timestamp())
        ], "no wake-up but the delayed job's due time; none for the rolled-back insert"
    finally:
        listener.close()


def test_a_job_made_ready_again_wakes_listeners(store: PostgresStore) -> None:
    listener = store.notifier.listen()
    try:
        [job] = store.enqueue([new_job()])
        claimed = store.claim_jobs(NS, "w", [QUEUE], 1, 30).jobs[0]
        assert claimed.id == job.id
        send_marker(store)
        events_until_marker(listener)

        store.release_jobs("w", {job.id: claimed.fence})  # back to the queue
        send_marker(store)

        assert events_until_marker(listener) == [(NS, "jobs")]
    finally:
        listener.close()


def test_a_cancel_request_wakes_listeners(store: PostgresStore) -> None:
    listener = store.notifier.listen()
    try:
        [job] = store.enqueue([new_job()])
        store.claim_jobs(NS, "w", [QUEUE], 1, 30)
        send_marker(store)
        events_until_marker(listener)

        store.cancel_job(NS, job.id)
        send_marker(store)

        assert events_until_marker(listener) == [(NS, "cancel")]
    finally:
        listener.close()


def test_listeners_of_one_process_share_one_listen_connection(
    url: str, store: PostgresStore
) -> None:
    elsewhere = PostgresStore(url)
    first, second = store.notifier.listen(), elsewhere.notifier.listen()
    try:
        assert first.backend_pid is not None
        assert first.backend_pid == second.backend_pid
        store.enqueue([new_job()])
        send_marker(store)

        assert events_until_marker(first) == [(NS, "jobs")]
        assert events_until_marker(second) == [(NS, "jobs")]
    finally:
        first.close()
        second.close()
        elsewhere.close()


def test_a_listener_whose_connection_is_killed_listens_again(
    store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    listener = store.notifier.listen()
    try:
        killed = listener.backend_pid
        assert killed is not None

        terminate(admin, {killed})
        wait_for(lambda: listener.backend_pid not in (None, killed), what="a new LISTEN")
        store.enqueue([new_job()])
        send_marker(store)

        assert listener.reconnects == 1
        assert events_until_marker(listener) == [(NS, "jobs")]
    finally:
        listener.close()


def test_the_last_listener_out_closes_the_listen_connection(
    store: PostgresStore, url: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    application_name = url.rsplit("application_name=", 1)[1]
    first, second = store.notifier.listen(), store.notifier.listen()
    assert sessions_of(admin, f"{application_name}:listen") == {first.backend_pid}

    first.close()
    assert sessions_of(admin, f"{application_name}:listen") == {second.backend_pid}
    second.close()

    wait_for(lambda: not sessions_of(admin, f"{application_name}:listen"),
             what="the LISTEN session to end")
