"""Claims, heartbeats and lease extension: who holds a job, until when (by the store's
clock), under which fencing token, and in which order ready jobs are taken."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput
from taskwheel.fairness import QueueReserve
from taskwheel.gates import GateKind
from taskwheel.jobs import DeadlinePolicy, Job, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.engine import SQLStore

from .backends import BackendFactory
from .conftest import (
    NS,
    OTHER_NS,
    QUEUE,
    T0,
    TTL,
    claim_one,
    enqueue_one,
    new_job,
    succeeded,
    ts,
)


def claim_all(store: Store, worker: str = "w1", queues: list[str] | None = None) -> list[Job]:
    return store.claim_jobs(NS, worker, queues or [QUEUE], 1000, TTL).jobs


# -- what a claim does ---------------------------------------------------------------------


def test_a_claim_leases_the_job_to_the_worker_by_the_store_clock(
    store: Store, clock: ManualClock
) -> None:
    enqueued = enqueue_one(store)
    clock.advance(5)

    job = claim_one(store, "w1")

    assert job.id == enqueued.id
    assert job.status is JobStatus.RUNNING
    assert job.worker_id == "w1"
    assert job.attempt == 1
    assert job.fence > enqueued.fence
    assert ts(job.started_at) == T0 + 5
    assert ts(job.lease_expires_at) == T0 + 5 + TTL
    assert store.get_job(NS, job.id) == job


def test_every_claim_of_a_job_gets_a_new_fencing_token(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, new_job(max_attempts=5))
    fences = []
    for _ in range(3):
        job = claim_one(store)
        fences.append(job.fence)
        clock.advance(TTL + 1)
        assert store.rescue_expired_leases(NS).requeued == [job.id]

    assert fences == sorted(set(fences)), f"fences must strictly increase: {fences}"
    assert store.get_job(NS, job.id).attempt == 3


def test_a_running_job_is_not_claimed_again(store: Store) -> None:
    enqueue_one(store)
    claim_one(store, "w1")

    assert store.claim_jobs(NS, "w2", [QUEUE], 10, TTL).jobs == []


def test_a_claim_takes_at_most_its_limit(store: Store) -> None:
    store.enqueue([new_job() for _ in range(5)])

    first = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs
    second = store.claim_jobs(NS, "w2", [QUEUE], 10, TTL).jobs
    nothing = store.claim_jobs(NS, "w3", [QUEUE], 0, TTL).jobs

    assert (len(first), len(second), nothing) == (2, 3, [])
    assert not {j.id for j in first} & {j.id for j in second}


def test_a_claim_takes_only_from_the_queues_named(store: Store) -> None:
    mail = enqueue_one(store, new_job(queue="mail"))
    sms = enqueue_one(store, new_job(queue="sms"))
    enqueue_one(store, new_job(queue="reports"))

    jobs = claim_all(store, queues=["mail", "sms"])

    assert sorted(j.id for j in jobs) == [mail.id, sms.id]
    assert claim_all(store, queues=["nothing-here"]) == []


def test_a_claim_takes_only_from_its_namespace(store: Store) -> None:
    ours = enqueue_one(store)
    theirs = enqueue_one(store, new_job(namespace=OTHER_NS))

    assert [j.id for j in claim_all(store)] == [ours.id]
    claimed = store.claim_jobs(OTHER_NS, "w9", [QUEUE], 10, TTL).jobs
    assert [j.id for j in claimed] == [theirs.id]


# -- dispatch order ----------------------------------------------------------------------------


def dispatch_fixture() -> tuple[dict[str, NewJob], list[str]]:
    """Jobs that differ in one dispatch criterion at a time, and the order they must go in:
    priority (higher first), then deadline (earliest first, none last), then due time,
    then id (enqueue order)."""
    requests = {
        "low_late": new_job("low_late", priority=0, run_at=T0 - 10),
        "high_deadline_100": new_job("high_deadline_100", priority=5, deadline=T0 + 100),
        "high_due_20_first": new_job("high_due_20_first", priority=5, run_at=T0 - 20),
        "negative": new_job("negative", priority=-3, run_at=T0 - 1000),
        "high_deadline_50": new_job("high_deadline_50", priority=5, deadline=T0 + 50),
        "high_due_30": new_job("high_due_30", priority=5, run_at=T0 - 30),
        "high_due_20_second": new_job("high_due_20_second", priority=5, run_at=T0 - 20),
        "low_deadline": new_job("low_deadline", priority=0, deadline=T0 + 10),
    }
    order = [
        "high_deadline_50",
        "high_deadline_100",
        "high_due_30",
        "high_due_20_first",
        "high_due_20_second",
        "low_deadline",
        "low_late",
        "negative",
    ]
    return requests, order


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_claims_take_jobs_in_dispatch_order(store: Store, batch: int) -> None:
    requests, order = dispatch_fixture()
    store.enqueue(list(requests.values()))

    taken: list[Job] = []
    while claimed := store.claim_jobs(NS, "w1", [QUEUE], batch, TTL).jobs:
        assert len(claimed) <= batch
        assert claimed == sorted(claimed, key=Job.dispatch_key), "a batch is in dispatch order"
        taken.extend(claimed)

    assert [j.task for j in taken] == order


def test_dispatch_order_holds_across_queues_of_one_claim(store: Store) -> None:
    low = enqueue_one(store, new_job(queue="a", priority=1))
    high = enqueue_one(store, new_job(queue="b", priority=2))

    assert [j.id for j in claim_all(store, queues=["a", "b"])] == [high.id, low.id]


# -- due times and deadlines ---------------------------------------------------------------------


def test_a_delayed_job_is_claimable_only_once_due_by_the_store_clock(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store, new_job(delay=60))

    clock.advance(59)
    early = store.claim_jobs(NS, "w1", [QUEUE], 10, TTL)
    assert early.jobs == []
    assert early.next_due == T0 + 60

    clock.advance(1)
    assert [j.id for j in claim_all(store)] == [job.id]


@pytest.mark.parametrize("due", [False, True])
def test_a_claim_told_a_delayed_job_is_due_answers_as_any_claim(
    store: Store, clock: ManualClock, due: bool
) -> None:
    """``due`` (the worker's alarm rang) changes only how the claim is made (on SQLite
    it skips the one-statement attempt): the answer is the same, in dispatch order, and
    a claim told so wrongly loses nothing."""
    ready = enqueue_one(store, new_job(priority=1))
    delayed = enqueue_one(store, new_job(delay=60, priority=5))
    later = enqueue_one(store, new_job(delay=120))
    clock.advance(60)
    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, due=due))
    assert [j.id for j in claim.jobs] == [delayed.id, ready.id]
    assert claim.next_due == later.run_at.timestamp()
    nothing = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, due=True))
    assert (nothing.jobs, nothing.next_due) == ([], later.run_at.timestamp())


@pytest.mark.parametrize("due", [False, True])
def test_due_jobs_a_claim_does_not_take_become_ready_for_other_workers(
    store: Store, clock: ManualClock, due: bool
) -> None:
    """A claim makes every due job of its namespace ready, those of other queues and
    those beyond its limit too, and takes the first in dispatch order among them and
    the ready ones."""
    ready = enqueue_one(store, new_job(priority=1))
    first = enqueue_one(store, new_job(delay=30, priority=5))
    second = enqueue_one(store, new_job(delay=40, priority=5))
    elsewhere = enqueue_one(store, new_job(delay=20, queue="other"))
    later = enqueue_one(store, new_job(delay=120))
    clock.advance(60)

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 1, TTL, due=due))

    assert [j.id for j in claim.jobs] == [first.id]
    assert claim.next_due == later.run_at.timestamp()
    assert store.get_job(NS, second.id).status is JobStatus.QUEUED
    assert store.get_job(NS, elsewhere.id).status is JobStatus.QUEUED
    assert store.get_job(NS, later.id).status is JobStatus.SCHEDULED
    assert [j.id for j in claim_all(store, "w2")] == [second.id, ready.id]
    assert [j.id for j in claim_all(store, "w3", ["other"])] == [elsewhere.id]


@pytest.mark.parametrize("due", [False, True])
def test_a_claim_ahead_takes_plain_delayed_jobs_due_within_it(
    store: Store, clock: ManualClock, due: bool
) -> None:
    """``ahead``: the claimer holds what it gets until it falls due. A claim told a
    delayed job is due (its alarm rang, ahead) takes the plain delayed jobs due within
    ``ahead`` too, their ``started_at`` being their due time (PostgreSQL's one-statement
    claim does so on any claim). A job in the window that the claim does not take stays
    delayed (made ready early, a claimer that holds nothing would start it early), a
    gated one included, and the earliest of them is the next due time."""
    ready = enqueue_one(store, new_job(priority=1))
    soon = enqueue_one(store, new_job(delay=0.5, priority=5))
    elsewhere = enqueue_one(store, new_job(delay=0.25, queue="other"))
    keyed = enqueue_one(store, replace(new_job(delay=0.75), gate_key="k", gate_capacity=1))
    beyond = enqueue_one(store, new_job(delay=2))

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, due=due, ahead=1.0))

    assert store.claims_ahead
    if due or store.claims_due_at_once:  # type: ignore[attr-defined]
        assert [j.id for j in claim.jobs] == [soon.id, ready.id]
        assert [ts(j.started_at) for j in claim.jobs] == [T0 + 0.5, T0]
        assert store.get_job(NS, soon.id).status is JobStatus.RUNNING
    else:  # SQLite's one-statement claim of ready jobs: the alarm will say when
        assert [j.id for j in claim.jobs] == [ready.id]
    assert claim.next_due == T0 + 0.25
    for left in (elsewhere, keyed, beyond):
        assert store.get_job(NS, left.id).status is JobStatus.SCHEDULED
    clock.advance(2)
    later = store.claim(ClaimRequest("w2", (NS,), (QUEUE,), 10, TTL, ahead=1.0))
    taken_ahead = due or store.claims_due_at_once  # type: ignore[attr-defined]
    assert [j.id for j in later.jobs] == ([keyed.id, beyond.id] if taken_ahead
                                          else [soon.id, keyed.id, beyond.id])


def test_a_pause_in_the_namespace_keeps_delayed_jobs_from_being_claimed_ahead(
    store: Store, clock: ManualClock
) -> None:
    """A pause (here of another queue) decides when the namespace's due jobs become
    ready: the claim ahead leaves them to the claim at their due time."""
    job = enqueue_one(store, new_job(delay=0.5))
    store.pause(NS, GateKind.QUEUE, "other")

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, due=True, ahead=1.0))

    assert (claim.jobs, claim.next_due) == ([], T0 + 0.5)
    assert store.get_job(NS, job.id).status is JobStatus.SCHEDULED


def test_a_claim_ahead_takes_the_ready_jobs_first_when_its_limit_binds_on_sqlite(
    store: Store, clock: ManualClock
) -> None:
    """Where the jobs due ahead are claimed after the ready ones (SQLite), a claim whose
    limit the ready jobs fill takes none of them; either way the answer is in dispatch
    order and nothing is lost."""
    soon = enqueue_one(store, new_job(delay=0.5, priority=5))
    ready = enqueue_one(store, new_job(priority=1))

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 1, TTL, due=True, ahead=1.0))

    first = soon if store.claims_due_at_once else ready  # type: ignore[attr-defined]
    assert [j.id for j in claim.jobs] == [first.id]
    clock.advance(1)
    rest = store.claim(ClaimRequest("w2", (NS,), (QUEUE,), 10, TTL, due=True, ahead=1.0))
    assert {j.id for j in rest.jobs} == {soon.id, ready.id} - {first.id}


def test_a_claim_in_steps_takes_the_jobs_due_ahead_after_the_ready_ones(
    store: Store, clock: ManualClock
) -> None:
    """A queue that keeps a reserve is claimed in steps on both stores (PostgreSQL's
    one statement answers "slow"): the claim ahead is a step of it there too, after
    the ready jobs, within the limit."""
    store.set_queue_reserve(QueueReserve(NS, QUEUE, 0.5, below=5))
    first = enqueue_one(store, new_job(delay=0.5))
    second = enqueue_one(store, new_job(delay=0.75))
    ready = enqueue_one(store, new_job())

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 2, TTL, due=True, ahead=1.0))

    assert {j.id for j in claim.jobs} == {ready.id, first.id}
    assert {j.id: ts(j.started_at) for j in claim.jobs} == {ready.id: T0, first.id: T0 + 0.5}
    assert claim.next_due == T0 + 0.75
    assert store.get_job(NS, second.id).status is JobStatus.SCHEDULED


def test_a_claim_tried_at_once_takes_what_a_claim_would_or_nothing(
    store: Store, clock: ManualClock
) -> None:
    """`Store.try_claim`: on the store whose writers take turns under one lock (SQLite)
    the claim itself, the same jobs in dispatch order under the same lease; elsewhere
    None, with nothing taken."""
    low = enqueue_one(store, new_job(priority=1))
    high = enqueue_one(store, new_job(priority=5))
    clock.advance(2)

    claim = store.try_claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL))

    if not store.one_writer:
        assert claim is None
        assert {store.get_job(NS, j.id).status for j in (low, high)} == {JobStatus.QUEUED}
        return
    assert claim is not None
    assert [j.id for j in claim.jobs] == [high.id, low.id]
    assert claim.jobs == [store.get_job(NS, high.id), store.get_job(NS, low.id)]
    assert {(j.status, j.worker_id, ts(j.lease_expires_at)) for j in claim.jobs} == {
        (JobStatus.RUNNING, "w1", T0 + 2 + TTL)}


def test_a_claim_tried_at_once_takes_nothing_while_another_writer_holds_the_lock(
    store: Store, open_backend: BackendFactory, tmp_path: Path, clock: ManualClock
) -> None:
    """Another writer of the same database (another process's store) in a transaction:
    the claim tried at once answers None at once and takes nothing; once that writer
    has committed, it claims (where the store claims at once at all)."""
    job = enqueue_one(store)
    request = ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL)
    other = open_backend(tmp_path, clock)
    assert isinstance(other, SQLStore)
    try:
        with other.executor("hold the lock") as ex:
            ex.now()  # SQLite: the transaction begins, the write lock is held
            assert store.try_claim(request) is None
            assert store.get_job(NS, job.id).status is JobStatus.QUEUED
        claim = store.try_claim(request)
    finally:
        other.close()
    if store.one_writer:
        assert claim is not None
        assert [j.id for j in claim.jobs] == [job.id]
    else:
        assert claim is None


def test_a_claim_tried_at_once_leaves_due_jobs_to_a_claim(
    store: Store, clock: ManualClock
) -> None:
    """A claim that must first make due jobs ready runs in steps on SQLite, and is not
    tried at once: None, and the due job stays as it was, for `claim`. Tried without
    being told, SQLite's claim finds the job to make ready first and answers None too."""
    job = enqueue_one(store, new_job(delay=0.5))
    clock.advance(1)

    assert store.try_claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, due=True)) is None
    assert store.try_claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL)) is None
    assert store.get_job(NS, job.id).status is JobStatus.SCHEDULED


