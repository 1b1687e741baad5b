"""Enqueue: accepted jobs are durable, times are judged by the store's clock, and an
idempotency key names at most one job per namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import JobNotFound
from taskwheel.jobs import DeadlinePolicy, Guarantee, JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .backends import BackendFactory
from .conftest import NS, OTHER_NS, T0, claim_one, enqueue_one, new_job, ts


def test_enqueue_returns_the_job_as_stored(store: Store) -> None:
    request = new_job(
        "contract.send",
        "ada@example.com",
        queue="mail",
        priority=7,
        max_attempts=5,
        guarantee=Guarantee.AT_MOST_ONCE,
        deadline_policy=DeadlinePolicy.RUN_LATE,
        timeout=12.5,
        subject="hi",
    )

    job = enqueue_one(store, request)

    assert job == store.get_job(NS, job.id)
    assert (job.task, job.queue, job.namespace) == ("contract.send", "mail", NS)
    assert (job.args, job.kwargs) == (["ada@example.com"], {"subject": "hi"})
    assert (job.priority, job.max_attempts, job.timeout) == (7, 5, 12.5)
    assert job.guarantee is Guarantee.AT_MOST_ONCE
    assert job.deadline_policy is DeadlinePolicy.RUN_LATE
    assert job.status is JobStatus.QUEUED
    assert (job.attempt, job.worker_id, job.lease_expires_at) == (0, None, None)
    assert ts(job.created_at) == T0
    assert ts(job.run_at) == T0


def test_enqueued_jobs_survive_closing_and_reopening_the_store(
    store: Store, open_backend: BackendFactory, tmp_path: Path, clock: ManualClock
) -> None:
    jobs = store.enqueue([new_job(), new_job(delay=60), new_job(idempotency_key="k")])
    store.close()

    reopened = open_backend(tmp_path, clock)
    try:
        found = reopened.get_jobs(NS, [j.id for j in jobs])
        assert sorted(found, key=lambda j: j.id) == jobs
    finally:
        reopened.close()


def test_a_batch_is_returned_in_request_order_with_distinct_ids(store: Store) -> None:
    requests = [new_job(f"contract.t{i}") for i in range(5)]

    jobs = store.enqueue(requests)

    assert [j.task for j in jobs] == [r.task for r in requests]
    assert len({j.id for j in jobs}) == 5
    assert {j.id for j in store.list_jobs(NS, JobFilter())} == {j.id for j in jobs}


def test_an_empty_batch_creates_nothing(store: Store) -> None:
    assert store.enqueue([]) == []
    assert store.list_jobs(NS, JobFilter()) == []


def test_delay_and_relative_deadline_count_from_the_store_clock(
    store: Store, clock: ManualClock
) -> None:
    clock.advance(100)

    job = enqueue_one(store, new_job(delay=30, deadline_in=90))

    assert job.status is JobStatus.SCHEDULED
    assert ts(job.run_at) == T0 + 130
    assert ts(job.deadline) == T0 + 190


def test_absolute_run_at_in_the_past_is_ready_at_once_and_in_the_future_is_scheduled(
    store: Store,
) -> None:
    past = enqueue_one(store, new_job(run_at=T0 - 60, deadline=T0 + 60))
    future = enqueue_one(store, new_job(run_at=T0 + 60))

    assert (past.status, ts(past.run_at), ts(past.deadline)) == (
        JobStatus.QUEUED, T0 - 60, T0 + 60
    )
    assert (future.status, ts(future.run_at)) == (JobStatus.SCHEDULED, T0 + 60)


# -- idempotency keys ------------------------------------------------------------------------


def test_repeating_an_idempotency_key_returns_the_existing_job(store: Store) -> None:
    first = enqueue_one(store, new_job("contract.a", 1, idempotency_key="order-17"))

    again = enqueue_one(store, new_job("contract.a", 2, priority=9, idempotency_key="order-17"))

    assert again == first
    assert again.args == [1]
    assert [j.id for j in store.list_jobs(NS, JobFilter())] == [first.id]


def test_an_idempotency_key_repeated_inside_one_batch_makes_one_job(store: Store) -> None:
    jobs = store.enqueue(
        [new_job(idempotency_key="k"), new_job(), new_job(idempotency_key="k")]
    )

    assert jobs[0].id == jobs[2].id
    assert jobs[1].id != jobs[0].id
    assert len(store.list_jobs(NS, JobFilter())) == 2


def test_an_enqueue_says_which_requests_got_a_job_that_held_their_key(store: Store) -> None:
    first = store.enqueue([new_job(idempotency_key="k1"), new_job()])
    second = store.enqueue([new_job(), new_job(idempotency_key="k1"),
                            new_job(idempotency_key="k2"), new_job(idempotency_key="k2")])

    assert first.existing == (False, False)
    assert second.existing == (False, True, False, True)
    assert second[1].id == first[0].id
    assert second[3].id == second[2].id


def test_every_job_of_a_mixed_batch_is_returned_as_stored(store: Store) -> None:
    # A held key answers the job as it stands now (claimed since), not as requested; the
    # jobs written answer what was stored, ready or due later, whatever their key.
    [held] = store.enqueue([new_job("contract.a", {"n": [1, 2]}, idempotency_key="held")])
    claim_one(store)
    batch = store.enqueue([
        new_job("contract.b", 1, delay=60, deadline_in=120, idempotency_key="new"),
        new_job("contract.c", "x", priority=-3, timeout=2.5, mode="fast"),
        new_job("contract.d", idempotency_key="held"),
        new_job("contract.e", [None], run_at=T0 - 5, deadline=T0 + 30),
        new_job("contract.f", idempotency_key="new"),
        new_job("contract.g"),
    ])

    assert batch.existing == (False, False, True, False, True, False)
    assert [job.task for job in batch] == [
        "contract.b", "contract.c", "contract.a", "contract.e", "contract.b", "contract.g"]
    for job in batch:
        assert job == store.get_job(NS, job.id)
    assert batch[2].id == held.id
    assert (batch[2].status, batch[2].attempt) == (JobStatus.RUNNING, 1)
    assert batch[0].status is JobStatus.SCHEDULED
    assert batch[3].status is JobStatus.QUEUED


def test_an_idempotency_key_still_holds_after_its_job_finished(store: Store) -> None:
    first = enqueue_one(store, new_job(idempotency_key="once"))
    store.cancel_job(NS, first.id)

    again = enqueue_one(store, new_job(idempotency_key="once"))

    assert again.id == first.id
    assert again.status is JobStatus.CANCELLED


def test_the_same_idempotency_key_in_another_namespace_makes_a_new_job(store: Store) -> None:
    ours = enqueue_one(store, new_job(idempotency_key="shared"))

    theirs = enqueue_one(store, new_job(namespace=OTHER_NS, idempotency_key="shared"))

    assert theirs.id != ours.id
    assert theirs.namespace == OTHER_NS
    assert store.get_job(OTHER_NS, theirs.id) == theirs
    assert store.get_job(NS, ours.id) == ours


def test_a_job_is_invisible_from_another_namespace(store: Store) -> None:
    job = enqueue_one(store)

    with pytest.raises(JobNotFound):
        store.get_job(OTHER_NS, job.id)
    assert store.get_jobs(OTHER_NS, [job.id]) == []
    assert store.list_jobs(OTHER_NS, JobFilter()) == []
