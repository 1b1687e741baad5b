"""Pauses and queues' maximum depths on every store: a paused queue's or task's jobs are
never claimed, wait in their place whoever makes them ready (enqueue, promotion, retry,
rescue, replay), and are claimable again, in dispatch order, when it resumes; an enqueue
past a queue's maximum depth raises QueueFull and writes nothing, the whole batch."""

from __future__ import annotations

from datetime import datetime

import pytest

from taskwheel.client import Client
from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, NotPaused, QueueFull, QueueLimitNotFound
from taskwheel.events import Event, EventKind
from taskwheel.gates import GateKind, QueueLimit
from taskwheel.jobs import JobFilter, epoch_datetime
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store
from taskwheel.validators import ALL_NAMESPACES

from .conftest import NS, OTHER_NS, QUEUE, T0, TTL, claim_one, enqueue_one, failed, new_job


def claimable(store: Store, queues: tuple[str, ...] = (QUEUE, "other"), *,
              namespace: str = NS) -> list[int]:
    """The ids a worker of ``queues`` claims now, in the order it gets them."""
    return [job.id for job in store.claim_jobs(namespace, "w9", list(queues), 100, TTL).jobs]


def test_a_paused_queue_is_never_claimed_and_its_jobs_wait_in_order(store: Store) -> None:
    before = [enqueue_one(store, new_job(priority=p)).id for p in (1, 5)]
    elsewhere = enqueue_one(store, new_job(queue="other")).id
    pause = store.pause(NS, GateKind.QUEUE, QUEUE)
    assert (pause.kind, pause.name, pause.held, pause.paused_at.timestamp()) == (
        GateKind.QUEUE, QUEUE, 2, T0)
    after = enqueue_one(store, new_job(priority=9)).id
    assert claimable(store) == [elsewhere]
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs == []
    assert [p.held for p in store.list_pauses(NS)] == [3]
    assert {job.status for job in store.get_jobs(NS, [*before, after])} == {JobStatus.QUEUED}

    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 3
    assert store.list_pauses(NS) == []
    assert claimable(store) == [after, before[1], before[0]]  # priority order, as ever


def test_jobs_that_become_ready_behind_a_pause_are_held(
    store: Store, clock: ManualClock
) -> None:
    delayed = enqueue_one(store, new_job(delay=10)).id
    store.enqueue([new_job(), new_job()])
    retried = claim_one(store)  # running when the queue is paused: it finishes its attempt
    rescued = claim_one(store, "w2")  # and this one's worker dies
    store.pause(NS, GateKind.QUEUE, QUEUE)
    assert store.finish_attempts([failed(retried, JobStatus.QUEUED)]) == []
    clock.advance(TTL + 11)  # the delayed job is due, the other lease expired
    assert store.rescue_expired_leases(NS).requeued == [rescued.id]
    assert store.promote_due_jobs(NS)[0] == 1
    assert claimable(store) == []
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 3
    assert sorted(claimable(store)) == sorted([delayed, retried.id, rescued.id])


def test_a_finished_job_queued_again_behind_a_pause_is_held(store: Store) -> None:
    job = enqueue_one(store)
    store.pause(NS, GateKind.QUEUE, QUEUE)
    store.cancel_job(NS, job.id)
    assert store.retry_job(NS, job.id).status is JobStatus.QUEUED
    assert claimable(store) == []
    store.resume(NS, GateKind.QUEUE, QUEUE)
    assert claimable(store) == [job.id]


def test_a_job_cancelled_behind_a_pause_and_retried_after_every_pause_ended_is_claimable(
    store: Store,
) -> None:
    job = enqueue_one(store)
    store.pause(NS, GateKind.QUEUE, QUEUE)  # holds the job: blocked
    store.cancel_job(NS, job.id)
    store.resume(NS, GateKind.QUEUE, QUEUE)  # the last pause: nothing holds anything now
    assert store.retry_job(NS, job.id).status is JobStatus.QUEUED
    assert claimable(store) == [job.id]


def test_a_paused_task_is_held_in_every_queue(store: Store) -> None:
    held = [enqueue_one(store, new_job("contract.slow", queue=q)).id for q in (QUEUE, "other")]
    free = enqueue_one(store).id
    store.pause(NS, GateKind.TASK, "contract.slow")
    enqueue_one(store, new_job("contract.slow"))
    assert claimable(store) == [free]
    assert store.resume(NS, GateKind.TASK, "contract.slow") == 3
    assert set(claimable(store)) > set(held)


def test_a_job_two_pauses_hold_waits_for_both(store: Store) -> None:
    job = enqueue_one(store, new_job("contract.slow"))
    store.pause(NS, GateKind.QUEUE, QUEUE)
    store.pause(NS, GateKind.TASK, "contract.slow")
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 0
    assert claimable(store) == []
    assert store.resume(NS, GateKind.TASK, "contract.slow") == 1
    assert claimable(store) == [job.id]


