"""What a metrics scrape reads: every namespace's unfinished and dead jobs by queue, state
and priority, when the first ready one of each band became ready, and every worker."""

from __future__ import annotations

from taskwheel.clock import ManualClock
from taskwheel.jobs import DepthBand
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import NS, OTHER_NS, T0, claim_one, enqueue_one, failed, new_job, registration


def test_queue_depths_count_every_namespace_by_queue_state_and_priority(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(priority=5))
    clock.advance(10)
    enqueue_one(store, new_job(priority=5))
    enqueue_one(store, new_job(priority=1, queue="other"))
    enqueue_one(store, new_job(delay=60))
    enqueue_one(store, new_job(namespace=OTHER_NS))
    enqueue_one(store, new_job(priority=9, max_attempts=1))
    dead = claim_one(store)
    store.finish_attempts([failed(dead, JobStatus.DEAD)])
    enqueue_one(store, new_job(priority=9))
    claim_one(store)  # running
    store.register_worker(registration("w1"))
    clock.advance(5)

    depths = store.queue_depths()

    assert depths.now == T0 + 15
    assert sorted(depths.bands, key=lambda b: (b.namespace, b.queue, b.status, b.priority)) == [
        DepthBand(NS, "default", "dead", 9, 1, None),
        DepthBand(NS, "default", "queued", 5, 2, T0),
        DepthBand(NS, "default", "running", 9, 1, None),
        DepthBand(NS, "default", "scheduled", 0, 1, None),
        DepthBand(NS, "other", "queued", 1, 1, T0 + 10),
        DepthBand(OTHER_NS, "default", "queued", 0, 1, T0 + 10),
    ]
    assert [(w.id, w.alive) for w in depths.workers] == [("w1", True)]


def test_finished_jobs_are_not_in_the_depths(store: Store) -> None:
    enqueue_one(store)
    store.cancel_job(NS, 1)

    assert store.queue_depths().bands == []
