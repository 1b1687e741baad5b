"""Rate limits per key on every store: a rate-limited job waits until an admission pass
pays for it from its key's bucket; the starts of a key in any window of length t cost
at most burst + rate * t (measured on the store's injected clock), whatever comes back
to the queue (retries, rescues: each start is paid for again, nothing is refunded); a
rate changes at run time; a rate and a concurrency limit on one job both hold; a pause
and an open breaker keep admitted jobs from starting; bad input writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from buckets import most_over_the_bound
from taskwheel.clock import ManualClock
from taskwheel.errors import InvalidInput, RateNotFound
from taskwheel.events import Event, EventKind
from taskwheel.explanations import ReasonCode
from taskwheel.gates import GateKind
from taskwheel.jobs import Job, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance.admitter import Admitter
from taskwheel.stores.base import Store

from .conftest import NS, QUEUE, TTL, failed, new_job, succeeded

KEY = "api:acme"


def rated(key: str = KEY, rate: float = 2.0, burst: int = 4, cost: int = 1,
          **options: object) -> NewJob:
    return replace(new_job(**options), rate_key=key, rate_cost=cost,  # type: ignore[arg-type]
                   rate_declared=(rate, burst))


def claim(store: Store, worker: str = "w1", limit: int = 1000) -> list[Job]:
    return store.claim_jobs(NS, worker, [QUEUE], limit, TTL).jobs


def statuses(store: Store, jobs: list[Job]) -> list[JobStatus]:
    return [store.get_job(NS, job.id).status for job in jobs]


def drive(store: Store, clock: ManualClock, *, seconds: float, step: float
          ) -> list[tuple[float, int]]:
    """Admit, claim and finish every ``step`` for ``seconds``: the (time, cost) of
    each start."""
    starts: list[tuple[float, int]] = []
    for _ in range(round(seconds / step)):
        clock.advance(step)
        store.admit_rated_jobs(NS)
        jobs = claim(store)
        starts.extend((clock.now(), 1) for _ in jobs)  # each costs 1
        if jobs:
            store.finish_attempts([succeeded(job) for job in jobs])
    return starts


def test_the_admitter_keeps_a_busy_key_at_its_rate_though_its_burst_is_small(
    store: Store, clock: ManualClock
) -> None:
    """The maintenance's admitter passes again a tenth of ``promote_every`` after a pass
    that left jobs waiting for tokens (not a whole one: a burst of 4 at 20/s would
    sustain 4 starts a second), or when the next job's tokens will have accrued. Jobs
    are claimed as soon as they are admitted; over 3 s, the key starts at its rate,
    within its bound."""
    store.enqueue([rated(rate=20.0, burst=4) for _ in range(100)])
    admitter = Admitter(store, NS, 1.0, source="test")
    began = clock.now()
    starts: list[tuple[float, int]] = []
    while clock.now() < began + 3.0:
        next_pass = admitter.step(clock.now())
        jobs = claim(store)
        starts.extend((clock.now(), 1) for _ in jobs)
        store.finish_attempts([succeeded(job) for job in jobs])
        clock.set(next_pass)
    assert 4 + 20 * 3 - 4 <= len(starts) <= 4 + 20 * 3
    assert most_over_the_bound(starts, 20.0, 4) <= 1e-9


def test_the_admitter_waits_for_the_tokens_of_the_next_job_and_rests_when_none_waits(
    store: Store, clock: ManualClock
) -> None:
    store.enqueue([rated(rate=0.5, burst=1) for _ in range(2)])
    admitter = Admitter(store, NS, 1.0, source="test")

    def next_pass_in() -> float:
        return admitter.step(clock.now()) - clock.now()

    assert next_pass_in() == pytest.approx(0.101, abs=1e-6)  # its room: held by the first
    [first] = claim(store)
    clock.advance(0.101)
    assert next_pass_in() == pytest.approx(1.0, abs=1e-6)  # a token in 2 s: at most 1 s
    clock.advance(1.0)
    assert next_pass_in() == pytest.approx(1.0, abs=1e-6)  # half a token: 1 s more
    clock.advance(1.0)
    assert admitter.done == 1
    assert next_pass_in() == pytest.approx(0.101, abs=1e-6)  # it admitted the second
    assert admitter.done == 2
    store.finish_attempts([succeeded(first), *(succeeded(job) for job in claim(store))])
    clock.advance(0.101)
    assert next_pass_in() == pytest.approx(1.0, abs=1e-6)  # nothing waits: it rests


def test_the_admitter_rests_while_the_next_job_costs_more_than_its_keys_burst(
    store: Store, clock: ManualClock
) -> None:
    """A burst lowered by hand below a job's cost holds the job until it is raised
    again: no number of passes could admit it, so none is made for it but the
    admitter's usual one."""
    store.enqueue([rated(rate=1.0, burst=4, cost=3)])
    store.set_rate(NS, KEY, 1.0, burst=2)
    admitter = Admitter(store, NS, 1.0, source="test")
    assert admitter.step(clock.now()) == pytest.approx(clock.now() + 1.0, abs=1e-6)
    assert admitter.done == 0