def test_a_claim_of_nothing_answers_a_ready_job_of_its_queues_as_work_now(
    store: Store, clock: ManualClock
) -> None:
    """A claim of nothing (limit 0) answers when there will be work for its queues: a
    ready job there is work now, whatever made it ready after the last claim (a burst
    worker asks this before it exits); a ready job of another queue is not."""
    enqueue_one(store, new_job(queue="other"))
    request = ClaimRequest("w1", (NS,), (QUEUE,), 0, TTL)
    assert store.claim(request).next_due is None
    clock.advance(2)
    enqueue_one(store)

    assert store.claim(request).next_due == T0 + 2


def test_a_claim_ahead_is_at_most_a_second() -> None:
    for bad in (-0.001, 1.5, float("nan"), float("inf"), True, "0.01"):
        with pytest.raises(InvalidInput, match="ahead"):
            ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, ahead=bad)  # type: ignore[arg-type]


def test_a_claim_reports_when_the_next_delayed_job_falls_due(store: Store) -> None:
    enqueue_one(store, new_job(delay=90))
    enqueue_one(store, new_job(delay=30))

    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).next_due == T0 + 30
    assert store.claim_jobs(OTHER_NS, "w1", [QUEUE], 10, TTL).next_due is None


def test_a_job_whose_deadline_passed_before_it_started_expires_instead_of_running(
    store: Store, clock: ManualClock
) -> None:
    job = enqueue_one(store, new_job(deadline_in=10))
    delayed = enqueue_one(store, new_job(delay=5, deadline_in=10))

    clock.advance(10)

    assert claim_all(store) == []
    for expired in store.get_jobs(NS, [job.id, delayed.id]):
        assert expired.status is JobStatus.EXPIRED
        assert expired.attempt == 0
        assert expired.last_error
        assert ts(expired.finished_at) == T0 + 10


