"""Fair shares and priority aging on every store (`taskwheel.fairness`): under
saturation, fairness keys get claims in proportion to their weights, a key that was
idle banks no credit, priority still comes first and today's order holds within a
key; a queue's aging bounds how long a low priority waits behind a flood, and its cap
keeps aged jobs below the bands above it; a queue's reserve keeps its share of the
claims for its lower bands and banks no credit; bad weights, rates, caps and reserves
are refused with nothing written."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from taskwheel.client import Client
from taskwheel.clock import ManualClock
from taskwheel.errors import AgingNotFound, InvalidInput, ReserveNotFound
from taskwheel.fairness import FairWeight, QueueAging
from taskwheel.jobs import Job, NewJob
from taskwheel.stores.base import Store
from taskwheel.stores.claims import ClaimRequest

from .conftest import NS, OTHER_NS, QUEUE, TTL, new_job


def keyed(key: str | None, **options: object) -> NewJob:
    return dataclasses.replace(new_job(**options), fairness_key=key)  # type: ignore[arg-type]


def claim(store: Store, count: int, *, namespace: str = NS) -> list[Job]:
    return store.claim_jobs(namespace, "w1", [QUEUE], count, TTL).jobs


def shares(jobs: list[Job]) -> Counter[str | None]:
    return Counter(job.fairness_key for job in jobs)


def test_keys_of_weights_1_2_4_get_their_shares_of_a_saturated_queue(store: Store) -> None:
    for key, weight in (("a", 1), ("b", 2), ("c", 4)):
        store.set_fair_weight(FairWeight(NS, key, weight))
    for key in ("a", "b", "c"):  # each key's backlog written at once, a's first
        store.enqueue([keyed(key) for _ in range(70)])
    taken: list[Job] = []
    for _ in range(7):
        taken += claim(store, 5)
    counts = shares(taken)
    assert abs(counts["a"] - 5) <= 1
    assert abs(counts["b"] - 10) <= 1
    assert abs(counts["c"] - 20) <= 1
    assert sum(counts.values()) == 35


def test_a_key_that_was_idle_banks_no_credit(store: Store) -> None:
    store.enqueue([keyed("busy") for _ in range(100)])
    assert shares(claim(store, 40)) == {"busy": 40}
    store.enqueue([keyed("idle") for _ in range(40)])  # idle while busy took 40 claims
    counts = shares(claim(store, 20))
    assert abs(counts["idle"] - 10) <= 1, counts  # an equal share, not the 40 it missed


def test_a_weight_changed_at_run_time_applies_to_jobs_written_after(store: Store) -> None:
    store.enqueue([keyed("a") for _ in range(30)] + [keyed("b") for _ in range(30)])
    assert shares(claim(store, 10)) == {"a": 5, "b": 5}
    client = Client(store, NS)
    assert client.set_fair_weight("b", 3).weight == 3.0
    store.enqueue([keyed("a") for _ in range(60)] + [keyed("b") for _ in range(60)])
    claim(store, 50)  # the rest of the jobs written before
    counts = shares(claim(store, 40))
    assert abs(counts["b"] - 30) <= 1, counts
    assert [(w.key, w.weight) for w in client.fair_weights()] == [("a", 1.0), ("b", 3.0)]


def test_jobs_without_a_key_share_the_default_flow(store: Store) -> None:
    store.set_fair_weight(FairWeight(NS, "bulk", 1))
    store.enqueue([keyed("bulk") for _ in range(30)])
    store.enqueue([new_job() for _ in range(30)])
    counts = shares(claim(store, 20))
    assert counts == {"bulk": 10, None: 10}


def test_priority_comes_before_shares_and_today_s_order_holds_within_a_key(
    store: Store, clock: ManualClock
) -> None:
    store.set_fair_weight(FairWeight(NS, "a", 4))
    low = store.enqueue([keyed("a", priority=1) for _ in range(5)])
    urgent = store.enqueue([keyed("b", priority=5)])[0]
    soon, later, none = store.enqueue([
        keyed("a", priority=3, deadline=clock.now() + 60),
        keyed("a", priority=3, deadline=clock.now() + 600),
        keyed("a", priority=3)])
    assert [job.id for job in claim(store, 4)] == [urgent.id, soon.id, later.id, none.id]
    assert [job.id for job in claim(store, 5)] == [job.id for job in low]


def test_a_namespace_without_fairness_or_aging_keeps_today_s_order(store: Store) -> None:
    jobs = store.enqueue([new_job(priority=p) for p in (0, 9, 5, 9)])
    assert (jobs[0].fair_pass, jobs[0].rank_offset) == (0.0, 0)
    assert [job.id for job in claim(store, 4)] == [jobs[1].id, jobs[3].id, jobs[2].id,
                                                   jobs[0].id]
    assert store.list_fair_weights(NS) == []


def test_fairness_in_one_namespace_leaves_another_as_it_was(store: Store) -> None:
    store.set_fair_weight(FairWeight(NS, "a", 2))
    other = store.enqueue([new_job(namespace=OTHER_NS) for _ in range(3)])
    assert {job.fair_pass for job in other} == {0.0}
    assert store.list_fair_weights(OTHER_NS) == []


def test_aging_bounds_the_wait_of_a_low_priority_trickle_under_a_flood(
    store: Store, clock: ManualClock
) -> None:
    """Workers take 2 jobs a second; a flood keeps 10 jobs of priority 9 waiting ahead
    and adds 2 a second; a job of priority 0 arrives every 20 s. With the queue aging
    one level per 10 s, a trickle job comes before every flood job due (9 - 0 + 1) x
    10 s after it: it waits at most 100 s plus the time to drain the 10 ahead (5 s)."""
    store.set_queue_aging(QueueAging(NS, QUEUE, 0.1))
    waits = run_flood_and_trickle(store, clock, seconds=400)
    assert len(waits) >= 10, waits  # every trickle job up to the last 100 s or so ran
    assert max(waits) <= 100 + 5 + 1, waits


def test_without_aging_the_same_trickle_starves(store: Store, clock: ManualClock) -> None:
    assert run_flood_and_trickle(store, clock, seconds=200) == []


def run_flood_and_trickle(store: Store, clock: ManualClock, *, seconds: int) -> list[float]:
    """The waits of the priority-0 jobs claimed during ``seconds`` of a flood."""
    store.enqueue([new_job(priority=9) for _ in range(10)])
    trickle: dict[int, float] = {}
    waits = []
    for second in range(seconds):
        requests = [new_job(priority=9), new_job(priority=9)]
        if second % 20 == 0:
            requests.append(new_job(priority=0))
        for job in store.enqueue(requests):
            if job.priority == 0:
                trickle[job.id] = clock.now()
        for job in claim(store, 2):
            if job.id in trickle:
                waits.append(clock.now() - trickle[job.id])
        clock.advance(1)
    return waits


def test_a_capped_aging_lifts_no_job_above_the_cap(store: Store, clock: ManualClock) -> None:
    """With a cap of 5, a job of priority 0 that has waited long enough to pass every
    band still comes after the jobs above 5 (which do not age): it passes only the
    bands up to the cap. Without the cap, the same wait passes them all."""
    store.set_queue_aging(QueueAging(NS, QUEUE, 1.0, cap=5))
    [old] = store.enqueue([new_job(priority=0)])
    clock.advance(100)
    fresh = {job.priority: job.id for job in store.enqueue(
        [new_job(priority=p) for p in (9, 6, 5, 3)])}
    assert [job.id for job in claim(store, 5)] == [fresh[9], fresh[6], old.id, fresh[5],
                                                    fresh[3]]

    store.set_queue_aging(QueueAging(NS, QUEUE, 1.0))
    [old] = store.enqueue([new_job(priority=0)])
    clock.advance(100)
    fresh = {job.priority: job.id for job in store.enqueue(
        [new_job(priority=p) for p in (9, 6)])}
    assert [job.id for job in claim(store, 3)] == [old.id, fresh[9], fresh[6]]


def test_a_cap_at_the_top_band_keeps_the_starvation_bound(
    store: Store, clock: ManualClock
) -> None:
    store.set_queue_aging(QueueAging(NS, QUEUE, 0.1, cap=9))
    waits = run_flood_and_trickle(store, clock, seconds=400)
    assert len(waits) >= 10, waits
    assert max(waits) <= 100 + 5 + 1, waits


def test_a_cap_below_the_flood_lets_it_go_first(store: Store, clock: ManualClock) -> None:
    """What a cap is for: no aged job passes the bands above it."""
    store.set_queue_aging(QueueAging(NS, QUEUE, 0.1, cap=8))
    assert run_flood_and_trickle(store, clock, seconds=200) == []


def test_a_reserve_keeps_its_share_of_a_saturated_queue_s_claims_for_the_lower_bands(
    store: Store
) -> None:
    Client(store, NS).set_queue_reserve(QUEUE, "25%", below=5)
    store.enqueue([new_job(priority=9) for _ in range(60)])
    low = {job.id for job in store.enqueue([new_job(priority=p) for p in (0, 3, 4) * 4])}
    for _ in range(5):  # claims of 4: one of each for the bands below 5, the best first
        taken = claim(store, 4)
        assert [job.priority for job in taken][:3] == [9, 9, 9]
        assert taken[3].id in low, taken
    ones = [claim(store, 1)[0] for _ in range(8)]  # claims of 1: one in four
    assert [job.priority < 5 for job in ones] == [False, False, False, True] * 2


def test_without_a_reserve_the_lower_bands_wait_for_the_flood(store: Store) -> None:
    store.enqueue([new_job(priority=9) for _ in range(30)])
    store.enqueue([new_job(priority=0) for _ in range(5)])
    assert {job.priority for job in claim(store, 20)} == {9}


def test_a_reserve_whose_bands_were_empty_banks_no_credit(store: Store) -> None:
    Client(store, NS).set_queue_reserve(QUEUE, 0.25, below=5)
    store.enqueue([new_job(priority=9) for _ in range(80)])
    for _ in range(40):  # nothing below 5 to claim: the reserve is owed nothing
        assert [job.priority for job in claim(store, 1)] == [9]
    store.enqueue([new_job(priority=0) for _ in range(10)])
    taken = [claim(store, 1)[0].priority for _ in range(8)]
    assert taken.count(0) == 2, taken


def test_a_reserve_takes_nothing_a_claim_s_other_queues_or_tasks_should_not(
    store: Store
) -> None:
    Client(store, NS).set_queue_reserve(QUEUE, 0.5, below=5)
    store.enqueue([new_job(queue="other", priority=0) for _ in range(5)])
    store.enqueue([new_job(task="elsewhere", priority=0) for _ in range(5)])
    store.enqueue([new_job(priority=9) for _ in range(5)])
    taken = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 4, TTL,
                                     tasks=(new_job().task,))).jobs
    assert [(job.queue, job.priority) for job in taken] == [(QUEUE, 9)] * 4


def test_a_reserve_serves_a_claim_over_several_namespaces(store: Store) -> None:
    Client(store, NS).set_queue_reserve(QUEUE, 0.5, below=5)
    store.enqueue([new_job(priority=9) for _ in range(10)])
    store.enqueue([new_job(priority=0) for _ in range(10)])
    store.enqueue([new_job(namespace=OTHER_NS, priority=9) for _ in range(10)])
    taken = store.claim(ClaimRequest("w1", (NS, OTHER_NS), (QUEUE,), 4, TTL)).jobs
    assert Counter(job.priority for job in taken) == {0: 2, 9: 2}
    assert {job.namespace for job in taken if job.priority == 0} == {NS}


def test_in_a_queue_that_ages_the_reserved_bands_are_by_aged_priority(
    store: Store, clock: ManualClock
) -> None:
    """A job of priority 0 that has aged past 5 no longer needs the reserve: it is
    claimed in the ordinary order, and the reserve goes to a fresher low job."""
    store.set_queue_aging(QueueAging(NS, QUEUE, 1.0))
    Client(store, NS).set_queue_reserve(QUEUE, 0.5, below=5)
    [aged] = store.enqueue([new_job(priority=0)])
    clock.advance(7)  # aged 7 levels: ranked with a fresh 7
    [fresh_low] = store.enqueue([new_job(priority=1)])
    flood = store.enqueue([new_job(priority=9) for _ in range(4)])
    taken = [job.id for job in claim(store, 2)]
    assert taken == [flood[0].id, fresh_low.id]
    assert aged.id not in taken


def test_a_queue_s_reserve_is_set_listed_and_removed(store: Store) -> None:
    client = Client(store, NS)
    reserve = client.set_queue_reserve(QUEUE, "10%", below=3)
    assert (reserve.share, reserve.below) == (pytest.approx(0.1), 3)
    assert client.queue_reserves() == [reserve]
    assert client.set_queue_reserve(QUEUE, 0.2, below=4).share == pytest.approx(0.2)
    assert [r.below for r in client.queue_reserves()] == [4]
    client.remove_queue_reserve(QUEUE)
    assert client.queue_reserves() == []
    with pytest.raises(ReserveNotFound, match="no reserve"):
        client.remove_queue_reserve(QUEUE)


@pytest.mark.parametrize(("share", "below", "field"), [
    (0, 5, "share"), (1, 5, "share"), ("100%", 5, "share"), ("ten", 5, "share"),
    (float("nan"), 5, "share"), (-0.1, 5, "share"), (True, 5, "share"),
    (0.1, 2.5, "below"), (0.1, "5", "below"), (0.1, 10**7, "below"),
])
def test_a_bad_reserve_is_refused_and_nothing_is_written(
    store: Store, share: object, below: object, field: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"^{field}: "):
        Client(store, NS).set_queue_reserve(QUEUE, share, below=below)  # type: ignore[arg-type]
    assert store.list_queue_reserves(NS) == []


@pytest.mark.parametrize("cap", [2.5, "5", True, 10**7])
def test_a_bad_aging_cap_is_refused_and_nothing_is_written(store: Store, cap: object) -> None:
    with pytest.raises(InvalidInput, match=r"^cap: "):
        Client(store, NS).set_queue_aging(QUEUE, "1/min", cap=cap)  # type: ignore[arg-type]
    assert store.list_queue_aging(NS) == []


def test_a_queue_s_aging_is_set_listed_and_removed(store: Store) -> None:
    client = Client(store, NS)
    aging = client.set_queue_aging(QUEUE, "6/min")
    assert (aging.rate, aging.cap) == (pytest.approx(0.1), None)
    assert client.queue_aging() == [aging]
    assert client.set_queue_aging(QUEUE, "6/min", cap=7).cap == 7
    assert [found.cap for found in client.queue_aging()] == [7]
    client.remove_queue_aging(QUEUE)
    assert client.queue_aging() == []
    with pytest.raises(AgingNotFound, match="no aging"):
        client.remove_queue_aging(QUEUE)


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf"), "2", True])
def test_a_bad_weight_is_refused_and_nothing_is_written(store: Store, weight: object) -> None:
    with pytest.raises(InvalidInput, match=r"^weight: must be a number > 0"):
        Client(store, NS).set_fair_weight("a", weight)  # type: ignore[arg-type]
    assert store.list_fair_weights(NS) == []


@pytest.mark.parametrize("rate", ["fast", "1/fortnight", "0/min", "-1/s", "1/0s", "", 0,
                                  -0.5, 5000])
def test_a_malformed_aging_rate_is_refused_and_nothing_is_written(
    store: Store, rate: object
) -> None:
    with pytest.raises(InvalidInput, match=r"^rate: "):
        Client(store, NS).set_queue_aging(QUEUE, rate)  # type: ignore[arg-type]
    assert store.list_queue_aging(NS) == []


def test_a_schedule_s_fired_jobs_and_a_workflow_s_steps_take_their_places_too(
    store: Store, clock: ManualClock
) -> None:
    from .test_schedules import created, definition
    from .test_workflows import DIAMOND, workflow

    store.set_fair_weight(FairWeight(NS, "", 1))
    store.set_queue_aging(QueueAging(NS, QUEUE, 0.1))
    backlog = store.enqueue([new_job() for _ in range(3)])
    assert [job.fair_pass for job in backlog] == [1.0, 2.0, 3.0]
    clock.advance(100)
    fired = store.trigger_schedule(NS, created(store, definition()).definition.name)
    assert fired.job_id is not None
    [job] = store.get_jobs(NS, [fired.job_id])
    run = store.submit_workflow(workflow(DIAMOND))
    steps = store.get_workflow_run(NS, run.id).steps
    # Each comes after the backlog of its flow, and ranks 10 aging steps below it.
    assert [job.fair_pass, *(step.job.fair_pass for step in steps)] == [4.0, 5.0, 6.0, 7.0,
                                                                         8.0]
    assert job.rank_offset == backlog[0].rank_offset - 10
    assert {step.job.rank_offset for step in steps} == {job.rank_offset}


def test_a_scheduler_s_fires_take_their_places_from_when_the_namespace_is_fair(
    store: Store, clock: ManualClock
) -> None:
    """`Store.fire_due`, one schedule at a time as a scheduler fires: each firing
    transaction sees the namespace's fairness and aging as they are then."""
    from .test_schedules import EVERY, created

    schedule = created(store)
    assert store.elect(NS, "scheduler", "s1", 600)
    clock.advance(EVERY + 0.5)
    [firing] = store.fire_due(NS, [schedule.id], clock.now(), ("scheduler", "s1"))
    [fired] = firing.fired
    assert fired.job_id is not None
    before = store.get_job(NS, fired.job_id)
    store.set_fair_weight(FairWeight(NS, "", 1))
    store.set_queue_aging(QueueAging(NS, QUEUE, 0.1))
    backlog = store.enqueue([new_job() for _ in range(2)])
    clock.advance(EVERY)
    [firing] = store.fire_due(NS, [schedule.id], clock.now(), ("scheduler", "s1"))
    [fired] = firing.fired
    assert fired.job_id is not None
    after = store.get_job(NS, fired.job_id)
    # Unplaced while the namespace had neither; then after its flow's backlog, and
    # ranked below the backlog by the aging of the 60 s between them.
    assert (before.fair_pass, before.rank_offset) == (0.0, 0)
    assert [job.fair_pass for job in backlog] == [1.0, 2.0]
    assert after.fair_pass == 3.0
    assert after.rank_offset == backlog[0].rank_offset - 6
