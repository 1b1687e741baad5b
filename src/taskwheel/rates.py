"""Rate limits per key: a token bucket per key, charged when a job is admitted.

A task may give each job a rate key, a template over the job's arguments like a
concurrency key (``RateLimit(key="api:{account}", rate="100/min", burst=20, cost=1)``).
A rate-limited job that becomes ready waits instead (status ``waiting``, out of every
index a claim reads), and the holder of the maintenance lease admits the waiting jobs
of each key in bulk, in dispatch order, as its bucket's tokens allow: an admitted job
is queued (it then passes the concurrency and pause gates as any job does) and paid
for. The claim never reads or locks a bucket.

The guarantee is about starts: in any window of length ``t``, the jobs of a key that
start cost at most ``burst + rate * t`` (a rate changed by hand counts at each
instant at the rate then in force). Why it holds: the bucket's tokens plus what the
jobs admitted and not yet started cost (``held``) never exceed ``burst``; tokens
accrue at ``rate`` and a start spends none (it was paid for at its admission), so the
starts of a window are at most what was held or in the bucket when it opened plus
what accrued in it. Admission is discrete: `refill` credits the time since the last
admission only up to the room left by what was held *then* (starts since then free
their room at the next admission, not retroactively), which keeps it below the
continuous bucket.

A job pays at each start: a job that comes back to the queue (a retry, a rescue after
its worker died, a lease given back at shutdown) waits and is admitted again, with a
new token. Nothing is refunded (a job admitted and then cancelled or expired spent its
tokens), so the bound holds across retries and rescues; it errs on the side of fewer
starts.

The bucket is a row of the store written in the transaction that admits the jobs, by
the lease holder alone: a new holder after a failover reads the same bucket, so a
failover admits nothing extra; admissions pause until a holder takes the lease (at
most the lease's time to live), and a ready job waits for the next admission pass
(the maintenance interval) at most, when tokens are there.

Example:
    >>> RateLimit(key="api:{account}", rate="100/min", burst=20).per_second
    1.6666666666666667
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskwheel.errors import InvalidInput
from taskwheel.limits import DEFAULT_KEY, ConcurrencyLimit

_INT32 = 2**31 - 1
# Times are epoch seconds in floats: a tenth of a second after a time near 1.7e9 may
# come out a hair short of 0.1, and its tokens a hair short of a whole one.
_ROUNDING = 1e-6
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
            "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*")
# The rates a key may have, in tokens a second. Above the highest, no limit is meant (and
# a rate of a minute, as listings show it, must still be a number); below the lowest,
# the time to a token is longer than a date can be shown.
MAX_RATE = 1e9
MIN_RATE = 1e-9


def parse_rate(value: object, field_name: str = "rate") -> float:
    """Tokens per second from ``"100/min"``, ``"5/s"``, ``"2/10s"``, ``"1000/hour"``,
    ``"10/day"``, or a number of tokens per second; `InvalidInput` naming
    ``field_name`` unless it is above 0.

    Example:
        >>> parse_rate("120/min")
        2.0
    """
    per_second: float
    if isinstance(value, bool):
        raise InvalidInput(field_name, f"expected a rate such as '100/min', got {value!r}")
    if isinstance(value, int | float):
        per_second = float(value)
    elif isinstance(value, str):
        found = _RATE.fullmatch(value.lower())
        if found is None or found.group(3) not in _PERIODS:
            raise InvalidInput(field_name, f"expected a rate such as '100/min', '5/s' or "
                               f"'2/10s' (periods s, min, h, day), got {value!r}")
        count, times, unit = found.groups()
        span = float(times or 1) * _PERIODS[unit]
        per_second = float(count) / span if span > 0 else math.inf
    else:
        raise InvalidInput(field_name, f"expected a rate such as '100/min', got {value!r}")
    if not math.isfinite(per_second) or per_second <= 0:
        raise InvalidInput(field_name, f"must be more than 0 per period, got {value!r}")
    if per_second > MAX_RATE:
        raise InvalidInput(field_name, f"must be at most {MAX_RATE:,.0f} a second (more is "
                           f"no limit: remove the rate), got {value!r}")
    if per_second < MIN_RATE:
        raise InvalidInput(field_name, f"must be at least one token in {1 / MIN_RATE:,.0f} "
                           f"seconds (about 31 years), got {value!r}")
    return per_second


def validate_burst(value: object, field_name: str = "burst") -> int:
    """A bucket's size: a whole number of tokens from 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT32:
        raise InvalidInput(field_name, f"must be a whole number from 1 to {_INT32}, "
                           f"got {value!r}")
    return value