def test_a_job_before_its_deadline_is_claimed(store: Store, clock: ManualClock) -> None:
    job = enqueue_one(store, new_job(deadline_in=10))
    clock.advance(9)

    assert [j.id for j in claim_all(store)] == [job.id]


def test_a_run_late_job_runs_after_its_deadline(store: Store, clock: ManualClock) -> None:
    job = enqueue_one(store, new_job(deadline_in=10, deadline_policy=DeadlinePolicy.RUN_LATE))
    clock.advance(60)

    assert [j.id for j in claim_all(store)] == [job.id]


def test_a_deadline_passing_while_the_job_runs_does_not_expire_it(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(deadline_in=10))
    job = claim_one(store)
    clock.advance(20)
    store.expire_missed_deadlines(NS)

    assert store.finish_attempts([succeeded(job)]) == []
    assert store.get_job(NS, job.id).status is JobStatus.SUCCEEDED


# -- heartbeats and lease extension -------------------------------------------------------------


def leases(jobs: list[Job]) -> dict[int, int]:
    """What a worker running ``jobs`` names in its heartbeat."""
    return {job.id: job.fence for job in jobs}


def test_a_heartbeat_extends_the_leases_it_names_in_any_namespace_and_no_other(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(), new_job(), new_job(namespace=OTHER_NS), new_job()])
    mine = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs
    theirs = claim_one(store, "w2")
    mine.append(claim_one(store, "w1", namespace=OTHER_NS))
    clock.advance(20)

    # w2's attempt, named by w1, is not w1's to renew.
    held = store.heartbeat("w1", 100, {**leases(mine), theirs.id: theirs.fence})

    assert held == {j.id: False for j in mine}
    for job in store.get_jobs(NS, [j.id for j in mine]):
        assert ts(job.lease_expires_at) == T0 + 20 + 100
    [other_ns_job] = store.get_jobs(OTHER_NS, [mine[2].id])
    assert ts(other_ns_job.lease_expires_at) == T0 + 20 + 100
    assert ts(store.get_job(NS, theirs.id).lease_expires_at) == T0 + TTL