def test_a_rate_limited_job_waits_until_it_is_admitted(store: Store) -> None:
    [job] = store.enqueue([rated()])
    assert job.status is JobStatus.WAITING
    assert store.get_job(NS, job.id).status is JobStatus.WAITING
    assert claim(store) == []  # a claim never sees it
    assert store.admit_rated_jobs(NS) == 1
    assert [found.id for found in claim(store)] == [job.id]


def test_the_first_pass_admits_the_burst_in_dispatch_order(store: Store) -> None:
    jobs = store.enqueue([rated(priority=p) for p in range(10)])
    assert store.admit_rated_jobs(NS) == 4
    admitted = [job.id for job in claim(store)]
    assert sorted(admitted) == sorted(job.id for job in jobs[6:])  # priorities 9..6
    rate = store.get_rate(NS, KEY)
    assert (rate.burst, rate.waiting, rate.tokens) == (4, 6, 0.0)


@pytest.mark.parametrize("step", [0.1, 0.35, 1.0])
def test_starts_stay_within_burst_plus_rate_times_t(
    store: Store, clock: ManualClock, step: float
) -> None:
    store.enqueue([rated(rate=2.0, burst=4) for _ in range(60)])
    starts = drive(store, clock, seconds=12, step=step)
    assert most_over_the_bound(starts, rate=2.0, burst=4) <= 1e-9
    # ...and the bucket is not starved: the jobs keep starting at the rate, give or
    # take what a pass's granularity leaves unused.
    assert len(starts) >= 4 + 2.0 * 12 * 0.45


def test_admitted_jobs_not_started_hold_the_burst(store: Store, clock: ManualClock) -> None:
    store.enqueue([rated(rate=10.0, burst=3) for _ in range(20)])
    assert store.admit_rated_jobs(NS) == 3
    clock.advance(60)  # a minute of tokens: none, while the burst is admitted and idle
    assert store.admit_rated_jobs(NS) == 0
    assert len(claim(store)) == 3
    # Starting them frees the room for the next pass, not retroactively.
    assert store.admit_rated_jobs(NS) == 0
    clock.advance(0.1)
    assert store.admit_rated_jobs(NS) == 1


def test_a_delayed_job_that_falls_due_waits_for_its_tokens(
    store: Store, clock: ManualClock,
) -> None:
    """A due delayed job is made ready and claimed in one statement on PostgreSQL: a
    rated one went straight to running, unpaid, beside admitted jobs holding the burst
    (found by the key-gate model)."""
    store.enqueue([rated(rate=1.0, burst=2) for _ in range(2)])
    assert store.admit_rated_jobs(NS) == 2  # the burst is held by jobs not started
    [delayed] = store.enqueue([rated(rate=1.0, burst=2, delay=10)])
    clock.advance(10)
    assert delayed.id not in {job.id for job in claim(store)}
    assert store.get_job(NS, delayed.id).status is JobStatus.WAITING


def test_costs_are_counted_in_tokens(store: Store, clock: ManualClock) -> None:
    heavy = store.enqueue([rated(rate=1.0, burst=4, cost=3, priority=5)])
    light = store.enqueue([rated(rate=1.0, burst=4, cost=1) for _ in range(3)])
    assert store.admit_rated_jobs(NS) == 2  # 3 + 1 tokens
    assert {job.id for job in claim(store)} == {heavy[0].id, light[0].id}
    clock.advance(1)
    assert store.admit_rated_jobs(NS) == 0  # the room the two held frees at this pass
    clock.advance(1)
    assert store.admit_rated_jobs(NS) == 1


