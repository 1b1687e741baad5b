"""What operators do: cancel, retry, replay and purge the dead-letter queue, look jobs and
their attempts up, watch workers and queue statistics; and the maintenance passes."""

from __future__ import annotations

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import IllegalTransition, JobNotFound
from taskwheel.jobs import (
    AttemptOutcome,
    DeadlinePolicy,
    Guarantee,
    Job,
    JobFilter,
    StartWaits,
)
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import (
    NS,
    OTHER_NS,
    QUEUE,
    T0,
    TTL,
    claim_one,
    enqueue_one,
    failed,
    new_job,
    registration,
    succeeded,
    ts,
)


def dead_job(store: Store, *, namespace: str = NS) -> Job:
    enqueue_one(store, new_job(max_attempts=1, namespace=namespace))
    job = claim_one(store, namespace=namespace)
    assert store.finish_attempts([failed(job, JobStatus.DEAD)]) == []
    return store.get_job(namespace, job.id)


def ids(jobs: list[Job]) -> list[int]:
    return [j.id for j in jobs]


# -- cancelling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 60], ids=["queued", "scheduled"])
def test_cancelling_a_pending_job_ends_it_at_once(
    store: Store, clock: ManualClock, delay: float
) -> None:
    job = enqueue_one(store, new_job(delay=delay))
    clock.advance(delay + 1)

    cancelled = store.cancel_job(NS, job.id)

    assert cancelled.status is JobStatus.CANCELLED
    assert ts(cancelled.finished_at) == T0 + delay + 1
    assert store.get_job(NS, job.id) == cancelled
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs == []


def test_cancelling_a_running_job_asks_its_worker_to_stop(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w1")

    asked = store.cancel_job(NS, job.id)

    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    assert (asked.worker_id, asked.fence) == ("w1", job.fence)
    assert store.heartbeat("w1", TTL, {job.id: job.fence}) == {job.id: True}


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED])
def test_cancelling_a_finished_job_is_refused(store: Store, status: JobStatus) -> None:
    job = enqueue_one(store)
    if status is JobStatus.CANCELLED:
        store.cancel_job(NS, job.id)
    else:
        running = claim_one(store)
        outcome = succeeded(running) if status is JobStatus.SUCCEEDED else failed(running, status)
        store.finish_attempts([outcome])
    before = store.get_job(NS, job.id)

    with pytest.raises(IllegalTransition):
        store.cancel_job(NS, job.id)

    assert store.get_job(NS, job.id) == before


def test_cancelling_an_unknown_or_foreign_job_is_job_not_found(store: Store) -> None:
    theirs = enqueue_one(store, new_job(namespace=OTHER_NS))

    with pytest.raises(JobNotFound):
        store.cancel_job(NS, theirs.id)
    with pytest.raises(JobNotFound):
        store.cancel_job(NS, 10_000)
    assert store.get_job(OTHER_NS, theirs.id).status is JobStatus.QUEUED


# -- retrying and the dead-letter queue ------------------------------------------------------


def test_retrying_a_dead_job_queues_it_with_a_fresh_set_of_attempts(
    store: Store, clock: ManualClock
) -> None:
    dead = dead_job(store)
    clock.advance(100)

    retried = store.retry_job(NS, dead.id)

    assert (retried.status, retried.attempt, retried.finished_at) == (JobStatus.QUEUED, 0, None)
    assert ts(retried.run_at) == T0 + 100
    again = claim_one(store)
    assert (again.id, again.attempt) == (dead.id, 1)
    assert again.fence > dead.fence, "fences keep growing across retries"


def test_retrying_a_succeeded_job_runs_it_again(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)
    store.finish_attempts([succeeded(job, "first")])

    retried = store.retry_job(NS, job.id)

    assert (retried.status, retried.result) == (JobStatus.QUEUED, None)
    assert claim_one(store).id == job.id


def test_retrying_an_expired_job_lets_it_run_despite_its_old_deadline(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store, new_job(deadline_in=5))
    clock.advance(10)
    assert store.expire_missed_deadlines(NS) == 1

    assert store.retry_job(NS, job.id).status is JobStatus.QUEUED

    assert claim_one(store).id == job.id