def test_pausing_twice_keeps_the_first_pause_and_resuming_twice_is_refused(
    store: Store, clock: ManualClock
) -> None:
    store.pause(NS, GateKind.QUEUE, QUEUE)
    clock.advance(5)
    again = store.pause(NS, GateKind.QUEUE, QUEUE)
    assert again.paused_at.timestamp() == T0
    store.resume(NS, GateKind.QUEUE, QUEUE)
    with pytest.raises(NotPaused, match="queue 'default' is not paused"):
        store.resume(NS, GateKind.QUEUE, QUEUE)
    with pytest.raises(NotPaused):
        store.resume(NS, GateKind.TASK, "contract.never")


def test_a_pause_holds_its_own_namespace_only(store: Store) -> None:
    store.pause(OTHER_NS, GateKind.QUEUE, QUEUE)
    job = enqueue_one(store)
    assert store.list_pauses(NS) == []
    assert claimable(store) == [job.id]
    with pytest.raises(NotPaused):
        store.resume(NS, GateKind.QUEUE, QUEUE)


def test_a_bad_name_is_refused_and_nothing_is_paused(store: Store) -> None:
    for bad in ("", "with space", "x" * 201):
        with pytest.raises(InvalidInput):
            store.pause(NS, GateKind.QUEUE, bad)
    assert store.list_pauses(NS) == []


# -- maximum depth -----------------------------------------------------------------------


def test_an_enqueue_past_a_queue_s_max_depth_raises_and_writes_nothing(store: Store) -> None:
    limit = store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=3))
    assert (limit.max_depth, limit.depth) == (3, 0)
    enqueue_one(store)
    enqueue_one(store, new_job(delay=60))  # waiting to run, later: it counts
    with pytest.raises(QueueFull) as refused:
        store.enqueue([new_job(), new_job(queue="other"), new_job()])  # all or nothing
    assert (refused.value.queue, refused.value.max_depth, refused.value.depth) == (QUEUE, 3, 2)
    assert "is full: 2 jobs waiting to run, 2 more would pass its maximum depth of 3" in str(
        refused.value)
    assert len(store.list_jobs(NS, JobFilter())) == 2
    enqueue_one(store)  # the third fits
    with pytest.raises(QueueFull):
        enqueue_one(store)
    assert len(store.enqueue([new_job(queue="other") for _ in range(10)])) == 10
    assert len(store.enqueue([new_job(namespace=OTHER_NS) for _ in range(10)])) == 10


def test_a_running_job_leaves_room_in_its_queue(store: Store) -> None:
    store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=1))
    enqueue_one(store)
    claim_one(store)
    enqueue_one(store)
    [listed] = store.list_queue_limits(NS)
    assert (listed.queue, listed.max_depth, listed.depth) == (QUEUE, 1, 1)


def test_a_max_depth_can_be_changed_and_removed(store: Store) -> None:
    store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=1))
    enqueue_one(store)
    store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=2))
    enqueue_one(store)
    store.remove_queue_limit(NS, QUEUE)
    assert store.list_queue_limits(NS) == []
    assert len(store.enqueue([new_job() for _ in range(5)])) == 5
    with pytest.raises(QueueLimitNotFound, match="queue 'default' has no maximum depth"):
        store.remove_queue_limit(NS, QUEUE)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10", 2**31])
def test_a_bad_max_depth_is_refused_and_nothing_is_written(store: Store, bad: object) -> None:
    with pytest.raises(InvalidInput, match="max_depth"):
        store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=bad))  # type: ignore[arg-type]
    assert store.list_queue_limits(NS) == []


