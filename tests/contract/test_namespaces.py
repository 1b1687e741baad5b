"""One process serving many namespaces: a claim over several namespaces, and the scope
``*`` (every namespace) for maintenance, schedule reads and fires. Rows still belong to
exactly one namespace: serving several never moves a row from one to another."""

from __future__ import annotations

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, LeaseLost
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import FireResult
from taskwheel.stores.base import Store
from taskwheel.stores.claims import ClaimRequest
from taskwheel.validators import ALL_NAMESPACES

from .conftest import NS, OTHER_NS, QUEUE, T0, TTL, enqueue_one, new_job
from .test_schedules import EVERY, created, definition, plan

THIRD_NS = "third"


def request(*namespaces: str, limit: int = 100) -> ClaimRequest:
    return ClaimRequest("w1", namespaces, (QUEUE,), limit, TTL)


def test_the_store_lists_the_namespaces_that_have_jobs_or_schedules(store: Store) -> None:
    assert store.namespaces() == []
    enqueue_one(store, new_job(namespace=OTHER_NS))
    enqueue_one(store, new_job(namespace=NS))
    created(store, definition(namespace=THIRD_NS))

    assert store.namespaces() == sorted([NS, OTHER_NS, THIRD_NS])


def test_a_claim_over_several_namespaces_takes_their_jobs_in_one_dispatch_order(
    store: Store,
) -> None:
    low = enqueue_one(store, new_job(namespace=NS, priority=1))
    high = enqueue_one(store, new_job(namespace=OTHER_NS, priority=9))
    middle = enqueue_one(store, new_job(namespace=NS, priority=5))
    enqueue_one(store, new_job(namespace=THIRD_NS, priority=100))  # not asked for

    first = store.claim(request(NS, OTHER_NS, limit=2)).jobs
    rest = store.claim(request(NS, OTHER_NS)).jobs

    assert [job.id for job in first] == [high.id, middle.id]
    assert [job.id for job in rest] == [low.id]
    assert {job.id: job.namespace for job in [*first, *rest]} == {
        high.id: OTHER_NS, middle.id: NS, low.id: NS,
    }
    assert store.get_job(OTHER_NS, high.id).status is JobStatus.RUNNING


def test_a_claim_request_names_its_namespaces_and_queues() -> None:
    with pytest.raises(InvalidInput, match="namespaces"):
        ClaimRequest("w1", (), (QUEUE,), 1, TTL)
    with pytest.raises(InvalidInput, match="queues"):
        ClaimRequest("w1", (NS,), (), 1, TTL)
    with pytest.raises(InvalidInput, match="limit"):
        ClaimRequest("w1", (NS,), (QUEUE,), -1, TTL)
    with pytest.raises(InvalidInput, match="lease_ttl"):
        ClaimRequest("w1", (NS,), (QUEUE,), 1, 0)


def test_next_due_of_a_claim_is_the_earliest_of_its_namespaces(store: Store) -> None:
    enqueue_one(store, new_job(namespace=NS, delay=50))
    enqueue_one(store, new_job(namespace=OTHER_NS, delay=20))
    enqueue_one(store, new_job(namespace=THIRD_NS, delay=5))

    assert store.claim(request(NS, OTHER_NS)).next_due == T0 + 20


def test_maintenance_of_every_namespace_rescues_promotes_and_expires_in_each(
    store: Store, clock: ManualClock
) -> None:
    for namespace in (NS, OTHER_NS):
        enqueue_one(store, new_job(namespace=namespace))
    held = store.claim(request(NS, OTHER_NS)).jobs
    delayed = [enqueue_one(store, new_job(namespace=ns, delay=10)) for ns in (NS, OTHER_NS)]
    missed = [enqueue_one(store, new_job(namespace=ns, delay=100, deadline_in=20))
              for ns in (NS, OTHER_NS)]
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(ALL_NAMESPACES)
    promoted, _ = store.promote_due_jobs(ALL_NAMESPACES)
    expired = store.expire_missed_deadlines(ALL_NAMESPACES)

    assert rescue.requeued == sorted(job.id for job in held)
    assert promoted == 2
    assert expired == 2
    for job in [*held, *delayed]:
        assert store.get_job(job.namespace, job.id).status is JobStatus.QUEUED
    for job in missed:
        assert store.get_job(job.namespace, job.id).status is JobStatus.EXPIRED


def test_schedules_of_every_namespace_are_read_and_fired_under_one_lease(
    store: Store,
) -> None:
    here = created(store, definition("here", namespace=NS))
    there = created(store, definition("there", namespace=OTHER_NS))
    assert store.elect(ALL_NAMESPACES, "scheduler:0", "s1", 10)

    due = store.schedules_due(ALL_NAMESPACES, T0 + EVERY)
    fired = store.fire_schedules(
        ALL_NAMESPACES,
        [plan(here, T0 + EVERY), plan(there, T0 + EVERY)],
        lease=("scheduler:0", "s1"),
    )

    assert sorted(due) == sorted([(here.id, T0 + EVERY), (there.id, T0 + EVERY)])
    assert {s.id for s in store.get_schedules(ALL_NAMESPACES, [here.id, there.id])} == {
        here.id, there.id,
    }
    assert [f.result for f in fired] == [FireResult.CREATED, FireResult.CREATED]
    assert store.get_job(NS, fired[0].job_id or 0).namespace == NS
    assert store.get_job(OTHER_NS, fired[1].job_id or 0).namespace == OTHER_NS
    with pytest.raises(LeaseLost):
        store.fire_schedules(ALL_NAMESPACES, [plan(here, T0 + 2 * EVERY)],
                             lease=("scheduler:0", "s2"))


def test_a_namespace_s_own_reads_and_fires_never_reach_another_namespace(
    store: Store,
) -> None:
    there = created(store, definition("there", namespace=OTHER_NS))

    assert store.schedules_due(NS, T0 + EVERY) == []
    assert store.get_schedules(NS, [there.id]) == []
    [stale] = store.fire_schedules(NS, [plan(there, T0 + EVERY)])

    assert stale.result is FireResult.STALE
    assert store.get_schedule(OTHER_NS, "there").next_fire_epoch == T0 + EVERY