@pytest.mark.parametrize("delay", [0, 60], ids=["queued", "scheduled"])
def test_retrying_a_pending_job_is_refused(store: Store, delay: float) -> None:
    job = enqueue_one(store, new_job(delay=delay))

    with pytest.raises(IllegalTransition):
        store.retry_job(NS, job.id)

    assert store.get_job(NS, job.id) == job


def test_retrying_a_running_job_is_refused(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)

    with pytest.raises(IllegalTransition):
        store.retry_job(NS, job.id)

    assert store.get_job(NS, job.id) == job


def test_replaying_named_dead_jobs_queues_only_those(store: Store) -> None:
    first, second, third = dead_job(store), dead_job(store), dead_job(store)

    assert store.replay_dead(NS, [first.id, third.id]) == [first.id, third.id]

    statuses = {j.id: j.status for j in store.get_jobs(NS, [first.id, second.id, third.id])}
    assert statuses == {
        first.id: JobStatus.QUEUED,
        second.id: JobStatus.DEAD,
        third.id: JobStatus.QUEUED,
    }


def test_replaying_all_dead_jobs_queues_every_dead_job_of_the_namespace(store: Store) -> None:
    ours = [dead_job(store), dead_job(store)]
    theirs = dead_job(store, namespace=OTHER_NS)
    alive = enqueue_one(store)

    assert sorted(store.replay_dead(NS, None)) == ids(ours)

    assert {j.status for j in store.get_jobs(NS, ids(ours))} == {JobStatus.QUEUED}
    assert store.get_job(NS, alive.id) == alive
    assert store.get_job(OTHER_NS, theirs.id).status is JobStatus.DEAD
    assert store.replay_dead(NS, None) == []


def test_replaying_a_job_that_is_not_dead_replays_nothing(store: Store) -> None:
    dead = dead_job(store)
    alive = enqueue_one(store)

    with pytest.raises(IllegalTransition):
        store.replay_dead(NS, [dead.id, alive.id])

    assert store.get_job(NS, dead.id).status is JobStatus.DEAD
    assert store.get_job(NS, alive.id) == alive


def test_purging_the_dead_letter_queue_deletes_dead_jobs_and_their_attempts(
    store: Store,
) -> None:
    dead = [dead_job(store), dead_job(store)]
    theirs = dead_job(store, namespace=OTHER_NS)
    alive = enqueue_one(store)

    assert store.purge_dead(NS) == 2

    assert store.get_jobs(NS, ids(dead)) == []
    assert all(store.list_attempts(NS, j.id) == [] for j in dead)
    assert store.get_job(NS, alive.id) == alive
    assert store.get_job(OTHER_NS, theirs.id).status is JobStatus.DEAD
    assert store.purge_dead(NS) == 0


def test_purging_dead_jobs_by_ids_deletes_only_the_dead_ones_among_them(store: Store) -> None:
    first, second, kept = dead_job(store), dead_job(store), dead_job(store)
    theirs = dead_job(store, namespace=OTHER_NS)
    alive = enqueue_one(store)

    assert store.purge_dead(NS, [first.id, second.id, alive.id, theirs.id, 10_000]) == 2

    assert store.get_jobs(NS, [first.id, second.id]) == []
    assert store.list_attempts(NS, first.id) == []
    assert store.get_job(NS, kept.id).status is JobStatus.DEAD
    assert store.get_job(NS, alive.id) == alive
    assert store.get_job(OTHER_NS, theirs.id).status is JobStatus.DEAD
    assert store.purge_dead(NS, [first.id]) == 0


# -- looking jobs up ------------------------------------------------------------------------------


def test_get_jobs_returns_those_that_exist_in_the_namespace(store: Store) -> None:
    a, b = store.enqueue([new_job(), new_job()])
    theirs = enqueue_one(store, new_job(namespace=OTHER_NS))

    found = store.get_jobs(NS, [b.id, 10_000, a.id, theirs.id])

    assert sorted(found, key=lambda j: j.id) == [a, b]
    assert store.get_jobs(NS, []) == []


def test_get_job_of_an_unknown_id_is_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.get_job(NS, 10_000)


