"""A stateful model of key gates, run against every backend.

The queue model's clients and workers (enqueue, claim by several workers, complete,
fail with or without a wait before the retry, report late with a stale fence, crash
and rescue, a dead worker process, cancel, let time pass, pause a queue), with
concurrency keys on most jobs, limits changed at run time, keys paused (by hand and
for a while), and circuit breakers (two failures within a minute open a key's for 20
seconds, on one key only when they are half its attempts in that minute; opened and
closed by hand too). After every step: nothing is lost; no more
jobs of a key hold a slot (ready or running) than its limit (a lowered limit only lets
the ones above it finish); no job of a paused key, or of a key whose breaker is open,
is claimed or ready; a half-open breaker lets one job through; a key's free slot never
idles while a job it may admit waits; a resumed key admits its waiting jobs up to its
limit. Some jobs carry a rate key too (alone or beside a concurrency key): in any
window of length t, its jobs' starts (claims) cost at most burst + rate * t, through
retries, rescues and dead workers (each start is paid for).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from buckets import worst_window
from taskwheel.clock import ManualClock
from taskwheel.gates import GateKind
from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .backends import BACKENDS, BackendFactory
from .conftest import NS, T0, new_job

TTL = 30.0
KEYS = ("k1", "k2")
# k1's breaker counts failures; k2's also asks that they be half the window's attempts.
BREAKERS = {"k1": (2, 60.0, 20.0, None), "k2": (2, 60.0, 20.0, 0.5)}
QUEUES = ("a", "b")
S = JobStatus
HOLDING = (S.QUEUED, S.RUNNING)

RATE_KEY, RATE, BURST = "r1", 1.0, 2  # a token a second, two at once

MODEL_SETTINGS = settings(max_examples=40, stateful_step_count=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Lease:
    worker: str
    fence: int


class KeyGateModel(RuleBasedStateMachine):
    def __init__(self, open_backend: BackendFactory) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="taskwheel-keys-")
        self.clock = ManualClock(T0)
        self.store: Store = open_backend(Path(self.directory.name), self.clock)
        self.store.migrate()
        self.keys: dict[int, str | None] = {}  # every job enqueued, and its key
        self.leases: dict[int, Lease] = {}
        self.stale: list[tuple[int, int]] = []
        self.ceiling = {key: 2 for key in KEYS}  # most slots in use the key may have now
        self.paused_keys: set[str] = set()
        self.paused_queues: set[str] = set()
        self.worker_count = 0
        self.rated: set[int] = set()  # the jobs with the rate key
        self.costs: dict[int, int] = {}  # and what each start of them costs
        self.starts: list[tuple[float, int]] = []  # (time, cost) of each of their claims

    def teardown(self) -> None:
        self.store.close()
        self.directory.cleanup()

    def worker(self) -> str:
        self.worker_count += 1
        return f"w{self.worker_count}"

    # -- clients ------------------------------------------------------------------------------

    @initialize()
    def declare_keys(self) -> None:
        for key in KEYS:
            self.store.set_limit(NS, key, 2)

    @rule(specs=st.lists(st.tuples(st.sampled_from([*KEYS, None]), st.sampled_from(QUEUES),
                                   st.integers(0, 2), st.sampled_from([0, 0, 10]),
                                   st.sampled_from([0, 0, 1, 2])),
                         min_size=1, max_size=4))
    def enqueue(self, specs: list[tuple[str | None, str, int, int, int]]) -> None:
        requests = [replace(new_job(queue=queue, priority=priority, delay=delay),
                            gate_key=key, gate_capacity=None if key is None else 2,
                            gate_breaker=None if key is None else BREAKERS[key],
                            rate_key=RATE_KEY if cost else None, rate_cost=max(cost, 1),
                            rate_declared=(RATE, BURST) if cost else None)
                    for key, queue, priority, delay, cost in specs]
        for job, (key, *_rest, cost) in zip(self.store.enqueue(requests), specs, strict=True):
            self.keys[job.id] = key
            if cost:
                self.rated.add(job.id)
                self.costs[job.id] = cost

    @rule(count=st.integers(2, 5), key=st.sampled_from([*KEYS, None]),
          queue=st.sampled_from(QUEUES), cost=st.sampled_from([1, 1, 2]))
    def enqueue_rated(self, count: int, key: str | None, queue: str, cost: int) -> None:
        self.enqueue([(key, queue, 0, 0, cost)] * count)

    @precondition(lambda self: bool(self.rated))
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 1.75]))
    def admit_rated_jobs(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.store.admit_rated_jobs(NS)

    @rule(key=st.sampled_from(KEYS), capacity=st.integers(1, 4))
    def set_limit(self, key: str, capacity: int) -> None:
        before = self.store.get_limit(NS, key)
        after = self.store.set_limit(NS, key, capacity)
        self.ceiling[key] = max(capacity, before.in_use)
        if (key not in self.paused_keys and not self.paused_queues
                and before.breaker == "closed"):
            # Raising it admits at once, up to the new limit.
            assert after.in_use == max(before.in_use, min(capacity,
                                                          before.in_use + before.waiting))

    @rule(key=st.sampled_from(KEYS), timed=st.booleans())
    def pause_key(self, key: str, timed: bool) -> None:
        self.store.pause_key(NS, key, until=self.clock.now() + 20 if timed else None)
        self.paused_keys.add(key)

    @precondition(lambda self: bool(self.paused_keys))
    @rule(data=st.data())
    def resume_key(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.paused_keys)))
        before = self.store.get_limit(NS, key)
        self.store.resume_key(NS, key)
        self.paused_keys.discard(key)
        after = self.store.get_limit(NS, key)
        if not self.paused_queues and before.capacity is not None and (
                before.breaker == "closed"):
            assert after.in_use == max(before.in_use, min(
                before.capacity, before.in_use + before.waiting)), (
                "paused work resumes up to the key's limit")

    @rule(key=st.sampled_from(KEYS), timed=st.booleans())
    def open_breaker(self, key: str, timed: bool) -> None:
        opened = self.store.open_breaker(NS, key,
                                         until=self.clock.now() + 20 if timed else None)
        assert opened.breaker == "open"

    @rule(key=st.sampled_from(KEYS))
    def close_breaker(self, key: str) -> None:
        if self.store.get_limit(NS, key).breaker != "closed":
            assert self.store.close_breaker(NS, key).breaker == "closed"

    @rule(queue=st.sampled_from(QUEUES))
    def pause_queue(self, queue: str) -> None:
        self.store.pause(NS, GateKind.QUEUE, queue)
        self.paused_queues.add(queue)

    @precondition(lambda self: bool(self.paused_queues))
    @rule(data=st.data())
    def resume_queue(self, data: st.DataObject) -> None:
        queue = data.draw(st.sampled_from(sorted(self.paused_queues)))
        self.store.resume(NS, GateKind.QUEUE, queue)
        self.paused_queues.discard(queue)

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.keys)))
        job = self.store.get_job(NS, job_id)
        if job.status in (S.QUEUED, S.SCHEDULED):
            self.store.cancel_job(NS, job_id)

    @rule(seconds=st.integers(1, 25))
    def advance_clock_and_maintain(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.store.admit_due_keys(NS)
        self.store.admit_rated_jobs(NS)
        self.paused_keys = {limit.key for limit in self.store.list_limits(NS) if limit.paused}

    # -- workers ------------------------------------------------------------------------------

    @rule(limit=st.integers(1, 4))
    def claim(self, limit: int) -> None:
        worker = self.worker()
        tripped = {k.key for k in self.store.list_limits(NS) if k.breaker == "open"}
        claimed = self.store.claim_jobs(NS, worker, list(QUEUES), limit, TTL).jobs
        for job in claimed:
            key = self.keys[job.id]
            assert key not in self.paused_keys, f"job {job.id} of paused key {key} claimed"
            assert key not in tripped, f"job {job.id} of {key} claimed, its breaker open"
            assert job.queue not in self.paused_queues
            self.leases[job.id] = Lease(worker, job.fence)
            if job.id in self.rated:
                self.starts.append((self.clock.now(), self.costs[job.id]))

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data(), then=st.sampled_from([S.SUCCEEDED, S.QUEUED, S.SCHEDULED, S.DEAD]))
    def finish(self, data: st.DataObject, then: JobStatus) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.leases)))
        lease = self.leases.pop(job_id)
        job = self.store.get_job(NS, job_id)
        if then in (S.QUEUED, S.SCHEDULED) and job.attempt >= job.max_attempts:
            then = S.DEAD
        outcome = Outcome(job_id, lease.fence, then,
                          AttemptOutcome.SUCCEEDED if then is S.SUCCEEDED
                          else AttemptOutcome.FAILED, retry_delay=10)
        assert self.store.finish_attempts([outcome]) == []
        self.stale.append((job_id, lease.fence))

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def report_with_stale_fence(self, data: st.DataObject) -> None:
        job_id, fence = data.draw(st.sampled_from(self.stale))
        before = self.store.list_limits(NS)
        outcome = Outcome(job_id, fence, S.SUCCEEDED, AttemptOutcome.SUCCEEDED)
        assert self.store.finish_attempts([outcome]) == [job_id]
        assert self.store.list_limits(NS) == before, "a stale report frees no slot"

    @precondition(lambda self: bool(self.leases))
    @rule()
    def crash_and_rescue(self) -> None:
        self.clock.advance(TTL + 1)
        rescue = self.store.rescue_expired_leases(NS)
        for job_id in [*rescue.requeued, *rescue.failed]:
            self.stale.append((job_id, self.leases.pop(job_id).fence))

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data())
    def worker_process_dies(self, data: st.DataObject) -> None:
        holders = sorted({lease.worker for lease in self.leases.values()})
        worker = data.draw(st.sampled_from(holders))
        for job in self.store.end_attempts_of_dead_worker(worker, "died"):
            self.stale.append((job.id, self.leases.pop(job.id).fence))

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def nothing_is_lost(self) -> None:
        found = self.store.get_jobs(NS, list(self.keys))
        assert sorted(job.id for job in found) == sorted(self.keys)
        running = {job.id for job in found if job.status is S.RUNNING}
        assert running == set(self.leases)

    @invariant()
    def no_key_has_more_slots_in_use_than_its_limit(self) -> None:
        jobs = {job.id: job for job in self.store.get_jobs(NS, list(self.keys))}
        for limit in self.store.list_limits(NS):
            running = sum(1 for job_id, key in self.keys.items()
                          if key == limit.key and jobs[job_id].status is S.RUNNING)
            assert running <= limit.in_use <= self.ceiling[limit.key], (
                f"{limit.key}: {limit.in_use} slots in use, {running} running, "
                f"at most {self.ceiling[limit.key]} allowed")
            assert limit.capacity is not None
            # Those above a lowered limit only finish: the ceiling comes down with them.
            self.ceiling[limit.key] = max(limit.capacity, limit.in_use)
            if limit.paused or limit.breaker == "open":
                assert limit.in_use == running, "a closed gate's ready jobs wait"
            if limit.breaker == "half_open":
                assert limit.in_use <= max(1, running), "a half-open breaker admits one"

    @invariant()
    def a_rate_key_s_starts_stay_within_burst_plus_rate_times_t(self) -> None:
        excess, a, b = worst_window(self.starts, RATE, BURST)
        assert excess <= 1e-6, f"{excess} tokens over the bound started in [{a - T0}, {b - T0}]"

    @invariant()
    def a_free_slot_never_idles_while_a_job_waits(self) -> None:
        if self.paused_queues:
            return  # a job a paused queue holds waits for its queue, not for a slot
        for limit in self.store.list_limits(NS):
            if limit.breaker == "half_open" and limit.waiting and not limit.paused:
                assert limit.in_use >= 1, f"{limit.key}: half-open, waiting, no probe"
            if limit.waiting and not limit.paused and limit.breaker == "closed":
                assert limit.capacity is not None
                assert limit.in_use >= limit.capacity, (
                    f"{limit.key}: {limit.waiting} waiting with {limit.in_use} of "
                    f"{limit.capacity} slots in use")


def test_key_gates_keep_their_guarantees_under_any_interleaving(backend: str) -> None:
    run_state_machine_as_test(lambda: KeyGateModel(BACKENDS[backend]), settings=MODEL_SETTINGS)
