"""Key gates on every store: at most ``capacity`` jobs of a key hold a slot (ready or
running) whoever makes them ready; a freed slot (success, failure, retry, cancel,
expiry, a dead worker, a pause) goes to the first waiting job in dispatch order, once,
however often a stale report repeats; a key's limit changes at run time; a paused key
admits nothing until resumed (by hand or at its time); bad input writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, LimitNotFound, NotPaused
from taskwheel.events import Event, EventKind
from taskwheel.gates import GateKind
from taskwheel.jobs import Job, NewJob, epoch_datetime
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import NS, OTHER_NS, QUEUE, T0, TTL, enqueue_one, failed, new_job, succeeded

KEY = "tenant:42"


def keyed(key: str = KEY, capacity: int = 2, **options: object) -> NewJob:
    return replace(new_job(**options), gate_key=key, gate_capacity=capacity)  # type: ignore[arg-type]


def claim(store: Store, worker: str = "w1", limit: int = 100) -> list[Job]:
    return store.claim_jobs(NS, worker, [QUEUE, "other"], limit, TTL).jobs


def holding(store: Store, key: str = KEY) -> tuple[int, int]:
    limit = store.get_limit(NS, key)
    return limit.in_use, limit.waiting


def test_no_more_than_capacity_jobs_of_a_key_are_claimable(store: Store) -> None:
    jobs = store.enqueue([keyed(priority=p) for p in (1, 2, 3, 4)])
    free = enqueue_one(store, new_job())
    other = enqueue_one(store, keyed("tenant:7"))
    assert holding(store) == (2, 2)
    claimed = claim(store)
    # The first two in dispatch order took the slots when they were enqueued.
    assert {job.id for job in claimed} == {jobs[0].id, jobs[1].id, free.id, other.id}
    assert claim(store, "w2") == []
    limit = store.get_limit(NS, KEY)
    assert (limit.capacity, limit.in_use, limit.waiting, limit.set_by_hand) == (2, 2, 2, False)


def test_a_freed_slot_goes_to_the_first_waiting_job_in_dispatch_order(store: Store) -> None:
    first, second = store.enqueue([keyed(), keyed()])
    waiting = store.enqueue([keyed(priority=1), keyed(priority=5)])
    running = claim(store)
    assert store.finish_attempts([succeeded(running[0])]) == []
    assert [job.id for job in claim(store)] == [waiting[1].id]  # priority 5 first
    assert holding(store) == (2, 1)
    del first, second


def test_a_keyed_job_reported_as_ending_alone_still_gives_its_slot_on(store: Store) -> None:
    """A report hinted to move nothing else (`Outcome.ends_alone`) of a job that holds a
    slot is applied the whole way: the slot goes to the next waiting job."""
    store.enqueue([keyed(), keyed()])
    waiting = enqueue_one(store, keyed())
    running = claim(store)
    assert store.finish_attempts([replace(succeeded(running[0]), ends_alone=True)]) == []
    assert store.get_job(NS, running[0].id).status is JobStatus.SUCCEEDED
    assert [job.id for job in claim(store)] == [waiting.id]
    assert holding(store) == (2, 0)


def test_one_report_that_frees_many_slots_admits_each_key_up_to_its_limit(
    store: Store,
) -> None:
    # Two keys of two slots and one of three, each with jobs waiting: one report ends
    # four running jobs (both of one key) and queues a fifth again at once, which keeps
    # its slot.
    a1, a2, b1, b2, c1, _ = store.enqueue([keyed("a", 2), keyed("a", 2), keyed("b", 2),
                                           keyed("b", 2), keyed("c", 3), keyed("c", 3)])
    waiting = {key: store.enqueue([keyed(key, 3 if key == "c" else 2) for _ in range(3)])
               for key in ("a", "b", "c")}
    running = {job.id: job for job in claim(store)}
    assert [holding(store, key) for key in "abc"] == [(2, 3), (2, 3), (3, 2)]
    retried = running[b2.id]
    ended = [succeeded(running[job.id]) for job in (a1, a2, b1, c1)]
    assert store.finish_attempts([*ended, failed(retried, JobStatus.QUEUED)]) == []
    # Each key admitted as many as it freed, the first waiting in dispatch order.
    assert [holding(store, key) for key in "abc"] == [(2, 1), (2, 2), (3, 1)]
    admitted = {job.id for job in claim(store, "w2")}
    assert admitted == {waiting["a"][0].id, waiting["a"][1].id, waiting["b"][0].id,
                        waiting["c"][1].id, retried.id}  # c's first ran already


def test_slots_freed_after_a_report_are_given_back_row_by_row_again(store: Store) -> None:
    # A report's slots go back after its statement; a cancel after it (on the same
    # connection, most likely) still gives its slot to the next waiting job at once.
    first, second, third = store.enqueue([keyed(capacity=1) for _ in range(3)])
    [running] = claim(store)
    assert running.id == first.id
    store.finish_attempts([succeeded(running)])
    assert holding(store) == (1, 1)  # the second admitted, the third waits
    store.cancel_job(NS, second.id)
    assert holding(store) == (1, 0)
    assert [job.id for job in claim(store)] == [third.id]


@pytest.mark.parametrize("then", [JobStatus.SCHEDULED, JobStatus.DEAD])
def test_a_failure_frees_the_slot_and_a_retry_waits_for_one_again(
    store: Store, clock: ManualClock, then: JobStatus
) -> None:
    store.enqueue([keyed(capacity=1), keyed(capacity=1)])
    [job] = claim(store)
    assert store.finish_attempts([failed(job, then, retry_delay=5)]) == []
    [nxt] = claim(store)
    assert nxt.id != job.id
    if then is JobStatus.SCHEDULED:
        clock.advance(6)
        assert claim(store) == []  # promoted, but the slot is taken: it waits
        assert holding(store) == (1, 1)
        store.finish_attempts([succeeded(nxt)])
        assert [j.id for j in claim(store)] == [job.id]


def test_a_retry_queued_at_once_keeps_its_slot(store: Store) -> None:
    store.enqueue([keyed(capacity=1), keyed(capacity=1)])
    [job] = claim(store)
    store.finish_attempts([failed(job, JobStatus.QUEUED)])
    assert holding(store) == (1, 1)
    assert len(claim(store)) == 1


def test_a_stale_report_frees_nothing(store: Store, clock: ManualClock) -> None:
    store.enqueue([keyed(capacity=1) for _ in range(3)])
    [job] = claim(store)
    clock.advance(TTL + 1)
    assert store.rescue_expired_leases(NS).requeued == [job.id]  # keeps its slot
    assert holding(store) == (1, 2)
    [again] = claim(store, "w2")
    assert again.id == job.id
    # The first worker, presumed dead, reports twice with its old fence: refused.
    assert store.finish_attempts([succeeded(job)]) == [job.id]
    assert store.finish_attempts([succeeded(job)]) == [job.id]
    assert holding(store) == (1, 2)
    assert claim(store, "w3") == []
    assert store.finish_attempts([succeeded(again)]) == []
    assert holding(store) == (1, 1)


def test_a_dead_workers_job_holds_its_slot_until_its_attempt_ends(store: Store) -> None:
    first, second = store.enqueue([keyed(capacity=1), keyed(capacity=1)])
    [job] = claim(store)
    assert claim(store, "w2") == []
    [ended] = store.end_attempts_of_dead_worker("w1", "killed")
    assert ended.status is JobStatus.SCHEDULED  # backs off before its retry
    assert [j.id for j in claim(store, "w2")] == [second.id]
    assert holding(store) == (1, 0)
    del first, job


def test_cancel_and_expiry_free_slots(store: Store, clock: ManualClock) -> None:
    first = enqueue_one(store, keyed(capacity=1, deadline=T0 + 10))
    second = enqueue_one(store, keyed(capacity=1))
    third = enqueue_one(store, keyed(capacity=1))
    clock.advance(11)  # the first job's deadline passes before it starts
    assert store.expire_missed_deadlines(NS) == 1
    assert store.get_job(NS, first.id).status is JobStatus.EXPIRED
    assert holding(store) == (1, 1)
    store.cancel_job(NS, second.id)
    assert [job.id for job in claim(store)] == [third.id]


def test_keys_of_other_namespaces_and_jobs_without_keys_are_not_held(store: Store) -> None:
    store.enqueue([keyed(capacity=1), keyed(capacity=1),
                   replace(keyed(capacity=1), namespace=OTHER_NS)])
    assert len(claim(store)) == 1
    assert len(store.claim_jobs(OTHER_NS, "w1", [QUEUE], 10, TTL).jobs) == 1
    assert [limit.key for limit in store.list_limits(OTHER_NS)] == [KEY]


def test_raising_a_limit_admits_waiting_jobs_and_lowering_it_lets_running_ones_finish(
    store: Store
) -> None:
    store.enqueue([keyed(capacity=1) for _ in range(4)])
    assert len(claim(store)) == 1
    raised = store.set_limit(NS, KEY, 3)
    assert (raised.capacity, raised.in_use, raised.waiting, raised.set_by_hand) == (3, 3, 1, True)
    running = claim(store)
    assert len(running) == 2
    # A declaration does not change a limit set by hand.
    store.enqueue([keyed(capacity=1)])
    assert store.get_limit(NS, KEY).capacity == 3
    store.set_limit(NS, KEY, 1)
    store.finish_attempts([succeeded(running[0])])
    assert claim(store) == []  # two still hold slots of one
    assert holding(store) == (2, 2)


def test_a_limit_can_be_set_before_any_job_and_removed(store: Store) -> None:
    assert store.set_limit(NS, "api:x", 1).in_use == 0
    store.enqueue([keyed("api:x", capacity=9) for _ in range(2)])
    assert holding(store, "api:x") == (1, 1)
    assert store.set_limit(NS, "api:x", None).capacity is None
    assert holding(store, "api:x") == (2, 0)


def test_a_resumed_queue_admits_the_waiting_jobs_of_every_key_up_to_its_room(
    store: Store,
) -> None:
    # The keys' jobs wait blocked in the paused queue; one statement admits them all on
    # resume, each key up to its slots, the first in dispatch order.
    store.pause(NS, GateKind.QUEUE, QUEUE)
    jobs = {key: store.enqueue([keyed(key, capacity, priority=p) for p in range(3)])
            for key, capacity in (("a", 1), ("b", 2), ("c", 5))}
    assert [holding(store, key) for key in "abc"] == [(0, 3), (0, 3), (0, 3)]
    assert store.resume(NS, GateKind.QUEUE, QUEUE) == 1 + 2 + 3
    assert [holding(store, key) for key in "abc"] == [(1, 2), (2, 1), (3, 0)]
    assert {job.id for job in claim(store)} == {
        jobs["a"][2].id, jobs["b"][2].id, jobs["b"][1].id, *(job.id for job in jobs["c"])}


def test_a_paused_key_admits_nothing_until_resumed(store: Store) -> None:
    events: list[Event] = []
    store.events.attach(events.append, [EventKind.GATE_CLOSED, EventKind.GATE_OPENED])
    store.enqueue([keyed(capacity=2) for _ in range(3)])
    [running] = claim(store, limit=1)
    paused = store.pause_key(NS, KEY)
    assert paused.paused
    assert (paused.in_use, paused.waiting) == (1, 2)
    assert claim(store) == []
    store.finish_attempts([succeeded(running)])
    store.enqueue([keyed(capacity=2)])
    assert claim(store) == []
    assert store.resume_key(NS, KEY) == 2
    assert len(claim(store)) == 2
    assert [(e.kind, e.metadata) for e in events] == [
        (EventKind.GATE_CLOSED, {"kind": "key", "name": KEY}),
        (EventKind.GATE_OPENED, {"kind": "key", "name": KEY})]
    with pytest.raises(NotPaused, match="key 'tenant:42' is not paused"):
        store.resume_key(NS, KEY)


def test_a_timed_key_pause_ends_at_its_time(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, keyed())
    store.pause_key(NS, KEY, until=T0 + 60)
    assert store.admit_due_keys(NS) == 0
    clock.advance(61)
    assert store.admit_due_keys(NS) == 1
    assert not store.get_limit(NS, KEY).paused
    assert len(claim(store)) == 1


def test_a_key_pause_and_a_queue_pause_both_hold(store: Store) -> None:
    store.enqueue([keyed(capacity=1), keyed(capacity=1, queue="other")])
    store.pause(NS, GateKind.QUEUE, QUEUE)  # the first job's slot is given to the second
    assert [job.queue for job in claim(store)] == ["other"]
    store.resume(NS, GateKind.QUEUE, QUEUE)
    assert claim(store) == []  # resumed, but its key's one slot is taken
    assert holding(store) == (1, 1)


def test_unknown_keys_and_bad_values_are_refused_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(LimitNotFound, match="key 'nope'"):
        store.get_limit(NS, "nope")
    with pytest.raises(LimitNotFound):
        store.pause_key(NS, "nope")
    with pytest.raises(LimitNotFound):
        store.resume_key(NS, "nope")
    for bad in (0, -1, 2**31, True, "3"):
        with pytest.raises(InvalidInput, match="limit"):
            store.set_limit(NS, KEY, bad)  # type: ignore[arg-type]
    for key in ("", "has space", "x" * 201, "tab\there"):
        with pytest.raises(InvalidInput, match="key"):
            store.set_limit(NS, key, 1)
    enqueue_one(store, keyed())
    with pytest.raises(InvalidInput, match="until"):
        store.pause_key(NS, KEY, until=T0 - 1)
    assert store.list_limits(NS)[0].paused is False
    assert [limit.key for limit in store.list_limits(NS)] == [KEY]


def test_a_job_rescued_while_its_key_is_paused_waits(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, keyed())
    [job] = claim(store)
    store.pause_key(NS, KEY)
    clock.advance(TTL + 1)
    assert store.rescue_expired_leases(NS).requeued == [job.id]
    assert claim(store) == []
    assert holding(store) == (0, 1)
    store.resume_key(NS, KEY)
    assert [j.id for j in claim(store)] == [job.id]


# -- jobs fired by schedules and workflow steps --------------------------------------------------


def test_a_schedule_s_fired_jobs_take_slots_of_their_task_s_key(
    store: Store, clock: ManualClock
) -> None:
    from taskwheel.schedules import ScheduleDefinition

    from .test_schedules import EVERY, build_trigger, plan

    trigger = build_trigger(every=EVERY, start=epoch_datetime(T0))
    schedule, _ = store.upsert_schedule(ScheduleDefinition.build(
        "sync", keyed(capacity=1), trigger))
    fired = store.fire_schedules(NS, [plan(schedule, T0 + EVERY, T0 + 2 * EVERY)])
    first, second = (f.job_id for f in fired)
    assert first is not None
    assert second is not None
    clock.advance(2 * EVERY)
    store.promote_due_jobs(NS)

    assert [job.id for job in claim(store)] == [first]  # one slot: the second waits
    assert holding(store) == (1, 1)
    [running] = store.get_jobs(NS, [first])
    assert store.finish_attempts([succeeded(running)]) == []
    assert [job.id for job in claim(store)] == [second]


def test_workflow_steps_take_slots_of_their_task_s_key(store: Store) -> None:
    from taskwheel.jobs import JobTemplate
    from taskwheel.workflows import FailurePolicy, StepSpec, WorkflowSpec

    template = JobTemplate.of(keyed(capacity=1))
    steps = tuple(StepSpec(name, template, (), FailurePolicy.FAIL_DOWNSTREAM)
                  for name in ("a", "b", "c"))
    run = store.submit_workflow(WorkflowSpec("fan", NS, FailurePolicy.FAIL_DOWNSTREAM, steps))

    assert len(claim(store)) == 1  # three ready steps, one slot
    assert holding(store) == (1, 2)
    assert len(run.steps) == 3


def test_templates_stored_before_key_gates_or_failure_rates_read_as_having_none() -> None:
    from taskwheel.jobs import JobTemplate

    stored = JobTemplate.of(new_job()).to_dict()
    for name in ("gate_key", "gate_capacity", "gate_breaker"):
        del stored[name]
    assert JobTemplate.from_dict(stored).gate_key is None
    keyed_template = JobTemplate.of(replace(keyed(), gate_breaker=(3, 60.0, 30.0, 0.5)))
    assert JobTemplate.from_dict(keyed_template.to_dict()) == keyed_template
    # A rule stored before failure rates (three parts) reads as one without a rate.
    before_rates = {**keyed_template.to_dict(), "gate_breaker": [3, 60.0, 30.0]}
    assert JobTemplate.from_dict(before_rates).gate_breaker == (3, 60.0, 30.0, None)