def test_an_enqueue_may_wait_for_room_in_a_full_queue(store: Store, clock: ManualClock) -> None:
    store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=1))
    first = enqueue_one(store)
    waits: list[float] = []

    def a_worker_takes_the_job(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
        if len(waits) == 3:
            assert claim_one(store).id == first.id

    client = Client(store, NS, sleep=a_worker_takes_the_job)
    [handle] = client.enqueue_many([new_job()], wait=10)
    assert handle.id != first.id
    assert len(waits) == 3


def test_an_enqueue_that_waits_in_vain_raises_after_its_wait(
    store: Store, clock: ManualClock
) -> None:
    store.set_queue_limit(QueueLimit(NS, QUEUE, max_depth=1))
    enqueue_one(store)
    client = Client(store, NS, sleep=clock.advance)
    with pytest.raises(QueueFull):
        client.enqueue_many([new_job()], wait=2)
    assert clock.now() == T0 + 2
    with pytest.raises(InvalidInput, match="wait"):
        client.enqueue_many([new_job()], wait=-1)
    assert len(store.list_jobs(NS, JobFilter())) == 1


def test_a_pause_keeps_holding_new_jobs_after_another_pause_ends_and_after_a_new_pause(
    store: Store, clock: ManualClock
) -> None:
    store.pause(NS, GateKind.QUEUE, QUEUE)
    store.pause(OTHER_NS, GateKind.QUEUE, QUEUE)
    store.resume(OTHER_NS, GateKind.QUEUE, QUEUE)
    held = enqueue_one(store).id
    delayed = enqueue_one(store, new_job(delay=5)).id
    clock.advance(5)
    assert claimable(store) == []
    store.resume(NS, GateKind.QUEUE, QUEUE)  # the last pause: nothing is held any more
    store.pause(NS, GateKind.QUEUE, QUEUE)  # and a new one holds what comes
    store.enqueue([new_job()])
    assert claimable(store) == []
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 3
    assert set(claimable(store)) > {held, delayed}


def test_pausing_and_resuming_are_events(store: Store) -> None:
    seen: list[Event] = []
    store.events.attach(seen.append, [EventKind.GATE_CLOSED, EventKind.GATE_OPENED])
    enqueue_one(store)
    store.pause(NS, GateKind.QUEUE, QUEUE)
    store.pause(NS, GateKind.QUEUE, QUEUE)  # paused already: nothing happened
    store.resume(NS, GateKind.QUEUE, QUEUE)
    assert [(e.kind, e.namespace, e.queue, e.metadata["kind"], e.at) for e in seen] == [
        (EventKind.GATE_CLOSED, NS, QUEUE, "queue", T0),
        (EventKind.GATE_OPENED, NS, QUEUE, "queue", T0)]
    assert (seen[0].measurements["held"], seen[1].measurements["released"]) == (1, 1)


# -- pauses with an end -----------------------------------------------------------------


def test_a_pause_with_an_end_is_resumed_when_its_time_has_come(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store).id
    pause = store.pause(NS, GateKind.QUEUE, QUEUE, until=T0 + 60)
    assert pause.until == epoch_datetime(T0 + 60)
    store.pause(OTHER_NS, GateKind.TASK, "contract.slow", until=T0 + 90)
    clock.advance(59)
    assert store.resume_due_pauses(NS) == 0
    assert claimable(store) == []
    clock.advance(1)
    assert store.resume_due_pauses(ALL_NAMESPACES) == 1  # every namespace's, when due
    assert store.list_pauses(NS) == []
    assert claimable(store) == [job]
    assert [p.name for p in store.list_pauses(OTHER_NS)] == ["contract.slow"]


def test_pausing_again_gives_a_pause_its_new_end_or_none(
    store: Store, clock: ManualClock
) -> None:
    store.pause(NS, GateKind.QUEUE, QUEUE, until=T0 + 10)
    assert store.pause(NS, GateKind.QUEUE, QUEUE, until=T0 + 20).until == store.list_pauses(
        NS)[0].until
    assert store.pause(NS, GateKind.QUEUE, QUEUE).until is None
    clock.advance(30)
    assert store.resume_due_pauses(NS) == 0
    assert len(store.list_pauses(NS)) == 1


def test_a_pause_that_would_end_in_the_past_is_refused_and_nothing_is_written(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store).id
    for until in (T0, T0 - 1):
        with pytest.raises(InvalidInput, match="until"):
            store.pause(NS, GateKind.QUEUE, QUEUE, until=until)
    assert store.list_pauses(NS) == []
    assert claimable(store) == [job]


def test_a_client_pauses_for_a_duration_by_the_store_s_clock(
    store: Store, clock: ManualClock
) -> None:
    client = Client(store, NS)
    assert client.pause_queue(QUEUE, duration="10m").until == epoch_datetime(T0 + 600)
    for bad in ({"duration": "0s"}, {"duration": "soon"},
                {"until": datetime(2100, 1, 1)},  # no timezone
                {"until": epoch_datetime(T0 + 60), "duration": "1m"}):
        with pytest.raises(InvalidInput):
            client.pause_task("contract.slow", **bad)  # type: ignore[arg-type]
    assert [p.name for p in client.pauses()] == [QUEUE]


def test_an_end_no_date_can_hold_is_refused_naming_until_and_nothing_changes(
    store: Store,
) -> None:
    # In UTC the first instant of the year 1 at +14:00 falls in the year 0 (found by the
    # command line's property test: `breakers open KEY --until 0001-01-01T00:00:00+14:00`).
    client = Client(store, NS)
    before = datetime.fromisoformat("0001-01-01T00:00:00+14:00")
    for pause in (lambda: client.pause_queue(QUEUE, until=before),
                  lambda: client.pause_task("contract.slow", until=before),
                  lambda: client.pause_key("tenant:1", until=before),
                  lambda: client.open_breaker("tenant:1", until=before)):
        with pytest.raises(InvalidInput, match="out of range") as refused:
            pause()
        assert refused.value.field == "until"
    assert client.pauses() == []
    assert client.limits() == []
