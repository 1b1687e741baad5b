"""A stateful model of the queue, run against every backend.

Hypothesis drives a store through random interleavings of what clients and workers do
(enqueue, claim by several workers, heartbeat, complete, fail, report late with a stale
fencing token, shut down, crash, a worker process's death seen by its supervisor, cancel,
let time pass, rescue, pause and resume a queue) and keeps a model of
where every job must be. After every step the store must agree with the model: nothing
lost, every status change a legal transition, one live holder per running job with the
fence the model gave it, attempts within bounds, no job of a paused queue claimed, and a
paused queue's jobs claimable again when it resumes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
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

from taskwheel.clock import ManualClock
from taskwheel.errors import IllegalTransition, NotPaused
from taskwheel.gates import GateKind
from taskwheel.jobs import AttemptOutcome, Guarantee, NewJob, Outcome, dispatch_key
from taskwheel.lifecycle import PENDING, JobStatus, check_transition
from taskwheel.retry import Retry
from taskwheel.stores.base import Store

from .backends import BACKENDS, BackendFactory
from .conftest import NS, OTHER_NS, T0, new_job, ts

LEASE_TTL = 30.0  # whole seconds throughout: model times equal store times exactly
QUEUES = ("a", "b")
WORKER_SLOTS = 3

MODEL_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

S = JobStatus


@dataclass(frozen=True)
class JobSpec:
    queue: str
    priority: int
    delay: int
    max_attempts: int
    guarantee: Guarantee

    def request(self) -> NewJob:
        return new_job(
            queue=self.queue,
            priority=self.priority,
            delay=self.delay,
            max_attempts=self.max_attempts,
            guarantee=self.guarantee,
        )


JOB_SPECS = st.builds(
    JobSpec,
    queue=st.sampled_from(QUEUES),
    priority=st.integers(-2, 2),
    delay=st.sampled_from([0, 0, 5, 40]),
    max_attempts=st.integers(1, 3),
    guarantee=st.sampled_from(Guarantee),
)


@dataclass
class ModelJob:
    """What the model knows a job must be."""

    id: int
    queue: str
    priority: int
    guarantee: Guarantee
    max_attempts: int
    run_at: float
    seen: JobStatus  # the status last observed in the store
    expected: set[JobStatus] = field(default_factory=set)  # what the store may show next
    attempt: int = 0
    fence: int = 0
    cancel_requested: bool = False


@dataclass
class Lease:
    worker: str
    fence: int
    expires: float


class QueueModel(RuleBasedStateMachine):
    def __init__(self, open_backend: BackendFactory) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="taskwheel-model-")
        self.clock = ManualClock(T0)
        self.store: Store = open_backend(Path(self.directory.name), self.clock)
        self.store.migrate()
        self.jobs: dict[int, ModelJob] = {}
        self.leases: dict[int, Lease] = {}  # running job id -> its one live holder
        self.stale: list[tuple[int, int]] = []  # (job id, fence) of attempts that ended
        self.foreign: list[int] = []  # jobs of another namespace nobody here may touch
        self.workers = [f"w{i}" for i in range(WORKER_SLOTS)]
        self.workers_started = WORKER_SLOTS
        self.paused: set[str] = set()  # queues no worker may claim from

    def teardown(self) -> None:
        self.store.close()
        self.directory.cleanup()

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def held_by(self, worker: str) -> dict[int, Lease]:
        return {job_id: lease for job_id, lease in self.leases.items() if lease.worker == worker}

    def replace_worker(self, slot: int) -> None:
        """The worker in ``slot`` is gone for good; a new process takes its place."""
        self.workers[slot] = f"w{self.workers_started}"
        self.workers_started += 1

    def end_attempt(self, job_id: int, expected: set[JobStatus]) -> Lease:
        lease = self.leases.pop(job_id)
        self.stale.append((job_id, lease.fence))
        self.jobs[job_id].expected = expected
        return lease

    def check_last_attempt(self, job_id: int, lease: Lease, outcome: AttemptOutcome) -> None:
        last = self.store.list_attempts(NS, job_id)[-1]
        assert (last.outcome, last.fence, last.worker_id) == (outcome, lease.fence, lease.worker)

    def heartbeat_worker(self, worker: str) -> None:
        mine = self.held_by(worker)
        # What the worker executes, and an older attempt it may still be finishing: a
        # stale token renews nothing.
        named = {job_id: fence for job_id, fence in self.stale if job_id not in mine}
        named.update({job_id: lease.fence for job_id, lease in mine.items()})
        held = self.store.heartbeat(worker, LEASE_TTL, named)
        assert held == {job_id: self.jobs[job_id].cancel_requested for job_id in mine}, (
            f"{worker} heartbeat reports {held}, model says it holds {sorted(mine)}"
        )
        for lease in mine.values():
            lease.expires = self.now() + LEASE_TTL

    # -- clients ------------------------------------------------------------------------------

    @initialize(requests=st.lists(JOB_SPECS, min_size=2, max_size=6))
    def enqueue_first_jobs(self, requests: list[JobSpec]) -> None:
        """Work for the workers from the start, and a job in another namespace that
        nothing done here may touch."""
        [foreign] = self.store.enqueue([new_job(namespace=OTHER_NS, queue=QUEUES[0])])
        self.foreign.append(foreign.id)
        self.enqueue(requests)

    @rule(requests=st.lists(JOB_SPECS, min_size=1, max_size=4))
    def enqueue(self, requests: list[JobSpec]) -> None:
        now = self.now()

        jobs = self.store.enqueue([spec.request() for spec in requests])

        assert len({job.id for job in jobs}) == len(requests)
        for job, spec in zip(jobs, requests, strict=True):
            status = S.SCHEDULED if spec.delay else S.QUEUED
            assert job.id not in self.jobs
            assert (job.status, ts(job.run_at), job.attempt) == (status, now + spec.delay, 0)
            self.jobs[job.id] = ModelJob(
                id=job.id,
                queue=spec.queue,
                priority=spec.priority,
                guarantee=spec.guarantee,
                max_attempts=spec.max_attempts,
                run_at=now + spec.delay,
                seen=status,
                expected={status},
                fence=job.fence,
            )

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.jobs:
            return
        job_id = data.draw(st.sampled_from(sorted(self.jobs)), label="job")
        model = self.jobs[job_id]
        if model.seen in PENDING:
            assert self.store.cancel_job(NS, job_id).status is S.CANCELLED
            model.expected = {S.CANCELLED}
        elif model.seen is S.RUNNING:
            job = self.store.cancel_job(NS, job_id)
            assert (job.status, job.cancel_requested) == (S.RUNNING, True)
            model.cancel_requested = True
        else:
            with pytest.raises(IllegalTransition):
                self.store.cancel_job(NS, job_id)

    @rule(queue=st.sampled_from(QUEUES))
    def pause(self, queue: str) -> None:
        held = sum(1 for m in self.jobs.values() if m.seen is S.QUEUED and m.queue == queue)

        pause = self.store.pause(NS, GateKind.QUEUE, queue)

        if queue not in self.paused:  # a pause of a paused queue changes nothing
            assert pause.held == held
        self.paused.add(queue)

    @rule(queue=st.sampled_from(QUEUES))
    def resume(self, queue: str) -> None:
        if queue not in self.paused:
            with pytest.raises(NotPaused):
                self.store.resume(NS, GateKind.QUEUE, queue)
            return
        # Due delayed jobs are not ready yet (a claim or the promoter makes them so).
        held = sum(1 for m in self.jobs.values() if m.seen is S.QUEUED and m.queue == queue)

        assert self.store.resume(NS, GateKind.QUEUE, queue) == held

        self.paused.discard(queue)

    @rule(seconds=st.integers(1, int(2 * LEASE_TTL)))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- workers --------------------------------------------------------------------------------

    @rule(
        slot=st.integers(0, WORKER_SLOTS - 1),
        limit=st.integers(1, 3),
        queues=st.sampled_from([("a", "b"), ("a", "b"), ("a",), ("b",)]),
    )
    def claim(self, slot: int, limit: int, queues: tuple[str, ...]) -> None:
        worker, now = self.workers[slot], self.now()
        # A claim first makes due delayed jobs ready (documented as part of the claim).
        for model in self.jobs.values():
            if model.seen is S.SCHEDULED and model.run_at <= now:
                check_transition(S.SCHEDULED, S.QUEUED, model.id)
                model.seen, model.expected = S.QUEUED, {S.QUEUED}
        ready = sorted(
            (m for m in self.jobs.values()
             if m.seen is S.QUEUED and m.queue in queues and m.queue not in self.paused),
            key=lambda m: dispatch_key(m.priority, None, m.run_at, m.id),
        )
        scheduled = [m.run_at for m in self.jobs.values() if m.seen is S.SCHEDULED]

        claim = self.store.claim_jobs(NS, worker, list(queues), limit, LEASE_TTL)

        assert [j.id for j in claim.jobs] == [m.id for m in ready[:limit]], "dispatch order"
        assert claim.next_due == (min(scheduled) if scheduled else None)
        for job in claim.jobs:
            model = self.jobs[job.id]
            assert job.worker_id == worker
            assert job.attempt == model.attempt + 1
            assert job.fence > model.fence, "every claim gets a new fencing token"
            assert ts(job.lease_expires_at) == now + LEASE_TTL
            model.attempt, model.fence, model.expected = job.attempt, job.fence, {S.RUNNING}
            self.leases[job.id] = Lease(worker, job.fence, now + LEASE_TTL)

    @rule(slot=st.integers(0, WORKER_SLOTS - 1))
    def heartbeat(self, slot: int) -> None:
        self.heartbeat_worker(self.workers[slot])

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.leases)), label="job")
        lease = self.leases[job_id]
        outcome = Outcome(job_id, lease.fence, S.SUCCEEDED, AttemptOutcome.SUCCEEDED, "true")

        assert self.store.finish_attempts([outcome]) == []

        self.end_attempt(job_id, {S.SUCCEEDED})
        self.check_last_attempt(job_id, lease, AttemptOutcome.SUCCEEDED)

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data(), retry_delay=st.sampled_from([0, 5, 40]))
    def fail(self, data: st.DataObject, retry_delay: int) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.leases)), label="job")
        model, lease = self.jobs[job_id], self.leases[job_id]
        if model.attempt >= model.max_attempts:
            status, retry_delay = S.DEAD, 0
            # Where a dead end of a job asked to cancel lands is not part of the contract.
            expected = {S.DEAD, S.CANCELLED} if model.cancel_requested else {S.DEAD}
        else:
            status = S.SCHEDULED if retry_delay else S.QUEUED
            expected = {S.CANCELLED} if model.cancel_requested else {status}
            model.run_at = self.now() + retry_delay
        outcome = Outcome(
            job_id, lease.fence, status, AttemptOutcome.FAILED,
            error="RuntimeError: model", traceback="Traceback", retry_delay=retry_delay,
        )

        assert self.store.finish_attempts([outcome]) == []

        self.end_attempt(job_id, expected)
        self.check_last_attempt(job_id, lease, AttemptOutcome.FAILED)

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data(), status=st.sampled_from([S.SUCCEEDED, S.DEAD, S.QUEUED, S.SCHEDULED]))
    def report_with_stale_fence(self, data: st.DataObject, status: JobStatus) -> None:
        """A worker presumed dead (or simply late) reports on an attempt that is over."""
        job_id, fence = data.draw(st.sampled_from(self.stale), label="stale attempt")
        before = self.store.get_job(NS, job_id)
        outcome = Outcome(job_id, fence, status, AttemptOutcome.FAILED, retry_delay=5)

        assert self.store.finish_attempts([outcome]) == [job_id]
        assert self.store.extend_lease(job_id, fence, LEASE_TTL) is False
        assert self.store.save_checkpoint(job_id, fence, '"stale"') is False

        assert self.store.get_job(NS, job_id) == before

    @rule(slot=st.integers(0, WORKER_SLOTS - 1))
    def shut_down(self, slot: int) -> None:
        """A worker stops gracefully and gives back every lease it holds."""
        worker, now = self.workers[slot], self.now()
        mine = self.held_by(worker)

        released = self.store.release_jobs(worker, {i: lease.fence for i, lease in mine.items()})

        assert sorted(released) == sorted(mine)
        for job_id, lease in mine.items():
            model = self.jobs[job_id]
            if model.guarantee is Guarantee.AT_LEAST_ONCE:
                model.attempt -= 1  # given back unused
                model.run_at = now
                self.end_attempt(job_id, {S.CANCELLED if model.cancel_requested else S.QUEUED})
            else:
                self.end_attempt(job_id, {S.CANCELLED if model.cancel_requested else S.DEAD})
            self.check_last_attempt(job_id, lease, AttemptOutcome.INTERRUPTED)
        self.replace_worker(slot)

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """A worker holding jobs dies: its leases are no longer heartbeated while the
        others' are, the clock passes its lease, and the rescuer runs."""
        holders = sorted({lease.worker for lease in self.leases.values()} & set(self.workers))
        crashed = data.draw(st.sampled_from(holders), label="crashed worker")
        self.replace_worker(self.workers.index(crashed))
        for _ in range(2):
            self.clock.advance(LEASE_TTL // 2 + 1)
            for worker in self.workers:
                self.heartbeat_worker(worker)
        assert all(lease.expires < self.now() for lease in self.held_by(crashed).values())
        self.rescue()

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data(), base=st.sampled_from([0, 5]))
    def worker_process_dies(self, data: st.DataObject, base: int) -> None:
        """A worker process holding jobs dies and its supervisor ends its attempts at once,
        each retried after its task's delay: no lease is waited for."""
        holders = sorted({lease.worker for lease in self.leases.values()} & set(self.workers))
        if not holders:
            return
        dead = data.draw(st.sampled_from(holders), label="dead worker process")
        now, mine = self.now(), self.held_by(dead)
        policy = Retry(base=base, jitter=0)

        ended = self.store.end_attempts_of_dead_worker(dead, "died", {"contract.noop": policy})

        assert [job.id for job in ended] == sorted(mine)
        for job_id, lease in mine.items():
            model = self.jobs[job_id]
            if (model.guarantee is Guarantee.AT_LEAST_ONCE and not model.cancel_requested
                    and model.attempt < model.max_attempts):
                delay = policy.delay(model.attempt)
                model.run_at = now + delay
                self.end_attempt(job_id, {S.SCHEDULED if delay else S.QUEUED})
            else:
                self.end_attempt(job_id, {S.CANCELLED if model.cancel_requested else S.DEAD})
            self.check_last_attempt(job_id, lease, AttemptOutcome.CRASHED)
        self.replace_worker(self.workers.index(dead))

    # -- the rescuer -----------------------------------------------------------------------------

    @rule()
    def rescue(self) -> None:
        now = self.now()
        expired = sorted(i for i, lease in self.leases.items() if lease.expires < now)
        requeued: list[int] = []
        failed: list[int] = []
        for job_id in expired:
            model = self.jobs[job_id]
            runs_again = (
                model.guarantee is Guarantee.AT_LEAST_ONCE
                and model.attempt < model.max_attempts
                and not model.cancel_requested
            )
            (requeued if runs_again else failed).append(job_id)

        rescue = self.store.rescue_expired_leases(NS)

        assert (rescue.requeued, rescue.failed) == (requeued, failed)
        for job_id in requeued:
            self.jobs[job_id].run_at = now
            lease = self.end_attempt(job_id, {S.QUEUED})
            self.check_last_attempt(job_id, lease, AttemptOutcome.LEASE_EXPIRED)
        for job_id in failed:
            cancelled = self.jobs[job_id].cancel_requested
            lease = self.end_attempt(job_id, {S.CANCELLED if cancelled else S.DEAD})
            self.check_last_attempt(job_id, lease, AttemptOutcome.LEASE_EXPIRED)

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        found = {job.id: job for job in self.store.get_jobs(NS, list(self.jobs))}
        lost = set(self.jobs) - set(found)
        assert not lost, f"jobs lost: {sorted(lost)}"
        for job_id, model in self.jobs.items():
            job = found[job_id]
            assert job.status in model.expected, (
                f"job {job_id} is {job.status}, the model allows {sorted(model.expected)}"
            )
            if job.status is not model.seen:
                check_transition(model.seen, job.status, job_id)
            model.seen, model.expected = job.status, {job.status}
            assert job.attempt == model.attempt
            assert 0 <= job.attempt <= job.max_attempts == model.max_attempts
            assert job.fence == model.fence
            assert job.cancel_requested == model.cancel_requested
            lease = self.leases.get(job_id)
            if job.status is S.RUNNING:
                assert lease is not None, f"job {job_id} runs under a lease nobody holds"
                assert (job.worker_id, job.fence) == (lease.worker, lease.fence)
                assert ts(job.lease_expires_at) == lease.expires
            else:
                assert lease is None, f"job {job_id} is {job.status} but {lease} holds it"
                assert job.lease_expires_at is None
            if job.status in (S.QUEUED, S.SCHEDULED):
                assert ts(job.run_at) == model.run_at

    @invariant()
    def no_live_fence_is_stale(self) -> None:
        live = {(job_id, lease.fence) for job_id, lease in self.leases.items()}
        assert not live & set(self.stale), "a fence was handed out twice"

    @invariant()
    def other_namespaces_are_untouched(self) -> None:
        theirs = self.store.get_jobs(OTHER_NS, self.foreign)
        assert len(theirs) == len(self.foreign)
        assert all((j.status, j.attempt) == (S.QUEUED, 0) for j in theirs)


def test_the_queue_keeps_its_guarantees_under_any_interleaving(backend: str) -> None:
    run_state_machine_as_test(
        lambda: QueueModel(BACKENDS[backend]), settings=MODEL_SETTINGS
    )
