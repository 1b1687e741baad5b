"""A worker process that died, seen by its supervisor: its attempts end at once (no wait for
the leases to expire), each a crashed attempt, retried by its task's policy or ended; the
worker's registration and leases go with it; nobody else's work is touched."""

from __future__ import annotations

from taskwheel.clock import ManualClock
from taskwheel.jobs import AttemptOutcome, Guarantee
from taskwheel.lifecycle import JobStatus
from taskwheel.retry import Retry
from taskwheel.stores.base import Store

from .conftest import (
    NS,
    OTHER_NS,
    QUEUE,
    T0,
    TTL,
    claim_one,
    enqueue_one,
    new_job,
    registration,
    succeeded,
    ts,
)
from .test_workflows import claim, run_of, statuses, workflow

DIED = "the worker process died (killed by SIGSEGV) while running it"
NO_WAIT = {"contract.noop": Retry(max_attempts=3, base="0s", jitter=0)}


def test_the_attempts_of_a_dead_worker_end_at_once_and_their_jobs_run_again(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(), new_job()])
    held = store.claim_jobs(NS, "w-dead", [QUEUE], 2, TTL).jobs
    clock.advance(1)  # long before the leases would expire

    ended = store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT)

    assert [job.id for job in ended] == sorted(job.id for job in held)
    for job, before in zip(ended, sorted(held, key=lambda j: j.id), strict=True):
        assert (job.status, job.lease_expires_at, job.last_error) == (
            JobStatus.QUEUED, None, DIED)
        assert job.attempt == before.attempt == 1  # the crash used up an attempt
        [attempt] = store.list_attempts(NS, job.id)
        assert (attempt.outcome, attempt.error) == (AttemptOutcome.CRASHED, DIED)
        assert (attempt.attempt, attempt.fence, attempt.worker_id) == (1, before.fence, "w-dead")
        assert ts(attempt.ended_at) == T0 + 1
    again = store.claim_jobs(NS, "w-next", [QUEUE], 2, TTL).jobs
    assert sorted(job.attempt for job in again) == [2, 2]


def test_a_crashed_job_waits_its_tasks_retry_delay(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, new_job("contract.poison"))
    enqueue_one(store, new_job("contract.other"))
    poison, other = store.claim_jobs(NS, "w-dead", [QUEUE], 2, TTL).jobs

    ended = store.end_attempts_of_dead_worker(
        "w-dead", DIED, {"contract.poison": Retry(base="10s", jitter=0)})

    by_id = {job.id: job for job in ended}
    assert by_id[poison.id].status is JobStatus.SCHEDULED
    assert ts(by_id[poison.id].run_at) == T0 + 10
    # A task the caller names no policy for waits the default policy's first delay.
    assert by_id[other.id].status is JobStatus.SCHEDULED
    assert store.claim_jobs(NS, "w-next", [QUEUE], 2, TTL).jobs == []
    clock.advance(5)
    assert [job.id for job in store.claim_jobs(NS, "w-next", [QUEUE], 2, TTL).jobs] == [
        other.id]
    clock.advance(5)
    assert [job.id for job in store.claim_jobs(NS, "w-next", [QUEUE], 2, TTL).jobs] == [
        poison.id]


def test_a_job_that_keeps_crashing_its_worker_ends_dead_after_its_last_attempt(
    store: Store,
) -> None:
    job = enqueue_one(store, new_job(max_attempts=2))
    for worker in ("w-1", "w-2"):
        claimed = claim_one(store, worker)
        assert claimed.id == job.id
        store.end_attempts_of_dead_worker(worker, DIED, NO_WAIT)

    dead = store.get_job(NS, job.id)
    assert (dead.status, dead.attempt, dead.last_error) == (JobStatus.DEAD, 2, DIED)
    assert [(a.outcome, a.worker_id) for a in store.list_attempts(NS, job.id)] == [
        (AttemptOutcome.CRASHED, "w-1"), (AttemptOutcome.CRASHED, "w-2")]


def test_an_at_most_once_job_of_a_dead_worker_is_never_run_again(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store, new_job(max_attempts=5, guarantee=Guarantee.AT_MOST_ONCE))
    claim_one(store, "w-dead")

    [ended] = store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT)

    assert ended.status is JobStatus.DEAD
    assert ended.last_error == f"{DIED} (at-most-once: not run again)"
    clock.advance(3600)
    assert store.claim_jobs(NS, "w-next", [QUEUE], 10, TTL).jobs == []
    assert store.get_job(NS, job.id).status is JobStatus.DEAD


def test_a_job_of_a_dead_worker_asked_to_cancel_ends_cancelled(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w-dead")
    store.cancel_job(NS, job.id)

    [ended] = store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT)

    assert ended.status is JobStatus.CANCELLED
    assert store.list_attempts(NS, job.id)[0].outcome is AttemptOutcome.CRASHED


def test_only_the_dead_workers_running_attempts_are_ended(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(), new_job(), new_job(namespace=OTHER_NS), new_job()])
    finished = claim_one(store, "w-dead")
    store.finish_attempts([succeeded(finished)])
    alive = claim_one(store, "w-alive")
    elsewhere = claim_one(store, "w-dead", namespace=OTHER_NS)  # it served both
    mine = claim_one(store, "w-dead")

    ended = store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT)

    assert [job.id for job in ended] == sorted([elsewhere.id, mine.id])
    assert store.get_job(NS, alive.id) == alive
    assert store.get_job(NS, finished.id).status is JobStatus.SUCCEEDED
    assert [a.outcome for a in store.list_attempts(NS, finished.id)] == [
        AttemptOutcome.SUCCEEDED]
    assert store.get_job(OTHER_NS, elsewhere.id).status is JobStatus.QUEUED
    assert store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT) == []


def test_a_stale_report_of_the_dead_worker_is_refused_afterwards(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w-dead")
    store.end_attempts_of_dead_worker("w-dead", DIED, NO_WAIT)
    again = claim_one(store, "w-next")

    assert store.finish_attempts([succeeded(job)]) == [job.id]
    assert store.get_job(NS, job.id).status is JobStatus.RUNNING
    assert store.finish_attempts([succeeded(again)]) == []


def test_the_dead_workers_registration_and_leases_go_with_it(
    store: Store, clock: ManualClock
) -> None:
    store.register_worker(registration("w-dead"))
    store.register_worker(registration("w-alive"))
    assert store.elect(NS, "maintenance", "w-dead", TTL)
    assert store.elect(OTHER_NS, "maintenance", "w-dead", TTL)
    assert store.elect(NS, "other", "w-alive", TTL)

    assert store.end_attempts_of_dead_worker("w-dead", DIED) == []

    assert [w.id for w in store.stats(NS).workers] == ["w-alive"]
    assert store.lease_holder(NS, "maintenance") is None
    assert store.lease_holder(OTHER_NS, "maintenance") is None
    assert store.lease_holder(NS, "other") == "w-alive"
    assert store.elect(NS, "maintenance", "w-alive", TTL)  # at once, not after the TTL


def test_a_step_of_a_dead_worker_on_its_last_attempt_fails_its_dependents(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}, max_attempts=1))
    claim(store, "a", worker="w-dead")

    store.end_attempts_of_dead_worker("w-dead", DIED)

    assert statuses(store, run.id) == {"a": JobStatus.DEAD, "b": JobStatus.UPSTREAM_FAILED}
    assert run_of(store, run.id).status.value == "failed"
