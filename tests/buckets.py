"""The rate limits' guarantee, as the tests check it: in any window of length ``t``,
the starts of a key cost at most ``burst + rate * t`` tokens (docs/how-to/limits.md,
"The guarantee, exactly"). Every window that matters begins and ends at a start."""

from __future__ import annotations

from collections.abc import Sequence


def worst_window(starts: Sequence[tuple[float, int]], rate: float, burst: int
                 ) -> tuple[float, float, float]:
    """(excess, a, b): the window [a, b] between two starts, given as (time, cost),
    whose cost most exceeds ``burst + rate * (b - a)``, and by how much (at most 0
    when the bound holds everywhere).

    Example:
        >>> worst_window([(0.0, 1)] * 5 + [(0.5, 1)], rate=2.0, burst=4)
        (1.0, 0.0, 0.0)
    """
    ordered = sorted(starts)
    worst = (float("-inf"), 0.0, 0.0)
    for i, (a, _) in enumerate(ordered):
        if i and ordered[i - 1][0] == a:
            continue  # a window opens before the first start at its time
        cost = 0
        for b, spent in ordered[i:]:
            cost += spent
            worst = max(worst, (cost - (burst + rate * (b - a)), a, b), key=lambda w: w[0])
    return worst


def most_over_the_bound(starts: Sequence[tuple[float, int]], rate: float, burst: int
                        ) -> float:
    """How far the busiest window of ``starts`` goes past the bound (<= 0: within)."""
    return worst_window(starts, rate, burst)[0]
