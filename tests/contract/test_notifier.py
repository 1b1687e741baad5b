"""The notifier contract: the wake-ups every store's ``store.notifier`` delivers, whatever
carries them (datagrams between the processes of one host for SQLite, LISTEN/NOTIFY for
PostgreSQL). Modelled on River's ``exerciseListener``.

What both promise:

- ``notify(namespace, event)`` reaches, as the pair ``(namespace, event)``, every listener
  of the same database that was listening when it was sent: in this process or another,
  through this store object or another; never a listener of another database.
- It is sent at once (for PostgreSQL outside any transaction: the pool's connections
  autocommit), and notifications from one sender arrive in the order they were sent.
- It is not kept for later: a listener does not receive what was sent before it listened
  (a notification is a hint to look at the database, which holds the state).
- ``fileno()`` becomes readable when notifications are pending and stays the same
  descriptor for the listener's life; ``read()`` drains them and never blocks; once
  drained the descriptor is quiet again.
- ``close()`` stops the deliveries to that listener, and closing twice is harmless.

Tests wait by ``select`` on ``fileno()`` (it is part of the contract), and show that
nothing else arrived with a marker: a notification sent last, once it is in, everything
sent before it is in too.
"""

from __future__ import annotations

import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.gates import GateKind
from taskwheel.jobs import Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.notify import CLAIMING, EVERY, SCHEDULING, UNFINISHED, due_event
from taskwheel.schedules import JobTemplate
from taskwheel.stores.base import Store
from taskwheel.workflows import FailurePolicy, StepSpec, WorkflowSpec
from waiting import Listener, notifications_until

from .backends import DATABASE_URLS, BackendFactory
from .conftest import NS, OTHER_NS, QUEUE, TTL, claim_one, enqueue_one, failed, new_job, succeeded

MARKER = ("marker", "jobs")  # sent last: once it is in, what was sent before it is in too
EVENTS = ("jobs", "cancel", "schedules", "due")
WAIT = 10.0  # seconds a notification may take to arrive, at most


@pytest.fixture
def listeners() -> Iterator[ExitStack]:
    """Closes the listeners a test opens, whatever happens to it."""
    with ExitStack() as stack:
        yield stack


def listen(
    store: Store, listeners: ExitStack, *, hears: frozenset[str] = UNFINISHED
) -> Listener:
    listener = store.notifier.listen(hears=hears)
    assert listener is not None, "a store on a database file or server can deliver wake-ups"
    listeners.callback(listener.close)
    return listener


def readable(listener: Listener, timeout: float = WAIT) -> bool:
    return bool(select.select([listener.fileno()], [], [], timeout)[0])


def events_until_marker(listener: Listener) -> list[tuple[str, str]]:
    return notifications_until(listener, MARKER, timeout=WAIT)


def send_marker(store: Store) -> None:
    store.notifier.notify(*MARKER)


def elsewhere(
    open_backend: BackendFactory, tmp_path: Path, clock: ManualClock, name: str
) -> Store:
    """A store on the database the backend opens for another directory."""
    directory = tmp_path / name
    directory.mkdir()
    store = open_backend(directory, clock)
    store.migrate()
    return store


def test_a_notification_reaches_a_listener_with_its_namespace_and_event(
    store: Store, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)
    descriptor = listener.fileno()

    store.notifier.notify(NS, "jobs")

    assert readable(listener)
    assert listener.read() == [(NS, "jobs")]
    assert listener.fileno() == descriptor


def test_notifications_arrive_in_the_order_they_were_sent(
    store: Store, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)
    sent = [(f"{NS}-{n}", event) for n in range(2) for event in EVENTS]

    for namespace, event in sent:
        store.notifier.notify(namespace, event)
    send_marker(store)

    assert events_until_marker(listener) == sent


def test_a_burst_reaches_a_listener_that_was_not_reading_whole(
    store: Store, listeners: ExitStack
) -> None:
    """Every distinct notification of a burst arrives (a wake-up is a hint: one that
    repeats a notification still pending may be folded into it), the first ones in the
    order they were sent, whatever the namespace or event behind a long run of others."""
    listener = listen(store, listeners)
    sent = [(f"{NS}-{n % 7}", EVENTS[n % len(EVENTS)]) for n in range(1000)]
    sent.append((f"{NS}-late", "cancel"))  # behind a thousand others

    for namespace, event in sent:
        store.notifier.notify(namespace, event)
    send_marker(store)

    received = events_until_marker(listener)
    assert set(received) == set(sent)
    assert received[:10] == sent[:10]


def test_finished_reaches_watchers_only_and_wakes_no_one_else(
    store: Store, listeners: ExitStack
) -> None:
    """Workers and schedulers do nothing when jobs end: every worker announces each
    batch of outcomes, so with many workers each would wake for all of them. Only a
    listener opened to hear it (``jobs tail``, the dashboard) hears it; the others are
    not even woken."""
    claimer, watcher = listen(store, listeners), listen(store, listeners, hears=EVERY)

    store.notifier.notify(NS, "finished")
    store.notifier.notify(NS, "finished")  # a second batch

    notifications_until(watcher, (NS, "finished"), timeout=WAIT)  # the watcher hears it
    assert not readable(claimer, timeout=0.2)  # no wake-up for what it would ignore
    store.notifier.notify(NS, "jobs")
    send_marker(store)
    assert events_until_marker(claimer) == [(NS, "jobs")]
    assert (NS, "jobs") in events_until_marker(watcher)


