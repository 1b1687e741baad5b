"""Schedules in the store: upserted by name, paused and resumed, fired by plans that apply
only where the schedule still is, at most one job per (schedule, fire time), overlap
policies, and no firing without the lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, LeaseLost, ScheduleNotFound
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import (
    FirePlan,
    FireResult,
    Overlap,
    PlannedFire,
    Schedule,
    ScheduleDefinition,
    build_trigger,
    plan_fires,
)
from taskwheel.stores.base import Store

from .conftest import (
    NS,
    OTHER_NS,
    QUEUE,
    T0,
    TTL,
    claim_one,
    failed,
    new_job,
    succeeded,
    ts,
)

EVERY = 60.0


def definition(
    name: str = "nightly",
    *,
    namespace: str = NS,
    every: float = EVERY,
    overlap: Overlap = Overlap.ALLOW,
    priority: int = 0,
) -> ScheduleDefinition:
    """Fires at T0 + 60, T0 + 120, ..."""
    trigger = build_trigger(every=every, start=datetime.fromtimestamp(T0, UTC))
    request = new_job("contract.report", "daily", namespace=namespace, priority=priority)
    return ScheduleDefinition.build(name, request, trigger, overlap=overlap)


def created(store: Store, declared: ScheduleDefinition | None = None) -> Schedule:
    schedule, changed = store.upsert_schedule(declared or definition())
    assert changed
    return schedule


def plan(
    schedule: Schedule, *fire_times: float, expected: float | None = None,
    overlap: Overlap | None = None,
) -> FirePlan:
    """Fire ``fire_times`` (due at once) and move on one interval past the last."""
    expected_next = expected if expected is not None else schedule.next_fire_epoch
    assert expected_next is not None
    return FirePlan(
        schedule_id=schedule.id,
        expected_next=expected_next,
        fires=tuple(PlannedFire(t, t) for t in fire_times),
        next_fire_at=max(fire_times) + EVERY,
        overlap=overlap or schedule.definition.overlap,
    )


# -- declaring --------------------------------------------------------------------------------


def test_upserting_a_new_schedule_creates_it_with_its_first_fire_time(store: Store) -> None:
    schedule, changed = store.upsert_schedule(definition())

    assert changed is True
    assert (schedule.name, schedule.definition.namespace) == ("nightly", NS)
    assert schedule.definition == definition()
    assert (schedule.paused, ts(schedule.next_fire_at), schedule.last_fire_at) == (
        False, T0 + EVERY, None
    )
    assert schedule.next_fire_epoch == T0 + EVERY
    assert (ts(schedule.created_at), ts(schedule.updated_at)) == (T0, T0)
    assert store.get_schedule(NS, "nightly") == schedule


def test_upserting_an_unchanged_schedule_changes_nothing(store: Store, clock: ManualClock) -> None:
    first = created(store)
    clock.advance(500)

    again, changed = store.upsert_schedule(definition())

    assert changed is False
    assert again == first


def test_many_schedules_are_upserted_together_each_as_one_would_be(
    store: Store, clock: ManualClock
) -> None:
    created(store, definition("kept"))
    store.set_schedule_paused(NS, "kept", True)
    created(store, definition("same"))
    clock.advance(500)
    batch = [definition("new"), definition("kept", every=45), definition("same"),
             definition("other", namespace=OTHER_NS)]

    changed = store.upsert_schedules(batch)

    assert changed == [True, True, False, True]
    assert [s.name for s in store.list_schedules(NS)] == ["kept", "new", "same"]
    new, kept = store.get_schedule(NS, "new"), store.get_schedule(NS, "kept")
    same = store.get_schedule(NS, "same")
    # Fire times as upsert_schedule gives them: a new or changed one from now, an
    # unchanged one its own; a paused one stays paused.
    assert ts(new.next_fire_at) == T0 + 540
    assert (ts(kept.next_fire_at), kept.paused) == (T0 + 540, True)
    assert ts(same.next_fire_at) == T0 + EVERY
    assert store.get_schedule(OTHER_NS, "other").definition == batch[3]
    assert store.upsert_schedules(batch) == [False] * 4
    assert store.upsert_schedules([]) == []


def test_a_batch_naming_a_schedule_twice_is_refused_and_writes_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.upsert_schedules([definition("a"), definition("b"), definition("a", every=45)])

    assert raised.value.field == "name"
    assert "'a'" in raised.value.reason
    assert store.list_schedules(NS) == []


def test_upserting_a_changed_schedule_recomputes_its_next_fire_from_now_and_keeps_its_pause(
    store: Store, clock: ManualClock
) -> None:
    first = created(store)
    store.set_schedule_paused(NS, "nightly", True)
    clock.advance(500)

    changed_schedule, changed = store.upsert_schedule(definition(every=45))

    assert changed is True
    assert changed_schedule.id == first.id
    assert changed_schedule.definition.trigger == definition(every=45).trigger
    assert ts(changed_schedule.next_fire_at) == T0 + 540  # the first multiple of 45 after T0+500
    assert changed_schedule.paused is True
    assert ts(changed_schedule.updated_at) == T0 + 500


def test_a_changed_schedule_that_fired_is_answered_with_its_last_job_and_that_job_s_status(
    store: Store, clock: ManualClock
) -> None:
    """The upsert's answer is the schedule as a read gives it, its last job's status
    included (the statement's own answer lacks it: the store reads it then)."""
    schedule = created(store)
    clock.advance(EVERY + 0.5)
    [fired] = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])

    changed_schedule, changed = store.upsert_schedule(definition(every=45))

    assert changed is True
    assert (changed_schedule.last_job_id, changed_schedule.last_job_status) == (
        fired.job_id, "queued")
    assert changed_schedule == store.get_schedule(NS, "nightly")