def test_list_jobs_filters_by_status_queue_and_task_newest_first(store: Store) -> None:
    a = enqueue_one(store, new_job("contract.a", queue="mail"))
    b = enqueue_one(store, new_job("contract.b", queue="mail"))
    c = enqueue_one(store, new_job("contract.a", queue="sms"))
    d = enqueue_one(store, new_job("contract.a", queue="mail", delay=60))
    enqueue_one(store, new_job("contract.a", queue="mail", namespace=OTHER_NS))

    assert ids(store.list_jobs(NS, JobFilter())) == [d.id, c.id, b.id, a.id]
    assert ids(store.list_jobs(NS, JobFilter(queue="mail"))) == [d.id, b.id, a.id]
    assert ids(store.list_jobs(NS, JobFilter(task="contract.a"))) == [d.id, c.id, a.id]
    assert ids(store.list_jobs(NS, JobFilter(status=JobStatus.SCHEDULED))) == [d.id]
    both = JobFilter(status=JobStatus.QUEUED, queue="mail", task="contract.a")
    assert ids(store.list_jobs(NS, both)) == [a.id]
    assert ids(store.list_jobs(NS, JobFilter(limit=2))) == [d.id, c.id]


def test_list_attempts_tells_the_history_of_a_job_first_first(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(max_attempts=3))
    first = claim_one(store, "w1")
    clock.advance(2)
    store.finish_attempts([failed(first, JobStatus.QUEUED, error="E1", traceback="T1")])
    clock.advance(3)
    second = claim_one(store, "w2")
    clock.advance(4)
    store.finish_attempts([succeeded(second, {"ok": True})])

    one, two = store.list_attempts(NS, first.id)

    assert (one.job_id, one.attempt, one.fence, one.worker_id) == (first.id, 1, first.fence, "w1")
    assert (ts(one.started_at), ts(one.ended_at)) == (T0, T0 + 2)
    assert (one.outcome, one.error, one.traceback) == (AttemptOutcome.FAILED, "E1", "T1")
    assert (two.attempt, two.fence, two.worker_id) == (2, second.fence, "w2")
    assert (ts(two.started_at), ts(two.ended_at)) == (T0 + 5, T0 + 9)
    assert (two.outcome, two.result, two.error) == (AttemptOutcome.SUCCEEDED, {"ok": True}, None)
    assert store.list_attempts(OTHER_NS, first.id) == []


