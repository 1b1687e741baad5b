"""The timing wheel: settings refused by name, the horizon, never expiring early, batch
order, cancel, memory, idle gaps, and a stateful model that checks every advance against
a min-heap of the same timers."""

from __future__ import annotations

import gc
import heapq
import math
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from taskwheel.errors import InvalidInput
from taskwheel.wheel import Timer, TimingWheel

# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tick": 0}, "tick"),
        ({"tick": -0.001}, "tick"),
        ({"tick": math.nan}, "tick"),
        ({"tick": math.inf}, "tick"),
        ({"tick": True}, "tick"),
        ({"tick": "1ms"}, "tick"),
        ({"slots": 1}, "slots"),
        ({"slots": 0}, "slots"),
        ({"slots": 3}, "slots"),
        ({"slots": 96}, "slots"),
        ({"slots": 256.0}, "slots"),
        ({"slots": True}, "slots"),
        ({"levels": 0}, "levels"),
        ({"levels": -1}, "levels"),
        ({"levels": 1.5}, "levels"),
        ({"start": math.nan}, "start"),
        ({"start": -math.inf}, "start"),
        ({"start": None}, "start"),
    ],
)
def test_invalid_settings_are_refused_naming_the_argument(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field) as refused:
        TimingWheel(**{"start": 0.0, **kwargs})
    assert isinstance(refused.value, InvalidInput)
    assert refused.value.field == field


def test_horizon_is_the_reach_of_the_top_level_less_one_tick() -> None:
    wheel = TimingWheel[int](tick=0.001, slots=256, levels=4, start=1_700_000_000.0)
    assert wheel.horizon == pytest.approx(0.001 * (255 * 256**3 - 1))
    assert wheel.horizon > 49 * 86_400
    assert wheel.now == 1_700_000_000.0


# --- the horizon -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ticks_on",
    [0, 0.5, 15.999, 16.5, 63.999, 64.5, 1000.25],  # 15.999 and 63.999: blocks' last ticks
)
def test_insert_reaches_exactly_the_horizon_from_anywhere_in_a_block(ticks_on: float) -> None:
    wheel = TimingWheel[str](tick=0.5, slots=4, levels=3, start=10.0)
    wheel.advance(10.0 + ticks_on * 0.5)
    edge = wheel.now + wheel.horizon
    timer = wheel.insert(edge, "edge")
    with pytest.raises(InvalidInput, match="horizon") as refused:
        wheel.insert(math.nextafter(edge, math.inf), "beyond")
    assert refused.value.field == "when"
    assert len(wheel) == 1
    assert wheel.advance(math.nextafter(edge, -math.inf)) == []
    assert wheel.advance(edge) == [timer]


@pytest.mark.parametrize("when", [math.nan, math.inf])
def test_insert_refuses_a_time_that_is_not_a_finite_number(when: float) -> None:
    wheel = TimingWheel[str](start=0.0)
    with pytest.raises(InvalidInput, match="when"):
        wheel.insert(when, "never")
    assert len(wheel) == 0
    assert wheel.next_expiry() is None


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_advance_refuses_a_time_that_is_not_a_finite_number(now: float) -> None:
    wheel = TimingWheel[str](start=0.0)
    timer = wheel.insert(1.0, "kept")
    with pytest.raises(InvalidInput, match="now"):
        wheel.advance(now)
    assert timer.active
    assert wheel.now == 0.0


# --- expiry ------------------------------------------------------------------------------


def test_a_timer_due_mid_tick_is_not_returned_before_its_when() -> None:
    wheel = TimingWheel[str](tick=1.0, slots=4, levels=2, start=0.0)
    timer = wheel.insert(10.6, "fire")
    assert wheel.advance(10.0) == []
    assert wheel.advance(10.599) == []
    assert timer.active
    assert wheel.advance(10.6) == [timer]
    assert not timer.active
    assert len(wheel) == 0