def test_a_schedule_records_the_app_that_declared_it_and_the_last_writer_owns_it(
    store: Store, clock: ManualClock
) -> None:
    by_hand = created(store)
    assert by_hand.declared_by is None
    clock.advance(500)

    # The same spec, now declared by an app: only the declarer changes (not the next
    # fire time, which an unchanged spec keeps).
    declared, changed = store.upsert_schedule(definition(), declared_by="billing")
    assert changed is True
    assert declared.declared_by == "billing"
    assert declared.next_fire_epoch == by_hand.next_fire_epoch
    assert store.get_schedule(NS, "nightly").declared_by == "billing"
    assert store.list_schedules(NS)[0].declared_by == "billing"
    assert store.upsert_schedule(definition(), declared_by="billing")[1] is False

    # Written by hand again: nobody declares it any more.
    again, changed = store.upsert_schedule(definition())
    assert (changed, again.declared_by) == (True, None)
    assert again.next_fire_epoch == by_hand.next_fire_epoch


def test_an_unknown_or_foreign_schedule_is_schedule_not_found(store: Store) -> None:
    created(store, definition(namespace=OTHER_NS))

    with pytest.raises(ScheduleNotFound):
        store.get_schedule(NS, "nightly")
    with pytest.raises(ScheduleNotFound):
        store.set_schedule_paused(NS, "nightly", True)
    with pytest.raises(ScheduleNotFound):
        store.remove_schedule(NS, "nightly")
    assert store.get_schedule(OTHER_NS, "nightly").paused is False


def test_schedules_are_listed_by_name_within_their_namespace(store: Store) -> None:
    b = created(store, definition(name="b-weekly"))
    a = created(store, definition(name="a-hourly"))
    theirs = created(store, definition(name="c-theirs", namespace=OTHER_NS))

    assert [s.name for s in store.list_schedules(NS)] == ["a-hourly", "b-weekly"]
    found = store.get_schedules(NS, [b.id, theirs.id, 10_000, a.id])
    assert sorted(s.id for s in found) == sorted([a.id, b.id])