def test_a_listener_is_woken_only_by_the_kinds_it_hears(
    store: Store, listeners: ExitStack
) -> None:
    """A scheduler is not woken by the jobs it fires itself (one "jobs" per fire), nor
    a worker by schedule changes: each hears its kinds and is not even woken for the
    others; a due event is of the kind "due" whatever time it carries."""
    worker = listen(store, listeners, hears=CLAIMING)
    scheduler = listen(store, listeners, hears=SCHEDULING)
    due = due_event(1_700_000_000.25)

    store.notifier.notify(NS, "jobs")
    store.notifier.notify(NS, "cancel")
    assert not readable(scheduler, timeout=0.2)
    store.notifier.notify(NS, "schedules")
    store.notifier.notify(NS, due)

    assert notifications_until(scheduler, (NS, due), timeout=WAIT) == [(NS, "schedules")]
    assert notifications_until(worker, (NS, due), timeout=WAIT) == [
        (NS, "jobs"), (NS, "cancel")]


def test_a_listener_of_an_unknown_kind_is_refused_naming_it(store: Store) -> None:
    with pytest.raises(ValueError, match="hears: no such kind of notification 'job'"):
        store.notifier.listen(hears=frozenset({"job"}))


def test_a_second_burst_arrives_whole_after_the_first_was_read(
    store: Store, listeners: ExitStack
) -> None:
    """What a full queue kept and the listener read leaves nothing to read again, and
    the next burst's overflow is found as the first one's was."""
    listener = listen(store, listeners)
    for burst in ("first", "second"):
        sent = [(f"{NS}-{burst}-{n % 7}", EVENTS[n % len(EVENTS)]) for n in range(500)]
        sent.append((f"{NS}-{burst}-late", "cancel"))
        for namespace, event in sent:
            store.notifier.notify(namespace, event)
        send_marker(store)
        assert set(events_until_marker(listener)) == set(sent)


def test_every_listener_of_the_database_receives_a_notification_and_no_other_database_does(
    store: Store,
    open_backend: BackendFactory,
    tmp_path: Path,
    clock: ManualClock,
    listeners: ExitStack,
) -> None:
    # Three store objects on one database, as three processes would have; and a fourth
    # on another database (another file; another schema).
    second = open_backend(tmp_path, clock)
    sender = open_backend(tmp_path, clock)
    other = elsewhere(open_backend, tmp_path, clock, "other")
    for opened in (second, sender, other):
        listeners.callback(opened.close)
    first, also = listen(store, listeners), listen(second, listeners)
    outside = listen(other, listeners)

    sender.notifier.notify("default", "jobs")

    for listener in (first, also):
        assert readable(listener)
        assert listener.read() == [("default", "jobs")]
    assert outside.read() == []
    send_marker(other)
    assert events_until_marker(outside) == []


def test_a_notification_from_another_process_is_received(
    store: Store, backend: str, tmp_path: Path, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)
    sender = (
        "import sys\n"
        "from taskwheel.stores import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "try:\n"
        "    store.notifier.notify(sys.argv[2], sys.argv[3])\n"
        "finally:\n"
        "    store.close()\n"
    )

    subprocess.run(
        [sys.executable, "-c", sender, DATABASE_URLS[backend](tmp_path), NS, "cancel"],
        check=True, timeout=60,
    )
    send_marker(store)

    assert events_until_marker(listener) == [(NS, "cancel")]


def test_a_notification_sent_before_listening_is_not_delivered_later(
    store: Store, listeners: ExitStack
) -> None:
    store.notifier.notify(NS, "jobs")  # nobody listens: dropped, without an error

    listener = listen(store, listeners)
    send_marker(store)

    assert events_until_marker(listener) == []


def test_a_closed_listener_is_no_longer_delivered_to_and_closing_it_again_is_harmless(
    store: Store, listeners: ExitStack
) -> None:
    closed, kept = listen(store, listeners), listen(store, listeners)

    closed.close()
    store.notifier.notify(NS, "jobs")
    closed.close()
    send_marker(store)

    assert events_until_marker(kept) == [(NS, "jobs")]


def test_reading_a_closed_listener_returns_nothing(
    store: Store, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)
    store.notifier.notify(NS, "jobs")
    assert readable(listener)

    listener.close()

    assert listener.read() == []


def test_read_never_blocks_and_a_drained_listener_is_quiet(
    store: Store, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)
    results: list[list[tuple[str, str]]] = []
    reader = threading.Thread(target=lambda: results.append(listener.read()), daemon=True)

    reader.start()
    reader.join(WAIT)

    assert not reader.is_alive(), "read() blocked with nothing pending"
    assert results == [[]]
    store.notifier.notify(NS, "jobs")
    assert readable(listener)
    assert listener.read() == [(NS, "jobs")]
    assert listener.read() == []
    assert not readable(listener, 0), "the descriptor stays readable once drained"