def test_a_timer_in_the_past_expires_at_the_next_advance_even_if_time_stands_still() -> None:
    wheel = TimingWheel[str](tick=1.0, slots=4, levels=2, start=0.0)
    wheel.advance(50.0)
    late = wheel.insert(12.5, "late")
    lost = wheel.insert(-math.inf, "long ago")
    now = wheel.insert(50.0, "now")
    assert wheel.next_expiry() == -math.inf
    assert wheel.advance(50.0) == [lost, late, now]


def test_a_clock_stepping_back_does_not_move_the_wheel_back() -> None:
    wheel = TimingWheel[str](tick=1.0, slots=4, levels=2, start=0.0)
    wheel.advance(100.0)
    ahead = wheel.insert(100.5, "ahead")
    behind = wheel.insert(99.5, "behind")
    assert wheel.advance(99.0) == []
    assert wheel.now == 100.0
    assert wheel.advance(99.7) == [behind]
    assert wheel.advance(100.2) == []
    assert wheel.advance(100.5) == [ahead]


def test_timers_due_at_one_instant_expire_in_one_batch_in_insertion_order() -> None:
    # Half are inserted while the instant is far (a high level, cascaded down later),
    # half once it is near (level 0 directly): insertion order must still hold.
    wheel = TimingWheel[int](tick=0.001, slots=16, levels=4, start=0.0)
    due = 30.0
    first = [wheel.insert(due, item) for item in range(5_000)]
    wheel.insert(due + 0.0005, -1)
    wheel.advance(due - 0.002)
    second = [wheel.insert(due, item) for item in range(5_000, 10_000)]
    wheel.insert(due - 0.0001, -2)
    batch = wheel.advance(due)
    assert [timer.item for timer in batch] == [-2, *range(10_000)]
    assert batch[1:] == first + second
    assert len(wheel) == 1


def test_expired_batches_are_ordered_by_when_then_insertion() -> None:
    wheel = TimingWheel[str](tick=1.0, slots=4, levels=3, start=0.0)
    for when, item in [(9.5, "c"), (3.0, "a"), (9.5, "d"), (47.0, "e"), (3.0, "b")]:
        wheel.insert(when, item)
    assert [timer.item for timer in wheel.advance(60.0)] == ["a", "b", "c", "d", "e"]


# --- cancel ------------------------------------------------------------------------------


def test_cancel_succeeds_once_and_never_after_expiry() -> None:
    wheel = TimingWheel[str](tick=1.0, slots=4, levels=3, start=0.0)
    kept = wheel.insert(5.0, "kept")
    dropped = wheel.insert(40.0, "dropped")
    assert wheel.cancel(dropped)
    assert not dropped.active
    assert not wheel.cancel(dropped)
    assert len(wheel) == 1
    assert wheel.advance(100.0) == [kept]
    assert not wheel.cancel(kept)
    assert len(wheel) == 0


def test_cancel_refuses_a_timer_of_another_wheel() -> None:
    ours = TimingWheel[str](start=0.0)
    theirs = TimingWheel[str](start=0.0)
    timer = theirs.insert(1.0, "theirs")
    with pytest.raises(InvalidInput, match="another wheel"):
        ours.cancel(timer)
    assert timer.active
    assert len(theirs) == 1


# --- next_expiry -------------------------------------------------------------------------


def test_next_expiry_is_exact_for_a_timer_in_level_0_and_none_when_empty() -> None:
    wheel = TimingWheel[str](tick=0.001, start=0.0)
    assert wheel.next_expiry() is None
    timer = wheel.insert(0.1234567, "soon")
    wheel.insert(0.2, "later")
    assert wheel.next_expiry() == 0.1234567
    wheel.cancel(timer)
    assert wheel.next_expiry() == 0.2


@pytest.mark.parametrize("when", [0.5, 3.7, 47.0, 63.0, 1000.0, 3838.9])
def test_sleeping_until_next_expiry_reaches_a_far_timer_in_at_most_levels_wake_ups(
    when: float,
) -> None:
    wheel = TimingWheel[float](tick=1.0, slots=16, levels=3, start=0.0)
    wheel.insert(when, when)
    for _ in range(3):
        upcoming = wheel.next_expiry()
        assert upcoming is not None
        assert wheel.now < upcoming <= when
        expired = wheel.advance(upcoming)
        if expired:
            assert [timer.item for timer in expired] == [when]
            break
    else:
        pytest.fail("the timer did not expire after `levels` wake-ups")
    assert wheel.next_expiry() is None


