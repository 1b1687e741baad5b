"""Expired leases: at-least-once jobs run again, at-most-once jobs never do, and nothing
is rescued while its lease lives. Leadership leases: one holder at a time, judged by the
store's clock."""

from __future__ import annotations

from taskwheel.clock import ManualClock
from taskwheel.jobs import AttemptOutcome, Guarantee
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import NS, OTHER_NS, QUEUE, T0, TTL, claim_one, enqueue_one, new_job, ts

# -- rescuing expired leases ------------------------------------------------------------------


def test_nothing_is_rescued_while_its_lease_lives(store: Store, clock: ManualClock) -> None:
    store.enqueue([new_job(), new_job(guarantee=Guarantee.AT_MOST_ONCE)])
    jobs = store.claim_jobs(NS, "w1", [QUEUE], 2, TTL).jobs
    clock.advance(TTL)  # the lease runs to its last instant

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [])
    assert store.get_jobs(NS, [j.id for j in jobs]) == sorted(jobs, key=lambda j: j.id)


def test_an_expired_at_least_once_job_is_queued_to_run_again(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(max_attempts=2))
    lost = claim_one(store, "w-gone")
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([lost.id], [])
    requeued = store.get_job(NS, lost.id)
    assert (requeued.status, requeued.lease_expires_at) == (JobStatus.QUEUED, None)
    [attempt] = store.list_attempts(NS, lost.id)
    assert attempt.outcome is AttemptOutcome.LEASE_EXPIRED
    assert (attempt.attempt, attempt.fence, attempt.worker_id) == (1, lost.fence, "w-gone")
    assert ts(attempt.ended_at) == T0 + TTL + 1
    again = claim_one(store, "w-next")
    assert (again.attempt, again.worker_id) == (2, "w-next")
    assert again.fence > lost.fence


def test_an_expired_last_attempt_is_dead(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, new_job(max_attempts=1))
    lost = claim_one(store)
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [lost.id])
    dead = store.get_job(NS, lost.id)
    assert dead.status is JobStatus.DEAD
    assert dead.last_error
    assert ts(dead.finished_at) == T0 + TTL + 1


def test_an_expired_at_most_once_job_is_never_run_again(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(max_attempts=5, guarantee=Guarantee.AT_MOST_ONCE))
    lost = claim_one(store)
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [lost.id])
    assert store.get_job(NS, lost.id).status is JobStatus.DEAD
    assert store.list_attempts(NS, lost.id)[0].outcome is AttemptOutcome.LEASE_EXPIRED
    clock.advance(3600)
    assert store.claim_jobs(NS, "w2", [QUEUE], 10, TTL).jobs == []


def test_an_expired_job_asked_to_cancel_ends_cancelled(store: Store, clock: ManualClock) -> None:
    enqueue_one(store)
    lost = claim_one(store)
    store.cancel_job(NS, lost.id)
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [lost.id])
    assert store.get_job(NS, lost.id).status is JobStatus.CANCELLED


def test_rescue_only_touches_its_namespace(store: Store, clock: ManualClock) -> None:
    enqueue_one(store, new_job(namespace=OTHER_NS))
    theirs = claim_one(store, namespace=OTHER_NS)
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert (rescue.requeued, rescue.failed) == ([], [])
    assert store.get_job(OTHER_NS, theirs.id).status is JobStatus.RUNNING
    assert store.rescue_expired_leases(OTHER_NS).requeued == [theirs.id]


