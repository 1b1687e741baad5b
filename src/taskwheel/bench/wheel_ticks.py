"""The timing wheel's cost per tick as the number of timers in it grows: the figure that
says whether the scheduler's loop stays flat at a million schedules.

Two stretches of ``ticks`` calls to `TimingWheel.advance`, one tick at a time, in the
wheel's own clock (nothing sleeps), each on a wheel holding ``timers`` timers:

- ``idle``: every timer due after the stretch (spread evenly over the minute that
  follows it): what a tick costs when nothing falls due, the part that must not grow
  with the number of timers;
- ``firing``: the timers spread evenly over one minute (the scheduler's default
  horizon, the way its schedules sit on the wheel) and the stretch inside it, so each
  tick also expires its share; the cost is read per tick and per expired timer (the
  firing stretch's time less the idle one's, over the timers it expired: this must not
  grow either; the first grows with how many fall due per tick, which
  is the work itself).

Example:
    >>> cost = measure_tick_cost(1_000, ticks=100)
    >>> cost.timers, cost.ticks
    (1000, 100)
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from taskwheel.wheel import TimingWheel

TICK = 0.001  # the scheduler's default tick
SPAN = 60.0  # seconds the timers spread over: the scheduler's default horizon
REPEATS = 3


@dataclass(frozen=True)
class TickCost:
    """Medians of `REPEATS` stretches of ``ticks`` advances each, on fresh wheels."""

    timers: int
    ticks: int
    idle_us_per_tick: float
    firing_us_per_tick: float
    expired_per_stretch: int
    firing_ns_per_expired: float

    def to_dict(self) -> dict[str, Any]:
        return {"timers": self.timers, "ticks": self.ticks,
                "idle_us_per_tick": round(self.idle_us_per_tick, 3),
                "firing_us_per_tick": round(self.firing_us_per_tick, 3),
                "expired_per_stretch": self.expired_per_stretch,
                "firing_ns_per_expired_timer": round(self.firing_ns_per_expired, 1)}


def measure_tick_cost(timers: int, ticks: int = 5_000, seed: int = 42) -> TickCost:
    """The idle and firing stretches at ``timers`` timers (see the module's docstring);
    the firing stretch starts half a minute into the span."""
    draw = random.Random(seed)
    stretch = ticks * TICK
    start = SPAN / 2
    idle_whens = [start + stretch + draw.uniform(0.0, SPAN) for _ in range(timers)]
    firing_whens = [draw.uniform(0.0, SPAN) for _ in range(timers)]

    def run(whens: list[float]) -> tuple[float, int]:
        wheel = TimingWheel[int](tick=TICK, start=0.0)
        for item, when in enumerate(whens):
            wheel.insert(when, item)
        wheel.advance(start)  # the timers before the stretch fall due first, untimed
        steps = [start + TICK * i for i in range(1, ticks + 1)]
        expired = 0
        began = time.perf_counter()
        for now in steps:
            expired += len(wheel.advance(now))
        return time.perf_counter() - began, expired

    idle = [run(idle_whens) for _ in range(REPEATS)]
    firing = [run(firing_whens) for _ in range(REPEATS)]
    if any(count for _, count in idle):
        raise AssertionError("the idle stretch expired timers")  # pragma: no cover
    idle_s = statistics.median(seconds for seconds, _ in idle)
    firing_s = statistics.median(seconds for seconds, _ in firing)
    expired = firing[0][1]
    return TickCost(
        timers=timers,
        ticks=ticks,
        idle_us_per_tick=idle_s / ticks * 1e6,
        firing_us_per_tick=firing_s / ticks * 1e6,
        expired_per_stretch=expired,
        firing_ns_per_expired=max(0.0, firing_s - idle_s) / expired * 1e9 if expired else 0.0,
    )