def test_finished_per_minute_counts_the_attempts_that_ended_by_minute_and_outcome(
    store: Store, clock: ManualClock
) -> None:
    minute = (T0 // 60 + 1) * 60  # a minute's start, after T0
    clock.set(minute + 5)
    enqueue_one(store, new_job(max_attempts=3))
    enqueue_one(store, new_job())
    first, second = claim_one(store), claim_one(store)
    store.finish_attempts([failed(first, JobStatus.QUEUED), succeeded(second)])
    clock.set(minute + 65)
    again = claim_one(store)
    store.finish_attempts([succeeded(again)])
    enqueue_one(store, new_job(namespace=OTHER_NS))
    store.finish_attempts([succeeded(claim_one(store, namespace=OTHER_NS))])

    assert store.finished_per_minute(NS, minute) == [
        (minute, "failed", 1), (minute, "succeeded", 1), (minute + 60, "succeeded", 1)]
    assert store.finished_per_minute(NS, minute + 60) == [(minute + 60, "succeeded", 1)]
    assert store.finished_per_minute(OTHER_NS, minute) == [(minute + 60, "succeeded", 1)]


def test_a_job_never_started_has_no_attempts(store: Store) -> None:
    job = enqueue_one(store)

    assert store.list_attempts(NS, job.id) == []


# -- workers and statistics --------------------------------------------------------------------


def test_a_registered_worker_is_listed_alive_until_it_goes_silent(
    store: Store, clock: ManualClock
) -> None:
    store.register_worker(registration("w1", queues=("mail", "sms"), heartbeat_interval=5))
    store.register_worker(registration("w9", namespace=OTHER_NS))

    [worker] = store.stats(NS).workers
    assert (worker.id, worker.namespace, worker.queues) == ("w1", NS, ["mail", "sms"])
    assert (worker.hostname, worker.pid, worker.concurrency, worker.pool) == (
        "contract-host", 4242, 4, "thread"
    )
    assert ts(worker.started_at) == ts(worker.last_seen_at) == T0
    assert worker.alive

    clock.advance(3 * 5 + 1)
    assert not store.stats(NS).workers[0].alive

    store.heartbeat("w1", TTL, {})  # running nothing, and alive
    [back] = store.stats(NS).workers
    assert back.alive
    assert ts(back.last_seen_at) == T0 + 16


def test_the_slowest_heartbeat_is_of_the_namespace_s_workers_and_those_serving_all(
    store: Store, clock: ManualClock
) -> None:
    assert store.slowest_heartbeat(NS) is None
    store.register_worker(registration("w1", heartbeat_interval=1.5))
    store.register_worker(registration("w2", heartbeat_interval=3.0))
    store.register_worker(registration("w9", namespace=OTHER_NS, heartbeat_interval=60.0))
    assert store.slowest_heartbeat(NS) == 3.0
    clock.advance(3600)  # silent for an hour: a worker out of touch counts all the same
    assert store.slowest_heartbeat(NS) == 3.0
    store.register_worker(registration("all", namespace="*", heartbeat_interval=7.5))
    assert store.slowest_heartbeat(NS) == 7.5
    assert store.slowest_heartbeat(OTHER_NS) == 60.0
    assert store.slowest_heartbeat("*") == 60.0  # a process maintaining every namespace


def test_an_unregistered_worker_is_no_longer_listed(store: Store) -> None:
    store.register_worker(registration("w1"))
    store.register_worker(registration("w2"))

    store.unregister_worker("w1")

    assert [w.id for w in store.stats(NS).workers] == ["w2"]


def test_stats_count_jobs_by_queue_and_state_and_ready_jobs_by_priority(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(queue="mail", priority=p) for p in (1, 1, 5, 0, 3)])
    store.enqueue([new_job(queue="mail", delay=60), new_job(queue="sms")])
    store.enqueue([new_job(queue="mail", namespace=OTHER_NS)])
    clock.advance(10)
    running = store.claim_jobs(NS, "w1", ["mail"], 2, TTL).jobs  # priorities 5 and 3
    store.finish_attempts([succeeded(running[0])])

    queues = {q.queue: q for q in store.stats(NS).queues}

    assert sorted(queues) == ["mail", "sms"]
    mail = queues["mail"]
    assert mail.counts == {"queued": 3, "scheduled": 1, "running": 1, "succeeded": 1}
    assert mail.ready_by_priority == {1: 2, 0: 1}
    assert list(mail.ready_by_priority) == [1, 0], "highest priority first"
    assert mail.oldest_ready_age == 10
    # By priority: the unfinished and dead jobs only (the succeeded one is not there).
    assert mail.by_priority == {3: {"running": 1}, 1: {"queued": 2},
                                0: {"queued": 1, "scheduled": 1}}
    assert list(mail.by_priority) == [3, 1, 0], "highest priority first"
    assert queues["sms"].counts == {"queued": 1}
    assert queues["sms"].by_priority == {0: {"queued": 1}}


def test_start_waits_measure_ready_to_started_of_recent_starts_by_queue_and_priority(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(queue="mail", priority=5), new_job(queue="mail", priority=5),
                   new_job(queue="mail", delay=30), new_job(queue="sms", namespace=OTHER_NS)])
    early = claim_one(store, queue="mail")  # waited 0 s
    store.finish_attempts([succeeded(early)])
    clock.advance(20)
    claim_one(store, queue="mail")  # the other priority 5 one: waited 20 s
    clock.advance(20)
    store.promote_due_jobs(NS)
    claim_one(store, queue="mail")  # due at 30, started at 40: waited 10 s
    clock.advance(5)

    waits = sorted(store.start_waits(NS, T0), key=lambda w: w.priority)

    assert waits == [StartWaits("mail", 0, 1, 10.0, 10.0), StartWaits("mail", 5, 2, 10.0, 20.0)]
    later = sorted(store.start_waits(NS, T0 + 1), key=lambda w: w.priority)
    assert later == [StartWaits("mail", 0, 1, 10.0, 10.0), StartWaits("mail", 5, 1, 20.0, 20.0)]
    assert store.start_waits(NS, T0 + 41) == []
    assert store.start_waits(OTHER_NS, T0) == []


def test_a_job_due_before_it_was_enqueued_is_ready_since_it_was_enqueued(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(run_at=clock.now() - 6 * 365 * 86400))  # --at 2020, say
    clock.advance(5)
    enqueue_one(store)
    clock.advance(5)

    [queue] = store.stats(NS).queues

    assert queue.oldest_ready_age == 10