# --- cost --------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_advance_over_an_idle_gap_does_not_walk_every_tick() -> None:
    # A microsecond tick: walking the horizon tick by tick would take hours.
    wheel = TimingWheel[str](tick=1e-6, slots=256, levels=4, start=0.0)
    far = wheel.insert(wheel.horizon, "far")
    near = wheel.insert(1.0, "near")
    assert wheel.horizon / 1e-6 > 4e9
    assert wheel.advance(wheel.horizon / 2) == [near]
    assert wheel.advance(wheel.horizon) == [far]
    assert wheel.advance(wheel.horizon * 1e6) == []


def test_memory_follows_the_pending_timers_not_the_ticks() -> None:
    wheel = TimingWheel[int](tick=0.001, slots=256, levels=4, start=0.0)
    whens = [i * 0.0037 % 600.0 for i in range(20_000)]
    gc.collect()
    tracemalloc.start()
    try:
        empty = tracemalloc.get_traced_memory()[0]
        timers = [wheel.insert(when, i) for i, when in enumerate(whens)]
        held = tracemalloc.get_traced_memory()[0] - empty
        for timer in timers:
            wheel.cancel(timer)
        del timers
        gc.collect()
        after_cancel = tracemalloc.get_traced_memory()[0] - empty
        for i, when in enumerate(whens):
            wheel.insert(when, i)
        assert len(wheel.advance(600.0)) == 20_000
        wheel.advance(wheel.now + wheel.horizon)  # 4e9 ticks on
        gc.collect()
        after_expiry = tracemalloc.get_traced_memory()[0] - empty
    finally:
        tracemalloc.stop()
    assert held > 20_000 * 64
    assert after_cancel < 10_000, f"{after_cancel} bytes held after every timer was cancelled"
    assert after_expiry < 10_000, f"{after_expiry} bytes held after every timer expired"
    assert len(wheel) == 0


# --- the model ---------------------------------------------------------------------------