def test_schedules_listed_for_an_app_are_only_its_active_declared_ones(store: Store) -> None:
    store.upsert_schedule(definition(name="kept"), declared_by="billing")
    store.upsert_schedule(definition(name="paused"), declared_by="billing")
    store.set_schedule_paused(NS, "paused", True)
    store.upsert_schedule(definition(name="other-app"), declared_by="reports")
    store.upsert_schedule(definition(name="by-hand"))
    store.upsert_schedule(definition(name="theirs", namespace=OTHER_NS), declared_by="billing")

    assert [s.name for s in store.list_schedules(NS, declared_by="billing")] == ["kept"]
    assert [s.name for s in store.list_schedules(NS, declared_by="nobody")] == []
    assert len(store.list_schedules(NS)) == 4


def test_a_paused_schedule_is_not_due_and_resuming_keeps_its_next_fire_time(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store)
    assert store.schedules_due(NS, T0 + EVERY) == [(schedule.id, T0 + EVERY)]

    paused = store.set_schedule_paused(NS, "nightly", True)
    assert paused.paused is True
    assert store.schedules_due(NS, T0 + 10 * EVERY) == []

    clock.advance(10 * EVERY)
    resumed = store.set_schedule_paused(NS, "nightly", False)
    assert (resumed.paused, ts(resumed.next_fire_at)) == (False, T0 + EVERY)
    assert store.schedules_due(NS, clock.now()) == [(schedule.id, T0 + EVERY)]


def test_schedules_due_lists_those_due_by_the_time_given(store: Store) -> None:
    soon = created(store, definition(name="soon", every=30))
    created(store, definition(name="later", every=300))
    created(store, definition(name="theirs", namespace=OTHER_NS))

    assert store.schedules_due(NS, T0 + 29) == []
    assert store.schedules_due(NS, T0 + 30) == [(soon.id, T0 + 30)]


def test_schedules_due_of_some_partitions_lists_only_theirs(store: Store) -> None:
    made = [created(store, definition(name=f"s{n}", every=30)) for n in range(8)]

    assert sorted(store.schedules_due(NS, T0 + 30, partitions=(4, {1, 3}))) == sorted(
        (s.id, T0 + 30) for s in made if s.id % 4 in (1, 3)
    )
    assert sorted(store.schedules_due(NS, T0 + 30, partitions=(1, {0}))) == sorted(
        (s.id, T0 + 30) for s in made
    )
    assert store.schedules_due(NS, T0 + 30, partitions=(4, set())) == []


@pytest.mark.parametrize(("partitions", "named"), [
    ((0, {0}), "the count must be an integer >= 1, got 0"),
    ((4, {4}), "each partition must be an integer from 0 to 3, got [4]"),
    ((4, {-1}), "each partition must be an integer from 0 to 3, got [-1]"),
])
def test_schedules_due_refuses_partitions_that_cannot_be(
    store: Store, partitions: tuple[int, set[int]], named: str
) -> None:
    created(store)
    with pytest.raises(InvalidInput, match="partitions") as refused:
        store.schedules_due(NS, T0 + EVERY, partitions=partitions)
    assert named in str(refused.value)


def test_schedules_due_after_a_time_lists_only_the_slice_past_it(store: Store) -> None:
    soon = created(store, definition(name="soon", every=30))
    later = created(store, definition(name="later", every=300))

    assert store.schedules_due(NS, T0 + 300, after=T0 + 30) == [(later.id, T0 + 300)]
    assert store.schedules_due(NS, T0 + 299, after=T0 + 30) == []
    assert sorted(store.schedules_due(NS, T0 + 300, after=T0 + 29)) == sorted(
        [(soon.id, T0 + 30), (later.id, T0 + 300)]
    )