def test_a_costly_job_is_not_passed_over_by_cheap_ones(store: Store, clock: ManualClock) -> None:
    cheap, heavy, last = store.enqueue([rated(rate=1.0, burst=3, cost=1, priority=9),
                                        rated(rate=1.0, burst=3, cost=3, priority=5),
                                        rated(rate=1.0, burst=3, cost=1, priority=0)])
    assert store.admit_rated_jobs(NS) == 1  # 2 tokens left would pay for the last...
    assert [job.id for job in claim(store)] == [cheap.id]  # ...but the heavy one is next
    clock.advance(0.01)
    store.admit_rated_jobs(NS)
    clock.advance(3)
    assert store.admit_rated_jobs(NS) == 1
    assert [job.id for job in claim(store)] == [heavy.id]
    assert store.get_job(NS, last.id).status is JobStatus.WAITING


def test_a_rate_changes_at_run_time(store: Store, clock: ManualClock) -> None:
    store.enqueue([rated(rate=1.0, burst=1) for _ in range(30)])
    assert store.admit_rated_jobs(NS) == 1
    claim(store)
    changed = store.set_rate(NS, KEY, "600/min", burst=10)
    assert (changed.rate, changed.burst, changed.set_by_hand) == (10.0, 10, True)
    clock.advance(0.01)
    store.admit_rated_jobs(NS)  # frees the room the started job held
    clock.advance(1)
    assert store.admit_rated_jobs(NS) == 10
    # A later declaration no longer changes a rate set by hand.
    store.enqueue([rated(rate=1.0, burst=1)])
    assert store.get_rate(NS, KEY).rate == 10.0


def test_a_rate_can_be_set_before_any_job(store: Store) -> None:
    made = store.set_rate(NS, "api:new", "5/s")
    assert (made.rate, made.burst, made.waiting) == (5.0, 1, 0)
    assert [found.key for found in store.list_rates(NS)] == ["api:new"]


def test_a_retry_pays_again_and_nothing_is_refunded(store: Store, clock: ManualClock) -> None:
    [job] = store.enqueue([rated(rate=1.0, burst=1)])
    store.admit_rated_jobs(NS)
    [running] = claim(store)
    store.finish_attempts([failed(running, JobStatus.QUEUED)])
    assert store.get_job(NS, job.id).status is JobStatus.WAITING  # back to wait
    assert claim(store) == []
    assert store.admit_rated_jobs(NS) == 0  # the bucket is empty: its start was paid
    clock.advance(0.01)
    store.admit_rated_jobs(NS)
    clock.advance(1)
    assert store.admit_rated_jobs(NS) == 1
    assert [found.id for found in claim(store)] == [job.id]


def test_a_rescued_job_waits_for_a_new_token(store: Store, clock: ManualClock) -> None:
    """A dead worker's job comes back through the bucket: the rescue does not refund
    the first start, and the second start is paid for (the bound holds)."""
    store.enqueue([rated(rate=1.0, burst=2) for _ in range(2)])
    store.admit_rated_jobs(NS)
    first, second = claim(store)
    clock.advance(TTL + 1)
    assert sorted(store.rescue_expired_leases(NS).requeued) == sorted([first.id, second.id])
    assert statuses(store, [first, second]) == [JobStatus.WAITING, JobStatus.WAITING]
    # TTL + 1 seconds of tokens accrued meanwhile: the burst, no more.
    store.admit_rated_jobs(NS)  # frees the room the two started jobs held
    clock.advance(5)
    assert store.admit_rated_jobs(NS) == 2
    # A stale report of the first attempt is refused, and refunds nothing.
    tokens = store.get_rate(NS, KEY).tokens
    assert store.finish_attempts([succeeded(first)]) == [first.id]
    assert store.get_rate(NS, KEY).tokens == tokens
    assert len(claim(store)) == 2


