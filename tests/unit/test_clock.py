"""Clocks: a manual clock moves only when told to, never backwards by `advance`, and
safely from many threads; epoch seconds and aware UTC datetimes convert both ways."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.clock import ManualClock, SystemClock, to_datetime, to_epoch


def test_a_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(1_000.0)
    assert clock.now() == clock.now() == 1_000.0
    clock.advance(30)
    assert clock.now() == 1_030.0
    clock.advance(0.25)
    assert clock.now() == 1_030.25


def test_a_manual_clock_refuses_to_advance_backwards() -> None:
    clock = ManualClock(1_000.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert clock.now() == 1_000.0


def test_a_manual_clock_can_be_set_to_any_instant() -> None:
    clock = ManualClock(1_000.0)
    clock.set(5_000.0)
    assert clock.now() == 5_000.0
    clock.set(10.0)  # a test may rewind on purpose, e.g. to simulate a clock step
    assert clock.now() == 10.0


def test_the_default_start_is_a_fixed_instant() -> None:
    assert ManualClock().now() == ManualClock().now() == 1_700_000_000.0


def test_advances_from_many_threads_all_count() -> None:
    clock = ManualClock(0.0)
    start = threading.Barrier(8)

    def advance_many() -> None:
        start.wait()
        for _ in range(1_000):
            clock.advance(1)

    threads = [threading.Thread(target=advance_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 8_000.0


def test_the_system_clock_reads_the_wall_clock() -> None:
    before = datetime.now(UTC).timestamp()
    now = SystemClock().now()
    after = datetime.now(UTC).timestamp()
    # datetime.now keeps microseconds; the clock keeps the float time.time gives.
    assert before - 1e-6 <= now <= after + 1e-6


@settings(max_examples=100)
@given(st.floats(min_value=-1e10, max_value=2.5e11, allow_nan=False).map(lambda s: round(s, 6)))
def test_epoch_seconds_and_datetimes_convert_both_ways(seconds: float) -> None:
    moment = to_datetime(seconds)
    assert moment is not None
    assert moment.tzinfo is UTC
    assert to_epoch(moment) == pytest.approx(seconds, abs=1e-6)


def test_no_time_stays_no_time() -> None:
    assert to_datetime(None) is None
    assert to_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
