"""What happens to a job after an attempt (`decide`): success ends it, a cancel request
ends it cancelled, a failure is retried after the policy's wait until the job's attempts
run out, then it is dead."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.jobs import AttemptOutcome, Job
from taskwheel.lifecycle import RUNNING_TARGETS, JobStatus, check_transition
from taskwheel.retry import Backoff, Retry
from taskwheel.worker.execution import Execution, decide

from .job_records import job_record

A = AttemptOutcome
S = JobStatus

# Deterministic waits: 5s, 10s, 20s, ... capped at 1m.
RETRY = Retry(max_attempts=3, backoff=Backoff.EXPONENTIAL, base="5s", cap="1m", jitter=0)
FAILURES = [A.FAILED, A.TIMED_OUT, A.CRASHED]


def execution(outcome: AttemptOutcome) -> Execution:
    if outcome is A.SUCCEEDED:
        return Execution(outcome, result_json='{"total": 3}')
    return Execution(outcome, error=f"{outcome.value}!", traceback="Traceback ...")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Success ends the job, even on its last attempt, even if a cancel came too late.
        ((A.SUCCEEDED, False, 1, 3), (S.SUCCEEDED, A.SUCCEEDED, 0.0)),
        ((A.SUCCEEDED, False, 3, 3), (S.SUCCEEDED, A.SUCCEEDED, 0.0)),
        ((A.SUCCEEDED, True, 1, 3), (S.SUCCEEDED, A.SUCCEEDED, 0.0)),
        # A task that ends itself cancelled is not retried.
        ((A.CANCELLED, False, 1, 3), (S.CANCELLED, A.CANCELLED, 0.0)),
        ((A.CANCELLED, True, 3, 3), (S.CANCELLED, A.CANCELLED, 0.0)),
        # A cancel request turns any failure into a cancellation: no retry, not dead.
        ((A.FAILED, True, 1, 3), (S.CANCELLED, A.CANCELLED, 0.0)),
        ((A.TIMED_OUT, True, 1, 3), (S.CANCELLED, A.CANCELLED, 0.0)),
        ((A.CRASHED, True, 3, 3), (S.CANCELLED, A.CANCELLED, 0.0)),
        # Failures are retried after the policy's wait for the attempt that failed...
        ((A.FAILED, False, 1, 3), (S.SCHEDULED, A.FAILED, 5.0)),
        ((A.TIMED_OUT, False, 2, 3), (S.SCHEDULED, A.TIMED_OUT, 10.0)),
        ((A.CRASHED, False, 1, 3), (S.SCHEDULED, A.CRASHED, 5.0)),
        ((A.FAILED, False, 4, 10), (S.SCHEDULED, A.FAILED, 40.0)),
        ((A.FAILED, False, 9, 10), (S.SCHEDULED, A.FAILED, 60.0)),
        # ...until the last attempt fails: the job is dead (the dead-letter queue).
        ((A.FAILED, False, 3, 3), (S.DEAD, A.FAILED, 0.0)),
        ((A.TIMED_OUT, False, 3, 3), (S.DEAD, A.TIMED_OUT, 0.0)),
        ((A.CRASHED, False, 1, 1), (S.DEAD, A.CRASHED, 0.0)),
        ((A.FAILED, False, 7, 3), (S.DEAD, A.FAILED, 0.0)),
    ],
)
def test_the_next_state_after_an_attempt(
    before: tuple[AttemptOutcome, bool, int, int],
    after: tuple[JobStatus, AttemptOutcome, float],
) -> None:
    """before: (outcome, cancel requested, attempt, max attempts);
    after: (job status, attempt outcome recorded, wait before the retry)."""
    outcome, cancel_requested, attempt, max_attempts = before
    job = job_record(41, attempt=attempt, max_attempts=max_attempts, fence=9)
    result = decide(job, RETRY, execution(outcome), cancel_requested)
    assert (result.status, result.outcome, result.retry_delay) == after
    assert (result.job_id, result.fence) == (41, 9)


def test_a_success_carries_its_result_and_nothing_else_does() -> None:
    job = job_record(attempt=1)
    assert decide(job, RETRY, execution(A.SUCCEEDED), False).result_json == '{"total": 3}'
    for outcome in [*FAILURES, A.CANCELLED]:
        leftover = Execution(outcome, result_json='"partial"', error="boom")
        assert decide(job, RETRY, leftover, False).result_json is None
        assert decide(job_record(attempt=3), RETRY, leftover, False).result_json is None


@pytest.mark.parametrize("outcome", FAILURES)
@pytest.mark.parametrize("attempt", [1, 3])
def test_a_failure_keeps_its_error_and_traceback(outcome: AttemptOutcome, attempt: int) -> None:
    result = decide(job_record(attempt=attempt), RETRY, execution(outcome), False)
    assert result.error == f"{outcome.value}!"
    assert result.traceback == "Traceback ..."


def test_the_jobs_own_attempt_limit_wins_over_the_policys() -> None:
    # max_attempts can be overridden per job at enqueue; the job row holds the limit.
    lenient_job = job_record(attempt=1, max_attempts=5)
    assert decide(lenient_job, Retry(max_attempts=1, jitter=0), execution(A.FAILED), False).status \
        is S.SCHEDULED
    strict_job = job_record(attempt=1, max_attempts=1)
    assert decide(strict_job, Retry(max_attempts=5, jitter=0), execution(A.FAILED), False).status \
        is S.DEAD


def test_a_retry_without_a_wait_goes_straight_back_to_the_queue() -> None:
    immediate = Retry(max_attempts=3, base=0, cap=0, jitter=0)
    result = decide(job_record(attempt=1), immediate, execution(A.FAILED), False)
    assert (result.status, result.retry_delay) == (S.QUEUED, 0.0)


# What the runners report; lease expiry and interruption are recorded by the store.
outcomes = st.sampled_from([A.SUCCEEDED, A.CANCELLED, *FAILURES])


@st.composite
def finished_attempts(draw: st.DrawFn) -> tuple[Job, Retry, Execution, bool]:
    max_attempts = draw(st.integers(min_value=1, max_value=20))
    job = job_record(
        draw(st.integers(min_value=1, max_value=10**9)),
        attempt=draw(st.integers(min_value=1, max_value=25)),
        max_attempts=max_attempts,
        fence=draw(st.integers(min_value=1, max_value=10**6)),
    )
    base = draw(st.sampled_from([0, 0.5, 1, 30]))
    retry = Retry(
        max_attempts=max_attempts,
        backoff=draw(st.sampled_from(Backoff)),
        base=base,
        cap=max(base, draw(st.sampled_from([0, 1, 60, 3600]))),
        jitter=draw(st.sampled_from([0.0, 0.3, 1.0])),
    )
    return job, retry, execution(draw(outcomes)), draw(st.booleans())


@settings(max_examples=150)
@given(finished_attempts())
def test_every_decision_is_a_legal_move_out_of_running(
    case: tuple[Job, Retry, Execution, bool],
) -> None:
    job, retry, attempt, cancel_requested = case
    result = decide(job, retry, attempt, cancel_requested)
    assert result.status in RUNNING_TARGETS
    check_transition(S.RUNNING, result.status)
    assert result.retry_delay >= 0
    # A wait only where the job waits: scheduled means a wait, queued means none.
    assert (result.status is S.SCHEDULED) == (result.retry_delay > 0)
    if result.status not in {S.SCHEDULED, S.QUEUED}:
        assert result.retry_delay == 0.0
    # Retried only while attempts remain, and never once cancelled or succeeded.
    if result.status in {S.SCHEDULED, S.QUEUED}:
        assert job.attempt < job.max_attempts
        assert not cancel_requested
        assert attempt.outcome not in {A.SUCCEEDED, A.CANCELLED}
    if result.status is S.DEAD:
        assert job.attempt >= job.max_attempts
    assert (result.job_id, result.fence) == (job.id, job.fence)


def test_every_field_of_the_report_comes_from_its_own_source() -> None:
    # `decide` builds the Outcome positionally: each value must land in its field.
    job = job_record(41, fence=7, attempt=1, max_attempts=3)
    tripped = Execution(A.FAILED, result_json=None, error="429", traceback="tb",
                        trip_until=1234.5, trip_key="api:acme")
    outcome = decide(job, RETRY, tripped, cancel_requested=False)
    assert (outcome.job_id, outcome.fence, outcome.status, outcome.outcome) == (
        41, 7, S.SCHEDULED, A.FAILED)
    assert (outcome.result_json, outcome.error, outcome.traceback, outcome.retry_delay) == (
        None, "429", "tb", 5.0)
    assert (outcome.trip_until, outcome.trip_key) == (1234.5, "api:acme")
    succeeded = decide(job, RETRY, Execution(A.SUCCEEDED, result_json="3"), False)
    assert succeeded.result_json == "3"


def test_a_nul_in_an_error_is_written_out_so_any_store_can_keep_it() -> None:
    # PostgreSQL's text holds no NUL: one in a message would fail its whole report batch.
    outcome = decide(job_record(3), RETRY, Execution(A.FAILED, error="bad\x00byte",
                                                     traceback="tb\x00"), False)
    assert (outcome.error, outcome.traceback) == ("bad\\x00byte", "tb\\x00")


def test_only_an_end_that_moves_nothing_else_is_reported_as_ending_alone() -> None:
    """`Outcome.ends_alone` (the report in one send) only for a job of a task without a
    key, fired by no schedule, and no step of a workflow run."""
    done = execution(A.SUCCEEDED)
    assert decide(job_record(), RETRY, done, False).ends_alone
    assert not decide(job_record(), RETRY, done, False, keyed=True).ends_alone
    for stepped in (replace(job_record(), schedule_id=3),
                    replace(job_record(), workflow_run_id=5, step="load")):
        assert not decide(stepped, RETRY, done, False).ends_alone
