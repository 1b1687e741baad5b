"""Namespace quotas: the limits an operator sets on a tenant, and the decision of
whether an enqueue fits them. Pure: the store reads the quota and its usage inside the
enqueue's transaction and asks `admit`.

The enqueue rate is a token bucket holding at most one second's worth of jobs
(``max_enqueue_rate``), refilled continuously: a namespace may enqueue a burst of that
many at once, then that many per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskwheel.errors import InvalidInput, QuotaExceeded
from taskwheel.validators import validate_name

_INT32 = 2**31 - 1  # the stores keep the limits in 32-bit columns


@dataclass(frozen=True, slots=True)
class Quota:
    """The limits of one namespace; None is no limit.

    Example:
        >>> Quota("team-a", max_queued=10_000, max_enqueue_rate=200.0)
    """

    namespace: str
    max_queued: int | None = None  # jobs waiting to run (queued, scheduled, waiting)
    max_enqueue_rate: float | None = None  # jobs per second, bursts of one second's worth
    max_active_schedules: int | None = None  # schedules neither paused nor finished

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        for name in ("max_queued", "max_active_schedules"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value <= _INT32):
                raise InvalidInput(name, f"must be a whole number from 0 to {_INT32}, "
                                   f"got {value!r}")
        rate = self.max_enqueue_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not rate > 0 or rate == float("inf")):
            raise InvalidInput("max_enqueue_rate", f"must be a number > 0, got {rate!r}")

    @property
    def unlimited(self) -> bool:
        return (self.max_queued is None and self.max_enqueue_rate is None
                and self.max_active_schedules is None)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "max_queued": self.max_queued,
                "max_enqueue_rate": self.max_enqueue_rate,
                "max_active_schedules": self.max_active_schedules}


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """A quota and what is counted against it, read in the enqueue's transaction."""

    quota: Quota
    queued: int  # jobs waiting to run now (counted up to max_queued + 1 at most)
    tokens: float  # the rate bucket as of tokens_at
    tokens_at: float


def admit(usage: QuotaUsage, count: int, now: float) -> float:
    """Whether ``count`` more jobs fit ``usage``'s quota at ``now``: the tokens left in
    the rate bucket afterwards if they do, else `QuotaExceeded` (with the seconds after
    which the same batch would fit the rate, when it is the rate that refuses).

    Example:
        >>> usage = QuotaUsage(Quota("a", max_enqueue_rate=10.0), queued=0, tokens=0.0,
        ...                    tokens_at=100.0)
        >>> admit(usage, 5, now=100.5)   # half a second refilled 5 tokens
        0.0
    """
    quota = usage.quota
    if quota.max_queued is not None and usage.queued + count > quota.max_queued:
        raise QuotaExceeded(
            quota.namespace, "max_queued",
            f"{usage.queued} jobs waiting to run, {count} more would pass the limit of "
            f"{quota.max_queued}", retry_after=None)
    rate = quota.max_enqueue_rate
    if rate is None:
        return usage.tokens
    tokens = refilled(usage.tokens, usage.tokens_at, rate, now)
    if count > rate:
        raise InvalidInput("jobs", f"a batch of {count} jobs is more than namespace "
                           f"{quota.namespace!r} may enqueue at once ({rate:g} per second); "
                           "split it")
    if tokens < count:
        raise QuotaExceeded(
            quota.namespace, "max_enqueue_rate",
            f"more than {rate:g} jobs per second", retry_after=(count - tokens) / rate)
    return tokens - count


def refilled(tokens: float, tokens_at: float, rate: float, now: float) -> float:
    """The bucket at ``now``: refilled at ``rate`` per second, holding at most ``rate``."""
    return min(rate, tokens + max(0.0, now - tokens_at) * rate)