def test_a_heartbeat_keeps_a_job_past_its_first_lease(store: Store, clock: ManualClock) -> None:
    enqueue_one(store)
    job = claim_one(store)
    for _ in range(4):
        clock.advance(TTL - 1)
        assert store.heartbeat("w1", TTL, leases([job])) == {job.id: False}

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [])
    assert store.get_job(NS, job.id).worker_id == "w1"


def test_a_heartbeat_reports_cancel_requests(store: Store) -> None:
    store.enqueue([new_job(), new_job()])
    keep, stop = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs

    store.cancel_job(NS, stop.id)

    assert store.heartbeat("w1", TTL, leases([keep, stop])) == {keep.id: False, stop.id: True}


def test_a_heartbeat_leaves_out_jobs_the_worker_no_longer_holds(store: Store) -> None:
    store.enqueue([new_job(), new_job()])
    done, running = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs
    store.finish_attempts([succeeded(done)])

    assert store.heartbeat("w1", TTL, leases([done, running])) == {running.id: False}
    assert store.heartbeat("nobody", TTL, leases([running])) == {}


def test_a_heartbeat_leaves_a_lease_it_does_not_name_to_expire(
    store: Store, clock: ManualClock
) -> None:
    """A claim whose answer never reached its worker, or an attempt the worker lost
    track of: the worker does not name it, so its lease lapses and it is rescued while
    the worker lives on (no lease outlives its work)."""
    store.enqueue([new_job(), new_job()])
    known, lost = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs
    for _ in range(3):
        clock.advance(TTL - 1)
        assert store.heartbeat("w1", TTL, leases([known])) == {known.id: False}

    rescue = store.rescue_expired_leases(NS)

    assert rescue.requeued == [lost.id]
    assert store.get_job(NS, known.id).status is JobStatus.RUNNING


