"""Circuit breakers on every store: failures of a key's attempts within the window open
its breaker and its jobs wait instead of running; after the cooldown one probe runs;
its success closes the breaker (waiting jobs admitted), its failure opens it again. A
task's TripBreaker opens it until a time; operators open and close it by hand; every
change is an event; stale reports count nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import BreakerNotOpen, InvalidInput, LimitNotFound
from taskwheel.events import Event, EventKind
from taskwheel.jobs import AttemptOutcome, Job, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import NS, T0, TTL, failed, new_job, succeeded

KEY = "api:acme"
RULE = (2, 60.0, 30.0, None)  # two failures within a minute open it for 30 s
RATED = (2, 60.0, 30.0, 0.5)  # ...that are at least half the attempts


def keyed(key: str = KEY, capacity: int | None = 5,
          rule: tuple[int, float, float, float | None] = RULE) -> NewJob:
    return replace(new_job(), gate_key=key, gate_capacity=capacity, gate_breaker=rule)


def claim(store: Store, limit: int = 100) -> list[Job]:
    return store.claim_jobs(NS, "w1", ["default"], limit, TTL).jobs


def breaker(store: Store) -> str:
    return store.get_limit(NS, KEY).breaker


def test_failures_within_the_window_open_the_breaker_and_a_probe_closes_it(
    store: Store, clock: ManualClock
) -> None:
    events: list[Event] = []
    store.events.attach(events.append, [EventKind.BREAKER_OPENED, EventKind.BREAKER_HALF_OPEN,
                                        EventKind.BREAKER_CLOSED])
    store.enqueue([keyed() for _ in range(6)])
    first, second, *running = claim(store, 4)
    assert store.finish_attempts([failed(first, JobStatus.SCHEDULED, retry_delay=100)]) == []
    assert breaker(store) == "closed"
    assert store.get_limit(NS, KEY).failures == 1
    clock.advance(10)
    store.finish_attempts([failed(second, JobStatus.SCHEDULED, retry_delay=100)])
    limit = store.get_limit(NS, KEY)
    assert (limit.breaker, limit.breaker_until.timestamp()) == ("open", T0 + 40)
    assert claim(store) == []  # the two still ready were sent back to wait
    assert (limit.in_use, limit.waiting) == (2, 2)  # the running ones finish
    store.finish_attempts([succeeded(job) for job in running])
    assert breaker(store) == "open"  # late outcomes change nothing
    clock.advance(29)
    store.admit_due_keys(NS)
    assert claim(store) == []
    clock.advance(1)
    store.admit_due_keys(NS)
    assert breaker(store) == "half_open"
    [probe] = claim(store)  # one at a time
    assert claim(store) == []
    store.finish_attempts([succeeded(probe)])
    assert breaker(store) == "closed"
    assert len(claim(store)) == 1  # the last waiting one is admitted
    assert [(e.kind, e.metadata["by"]) for e in events] == [
        (EventKind.BREAKER_OPENED, "outcomes"), (EventKind.BREAKER_HALF_OPEN, "cooldown"),
        (EventKind.BREAKER_CLOSED, "outcomes")]


def test_a_failed_probe_opens_it_again(store: Store, clock: ManualClock) -> None:
    store.enqueue([keyed() for _ in range(3)])
    a, b, c = claim(store)
    store.finish_attempts([failed(a, JobStatus.DEAD), failed(b, JobStatus.DEAD),
                           succeeded(c)])
    assert breaker(store) == "open"
    clock.advance(30)
    store.enqueue([keyed()])
    store.admit_due_keys(NS)
    [probe] = claim(store)
    store.finish_attempts([failed(probe, JobStatus.DEAD)])
    limit = store.get_limit(NS, KEY)
    assert (limit.breaker, limit.breaker_until.timestamp()) == ("open", T0 + 60)


def test_under_a_failure_rate_a_busy_key_that_mostly_succeeds_stays_closed(
    store: Store, clock: ManualClock
) -> None:
    """Two failures among six attempts (a third) leave it closed; the window counts
    the successes too, and failures reaching half the attempts open it."""
    store.enqueue([keyed(rule=RATED, capacity=None) for _ in range(10)])
    jobs = claim(store, 10)
    store.finish_attempts([succeeded(job) for job in jobs[:4]])
    clock.advance(10)
    store.finish_attempts([failed(job, JobStatus.DEAD) for job in jobs[4:6]])
    limit = store.get_limit(NS, KEY)
    assert (limit.breaker, limit.failures, limit.attempts) == ("closed", 2, 6)
    assert limit.breaker_rule == RATED
    store.finish_attempts([failed(jobs[6], JobStatus.DEAD)])
    assert breaker(store) == "closed"  # 3 of 7
    store.finish_attempts([failed(jobs[7], JobStatus.DEAD)])
    limit = store.get_limit(NS, KEY)  # 4 of 8: half
    assert (limit.breaker, limit.breaker_until.timestamp()) == ("open", T0 + 40)


def test_under_a_failure_rate_a_new_window_counts_afresh(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([keyed(rule=RATED, capacity=None) for _ in range(4)])
    a, b, c, d = claim(store, 4)
    store.finish_attempts([failed(a, JobStatus.DEAD)])
    clock.advance(60)  # the window that began at a's failure has ended
    store.finish_attempts([succeeded(b), succeeded(c)])
    limit = store.get_limit(NS, KEY)
    assert (limit.failures, limit.attempts, limit.breaker) == (0, 2, "closed")
    store.finish_attempts([failed(d, JobStatus.DEAD)])
    assert breaker(store) == "closed"  # one failure: fewer than the rule's two


def test_a_rule_declared_without_a_rate_counts_no_successes(store: Store) -> None:
    store.enqueue([keyed() for _ in range(3)])
    store.finish_attempts([succeeded(job) for job in claim(store)])
    limit = store.get_limit(NS, KEY)
    assert (limit.failures, limit.attempts, limit.breaker_rule) == (0, 0, RULE)


def test_failures_in_separate_windows_do_not_open_it(store: Store, clock: ManualClock) -> None:
    store.enqueue([keyed() for _ in range(2)])
    a, b = claim(store)
    store.finish_attempts([failed(a, JobStatus.DEAD)])
    clock.advance(61)
    store.finish_attempts([failed(b, JobStatus.DEAD)])
    assert breaker(store) == "closed"


def test_lease_expiry_and_dead_workers_count_as_failures_and_stale_reports_do_not(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([keyed() for _ in range(2)])
    a, b = claim(store)
    clock.advance(TTL + 1)
    store.rescue_expired_leases(NS)  # two lease expiries: two failures
    opened = store.get_limit(NS, KEY)
    assert opened.breaker == "open"
    store.close_breaker(NS, KEY)
    assert store.finish_attempts([failed(a, JobStatus.DEAD), failed(b, JobStatus.DEAD)]) == [
        a.id, b.id]
    assert store.get_limit(NS, KEY).failures == 0  # stale: not counted
    assert len(claim(store)) == 2
    store.end_attempts_of_dead_worker("w1", "killed")  # two crashes: two failures
    assert breaker(store) == "open"


def test_a_task_trips_the_breaker_until_a_time(store: Store, clock: ManualClock) -> None:
    store.enqueue([keyed() for _ in range(3)])
    job, *_ = claim(store, 1)
    tripped = replace(failed(job, JobStatus.SCHEDULED, retry_delay=5), trip_until=T0 + 120)
    store.finish_attempts([tripped])
    limit = store.get_limit(NS, KEY)
    assert (limit.breaker, limit.breaker_until.timestamp()) == ("open", T0 + 120)
    assert claim(store) == []
    # A trip naming another key opens that key's breaker (its row made if need be).
    [other] = store.enqueue([new_job()])
    [other] = claim_other(store, other)
    store.finish_attempts([Outcome(other.id, other.fence, JobStatus.DEAD, AttemptOutcome.FAILED,
                                   trip_until=T0 + 60, trip_key="api:other")])
    assert store.get_limit(NS, "api:other").breaker == "open"


def claim_other(store: Store, job: Job) -> list[Job]:
    return [j for j in claim(store) if j.id == job.id]


def test_operators_open_and_close_a_breaker(store: Store, clock: ManualClock) -> None:
    store.enqueue([keyed() for _ in range(2)])
    opened = store.open_breaker(NS, KEY, until=T0 + 600)
    assert (opened.breaker, opened.in_use, opened.waiting) == ("open", 0, 2)
    assert claim(store) == []
    closed = store.close_breaker(NS, KEY)
    assert (closed.breaker, closed.in_use, closed.waiting) == ("closed", 2, 0)
    with pytest.raises(BreakerNotOpen, match="not open"):
        store.close_breaker(NS, KEY)
    store.open_breaker(NS, KEY)  # until closed by hand
    clock.advance(10_000)
    store.admit_due_keys(NS)
    assert breaker(store) == "open"


def test_bad_breaker_commands_write_nothing(store: Store) -> None:
    with pytest.raises(LimitNotFound):
        store.open_breaker(NS, "nope")
    with pytest.raises(LimitNotFound):
        store.close_breaker(NS, "nope")
    store.enqueue([keyed()])
    with pytest.raises(InvalidInput, match="until"):
        store.open_breaker(NS, KEY, until=T0 - 1)
    with pytest.raises(InvalidInput, match="key"):
        store.open_breaker(NS, "has space")
    assert breaker(store) == "closed"