# The longest name a namespace may have, made of every character one may hold besides
# letters and digits (`taskwheel.tasks.validate_name`), and names that look like events.
UNUSUAL_NAMESPACES = [
    ("Ab0_.:-/" * 25)[:200],
    "x",
    "jobs",
    "default:cancel",
    "a/b/../c",
    "::",
]


@pytest.mark.parametrize("namespace", UNUSUAL_NAMESPACES, ids=range(len(UNUSUAL_NAMESPACES)))
def test_an_unusual_namespace_survives_the_trip(
    store: Store, listeners: ExitStack, namespace: str
) -> None:
    listener = listen(store, listeners)

    for event in EVENTS:
        store.notifier.notify(namespace, event)
    send_marker(store)

    assert events_until_marker(listener) == [(namespace, event) for event in EVENTS]


# -- the wake-ups the store's own operations send -------------------------------------------


def test_an_enqueue_of_ready_jobs_wakes_listeners_with_jobs(
    store: Store, listeners: ExitStack
) -> None:
    listener = listen(store, listeners)

    store.enqueue([new_job(), new_job(namespace=OTHER_NS)])
    send_marker(store)

    events = events_until_marker(listener)
    assert set(events) == {(NS, "jobs"), (OTHER_NS, "jobs")}


def test_resuming_a_queue_wakes_listeners_with_jobs_once_its_jobs_are_claimable(
    store: Store, listeners: ExitStack
) -> None:
    """The jobs a resume releases stay queued: no status change wakes anyone but the
    resume itself. A resume that releases nothing wakes nobody."""
    store.pause(NS, GateKind.QUEUE, "empty")
    store.pause(NS, GateKind.QUEUE, QUEUE)
    enqueue_one(store)
    listener = listen(store, listeners)

    store.resume(NS, GateKind.QUEUE, "empty")
    store.resume(NS, GateKind.QUEUE, QUEUE)
    send_marker(store)

    assert events_until_marker(listener) == [(NS, "jobs")]


def test_a_cancel_request_for_a_running_job_wakes_listeners_with_cancel(
    store: Store, listeners: ExitStack
) -> None:
    job = enqueue_one(store)
    claim_one(store)
    listener = listen(store, listeners)

    store.cancel_job(NS, job.id)
    send_marker(store)

    assert events_until_marker(listener) == [(NS, "cancel")]


def test_a_fail_fast_failure_wakes_the_workers_running_the_runs_other_steps(
    store: Store, listeners: ExitStack
) -> None:
    steps = tuple(
        StepSpec(
            name=name,
            job=JobTemplate(
                task=f"contract.{name}", args_json="[]", kwargs_json="{}", queue=QUEUE,
                priority=0, max_attempts=1, guarantee="at_least_once",
                deadline_policy="expire", timeout=None, deadline_in=None,
            ),
            after=(),
            on_failure=FailurePolicy.FAIL_FAST,
        )
        for name in ("fails", "runs")
    )
    store.submit_workflow(WorkflowSpec("wf", NS, FailurePolicy.FAIL_FAST, steps))
    claimed = {job.step: job for job in store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs}
    listener = listen(store, listeners)

    store.finish_attempts([failed(claimed["fails"], JobStatus.DEAD)])
    send_marker(store)

    runs = claimed["runs"]
    assert store.heartbeat("w1", TTL, {runs.id: runs.fence}) == {runs.id: True}  # asked to stop
    assert (NS, "cancel") in events_until_marker(listener)


@pytest.mark.parametrize("alone", [False, True], ids=["whole-way", "ends-alone"])
def test_jobs_that_end_wake_watchers_with_finished_once_per_batch_and_namespace(
    store: Store, listeners: ExitStack, alone: bool
) -> None:
    """What ``taskwheel jobs tail`` follows. A failure that waits for its retry has not
    ended: it announces nothing. The same whether the outcomes take the whole way or,
    marked `Outcome.ends_alone`, the report in one statement (PostgreSQL's sends the
    wake-up itself)."""
    first, second, retried = enqueue_one(store), enqueue_one(store), enqueue_one(store)
    other = enqueue_one(store, new_job(namespace=OTHER_NS))
    claimed = {job.id: job for job in store.claim_jobs(NS, "w1", [QUEUE], 3, TTL).jobs}
    elsewhere_job = claim_one(store, namespace=OTHER_NS)
    listener = listen(store, listeners, hears=EVERY)

    def report(*outcomes: Outcome) -> None:
        assert store.finish_attempts([replace(o, ends_alone=alone) for o in outcomes]) == []

    report(failed(claimed[retried.id], JobStatus.SCHEDULED, retry_delay=60))
    send_marker(store)
    assert events_until_marker(listener) == []

    report(succeeded(claimed[first.id]), failed(claimed[second.id], JobStatus.DEAD),
           succeeded(elsewhere_job))
    send_marker(store)
    assert sorted(events_until_marker(listener)) == [(NS, "finished"), (OTHER_NS, "finished")]
    assert other.id == elsewhere_job.id