def test_a_heartbeat_with_a_stale_fence_renews_nothing(
    store: Store, clock: ManualClock
) -> None:
    """The worker's older attempt of a job that was rescued and claimed again (by this
    same worker): only the current attempt's token renews the lease."""
    enqueue_one(store)
    first = claim_one(store, "w1")
    clock.advance(TTL + 1)
    store.rescue_expired_leases(NS)
    second = claim_one(store, "w1")
    clock.advance(TTL - 1)

    assert store.heartbeat("w1", TTL, leases([first])) == {}
    assert ts(store.get_job(NS, second.id).lease_expires_at) == T0 + TTL + 1 + TTL
    assert store.heartbeat("w1", TTL, leases([second])) == {second.id: False}


def test_extend_lease_with_the_current_fence_moves_the_lease(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store)
    job = claim_one(store)
    clock.advance(10)

    assert store.extend_lease(job.id, job.fence, 300) is True
    assert ts(store.get_job(NS, job.id).lease_expires_at) == T0 + 10 + 300


def test_extend_lease_never_shortens_a_lease(store: Store, clock: ManualClock) -> None:
    enqueue_one(store)
    job = claim_one(store)
    store.extend_lease(job.id, job.fence, 300)

    assert store.extend_lease(job.id, job.fence, 1) is True
    assert ts(store.get_job(NS, job.id).lease_expires_at) == T0 + 300