def validate_cost(value: object, field_name: str = "cost") -> int:
    """What one start of a job costs: a whole number of tokens from 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT32:
        raise InvalidInput(field_name, f"must be a whole number of tokens from 1, "
                           f"got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``burst + rate * t`` tokens' worth of a key's jobs start in any window
    of length ``t``, across every worker; each start costs ``cost`` tokens.

    ``key`` is a template as `ConcurrencyLimit`'s: the default, ``task:{task}``, limits
    the task; ``queue:{queue}`` a queue (give each task of it the same rate limit).
    ``rate``: ``"100/min"``, ``"5/s"``, ``"2/10s"``, or tokens per second. A job's
    ``cost`` must fit in ``burst``.

    Example:
        >>> @app.task(rate=RateLimit(key="api:{account}", rate="100/min", burst=20))
        ... def call_api(account: str) -> None: ...
    """

    key: str = DEFAULT_KEY
    rate: str | float = "1/s"
    burst: int = 1
    cost: int = 1

    def __post_init__(self) -> None:
        parse_rate(self.rate, "rate.rate")
        validate_burst(self.burst, "rate.burst")
        validate_cost(self.cost, "rate.cost")
        if self.cost > self.burst:
            raise InvalidInput("rate.cost", f"{self.cost} is more than the burst "
                               f"({self.burst}): such a job could never be admitted")
        self._template()  # a malformed template is refused here, named as ours

    @property
    def per_second(self) -> float:
        return parse_rate(self.rate, "rate.rate")

    def _template(self) -> ConcurrencyLimit:
        try:
            return ConcurrencyLimit(key=self.key, limit=1)
        except InvalidInput as exc:
            raise InvalidInput("rate.key", exc.reason) from None

    def render(self, task: str, queue: str, arguments: Mapping[str, Any]) -> str:
        """The key of a job of ``task`` on ``queue`` with ``arguments``; `InvalidInput`
        naming ``rate.key`` when a field names no argument."""
        try:
            return self._template().render(task, queue, arguments)
        except InvalidInput as exc:
            raise InvalidInput("rate.key", exc.reason) from None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A key's bucket as the last admission left it: ``tokens`` at ``refilled_at``
    (epoch seconds, store clock) and what the jobs admitted and not started then cost
    (``held``)."""

    rate: float
    burst: int
    tokens: float
    held: int
    refilled_at: float


def refill(bucket: Bucket, now: float) -> float:
    """The tokens a bucket has at ``now``: the time since the last admission accrues
    at the rate, up to the room what was held then left (never more than the
    continuous bucket, whose room grows only as those jobs start).

    Example:
        >>> refill(Bucket(rate=2.0, burst=10, tokens=1.0, held=4, refilled_at=0.0), 1.5)
        4.0
        >>> refill(Bucket(rate=2.0, burst=10, tokens=1.0, held=4, refilled_at=0.0), 60.0)
        6.0
    """
    elapsed = max(0.0, now - bucket.refilled_at)
    room = max(0.0, float(bucket.burst - bucket.held))
    return max(0.0, min(bucket.tokens + bucket.rate * elapsed, room))


def affordable(bucket: Bucket, now: float) -> int:
    """The most jobs the tokens at ``now`` can pay for (each costs 1 or more).

    Example:
        >>> affordable(Bucket(rate=2.0, burst=10, tokens=1.0, held=4, refilled_at=0.0), 1.5)
        4
    """
    return int(refill(bucket, now) + _ROUNDING)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A job waiting for tokens, as an admission pass reads it: what it costs, and its
    concurrency key's free slots (``room``; None: no concurrency limit holds it)."""

    id: int
    cost: int
    gate_key: str | None = None
    room: int | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """What one admission pass does to a key: the jobs admitted (ids, in dispatch
    order) and the bucket it leaves; ``stopped_at``: the cost of the first job its
    tokens could not pay for (None: none waits for tokens)."""

    admitted: list[int]
    bucket: Bucket
    stopped_at: int | None = None

    def tokens_at(self) -> float | None:
        """When the bucket left will have the tokens of the job it stopped at (store
        clock); None when no job waits for tokens, or when the room to hold them frees
        only as admitted jobs start (which no clock can tell: look again soon).

        Example:
            >>> plan = plan_admission(Bucket(2.0, 3, 3.0, 0, 0.0), 0.0, 0,
            ...                       [Waiting(1, 1), Waiting(2, 2), Waiting(3, 1)])
            >>> plan.stopped_at, plan.bucket.tokens, plan.tokens_at()
            (1, 0.0, None)
            >>> plan_admission(Bucket(2.0, 3, 0.0, 0, 0.0), 0.0, 0, [Waiting(1, 1)]).tokens_at()
            0.5
        """
        bucket = self.bucket
        if self.stopped_at is None or bucket.held + self.stopped_at > bucket.burst:
            return None
        return bucket.refilled_at + max(0.0, self.stopped_at - bucket.tokens) / bucket.rate