def test_schedules_changed_lists_declarations_and_pauses_but_not_fires(
    store: Store, clock: ManualClock
) -> None:
    first = created(store, definition(name="first"))
    clock.advance(10)
    second = created(store, definition(name="second", every=30))
    created(store, definition(name="theirs", namespace=OTHER_NS))

    assert sorted(store.schedules_changed(NS, T0)) == [(first.id, T0 + EVERY), (second.id, T0 + 30)]
    assert store.schedules_changed(NS, T0 + 10) == [(second.id, T0 + 30)]
    assert store.schedules_changed(NS, T0 + 11) == []

    clock.advance(30)  # T0 + 40: fire "second"; firing is not a change
    store.fire_schedules(NS, [plan(second, T0 + 30)])
    assert store.schedules_changed(NS, T0 + 11) == []

    clock.advance(5)
    store.set_schedule_paused(NS, "first", True)
    assert store.schedules_changed(NS, T0 + 45) == [(first.id, None)]
    clock.advance(5)
    store.set_schedule_paused(NS, "first", False)
    assert store.schedules_changed(NS, T0 + 50) == [(first.id, T0 + EVERY)]

    assert store.upsert_schedule(definition(name="first"))[1] is False
    assert store.schedules_changed(NS, T0 + 51) == []
    store.remove_schedule(NS, "second")
    assert store.schedules_changed(NS, T0) == [(first.id, T0 + EVERY)]


def test_removing_a_schedule_keeps_the_jobs_it_made(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    [fired] = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])

    store.remove_schedule(NS, "nightly")

    assert store.list_schedules(NS) == []
    assert fired.job_id is not None
    assert store.get_job(NS, fired.job_id).schedule_id == schedule.id


# -- firing ------------------------------------------------------------------------------------


def test_a_fire_plan_creates_its_jobs_and_moves_the_schedule_on(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store, definition(priority=4))
    clock.advance(EVERY + 0.5)

    fired = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])

    assert [(f.result, ts(f.fire_at)) for f in fired] == [(FireResult.CREATED, T0 + EVERY)]
    job_id = fired[0].job_id
    assert job_id is not None
    job = store.get_job(NS, job_id)
    assert (job.task, job.args, job.queue, job.priority) == ("contract.report", ["daily"], QUEUE, 4)
    assert (job.schedule_id, ts(job.fire_at), ts(job.run_at)) == (
        schedule.id, T0 + EVERY, T0 + EVERY
    )
    assert job.status is JobStatus.QUEUED
    moved = store.get_schedule(NS, "nightly")
    assert (ts(moved.next_fire_at), ts(moved.last_fire_at)) == (T0 + 2 * EVERY, T0 + EVERY)
    assert (moved.last_job_id, moved.last_job_status) == (job_id, "queued")