class WheelAgainstHeap(RuleBasedStateMachine):
    """Every advance must return exactly what a min-heap of (when, seq) returns."""

    def __init__(self) -> None:
        super().__init__()
        self.wheel: TimingWheel[int] = TimingWheel(start=0.0)
        self.heap: list[tuple[float, int]] = []
        self.timers: dict[int, Timer[int]] = {}  # seq -> the wheel's handle, while pending
        self.expired: list[Timer[int]] = []  # expired or cancelled
        self.seq = 0
        self.now = 0.0

    @initialize(
        tick=st.sampled_from([0.001, 0.1, 0.25, 1.0, 3.0]),
        slots=st.sampled_from([2, 4, 8]),
        levels=st.integers(min_value=1, max_value=3),
        start=st.one_of(st.just(0.0), st.floats(min_value=-1e6, max_value=2e9)),
    )
    def build(self, tick: float, slots: int, levels: int, start: float) -> None:
        self.wheel = TimingWheel(tick=tick, slots=slots, levels=levels, start=start)
        self.tick, self.slots, self.levels, self.start = tick, slots, levels, start
        self.now = start

    def tick_of(self, when: float) -> int:
        return math.floor((when - self.start) / self.tick)

    def earliest(self) -> float | None:
        while self.heap and self.heap[0][1] not in self.timers:
            heapq.heappop(self.heap)  # cancelled
        return self.heap[0][0] if self.heap else None

    # -- insert ----------------------------------------------------------------------------

    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        horizon = self.wheel.horizon
        pending = sorted(timer.when for timer in self.timers.values())
        whens = [
            st.floats(min_value=0.0, max_value=1.0).map(lambda f: self.now + f * horizon),
            st.floats(min_value=0.0, max_value=1.0).map(lambda f: self.now + f * self.tick * 20),
            st.floats(min_value=0.0, max_value=1.0).map(lambda f: self.now - f * self.tick * 5),
            st.integers(min_value=-2, max_value=40).map(
                lambda k: self.start + (self.tick_of(self.now) + k) * self.tick
            ),
        ]
        if pending:
            whens.append(st.sampled_from(pending))  # ties
        when = data.draw(st.one_of(whens).filter(lambda w: w <= self.now + horizon))
        timer = self.wheel.insert(when, self.seq)
        assert timer.active
        assert (timer.when, timer.item) == (when, self.seq)
        heapq.heappush(self.heap, (when, self.seq))
        self.timers[self.seq] = timer
        self.seq += 1

    @rule(beyond=st.floats(min_value=0.0, max_value=10.0, exclude_min=True))
    def insert_beyond_the_horizon(self, beyond: float) -> None:
        when = self.now + self.wheel.horizon + beyond * self.tick
        if when <= self.now + self.wheel.horizon:
            return  # lost in rounding
        with pytest.raises(InvalidInput, match="horizon"):
            self.wheel.insert(when, -1)

    # -- cancel ----------------------------------------------------------------------------

    @precondition(lambda self: bool(self.timers))
    @rule(data=st.data())
    def cancel_pending(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.timers)))
        timer = self.timers.pop(seq)
        assert self.wheel.cancel(timer)
        assert not timer.active
        self.expired.append(timer)

    @precondition(lambda self: bool(self.expired))
    @rule(data=st.data())
    def cancel_again_or_after_expiry(self, data: st.DataObject) -> None:
        timer = data.draw(st.sampled_from(self.expired))
        assert not self.wheel.cancel(timer)

    # -- advance ---------------------------------------------------------------------------

    def advance_to(self, now: float) -> None:
        expected: list[tuple[float, int]] = []
        while (first := self.earliest()) is not None and first <= now:
            when, seq = heapq.heappop(self.heap)
            expected.append((when, seq))
            self.expired.append(self.timers.pop(seq))
        batch = self.wheel.advance(now)
        assert [(timer.when, timer.item) for timer in batch] == expected
        assert all(timer.when <= now and not timer.active for timer in batch)
        self.now = max(self.now, now)
        assert self.wheel.now == self.now

    @rule(ticks=st.floats(min_value=0.0, max_value=3.0))
    def advance_a_little(self, ticks: float) -> None:
        self.advance_to(self.now + ticks * self.tick)

    @rule(turns=st.floats(min_value=0.0, max_value=5.0))
    def advance_a_lot(self, turns: float) -> None:
        self.advance_to(self.now + turns * self.wheel.horizon)

    @rule(ticks=st.floats(min_value=0.0, max_value=3.0, exclude_min=True))
    def clock_steps_back(self, ticks: float) -> None:
        self.advance_to(self.now - ticks * self.tick)

    @precondition(lambda self: bool(self.timers))
    @rule()
    def advance_to_the_earliest_when(self) -> None:
        earliest = self.earliest()
        assert earliest is not None
        self.advance_to(earliest)

    @precondition(lambda self: bool(self.timers))
    @rule()
    def advance_to_next_expiry(self) -> None:
        upcoming = self.wheel.next_expiry()
        assert upcoming is not None
        self.advance_to(upcoming)

    # -- after every step ------------------------------------------------------------------

    @invariant()
    def counts_agree(self) -> None:
        assert len(self.wheel) == len(self.timers)
        assert all(timer.active for timer in self.timers.values())

    @invariant()
    def next_expiry_is_never_late_and_exact_in_level_0(self) -> None:
        earliest = self.earliest()
        upcoming = self.wheel.next_expiry()
        if earliest is None:
            assert upcoming is None
            return
        assert upcoming is not None
        assert upcoming <= earliest
        if earliest > self.now:
            assert upcoming > self.now  # a caller sleeping until then does not spin
        in_level_0 = self.levels == 1 or (
            self.tick_of(earliest) // self.slots == self.tick_of(self.now) // self.slots
        )
        if in_level_0:
            assert upcoming == earliest


WheelAgainstHeap.TestCase.settings = settings(
    max_examples=250,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
test_wheel_agrees_with_a_heap = WheelAgainstHeap.TestCase