@dataclass(frozen=True, slots=True)
class AdmissionPass:
    """What an admission pass over a namespace's keys did: the jobs it ``admitted``,
    whether jobs still wait for their keys' tokens (``waiting``), and the earliest time
    one of those keys will have the tokens of its next job (``tokens_at``; None when
    that depends on admitted jobs starting, or when no job waits)."""

    admitted: int = 0
    waiting: bool = False
    tokens_at: float | None = None


def plan_admission(bucket: Bucket, now: float, outstanding: int,
                   waiting: Sequence[Waiting]) -> Admission:
    """Admit ``waiting`` jobs, first in dispatch order first, while the tokens at
    ``now`` pay for them; stop at the first that does not fit (a costly job is not
    passed over for ever by cheap ones behind it). A job whose concurrency key has no
    free slot left (counting the ones this pass admits) is passed over and pays
    nothing: it would only wait blocked, holding tokens others could start with.
    ``outstanding``: what the jobs admitted and not started cost now.

    Example:
        >>> plan = plan_admission(Bucket(1.0, 3, 3.0, 0, 0.0), 0.0, 0,
        ...                       [Waiting(1, 1), Waiting(2, 2), Waiting(3, 1)])
        >>> plan.admitted, plan.bucket.tokens, plan.bucket.held
        ([1, 2], 0.0, 3)
    """
    tokens = refill(bucket, now)
    admitted: list[int] = []
    taken: dict[str, int] = {}
    spent = 0
    stopped_at = None
    for job in waiting:
        if job.gate_key is not None and job.room is not None:
            if taken.get(job.gate_key, 0) >= job.room:
                continue
            taken[job.gate_key] = taken.get(job.gate_key, 0) + 1
        if job.cost > tokens + _ROUNDING:
            stopped_at = job.cost
            break
        tokens = max(0.0, tokens - job.cost)
        spent += job.cost
        admitted.append(job.id)
    return Admission(admitted, Bucket(bucket.rate, bucket.burst, tokens,
                                      outstanding + spent, now), stopped_at)


@dataclass(frozen=True, slots=True)
class KeyRate:
    """A key's rate limit as the store has it: ``rate`` (tokens per second), ``burst``,
    whether it was set by hand, the tokens left at the last admission, and the jobs
    ``waiting`` for tokens and ``admitted`` (queued, not started)."""

    namespace: str
    key: str
    rate: float
    burst: int
    set_by_hand: bool = False
    tokens: float = 0.0
    refilled_at: datetime | None = None
    waiting: int = 0
    admitted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "key": self.key, "rate": self.rate,
                "rate_per_minute": self.rate * 60, "burst": self.burst,
                "set_by_hand": self.set_by_hand, "tokens": self.tokens,
                "refilled_at": (None if self.refilled_at is None
                                else self.refilled_at.isoformat()),
                "waiting": self.waiting, "admitted": self.admitted}