def test_rescue_takes_only_the_expired_among_running_jobs(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([new_job(), new_job()])
    lost = claim_one(store, "w-gone")
    clock.advance(TTL - 5)
    alive = claim_one(store, "w-alive")
    clock.advance(10)

    rescue = store.rescue_expired_leases(NS)

    assert rescue.requeued == [lost.id]
    assert store.get_job(NS, alive.id) == alive


# -- leadership ---------------------------------------------------------------------------------


def test_one_holder_at_a_time(store: Store) -> None:
    assert store.elect(NS, "rescuer", "a", 10) is True
    assert store.elect(NS, "rescuer", "b", 10) is False
    assert store.elect(NS, "rescuer", "a", 10) is True


def test_a_holder_keeps_its_lease_by_renewing_it(store: Store, clock: ManualClock) -> None:
    assert store.elect(NS, "rescuer", "a", 10)
    for _ in range(5):
        clock.advance(9)
        assert store.elect(NS, "rescuer", "a", 10) is True
        assert store.elect(NS, "rescuer", "b", 10) is False


def test_a_lease_lapses_after_its_ttl_by_the_store_clock(
    store: Store, clock: ManualClock
) -> None:
    assert store.elect(NS, "rescuer", "a", 10)

    clock.advance(10)
    assert store.elect(NS, "rescuer", "b", 10) is False
    assert store.lease_holder(NS, "rescuer") == "a"
    clock.advance(1)
    assert store.lease_holder(NS, "rescuer") is None
    assert store.elect(NS, "rescuer", "b", 10) is True
    assert store.elect(NS, "rescuer", "a", 10) is False
    assert store.lease_holder(NS, "rescuer") == "b"


def test_resigning_lets_another_take_the_lease_at_once(store: Store) -> None:
    assert store.elect(NS, "rescuer", "a", 60)

    store.resign(NS, "rescuer", "a")

    assert store.lease_holder(NS, "rescuer") is None
    assert store.elect(NS, "rescuer", "b", 60) is True
    assert store.elect(NS, "rescuer", "a", 60) is False


def test_only_the_holder_can_resign(store: Store) -> None:
    assert store.elect(NS, "rescuer", "a", 60)

    store.resign(NS, "rescuer", "b")

    assert store.elect(NS, "rescuer", "b", 60) is False
    assert store.elect(NS, "rescuer", "a", 60) is True


def test_leases_are_separate_per_name_and_per_namespace(store: Store) -> None:
    assert store.elect(NS, "rescuer", "a", 60)

    assert store.elect(NS, "scheduler", "b", 60) is True
    assert store.elect(OTHER_NS, "rescuer", "c", 60) is True
    assert store.elect(NS, "rescuer", "c", 60) is False
    assert store.lease_holder(NS, "scheduler") == "b"
    assert store.lease_holder(OTHER_NS, "rescuer") == "c"
    assert store.lease_holder(OTHER_NS, "scheduler") is None


def test_elect_many_takes_the_free_and_lapsed_and_keeps_its_own(
    store: Store, clock: ManualClock
) -> None:
    assert store.elect(NS, "p:0", "a", 10)
    assert store.elect(NS, "p:1", "b", 10)
    assert store.elect(NS, "p:2", "b", 2)
    clock.advance(3)  # p:2 lapsed; p:0 and p:1 live

    held = store.elect_many(NS, ["p:0", "p:1", "p:2", "p:3"], "a", 10)

    assert held == {"p:0", "p:2", "p:3"}
    assert store.lease_holders(NS, "p:") == {"p:0": "a", "p:1": "b", "p:2": "a", "p:3": "a"}
    assert store.elect_many(NS, [], "a", 10) == set()


def test_lease_holders_lists_live_leases_by_literal_prefix(
    store: Store, clock: ManualClock
) -> None:
    assert store.elect(NS, "member:x", "x", 5)
    assert store.elect(NS, "member:y", "y", 20)
    assert store.elect(NS, "memberXz", "z", 20)  # "_" or "%" in a prefix are no wildcards
    assert store.elect(NS, "scheduler", "x", 20)
    assert store.elect(OTHER_NS, "member:w", "w", 20)

    assert store.lease_holders(NS, "member:") == {"member:x": "x", "member:y": "y"}
    assert store.lease_holders(NS, "member_") == {}
    clock.advance(6)
    assert store.lease_holders(NS, "member:") == {"member:y": "y"}
    assert store.lease_holders(NS, "") == {"member:y": "y", "memberXz": "z", "scheduler": "x"}

