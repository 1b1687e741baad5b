"""Fair shares and priority aging on every store (`taskwheel.fairness`): under
saturation, fairness keys get claims in proportion to their weights, a key that was
idle banks no credit, priority still comes first and today's order holds within a
key; a queue's aging bounds how long a low priority waits behind a flood; bad weights
and rates are refused with nothing written."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from taskwheel.client import Client
from taskwheel.clock import ManualClock
from taskwheel.errors import AgingNotFound, InvalidInput
from taskwheel.fairness import FairWeight, QueueAging
from taskwheel.jobs import Job, NewJob
from taskwheel.stores.base import Store

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


def test_a_queue_s_aging_is_set_listed_and_removed(store: Store) -> None:
    client = Client(store, NS)
    aging = client.set_queue_aging(QUEUE, "6/min")
    assert aging.rate == pytest.approx(0.1)
    assert client.queue_aging() == [aging]
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