def test_extend_lease_with_a_stale_fence_is_refused(store: Store, clock: ManualClock) -> None:
    enqueue_one(store)
    old = claim_one(store, "w1")
    clock.advance(TTL + 1)
    store.rescue_expired_leases(NS)
    new = claim_one(store, "w2")

    assert store.extend_lease(old.id, old.fence, 300) is False
    assert store.get_job(NS, new.id).lease_expires_at == new.lease_expires_at


def test_extend_lease_of_a_finished_job_is_refused(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store)
    store.finish_attempts([succeeded(job)])

    assert store.extend_lease(job.id, job.fence, 300) is False
    assert store.get_job(NS, job.id).lease_expires_at is None


@pytest.mark.parametrize("slow_path", [False, True], ids=["at_once", "in_steps"])
def test_a_claim_limited_to_tasks_takes_only_theirs_in_dispatch_order(
    store: Store, clock: ManualClock, slow_path: bool
) -> None:
    """A worker claims only the tasks it has: the others' jobs stay queued, untouched,
    for a worker that has them (whether the claim is one statement or in steps)."""
    ids = [job.id for job in store.enqueue([
        new_job("contract.a", priority=1), new_job("contract.b", priority=9),
        new_job("contract.a", priority=5),
    ])]
    if slow_path:  # a delayed job now due: the claim promotes it first
        store.enqueue([new_job("contract.b", delay=1.0)])
        clock.advance(2)
    request = ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, tasks=("contract.a",))

    claimed = store.claim(request).jobs

    assert [job.id for job in claimed] == [ids[2], ids[0]]
    untouched = store.get_job(NS, ids[1])
    assert (untouched.status, untouched.attempt) == (JobStatus.QUEUED, 0)


def test_a_claim_limited_to_no_task_is_refused() -> None:
    with pytest.raises(InvalidInput, match="tasks"):
        ClaimRequest("w1", (NS,), (QUEUE,), 10, TTL, tasks=())
