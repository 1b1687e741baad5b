"""Outcomes of attempts: applied only under the current fencing token; retries wait out
their backoff; the last failure dies with its error; released leases and checkpoints."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import IllegalTransition
from taskwheel.jobs import AttemptOutcome, Guarantee, Job, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import (
    NS,
    QUEUE,
    T0,
    TTL,
    claim_one,
    enqueue_one,
    failed,
    new_job,
    succeeded,
    ts,
)


def replaced_attempt(store: Store, clock: ManualClock) -> tuple[Job, Job]:
    """A job whose first worker vanished: (the presumed-dead attempt, the one that
    replaced it after the rescue)."""
    enqueue_one(store, new_job(max_attempts=3))
    old = claim_one(store, "w-old")
    clock.advance(TTL + 1)
    assert store.rescue_expired_leases(NS).requeued == [old.id]
    new = claim_one(store, "w-new")
    assert new.fence != old.fence
    return old, new


# -- success --------------------------------------------------------------------------------


def test_completing_with_the_current_fence_ends_the_job_with_its_result(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store)
    job = claim_one(store)
    clock.advance(3)

    assert store.finish_attempts([succeeded(job, {"sent": 3})]) == []

    done = store.get_job(NS, job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == {"sent": 3}
    assert ts(done.finished_at) == T0 + 3
    assert done.lease_expires_at is None
    assert store.claim_jobs(NS, "w2", [QUEUE], 10, TTL).jobs == []


def test_a_batch_of_outcomes_applies_the_current_and_rejects_the_stale(
    store: Store, clock: ManualClock
) -> None:
    old, new = replaced_attempt(store, clock)
    other = enqueue_one(store)
    other = claim_one(store, "w-new")

    rejected = store.finish_attempts([succeeded(old, "old"), succeeded(other, "other")])

    assert rejected == [old.id]
    assert store.get_job(NS, other.id).result == "other"
    assert store.get_job(NS, new.id).status is JobStatus.RUNNING


def test_outcomes_of_jobs_that_end_alone_are_applied_and_fenced_as_any_other(
    store: Store, clock: ManualClock
) -> None:
    """`Outcome.ends_alone` (a worker's hint: no schedule, no workflow run) takes the
    report's one-statement path: the same answer, the same attempts, the same fencing."""
    old, new = replaced_attempt(store, clock)
    other = enqueue_one(store)
    other = claim_one(store, "w-new")
    outcomes = [replace(succeeded(old, "old"), ends_alone=True),
                replace(failed(other, JobStatus.SCHEDULED, retry_delay=5.0), ends_alone=True)]

    assert store.finish_attempts(outcomes) == [old.id]

    assert store.get_job(NS, new.id).status is JobStatus.RUNNING
    ended = store.get_job(NS, other.id)
    assert (ended.status, ended.last_error) == (JobStatus.SCHEDULED, "ValueError: boom")
    assert ts(ended.run_at) == clock.now() + 5.0
    assert [(a.attempt, a.outcome) for a in store.list_attempts(NS, other.id)] == [
        (1, AttemptOutcome.FAILED)]


# -- fencing ----------------------------------------------------------------------------------


def test_a_stale_fence_cannot_complete_a_job_another_worker_is_running(
    store: Store, clock: ManualClock
) -> None:
    old, new = replaced_attempt(store, clock)

    assert store.finish_attempts([succeeded(old, "from the zombie")]) == [old.id]

    current = store.get_job(NS, new.id)
    assert current.status is JobStatus.RUNNING
    assert (current.worker_id, current.fence, current.result) == ("w-new", new.fence, None)


@pytest.mark.parametrize("stale_status", [JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.QUEUED])
def test_a_stale_fence_cannot_overwrite_what_the_newer_attempt_left(
    store: Store, clock: ManualClock, stale_status: JobStatus
) -> None:
    old, new = replaced_attempt(store, clock)
    assert store.finish_attempts([succeeded(new, "from the live worker")]) == []
    left = store.get_job(NS, new.id)

    stale = Outcome(old.id, old.fence, stale_status, AttemptOutcome.FAILED, error="late")
    assert store.finish_attempts([stale]) == [old.id]

    assert store.get_job(NS, new.id) == left
    assert left.result == "from the live worker"
    assert [a.fence for a in store.list_attempts(NS, new.id)] == [old.fence, new.fence]


def test_an_outcome_reported_twice_is_applied_once(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)

    assert store.finish_attempts([succeeded(job, 1)]) == []
    assert store.finish_attempts([failed(job, JobStatus.DEAD)]) == [job.id]

    assert store.get_job(NS, job.id).status is JobStatus.SUCCEEDED
    assert len(store.list_attempts(NS, job.id)) == 1


@pytest.mark.parametrize("target", [JobStatus.RUNNING, JobStatus.EXPIRED, JobStatus.WAITING])
def test_an_outcome_naming_an_illegal_next_state_is_refused_and_changes_nothing(
    store: Store, target: JobStatus
) -> None:
    enqueue_one(store)
    job = claim_one(store)
    other = enqueue_one(store)
    other = claim_one(store)

    with pytest.raises(IllegalTransition):
        store.finish_attempts(
            [succeeded(other), Outcome(job.id, job.fence, target, AttemptOutcome.FAILED)]
        )

    assert store.get_job(NS, job.id) == job
    assert store.get_job(NS, other.id) == other
    assert store.list_attempts(NS, job.id) == []


# -- failure and retries -----------------------------------------------------------------------


def test_a_failure_with_attempts_left_retries_after_its_backoff(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(max_attempts=3))
    first = claim_one(store)
    clock.advance(2)

    assert store.finish_attempts([failed(first, JobStatus.SCHEDULED, retry_delay=10)]) == []

    waiting = store.get_job(NS, first.id)
    assert waiting.status is JobStatus.SCHEDULED
    assert ts(waiting.run_at) == T0 + 2 + 10
    assert waiting.last_error == "ValueError: boom"
    assert waiting.lease_expires_at is None
    clock.advance(9)
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs == []
    clock.advance(1)
    second = claim_one(store)
    assert (second.id, second.attempt) == (first.id, 2)
    assert second.fence > first.fence


def test_a_failure_retried_at_once_is_claimable_at_once(store: Store) -> None:
    enqueue_one(store, new_job(max_attempts=2))
    first = claim_one(store)

    assert store.finish_attempts([failed(first, JobStatus.QUEUED)]) == []

    assert store.get_job(NS, first.id).status is JobStatus.QUEUED
    assert claim_one(store).attempt == 2


def test_the_last_failure_sends_the_job_to_the_dead_letter_queue_with_its_error(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(max_attempts=1))
    job = claim_one(store)
    clock.advance(4)
    outcome = failed(job, JobStatus.DEAD, error="KeyError: 'x'", traceback="Traceback: KeyError")

    assert store.finish_attempts([outcome]) == []

    dead = store.get_job(NS, job.id)
    assert dead.status is JobStatus.DEAD
    assert dead.last_error == "KeyError: 'x'"
    assert ts(dead.finished_at) == T0 + 4
    [attempt] = store.list_attempts(NS, job.id)
    assert attempt.outcome is AttemptOutcome.FAILED
    assert (attempt.error, attempt.traceback) == ("KeyError: 'x'", "Traceback: KeyError")
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs == []


def test_a_retry_of_a_job_asked_to_cancel_ends_it_cancelled(store: Store) -> None:
    enqueue_one(store, new_job(max_attempts=3))
    job = claim_one(store)
    store.cancel_job(NS, job.id)

    assert store.finish_attempts([failed(job, JobStatus.SCHEDULED, retry_delay=5)]) == []

    assert store.get_job(NS, job.id).status is JobStatus.CANCELLED


def test_a_job_that_stops_on_request_ends_cancelled(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)
    store.cancel_job(NS, job.id)
    outcome = Outcome(job.id, job.fence, JobStatus.CANCELLED, AttemptOutcome.CANCELLED)

    assert store.finish_attempts([outcome]) == []

    assert store.get_job(NS, job.id).status is JobStatus.CANCELLED
    assert store.list_attempts(NS, job.id)[0].outcome is AttemptOutcome.CANCELLED


# -- releasing leases ------------------------------------------------------------------------


def test_a_released_at_least_once_job_is_queued_again_without_using_an_attempt(
    store: Store,
) -> None:
    enqueue_one(store, new_job(max_attempts=1))
    job = claim_one(store, "w1")

    assert store.release_jobs("w1", {job.id: job.fence}) == [job.id]

    released = store.get_job(NS, job.id)
    assert (released.status, released.attempt, released.lease_expires_at) == (
        JobStatus.QUEUED, 0, None
    )
    again = claim_one(store, "w2")
    assert (again.attempt, again.worker_id) == (1, "w2")
    assert again.fence > job.fence


def test_a_released_attempt_is_recorded_as_interrupted_under_its_own_number(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store)
    job = claim_one(store, "w1")
    clock.advance(2)

    store.release_jobs("w1", {job.id: job.fence})

    [attempt] = store.list_attempts(NS, job.id)
    assert attempt.outcome is AttemptOutcome.INTERRUPTED
    assert (attempt.worker_id, attempt.fence) == ("w1", job.fence)
    assert (ts(attempt.started_at), ts(attempt.ended_at)) == (T0, T0 + 2)
    assert attempt.attempt == job.attempt == 1


def test_a_released_at_most_once_job_dies(store: Store) -> None:
    enqueue_one(store, new_job(guarantee=Guarantee.AT_MOST_ONCE))
    job = claim_one(store, "w1")

    assert store.release_jobs("w1", {job.id: job.fence}) == [job.id]

    dead = store.get_job(NS, job.id)
    assert dead.status is JobStatus.DEAD
    assert dead.last_error
    assert store.claim_jobs(NS, "w2", [QUEUE], 10, TTL).jobs == []


def test_a_released_job_asked_to_cancel_ends_cancelled(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w1")
    store.cancel_job(NS, job.id)

    assert store.release_jobs("w1", {job.id: job.fence}) == [job.id]

    assert store.get_job(NS, job.id).status is JobStatus.CANCELLED


def test_only_the_holder_with_the_current_fence_can_release(
    store: Store, clock: ManualClock
) -> None:
    old, new = replaced_attempt(store, clock)

    assert store.release_jobs("w-old", {old.id: old.fence}) == []
    assert store.release_jobs("w-other", {new.id: new.fence}) == []
    assert store.release_jobs("w-new", {new.id: old.fence}) == []

    assert store.get_job(NS, new.id) == new


# -- checkpoints -----------------------------------------------------------------------------


def test_a_checkpoint_saved_under_the_current_fence_is_kept_for_the_retry(
    store: Store,
) -> None:
    enqueue_one(store, new_job(max_attempts=2))
    first = claim_one(store)

    assert store.save_checkpoint(first.id, first.fence, '{"page": 4}') is True
    store.finish_attempts([failed(first, JobStatus.QUEUED)])

    assert claim_one(store).checkpoint == {"page": 4}


def test_a_checkpoint_with_a_stale_fence_is_refused(store: Store, clock: ManualClock) -> None:
    old, new = replaced_attempt(store, clock)
    assert store.save_checkpoint(new.id, new.fence, '{"page": 1}') is True

    assert store.save_checkpoint(old.id, old.fence, '{"page": 99}') is False

    assert store.get_job(NS, new.id).checkpoint == {"page": 1}


def test_a_checkpoint_of_a_finished_job_is_refused(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)
    store.finish_attempts([succeeded(job)])

    assert store.save_checkpoint(job.id, job.fence, '{"late": true}') is False
    assert store.get_job(NS, job.id).checkpoint is None
