"""Why a job is not running: each reason built from the store's state at one instant, on
every store. Each test builds the situation, then checks the reason's code, its sentence
and its details."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import JobNotFound
from taskwheel.explanations import Explanation, ReasonCode
from taskwheel.fairness import QueueAging
from taskwheel.gates import GateKind
from taskwheel.jobs import AttemptOutcome, Guarantee, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import FireResult, Overlap
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
)
from .test_schedules import EVERY, created, definition, plan
from .test_workflows import claim, workflow

R = ReasonCode


def explained(store: Store, job_id: int, namespace: str = NS) -> Explanation:
    explanation = store.explain_job(namespace, job_id)
    assert explanation.job_id == job_id
    return explanation


def reason(explanation: Explanation, code: ReasonCode) -> str:
    """The sentence of the reason ``code`` (failing if the explanation lacks it)."""
    found = [r for r in explanation.reasons if r.code is code]
    assert found, f"no {code.value} in {explanation.codes()}"
    return found[0].message


def serve(store: Store, worker: str = "w1", **options: object) -> None:
    store.register_worker(registration(worker, **options))  # type: ignore[arg-type]


# -- pending ----------------------------------------------------------------------------------


def test_a_delayed_job_is_due_at_its_time(store: Store) -> None:
    serve(store)
    job = enqueue_one(store, new_job(delay=90))

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.DUE_LATER]
    assert explanation.status is JobStatus.SCHEDULED
    assert reason(explanation, R.DUE_LATER) == "due at 2023-11-14T22:14:50Z (in 90 s)"
    assert explanation.reasons[0].details["in_seconds"] == 90


def test_a_delayed_job_past_its_time_waits_for_the_next_promotion(
    store: Store, clock: ManualClock
) -> None:
    serve(store)
    job = enqueue_one(store, new_job(delay=10))
    clock.advance(15)
    serve(store)  # its heartbeat: still alive

    assert explained(store, job.id).codes() == [R.DUE_NOW]


def test_a_job_retried_after_a_failure_is_backing_off_until_its_retry_time(
    store: Store, clock: ManualClock
) -> None:
    serve(store)
    enqueue_one(store, new_job(max_attempts=5))
    job = claim_one(store)
    store.finish_attempts([failed(job, JobStatus.SCHEDULED, retry_delay=30)])

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.BACKING_OFF]
    assert reason(explanation, R.BACKING_OFF) == (
        "backing off after attempt 1 of 5 failed (ValueError: boom) until "
        "2023-11-14T22:13:50Z (in 30 s)")
    assert explanation.reasons[0].details["attempt"] == 1


def test_a_workflow_step_waits_for_the_steps_it_runs_after(store: Store) -> None:
    serve(store)
    run = store.submit_workflow(workflow({"a": [], "b": [], "c": ["a", "b"]}))
    started = claim(store, "a", "b")
    store.finish_attempts([succeeded(started["a"])])  # b still runs
    step_c = run.step("c").job

    explanation = explained(store, step_c.id)

    assert explanation.codes() == [R.WAITING_FOR_STEPS]
    assert reason(explanation, R.WAITING_FOR_STEPS) == (
        f"waiting for workflow step b of run {run.id}")
    assert explanation.reasons[0].details["jobs"] == [started["b"].id]


def test_a_step_waiting_for_two_steps_names_both(store: Store) -> None:
    serve(store)
    run = store.submit_workflow(workflow({"x": [], "y": [], "z": ["x", "y"]}))

    explanation = explained(store, run.step("z").job.id)

    assert reason(explanation, R.WAITING_FOR_STEPS) == (
        f"waiting for workflow steps x and y of run {run.id}")


def test_a_queue_one_job_waits_for_the_earlier_job_of_its_schedule(
    store: Store, clock: ManualClock
) -> None:
    serve(store)
    schedule = created(store, definition(overlap=Overlap.QUEUE_ONE))
    clock.advance(EVERY)
    store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    clock.advance(EVERY)
    [waiting] = store.fire_schedules(NS, [plan(schedule, T0 + 2 * EVERY,
                                               expected=T0 + 2 * EVERY)])
    assert waiting.result is FireResult.WAITING
    assert waiting.job_id is not None
    serve(store)

    explanation = explained(store, waiting.job_id)

    assert explanation.codes() == [R.WAITING_FOR_EARLIER_RUN]
    assert "schedule nightly" in reason(explanation, R.WAITING_FOR_EARLIER_RUN)


def test_no_live_worker_serves_the_queue(store: Store) -> None:
    serve(store, queues=("other",))  # alive, but not for this queue
    job = enqueue_one(store)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.NO_LIVE_WORKER]
    assert reason(explanation, R.NO_LIVE_WORKER) == (
        f"no live worker serves queue default in namespace {NS}")


def test_a_worker_that_stopped_heartbeating_is_named_and_not_counted_alive(
    store: Store, clock: ManualClock
) -> None:
    serve(store, "w-old", heartbeat_interval=5.0)
    clock.advance(16)  # three intervals and more without a heartbeat
    job = enqueue_one(store)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.NO_LIVE_WORKER]
    assert "1 registered worker stopped heartbeating: w-old" in reason(
        explanation, R.NO_LIVE_WORKER)


def test_a_worker_of_another_namespace_does_not_serve_it_and_one_of_every_namespace_does(
    store: Store,
) -> None:
    serve(store, "w-other", namespace=OTHER_NS)
    job = enqueue_one(store)
    assert explained(store, job.id).codes() == [R.NO_LIVE_WORKER]

    serve(store, "w-all", namespace="*")

    assert explained(store, job.id).codes() == [R.NEXT_IN_LINE]


def test_jobs_ahead_in_dispatch_order_are_counted_by_priority_band(store: Store) -> None:
    serve(store)
    for priority in (9, 9, 5):
        enqueue_one(store, new_job(priority=priority))
    enqueue_one(store, new_job(priority=1))  # same band, earlier
    enqueue_one(store, new_job(priority=0))  # below: not ahead
    enqueue_one(store, new_job(priority=1, queue="other"))  # another queue: not ahead
    job = enqueue_one(store, new_job(priority=1))
    enqueue_one(store, new_job(priority=1))  # same band, later: not ahead

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.JOBS_AHEAD]
    assert reason(explanation, R.JOBS_AHEAD) == (
        "4 jobs are ahead of it in dispatch order in queue default (2 at priority 9, "
        "1 at priority 5, above its 1; 1 at its own priority 1, earlier in order)")
    details = explanation.reasons[0].details
    assert (details["ahead"], details["higher_priority"], details["same_priority"]) == (4, 3, 1)
    assert details["bands"] == {"9": 2, "5": 1, "1": 1}


def test_a_due_time_finer_than_a_microsecond_does_not_put_a_job_ahead_of_itself(
    store: Store,
) -> None:
    # Read back as a datetime, 0.6 µs rounds up to 1 µs: later than the row's own.
    serve(store)
    job = enqueue_one(store, new_job(run_at=T0 - 10 + 0.0000006))

    assert explained(store, job.id).codes() == [R.NEXT_IN_LINE]


def test_an_earlier_deadline_puts_a_later_job_ahead(store: Store) -> None:
    serve(store)
    first = enqueue_one(store)
    urgent = enqueue_one(store, new_job(deadline=T0 + 600))

    assert explained(store, urgent.id).codes() == [R.NEXT_IN_LINE]
    assert "1 job is ahead" in reason(explained(store, first.id), R.JOBS_AHEAD)


def test_in_a_queue_that_ages_an_older_job_of_a_lower_priority_is_ahead(store: Store) -> None:
    serve(store)
    store.set_queue_aging(QueueAging(NS, QUEUE, 1 / 60))  # a level a minute
    older = enqueue_one(store, new_job(priority=0, run_at=T0 - 600))  # 10 levels up
    job = enqueue_one(store, new_job(priority=1))
    enqueue_one(store, new_job(priority=0))  # as old as the job: below it

    explanation = explained(store, job.id)
    assert reason(explanation, R.JOBS_AHEAD) == (
        "1 job is ahead of it in dispatch order in queue default (1 at priority 0, below "
        "its 1, aged above it)")
    details = explanation.reasons[0].details
    assert (details["ahead"], details["higher_priority"], details["same_priority"],
            details["lower_priority"]) == (1, 0, 0, 1)
    # ... as the claims take them.
    assert claim_one(store).id == older.id
    assert claim_one(store).id == job.id


def test_the_first_ready_job_with_a_live_worker_is_next_in_line(store: Store) -> None:
    serve(store)
    job = enqueue_one(store)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.NEXT_IN_LINE]
    assert explanation.summary == (
        "ready and first in line in queue default: the next claim of a live worker takes it")


def test_a_job_of_a_paused_queue_or_task_says_so_and_is_in_no_line(store: Store) -> None:
    serve(store)
    job = enqueue_one(store)
    store.pause(NS, GateKind.QUEUE, job.queue, until=T0 + 600)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.PAUSED]  # not "next in line": nobody claims it
    assert reason(explanation, R.PAUSED).startswith(f"its queue {job.queue} is paused since")
    assert "maintenance resumes it then" in reason(explanation, R.PAUSED)
    store.pause(NS, GateKind.TASK, job.task)
    assert explained(store, job.id).codes() == [R.PAUSED, R.PAUSED]
    store.resume(NS, GateKind.QUEUE, job.queue)
    store.resume(NS, GateKind.TASK, job.task)
    assert explained(store, job.id).codes() == [R.NEXT_IN_LINE]


def test_a_pending_job_past_its_deadline_will_expire(store: Store, clock: ManualClock) -> None:
    serve(store)
    job = enqueue_one(store, new_job(deadline=T0 + 10))
    clock.advance(20)
    serve(store)

    explanation = explained(store, job.id)

    assert R.DEADLINE_PASSED in explanation.codes()
    assert reason(explanation, R.DEADLINE_PASSED).startswith(
        "its deadline 2023-11-14T22:13:30Z passed before it started")


# -- running ----------------------------------------------------------------------------------


def test_a_running_job_names_its_worker_start_and_lease(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w7")

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.RUNNING]
    assert reason(explanation, R.RUNNING) == (
        "running on worker w7 since 2023-11-14T22:13:20Z (attempt 1 of 3; lease until "
        "2023-11-14T22:13:50Z)")


def test_a_running_job_asked_to_cancel_says_so(store: Store) -> None:
    enqueue_one(store)
    job = claim_one(store, "w7")
    store.cancel_job(NS, job.id)

    assert explained(store, job.id).codes() == [R.RUNNING, R.CANCEL_REQUESTED]


def test_a_running_job_whose_lease_lapsed_awaits_the_rescuer(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store, new_job(guarantee=Guarantee.AT_MOST_ONCE))
    job = claim_one(store, "w7")
    clock.advance(TTL + 5)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.RUNNING, R.LEASE_EXPIRED]
    assert reason(explanation, R.LEASE_EXPIRED) == (
        "its lease lapsed at 2023-11-14T22:13:50Z (5 s ago): worker w7 is presumed gone "
        "and the next rescue pass fails it")


# -- ended ------------------------------------------------------------------------------------


def test_a_succeeded_job_says_when_and_after_how_many_attempts(
    store: Store, clock: ManualClock
) -> None:
    enqueue_one(store)
    job = claim_one(store)
    clock.advance(3)
    store.finish_attempts([succeeded(job)])

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.SUCCEEDED]
    assert explanation.summary == "succeeded at 2023-11-14T22:13:23Z after 1 attempt"


def test_a_dead_job_says_why_and_how_to_run_it_again(store: Store) -> None:
    enqueue_one(store, new_job(max_attempts=1))
    job = claim_one(store)
    store.finish_attempts([failed(job, JobStatus.DEAD, error="KeyError: 'user'")])

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.DEAD]
    assert reason(explanation, R.DEAD) == (
        "dead at 2023-11-14T22:13:20Z after 1 attempt of 1: KeyError: 'user' (in the "
        "dead-letter queue: replay it to run it again)")


def test_a_cancelled_job_says_when(store: Store) -> None:
    job = enqueue_one(store)
    store.cancel_job(NS, job.id)

    assert explained(store, job.id).codes() == [R.CANCELLED]


def test_an_expired_job_names_its_deadline(store: Store, clock: ManualClock) -> None:
    job = enqueue_one(store, new_job(deadline=T0 + 10))
    clock.advance(20)
    store.expire_missed_deadlines(NS)

    explanation = explained(store, job.id)

    assert explanation.codes() == [R.EXPIRED]
    assert "its deadline 2023-11-14T22:13:30Z passed before it started" in explanation.summary


def test_a_step_after_a_failed_one_says_which_failed(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}))
    step_a = claim(store, "a")["a"]
    store.finish_attempts([Outcome(step_a.id, step_a.fence, JobStatus.DEAD,
                                   AttemptOutcome.FAILED, error="boom")])

    explanation = explained(store, run.step("b").job.id)

    assert explanation.codes() == [R.UPSTREAM_FAILED]
    assert "a" in explanation.summary


def test_a_job_of_another_namespace_is_not_found(store: Store) -> None:
    job = enqueue_one(store)

    with pytest.raises(JobNotFound):
        store.explain_job(OTHER_NS, job.id)


# -- key gates ----------------------------------------------------------------------------------


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def _keyed(key: str = "tenant:7", capacity: int = 1) -> NewJob:
    return replace(new_job(), gate_key=key, gate_capacity=capacity)


def test_a_job_waiting_for_a_slot_names_its_full_limit(store: Store) -> None:
    serve(store)
    running, waiting = store.enqueue([_keyed(), _keyed()])
    claim_one(store)

    explanation = explained(store, waiting.id)
    assert explanation.codes() == [R.LIMIT_FULL]  # in no line: not "next in line"
    assert reason(explanation, R.LIMIT_FULL) == (
        "its key tenant:7 has every slot of its concurrency limit taken (1 of 1, running or "
        "ready): it is admitted when one is given back (1 job waiting)")
    assert explanation.reasons[0].details == {"key": "tenant:7", "capacity": 1, "in_use": 1,
                                              "waiting": 1}
    assert R.LIMIT_FULL not in explained(store, running.id).codes()


def test_a_job_waiting_for_a_slot_is_not_ahead_of_a_ready_one(store: Store) -> None:
    serve(store)
    store.enqueue([replace(_keyed(), priority=5), replace(_keyed(), priority=5)])
    job = enqueue_one(store, new_job(priority=1))

    # The second keyed job waits for the first one's slot: no claim takes it first.
    assert reason(explained(store, job.id), R.JOBS_AHEAD).startswith(
        "1 job is ahead of it in dispatch order in queue default (1 at priority 5")


def test_a_job_of_a_paused_key_names_the_pause_and_its_end(store: Store) -> None:
    serve(store)
    job = enqueue_one(store, _keyed(capacity=5))
    store.pause_key(NS, "tenant:7", until=T0 + 60)

    explanation = explained(store, job.id)
    assert explanation.codes() == [R.KEY_PAUSED]
    assert reason(explanation, R.KEY_PAUSED) == (
        f"its key tenant:7 is paused since {iso(T0)}, until {iso(T0 + 60)} (maintenance "
        "resumes it then): no job of the key is admitted meanwhile")


def test_a_job_behind_an_open_breaker_names_it_and_when_it_half_opens(store: Store) -> None:
    serve(store)
    job = enqueue_one(store, _keyed(capacity=5))
    store.open_breaker(NS, "tenant:7", until=T0 + 30)

    explanation = explained(store, job.id)
    assert explanation.codes() == [R.BREAKER_OPEN]
    assert reason(explanation, R.BREAKER_OPEN) == (
        f"the circuit breaker of its key tenant:7 is open until {iso(T0 + 30)}, then one probe "
        "job runs: no job of the key is admitted meanwhile")


def test_a_job_behind_a_half_open_breaker_waits_for_the_probe(
    store: Store, clock: ManualClock
) -> None:
    probe, job = store.enqueue([_keyed(capacity=5), _keyed(capacity=5)])
    store.open_breaker(NS, "tenant:7", until=T0 + 30)
    clock.advance(31)
    serve(store)
    store.admit_due_keys(NS)  # half-open: the first job is the probe
    claim_one(store)

    explanation = explained(store, job.id)
    assert explanation.codes() == [R.BREAKER_HALF_OPEN]
    assert reason(explanation, R.BREAKER_HALF_OPEN) == (
        "the circuit breaker of its key tenant:7 is half-open: one probe job runs at a time "
        "(1 running or ready), and its success closes the breaker")
    assert R.RUNNING in explained(store, probe.id).codes()
