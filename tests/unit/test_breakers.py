"""The breaker's decisions, pure: failures counted in a window open it for the cooldown
(and, under a failure rate, only when they are that share of the window's attempts);
an open breaker ignores late outcomes and half-opens when its time comes; a probe's
success closes it, its failure opens it again; a task's TripBreaker reaches the
attempt's outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskwheel import CircuitBreaker, TripBreaker
from taskwheel.breakers import CLOSED, BreakerState, BreakerStatus, after_cooldown, after_outcome
from taskwheel.errors import InvalidInput
from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from taskwheel.retry import Retry
from taskwheel.worker.execution import decide, failure

from .job_records import job_record

RULE = CircuitBreaker(failures=3, window=60, cooldown=30)
OPEN, HALF = BreakerStatus.OPEN, BreakerStatus.HALF_OPEN


def test_failures_within_the_window_open_it_and_a_new_window_starts_afresh() -> None:
    state = CLOSED
    for at in (0, 10, 59):
        state = after_outcome(RULE, state, success=False, now=at)
    assert state == BreakerState(OPEN, until=89)
    state = CLOSED
    for at in (0, 10, 60):  # the third is in a window of its own
        state = after_outcome(RULE, state, success=False, now=at)
    assert state == BreakerState(failures=1, window_started=60)


def test_an_open_breaker_half_opens_in_time_and_its_probe_decides() -> None:
    opened = BreakerState(OPEN, until=100)
    assert after_outcome(RULE, opened, success=True, now=50) == opened  # a late outcome
    assert after_cooldown(opened, 99) == opened
    half = after_cooldown(opened, 100)
    assert half.state is HALF
    assert after_outcome(RULE, half, success=True, now=101) == CLOSED
    assert after_outcome(RULE, half, success=False, now=101) == BreakerState(OPEN, until=131)
    assert after_cooldown(BreakerState(OPEN), 10**9).state is OPEN  # opened by hand


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=40))
def test_it_opens_exactly_when_failures_reach_the_rule_within_a_window(
    outcomes: list[tuple[bool, int]],
) -> None:
    state, now, window, count = CLOSED, 0, None, 0
    for success, step in outcomes:
        now += step
        state = after_outcome(RULE, state, success=success, now=now)
        if state.state is OPEN:
            assert not success
            return
        if not success:
            window, count = (now, 1) if window is None or now - window >= 60 else (
                window, count + 1)
        assert (state.failures, state.window_started) == (count, window)
        assert count < 3


RATED = CircuitBreaker(failures=3, window=60, cooldown=30, failure_rate=0.4)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=60))
def test_under_a_rate_it_opens_exactly_when_enough_failures_are_that_share_of_the_window(
    outcomes: list[tuple[bool, int]],
) -> None:
    state, now, window, failures, attempts = CLOSED, 0, None, 0, 0
    for success, step in outcomes:
        now += step
        state = after_outcome(RATED, state, success=success, now=now)
        if window is None or now - window >= 60:
            window, failures, attempts = now, 0, 0
        failures, attempts = failures + (not success), attempts + 1
        if state.state is OPEN:
            assert not success
            assert failures >= 3
            assert failures >= 0.4 * attempts - 1e-9
            return
        assert (state.failures, state.attempts, state.window_started) == (
            failures, attempts, window)
        assert failures < 3 or failures < 0.4 * attempts - 1e-9


def test_a_rate_of_a_third_opens_on_the_third_of_nine() -> None:
    """A share that floats cannot hold exactly (0.3 x 10 is 3.0000000000000004) still
    opens when the failures are that share."""
    rule = CircuitBreaker(failures=3, window=60, cooldown=30, failure_rate=0.3)
    state = CLOSED
    for success in [True] * 7 + [False] * 2:
        state = after_outcome(rule, state, success=success, now=0)
    assert state.state is BreakerStatus.CLOSED
    state = after_outcome(rule, state, success=False, now=0)  # 3 of 10
    assert state.state is OPEN


def test_bad_rules_are_refused() -> None:
    for bad in ({"failures": 0}, {"failures": True}, {"window": "soon"}, {"cooldown": 0},
                {"key": "{"}, {"failure_rate": 0}, {"failure_rate": 1.5},
                {"failure_rate": float("nan")}, {"failure_rate": "half"},
                {"failure_rate": True}):
        with pytest.raises(InvalidInput, match=r"^breaker\."):
            CircuitBreaker(**bad)  # type: ignore[arg-type]


def test_a_trip_reaches_the_outcome_of_the_attempt() -> None:
    until = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        raise TripBreaker(until=until, key="api:x")
    except TripBreaker as exc:
        execution = failure(exc)
    outcome = decide(job_record(attempt=1, max_attempts=3), Retry(base=1, jitter=0), execution,
                     cancel_requested=False)
    assert (outcome.status, outcome.outcome) == (JobStatus.SCHEDULED, AttemptOutcome.FAILED)
    assert (outcome.trip_until, outcome.trip_key) == (until.timestamp(), "api:x")


def test_without_a_rule_a_failed_probe_lets_the_next_one_through() -> None:
    half = BreakerState(HALF)
    assert after_outcome(None, half, success=False, now=5) == half
    assert after_outcome(None, half, success=True, now=5) == CLOSED
    assert after_outcome(None, CLOSED, success=False, now=5) == CLOSED  # nothing counted