def test_stats_of_a_queue_with_nothing_ready_have_no_ready_age(store: Store) -> None:
    enqueue_one(store, new_job(delay=60))

    [queue] = store.stats(NS).queues

    assert (queue.ready_by_priority, queue.oldest_ready_age) == ({}, None)


def test_stats_of_an_empty_namespace_are_empty(store: Store) -> None:
    enqueue_one(store)

    stats = store.stats(OTHER_NS)

    assert (stats.queues, stats.workers) == ([], [])


# -- maintenance passes --------------------------------------------------------------------------


def test_promoting_due_jobs_makes_them_ready_and_says_when_the_next_falls_due(
    store: Store, clock: ManualClock
) -> None:
    soon = enqueue_one(store, new_job(delay=10))
    enqueue_one(store, new_job(delay=50))
    assert store.promote_due_jobs(NS) == (0, T0 + 10)

    clock.advance(10)

    assert store.promote_due_jobs(NS) == (1, T0 + 50)
    assert store.get_job(NS, soon.id).status is JobStatus.QUEUED
    assert store.promote_due_jobs(OTHER_NS) == (0, None)


def test_expiring_missed_deadlines_expires_only_pending_jobs_past_their_deadline(
    store: Store, clock: ManualClock
) -> None:
    missed = enqueue_one(store, new_job(deadline_in=5))
    missed_delayed = enqueue_one(store, new_job(delay=3, deadline_in=5))
    late_ok = enqueue_one(store, new_job(deadline_in=5, deadline_policy=DeadlinePolicy.RUN_LATE))
    in_time = enqueue_one(store, new_job(deadline_in=50))
    clock.advance(5)

    assert store.expire_missed_deadlines(NS) == 2

    statuses = {
        j.id: j.status
        for j in store.get_jobs(NS, [missed.id, missed_delayed.id, late_ok.id, in_time.id])
    }
    assert statuses == {
        missed.id: JobStatus.EXPIRED,
        missed_delayed.id: JobStatus.EXPIRED,
        late_ok.id: JobStatus.QUEUED,
        in_time.id: JobStatus.QUEUED,
    }
    assert store.expire_missed_deadlines(NS) == 0


def test_pruning_deletes_jobs_that_ended_before_the_cutoff_but_keeps_the_dead(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(), new_job(), new_job(max_attempts=1)])
    done, also_done, dies = store.claim_jobs(NS, "w1", [QUEUE], 3, TTL).jobs
    store.finish_attempts([succeeded(done), failed(dies, JobStatus.DEAD)])
    cancelled = store.cancel_job(NS, enqueue_one(store).id)
    clock.advance(100)
    store.finish_attempts([succeeded(also_done)])  # ended after the cutoff
    pending = enqueue_one(store)

    assert store.prune_finished(NS, before=T0 + 50) == 2

    remaining = ids(store.list_jobs(NS, JobFilter()))
    assert sorted(remaining) == sorted([also_done.id, dies.id, pending.id])
    assert store.list_attempts(NS, done.id) == []
    assert cancelled.id not in remaining


def test_pruning_stops_at_its_limit(store: Store, clock: ManualClock) -> None:
    jobs = store.enqueue([new_job() for _ in range(5)])
    for job in jobs:
        store.cancel_job(NS, job.id)
    clock.advance(10)

    assert store.prune_finished(NS, before=T0 + 5, limit=3) == 3
    assert store.prune_finished(NS, before=T0 + 5, limit=3) == 2
    assert store.list_jobs(NS, JobFilter()) == []


# -- the store itself ----------------------------------------------------------------------------


def test_the_store_clock_is_the_injected_clock(store: Store, clock: ManualClock) -> None:
    assert store.now() == T0
    clock.advance(42.5)
    assert store.now() == T0 + 42.5


def test_describe_names_the_backend(store: Store) -> None:
    description = store.describe()

    assert isinstance(description.get("kind"), str)
    assert description["kind"]


def test_an_at_most_once_guarantee_is_kept_on_the_job(store: Store) -> None:
    job = enqueue_one(store, new_job(guarantee=Guarantee.AT_MOST_ONCE))

    assert store.get_job(NS, job.id).guarantee is Guarantee.AT_MOST_ONCE
