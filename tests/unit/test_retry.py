"""Retry policies: the documented wait (base * 2**(n-1), linear or fixed; capped at
``cap``, then spread by ``jitter``), no overflow however many attempts failed, and
invalid policies refused naming the field."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.durations import MAX_DURATION
from taskwheel.errors import InvalidInput
from taskwheel.retry import DEFAULT_RETRY, NO_RETRY, Backoff, Retry
from taskwheel.validators import MAX_ATTEMPTS

# Bases in whole milliseconds (or zero) up to a day, caps up to a year: the range in
# which the documented formula and the code's overflow guard must agree exactly.
bases = st.integers(min_value=0, max_value=86_400_000).map(lambda ms: ms / 1000)
jitters = st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]) | st.floats(min_value=0, max_value=1)
attempts = st.integers(min_value=1, max_value=100) | st.integers(min_value=1, max_value=10**7)


@st.composite
def policies(draw: st.DrawFn, jitter: st.SearchStrategy[float] = jitters) -> Retry:
    base = draw(bases)
    cap = draw(st.floats(min_value=base, max_value=365 * 86400.0))
    return Retry(
        max_attempts=draw(st.integers(min_value=1, max_value=100)),
        backoff=draw(st.sampled_from(Backoff)),
        base=base,
        cap=cap,
        jitter=draw(jitter),
    )


def documented_wait(policy: Retry, failed_attempt: int) -> float:
    """The wait before jitter, computed without floats that could overflow."""
    n = max(1, failed_attempt)
    if policy.backoff is Backoff.FIXED:
        return policy.base
    if policy.base == 0:
        return 0.0
    if policy.backoff is Backoff.LINEAR:
        return min(policy.base * n, policy.cap)
    # 2**(n-1) > cap / base as soon as n - 1 exceeds log2(cap / base), which is < 100 here.
    if n - 1 > 200:
        return policy.cap
    return min(policy.base * float(2 ** (n - 1)), policy.cap)


# --- the wait ----------------------------------------------------------------------------


@settings(max_examples=150)
@given(policies(), attempts, st.integers(min_value=0, max_value=2**32))
def test_the_wait_is_the_capped_backoff_spread_by_at_most_the_jitter(
    policy: Retry, failed_attempt: int, seed: int
) -> None:
    wait = documented_wait(policy, failed_attempt)
    delay = policy.delay(failed_attempt, random.Random(seed))
    low, high = wait * (1 - policy.jitter), wait * (1 + policy.jitter)
    assert low - 1e-9 * wait <= delay <= high + 1e-9 * wait
    assert 0.0 <= delay <= policy.cap * (1 + policy.jitter) * (1 + 1e-12)


@settings(max_examples=100)
@given(policies(jitter=st.just(0.0)), attempts)
def test_without_jitter_the_wait_is_exactly_the_capped_backoff(
    policy: Retry, failed_attempt: int
) -> None:
    assert policy.delay(failed_attempt) == pytest.approx(
        documented_wait(policy, failed_attempt), rel=1e-12
    )


@settings(max_examples=60)
@given(policies(jitter=st.just(0.0)), st.integers(min_value=1, max_value=200))
def test_without_jitter_waits_never_shrink_as_attempts_fail(
    policy: Retry, failed_attempt: int
) -> None:
    assert policy.delay(failed_attempt) <= policy.delay(failed_attempt + 1)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (Backoff.EXPONENTIAL, [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]),
        (Backoff.LINEAR, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]),
        (Backoff.FIXED, [2.0] * 7),
    ],
)
def test_each_backoff_grows_as_documented(backoff: Backoff, expected: list[float]) -> None:
    policy = Retry(max_attempts=10, backoff=backoff, base="2s", cap="1m", jitter=0)
    assert [policy.delay(n) for n in range(1, 8)] == expected


@pytest.mark.parametrize("backoff", list(Backoff))
@pytest.mark.parametrize("failed_attempt", [10_000, 10**6, 2**63 - 1])
def test_huge_attempt_numbers_do_not_overflow(backoff: Backoff, failed_attempt: int) -> None:
    policy = Retry(backoff=backoff, base="1s", cap="10m", jitter=0)
    expected = 1.0 if backoff is Backoff.FIXED else 600.0
    assert policy.delay(failed_attempt) == expected


def test_huge_bases_and_caps_do_not_overflow() -> None:
    policy = Retry(base=MAX_DURATION, cap=MAX_DURATION, jitter=0.5)
    delay = policy.delay(10_000, random.Random(1))
    assert 0.5 * MAX_DURATION <= delay <= 1.5 * MAX_DURATION


def test_a_base_or_cap_beyond_the_longest_duration_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 365250d") as refused:
        Retry(cap=1e308)
    assert refused.value.field == "cap"


@pytest.mark.parametrize("failed_attempt", [0, -1, -10**9])
def test_attempt_numbers_below_one_count_as_the_first(failed_attempt: int) -> None:
    policy = Retry(base="3s", cap="1h", jitter=0)
    assert policy.delay(failed_attempt) == policy.delay(1) == 3.0


def test_a_zero_base_never_waits() -> None:
    policy = Retry(base=0, cap="1m", jitter=1.0)
    assert {policy.delay(n, random.Random(n)) for n in (1, 2, 50, 10_000)} == {0.0}


def test_the_same_random_source_gives_the_same_wait() -> None:
    policy = Retry(base="1s", cap="10m", jitter=0.5)
    assert policy.delay(4, random.Random(99)) == policy.delay(4, random.Random(99))


def test_jitter_spreads_waits_both_ways() -> None:
    policy = Retry(base="10s", cap="10m", jitter=0.5)
    delays = [policy.delay(1, random.Random(seed)) for seed in range(200)]
    assert min(delays) < 10.0 < max(delays)
    assert min(delays) >= 5.0
    assert max(delays) <= 15.0
    assert len(set(delays)) > 100


def test_a_capped_wait_is_spread_around_the_cap() -> None:
    # "capped at cap, then spread by jitter": the spread applies to the capped value.
    policy = Retry(base="1s", cap="10s", jitter=0.2)
    delays = [policy.delay(30, random.Random(seed)) for seed in range(200)]
    assert 8.0 <= min(delays) < 10.0 < max(delays) <= 12.0


def test_the_docstring_example_holds() -> None:
    policy = Retry(max_attempts=5, backoff="exponential", base="1s", cap="10m", jitter=0.2)
    assert policy.delay(3, random.Random(0)) <= 4.0 * 1.2


# --- building a policy -------------------------------------------------------------------


def test_the_defaults() -> None:
    assert DEFAULT_RETRY.to_dict() == {
        "max_attempts": 3, "backoff": "exponential", "base": 1.0, "cap": 600.0, "jitter": 0.1,
    }
    assert NO_RETRY.max_attempts == 1
    assert NO_RETRY.jitter == 0.0


def test_durations_and_backoff_names_are_accepted_in_every_spelling() -> None:
    policy = Retry(max_attempts=4, backoff="linear", base="250ms", cap=30, jitter=1)
    assert policy.backoff is Backoff.LINEAR
    assert (policy.base, policy.cap, policy.jitter) == (0.25, 30.0, 1.0)
    assert isinstance(policy.jitter, float)


@settings(max_examples=50)
@given(policies())
def test_a_policy_survives_a_round_trip_through_its_dict(policy: Retry) -> None:
    assert Retry(**policy.to_dict()) == policy  # type: ignore[arg-type]


@settings(max_examples=30)
@given(st.integers(min_value=1, max_value=MAX_ATTEMPTS))
def test_any_attempt_count_up_to_the_bound_is_kept(max_attempts: int) -> None:
    assert Retry(max_attempts=max_attempts).max_attempts == max_attempts


def test_a_policy_cannot_be_changed_after_it_is_built() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_RETRY.max_attempts = 10  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field", "reason_part"),
    [
        ({"max_attempts": 0}, "max_attempts", "from 1 to 1000000"),
        ({"max_attempts": -3}, "max_attempts", "from 1 to 1000000"),
        ({"max_attempts": MAX_ATTEMPTS + 1}, "max_attempts", "from 1 to 1000000"),
        ({"max_attempts": 2**64}, "max_attempts", "from 1 to 1000000"),
        ({"max_attempts": 2.0}, "max_attempts", "integer"),
        ({"max_attempts": "3"}, "max_attempts", "integer"),
        ({"max_attempts": True}, "max_attempts", "integer"),
        ({"max_attempts": None}, "max_attempts", "integer"),
        ({"backoff": "quadratic"}, "backoff", "exponential, linear, fixed"),
        ({"backoff": None}, "backoff", "unknown backoff"),
        ({"jitter": -0.1}, "jitter", "between 0 and 1"),
        ({"jitter": 1.5}, "jitter", "between 0 and 1"),
        ({"jitter": float("nan")}, "jitter", "between 0 and 1"),
        ({"jitter": True}, "jitter", "between 0 and 1"),
        ({"jitter": "0.1"}, "jitter", "between 0 and 1"),
        ({"base": "-1s"}, "base", "negative"),
        ({"base": "soon"}, "base", "malformed"),
        ({"base": float("inf")}, "base", "finite"),
        ({"cap": "forever"}, "cap", "malformed"),
        ({"cap": -1}, "cap", "negative"),
        ({"base": "1m", "cap": "30s"}, "cap", "shorter than base"),
    ],
)
def test_an_invalid_policy_is_refused_naming_the_field(
    kwargs: dict[str, object], field: str, reason_part: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Retry(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason_part in caught.value.reason