def test_rate_and_concurrency_limits_on_one_job_both_hold(
    store: Store, clock: ManualClock
) -> None:
    """Tokens go to jobs that can start: one whose concurrency key has no free slot is
    passed over and pays nothing, so it holds no tokens the other keys could use."""
    full = store.enqueue([replace(rated(rate=1.0, burst=4), gate_key="tenant:1",
                                  gate_capacity=2) for _ in range(5)])
    other = store.enqueue([replace(rated(rate=1.0, burst=4), gate_key="tenant:2",
                                   gate_capacity=5)])
    assert store.admit_rated_jobs(NS) == 3  # two slots of tenant:1, then tenant:2's job
    running = claim(store)
    assert {job.id for job in running} == {full[0].id, full[1].id, other[0].id}
    limit = store.get_limit(NS, "tenant:1")
    assert (limit.in_use, limit.waiting) == (2, 0)  # the others wait for tokens
    assert store.get_rate(NS, KEY).waiting == 3
    clock.advance(10)
    assert store.admit_rated_jobs(NS) == 0  # a token left, no slot
    store.finish_attempts([succeeded(running[0])])
    clock.advance(10)
    assert store.admit_rated_jobs(NS) == 1  # a slot freed: one more
    assert len(claim(store)) == 1


def test_a_paused_queue_or_key_or_open_breaker_spends_no_tokens(
    store: Store, clock: ManualClock
) -> None:
    held = store.enqueue([rated(rate=1.0, burst=2) for _ in range(2)])
    store.pause(NS, GateKind.QUEUE, QUEUE)
    assert store.admit_rated_jobs(NS) == 0
    assert claim(store) == []
    store.resume(NS, GateKind.QUEUE, QUEUE)
    assert store.admit_rated_jobs(NS) == 2
    assert {job.id for job in claim(store)} == {job.id for job in held}
    keyed = store.enqueue([replace(rated(rate=1.0, burst=2, key="api:b"), gate_key="k:b",
                                   gate_capacity=5)])
    store.open_breaker(NS, "k:b")
    assert store.admit_rated_jobs(NS) == 0
    store.close_breaker(NS, "k:b")
    store.pause_key(NS, "k:b")
    assert store.admit_rated_jobs(NS) == 0
    store.resume_key(NS, "k:b")
    assert store.admit_rated_jobs(NS) == 1
    assert [job.id for job in claim(store)] == [keyed[0].id]


def test_admissions_are_events(store: Store) -> None:
    seen: list[Event] = []
    store.events.attach(seen.append, [EventKind.RATE_ADMITTED])
    store.enqueue([rated() for _ in range(3)])
    store.admit_rated_jobs(NS)
    assert [(e.kind, e.metadata["key"], e.measurements["admitted"]) for e in seen] == [
        (EventKind.RATE_ADMITTED, KEY, 3)]


def test_bad_rates_are_refused_and_nothing_is_written(store: Store) -> None:
    for rate, burst, field in (("100/fortnight", 1, "rate"), ("0/s", 1, "rate"),
                               (-1.0, 1, "rate"), ("5/s", 0, "burst")):
        with pytest.raises(InvalidInput) as refused:
            store.set_rate(NS, KEY, rate, burst=burst)
        assert refused.value.field == field
    with pytest.raises(InvalidInput) as refused:
        store.set_rate(NS, "has space", "1/s")
    assert refused.value.field == "key"
    with pytest.raises(RateNotFound):
        store.get_rate(NS, "api:unknown")
    assert store.list_rates(NS) == []


def test_explain_says_a_job_waits_for_its_key_s_rate(store: Store) -> None:
    first, second = store.enqueue([rated(rate=1.0, burst=1) for _ in range(2)])
    store.admit_rated_jobs(NS)
    explained = store.explain_job(NS, second.id)
    assert explained.codes()[0] is ReasonCode.WAITING_FOR_RATE
    assert explained.reasons[0].details == {"key": KEY, "rate": 1.0, "burst": 1,
                                            "tokens": 0.0, "waiting": 1, "admitted": 1}
    assert "waiting for tokens of rate key api:acme (60/min, burst 1)" in explained.summary
    assert ReasonCode.WAITING_FOR_RATE not in store.explain_job(NS, first.id).codes()