def test_a_fire_due_later_creates_a_scheduled_job(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    later = FirePlan(schedule.id, T0 + EVERY, (PlannedFire(T0 + EVERY, T0 + EVERY + 20),),
                     T0 + 2 * EVERY, Overlap.ALLOW)

    [fired] = store.fire_schedules(NS, [later])

    assert fired.job_id is not None
    job = store.get_job(NS, fired.job_id)
    assert (job.status, ts(job.run_at)) == (JobStatus.SCHEDULED, T0 + EVERY + 20)


def test_a_plan_made_from_a_stale_next_fire_time_applies_nothing(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    first = plan(schedule, T0 + EVERY)
    assert store.fire_schedules(NS, [first])[0].result is FireResult.CREATED

    replayed = store.fire_schedules(NS, [first])

    assert [f.result for f in replayed] == [FireResult.STALE]
    assert len(store.list_jobs(NS, JobFilter())) == 1
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + 2 * EVERY


def test_at_most_one_job_per_schedule_and_fire_time(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    clock.advance(2 * EVERY)
    store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])

    again = store.fire_schedules(
        NS, [plan(schedule, T0 + EVERY, T0 + 2 * EVERY, expected=T0 + 2 * EVERY)]
    )

    assert [f.result for f in again] == [FireResult.DUPLICATE, FireResult.CREATED]
    fire_times = sorted(ts(j.fire_at) or 0 for j in store.list_jobs(NS, JobFilter()))
    assert fire_times == [T0 + EVERY, T0 + 2 * EVERY]


def test_many_plans_in_one_call_each_fire_their_own_job_and_answer_in_their_order(
    store: Store, clock: ManualClock
) -> None:
    """Fires alike (the same job and times) and unlike (another priority, another
    instant, a catch-up whose first instant has its job already, a skip, a replay) in
    one call: the answers follow the plans, each job is its own schedule's, and each
    schedule's last job is the one of its latest fire."""
    a, b = created(store, definition("a")), created(store, definition("b"))
    urgent = created(store, definition("urgent", priority=7))
    behind = created(store, definition("behind"))
    skip = created(store, definition("skip", overlap=Overlap.SKIP))
    replayed = created(store, definition("replayed"))
    clock.advance(2 * EVERY + 0.5)
    [earlier] = store.fire_schedules(NS, [plan(behind, T0 + EVERY)])
    store.fire_schedules(NS, [plan(replayed, T0 + EVERY)])
    # The replayed plan moves alike with urgent's and b's, but its schedule moved on.
    plans = [plan(a, T0 + EVERY, T0 + 2 * EVERY), plan(urgent, T0 + EVERY),
             plan(behind, T0 + EVERY, T0 + 2 * EVERY, expected=T0 + 2 * EVERY),
             plan(replayed, T0 + EVERY, expected=T0 + EVERY),
             plan(skip, T0 + EVERY, T0 + 2 * EVERY), plan(b, T0 + EVERY)]

    fired = store.fire_schedules(NS, plans)

    assert [(f.schedule_id, ts(f.fire_at), f.result) for f in fired] == [
        (a.id, T0 + EVERY, FireResult.CREATED),
        (a.id, T0 + 2 * EVERY, FireResult.CREATED),
        (urgent.id, T0 + EVERY, FireResult.CREATED),
        (behind.id, T0 + EVERY, FireResult.DUPLICATE),
        (behind.id, T0 + 2 * EVERY, FireResult.CREATED),
        (replayed.id, T0 + EVERY, FireResult.STALE),
        (skip.id, T0 + EVERY, FireResult.CREATED),
        (skip.id, T0 + 2 * EVERY, FireResult.OVERLAP_SKIPPED),
        (b.id, T0 + EVERY, FireResult.CREATED),
    ]
    jobs = {f.job_id: f for f in fired if f.job_id is not None}
    assert len(jobs) == 6
    for job_id, f in jobs.items():
        job = store.get_job(NS, job_id)
        assert (job.schedule_id, job.fire_at, job.status) == (
            f.schedule_id, f.fire_at, JobStatus.QUEUED)
        assert job.priority == (7 if f.schedule_id == urgent.id else 0)
    last = {s.name: s.last_job_id for s in store.list_schedules(NS) if s.name != "replayed"}
    assert last == {"a": fired[1].job_id, "urgent": fired[2].job_id,
                    "behind": fired[4].job_id, "skip": fired[6].job_id,
                    "b": fired[8].job_id}
    assert earlier.job_id not in jobs


def test_two_plans_of_one_schedule_in_one_call_apply_one_after_the_other(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store)
    clock.advance(EVERY)

    fired = store.fire_schedules(NS, [plan(schedule, T0 + EVERY), plan(schedule, T0 + EVERY)])

    assert [f.result for f in fired] == [FireResult.CREATED, FireResult.STALE]
    assert len(store.list_jobs(NS, JobFilter())) == 1


def test_plan_fires_and_fire_schedules_together_fire_each_instant_once(
    store: Store, clock: ManualClock
) -> None:
    created(store)
    clock.set(T0 + EVERY)
    # Two schedulers read the same schedule, plan, and race to apply their plans.
    seen = [store.get_schedule(NS, "nightly"), store.get_schedule(NS, "nightly")]
    plans = [plan_fires(schedule, clock.now()) for schedule in seen]

    results = [store.fire_schedules(NS, [p]) for p in plans if p is not None]

    assert [[f.result for f in r] for r in results] == [
        [FireResult.CREATED], [FireResult.STALE]
    ]
    assert len(store.list_jobs(NS, JobFilter())) == 1


def test_overlap_skip_fires_nothing_while_the_previous_job_is_unfinished(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store, definition(overlap=Overlap.SKIP))
    clock.advance(EVERY)
    store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    clock.advance(EVERY)

    [skipped] = store.fire_schedules(
        NS, [plan(schedule, T0 + 2 * EVERY, expected=T0 + 2 * EVERY)]
    )

    assert (skipped.result, skipped.job_id) == (FireResult.OVERLAP_SKIPPED, None)
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + 3 * EVERY
    assert len(store.list_jobs(NS, JobFilter())) == 1


def test_overlap_queue_one_waits_for_the_previous_job_and_then_becomes_ready(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store, definition(overlap=Overlap.QUEUE_ONE))
    clock.advance(EVERY)
    store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    clock.advance(EVERY)
    [waiting] = store.fire_schedules(
        NS, [plan(schedule, T0 + 2 * EVERY, expected=T0 + 2 * EVERY)]
    )
    [skipped] = store.fire_schedules(
        NS, [plan(schedule, T0 + 3 * EVERY, expected=T0 + 3 * EVERY)]
    )
    assert (waiting.result, skipped.result) == (FireResult.WAITING, FireResult.OVERLAP_SKIPPED)
    assert waiting.job_id is not None
    assert store.get_job(NS, waiting.job_id).status is JobStatus.WAITING
    previous = claim_one(store)
    assert previous.id != waiting.job_id, "a waiting job is not claimable"

    store.finish_attempts([succeeded(previous)])

    assert store.get_job(NS, waiting.job_id).status is JobStatus.QUEUED
    assert claim_one(store).id == waiting.job_id


def test_a_retry_that_ends_cancelled_releases_the_queue_one_job_at_once(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store, definition(overlap=Overlap.QUEUE_ONE))
    clock.advance(EVERY)
    store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    [waiting] = store.fire_schedules(
        NS, [plan(schedule, T0 + 2 * EVERY, expected=T0 + 2 * EVERY)]
    )
    assert waiting.job_id is not None
    previous = claim_one(store)
    store.cancel_job(NS, previous.id)  # running: asked to stop

    # The worker reports a failed attempt that would retry; asked to cancel, it ends.
    store.finish_attempts([failed(previous, JobStatus.QUEUED)])

    assert store.get_job(NS, previous.id).status is JobStatus.CANCELLED
    assert store.get_job(NS, waiting.job_id).status is JobStatus.QUEUED


def test_release_waiting_frees_a_queue_one_job_whose_predecessor_ended_otherwise(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store, definition(overlap=Overlap.QUEUE_ONE))
    clock.advance(EVERY)
    [first] = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    [waiting] = store.fire_schedules(
        NS, [plan(schedule, T0 + 2 * EVERY, expected=T0 + 2 * EVERY)]
    )
    assert first.job_id is not None
    assert waiting.job_id is not None
    assert store.release_waiting(NS) == 0

    store.cancel_job(NS, first.job_id)

    assert store.release_waiting(NS) == 1
    assert store.get_job(NS, waiting.job_id).status is JobStatus.QUEUED


def test_a_scheduler_that_lost_its_lease_fires_nothing(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    assert store.elect(NS, "scheduler", "s1", 10)

    with pytest.raises(LeaseLost):
        store.fire_schedules(NS, [plan(schedule, T0 + EVERY)], lease=("scheduler", "s2"))
    assert store.list_jobs(NS, JobFilter()) == []
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + EVERY

    fired = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)], lease=("scheduler", "s1"))
    assert [f.result for f in fired] == [FireResult.CREATED]


