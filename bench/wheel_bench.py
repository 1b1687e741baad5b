"""Timing wheel figures: insert, cancel and advance throughput, memory per timer, and
one advance() that expires a burst due at the same instant.

    python bench/wheel_bench.py [--timers 100000] [--span 60] [--tick 0.001]

Times are in the wheel's own clock (seconds from 0); nothing sleeps. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

from taskwheel.wheel import Timer, TimingWheel

BURST = 10_000
REPEATS = 5


def filled(whens: list[float], tick: float) -> tuple[TimingWheel[int], list[Timer[int]]]:
    wheel = TimingWheel[int](tick=tick, start=0.0)
    return wheel, [wheel.insert(when, item) for item, when in enumerate(whens)]


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def median_of(setup: Callable[[], Callable[[], object]]) -> float:
    """Median duration of REPEATS runs, each on fresh state from ``setup``."""
    return statistics.median(timed(setup()) for _ in range(REPEATS))


def bytes_per_timer(whens: list[float], tick: float) -> tuple[float, int]:
    """tracemalloc's count of what the wheel allocates for the timers (the handles, their
    sequence numbers, the slots' tables); ``when`` and the items are the caller's."""
    items = list(range(len(whens)))
    gc.collect()
    tracemalloc.start()
    wheel = TimingWheel[int](tick=tick, start=0.0)
    empty = tracemalloc.get_traced_memory()[0]
    timers = [wheel.insert(when, item) for when, item in zip(whens, items, strict=True)]
    handles = sys.getsizeof(timers)  # the benchmark's own list of handles
    full = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (full - empty - handles) / len(whens), empty


def main() -> None:
    parser = argparse.ArgumentParser(description="Timing wheel figures.")
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--span", type=float, default=60.0, help="seconds the timers spread over")
    parser.add_argument("--tick", type=float, default=0.001)
    args = parser.parse_args()
    n, span, tick = args.timers, args.span, args.tick
    rng = random.Random(42)
    whens = [rng.uniform(0.0, span) for _ in range(n)]

    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, {platform.processor() or '?'}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"wheel:   tick {tick * 1000:g} ms, 256 slots x 4 levels; {n:,} timers over {span:g} s")
    print()

    def insert_all() -> Callable[[], object]:
        return lambda: filled(whens, tick)

    def cancel_all() -> Callable[[], object]:
        wheel, timers = filled(whens, tick)
        rng.shuffle(timers)
        return lambda: [wheel.cancel(timer) for timer in timers]

    def advance_by_tick() -> Callable[[], object]:
        wheel, _ = filled(whens, tick)
        steps = [tick * i for i in range(1, round(span / tick) + 2)]
        return lambda: [wheel.advance(now) for now in steps]

    def advance_at_once() -> Callable[[], object]:
        wheel, _ = filled(whens, tick)
        return lambda: wheel.advance(span)

    insert_s = median_of(insert_all)
    cancel_s = median_of(cancel_all)
    by_tick_s = median_of(advance_by_tick)
    at_once_s = median_of(advance_at_once)
    calls = round(span / tick) + 1
    print(f"insert:   {n / insert_s:>12,.0f} timers/s   ({insert_s * 1e9 / n:,.0f} ns each)")
    print(f"cancel:   {n / cancel_s:>12,.0f} timers/s   ({cancel_s * 1e9 / n:,.0f} ns each)")
    print(
        f"advance:  {n / by_tick_s:>12,.0f} timers/s   one tick at a time: {calls:,} calls in"
        f" {by_tick_s:.3f} s ({by_tick_s * 1e6 / calls:.2f} us per call)"
    )
    print(f"advance:  {n / at_once_s:>12,.0f} timers/s   all {span:g} s in one call")

    per_timer, empty = bytes_per_timer(whens, tick)
    print(f"memory:   {per_timer:>12,.0f} bytes per timer (an empty wheel: {empty:,} bytes)")

    due = span / 2

    def burst_in_level_0() -> Callable[[], object]:
        wheel = TimingWheel[int](tick=tick, start=0.0)
        wheel.advance(due - tick)
        for item in range(BURST):
            wheel.insert(due, item)
        return lambda: wheel.advance(due)

    def burst_cascaded() -> Callable[[], object]:
        wheel = TimingWheel[int](tick=tick, start=0.0)
        for item in range(BURST):
            wheel.insert(due, item)
        return lambda: wheel.advance(due)

    level_0_s = median_of(burst_in_level_0)
    cascaded_s = median_of(burst_cascaded)
    print(
        f"burst:    {BURST:,} timers due at one instant, one advance(): {level_0_s * 1e3:.2f} ms"
        f" from level 0, {cascaded_s * 1e3:.2f} ms when the same call cascades them down first"
    )

    idle = TimingWheel[int](tick=tick, start=0.0)
    idle.insert(idle.horizon, 0)
    gap_s = timed(lambda: idle.advance(idle.horizon))
    print(
        f"idle gap: {gap_s * 1e6:,.0f} us to advance {idle.horizon / 86400:.1f} days"
        f" ({idle.horizon / tick:,.0f} ticks) to a lone timer"
    )


if __name__ == "__main__":
    main()