def test_a_lapsed_lease_fires_nothing(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    assert store.elect(NS, "scheduler", "s1", 10)
    clock.advance(EVERY)

    with pytest.raises(LeaseLost):
        store.fire_schedules(NS, [plan(schedule, T0 + EVERY)], lease=("scheduler", "s1"))


def test_no_plans_fire_nothing(store: Store) -> None:
    assert store.fire_schedules(NS, []) == []


def test_fire_due_plans_each_schedule_from_its_row_and_fires_it_once(
    store: Store, clock: ManualClock
) -> None:
    due = created(store)
    paused = created(store, definition("paused"))
    store.set_schedule_paused(NS, "paused", True)
    clock.advance(EVERY + 0.5)
    assert store.elect(NS, "scheduler", "s1", 600)

    firings = store.fire_due(NS, [due.id, paused.id, 999_999], clock.now(), ("scheduler", "s1"))

    # A removed (here: never created) schedule is left out; the paused one has no plan.
    assert {f.schedule.id: f.plan is None for f in firings} == {due.id: False, paused.id: True}
    (fired,) = next(f for f in firings if f.schedule.id == due.id).fired
    assert (fired.result, ts(fired.fire_at)) == (FireResult.CREATED, T0 + EVERY)
    assert fired.job_id is not None
    assert store.get_job(NS, fired.job_id).schedule_id == due.id
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + 2 * EVERY
    # Asked again at the same moment: nothing is due any more, nothing is fired twice.
    again = store.fire_due(NS, [due.id], clock.now(), ("scheduler", "s1"))
    assert [(f.plan, f.fired) for f in again] == [(None, ())]
    assert len(store.list_jobs(NS, JobFilter())) == 1


def test_fire_due_without_the_lease_fires_nothing(store: Store, clock: ManualClock) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    assert store.elect(NS, "scheduler", "s1", 10)

    with pytest.raises(LeaseLost):
        store.fire_due(NS, [schedule.id], clock.now(), ("scheduler", "s2"))
    assert store.list_jobs(NS, JobFilter()) == []
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + EVERY
    assert store.fire_due(NS, [], clock.now()) == []


def test_fire_due_under_several_leases_names_the_first_not_held_in_name_order(
    store: Store, clock: ManualClock
) -> None:
    schedule = created(store)
    clock.advance(EVERY)
    assert store.elect_many(NS, ["p/01", "p/03"], "s1", 10) == {"p/01", "p/03"}
    assert store.elect(NS, "p/02", "s2", 10)
    # p/04 is held by nobody, p/02 by another: p/02 comes first by name, whatever the
    # order they are given in.
    for leases in ([("p/04", "s1"), ("p/03", "s1"), ("p/02", "s1"), ("p/01", "s1")],
                   [("p/01", "s1"), ("p/04", "s1"), ("p/02", "s1")]):
        with pytest.raises(LeaseLost) as lost:
            store.fire_due(NS, [schedule.id], clock.now(), leases=leases)
        assert (lost.value.name, lost.value.holder) == ("p/02", "s1")
    with pytest.raises(LeaseLost) as lost:
        store.fire_due(NS, [schedule.id], clock.now(), leases=[("p/04", "s1"), ("p/01", "s1")])
    assert lost.value.name == "p/04"
    assert store.list_jobs(NS, JobFilter()) == []
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + EVERY

    (firing,) = store.fire_due(NS, [schedule.id], clock.now(),
                               leases=[("p/03", "s1"), ("p/01", "s1")])
    assert [f.result for f in firing.fired] == [FireResult.CREATED]


def test_triggering_a_schedule_fires_it_now_and_keeps_its_timing(
    store: Store, clock: ManualClock
) -> None:
    created(store)
    clock.advance(7)

    fired = store.trigger_schedule(NS, "nightly")

    assert (fired.result, ts(fired.fire_at)) == (FireResult.CREATED, T0 + 7)
    assert fired.job_id is not None
    job = store.get_job(NS, fired.job_id)
    assert (job.status, ts(job.run_at)) == (JobStatus.QUEUED, T0 + 7)
    assert ts(store.get_schedule(NS, "nightly").next_fire_at) == T0 + EVERY
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs[0].id == job.id
    with pytest.raises(ScheduleNotFound):
        store.trigger_schedule(OTHER_NS, "nightly")
