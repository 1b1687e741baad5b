"""Circuit breakers per key: after ``failures`` failed attempts within ``window`` seconds
the breaker of their key opens, and the key's jobs wait (queued, out of the ready index)
instead of running and failing; after ``cooldown`` seconds it is half-open and admits one
job at a time, a probe: its success closes the breaker, its failure opens it again.

With a ``failure_rate``, the failures must also be at least that share of the attempts
that ended in the window: a busy key whose calls mostly succeed stays closed however
many fail, and ``failures`` is the least evidence it opens on. Its window counts every
attempt, so each success of its key is written too (a count without a rate writes
nothing on a success).

A breaker is the key's gate (`taskwheel.limits`) closed until a time: an open breaker
admits no job of the key, running ones finish. A task that learns the upstream is
down (an HTTP 429 with ``Retry-After``) opens it by hand, with a time::

    raise TripBreaker(until=retry_at)   # the job's own key; key="api:x" for another

(`TripBreaker`, not ``Backoff``: ``taskwheel.Backoff`` is the retry policy's backoff
curve.) The attempt fails as any other (and is retried by its policy); the breaker
stays open until ``until``, then half-opens. Operators open and close breakers with
``taskwheel breakers open|close``.

The decisions are pure (`after_outcome`, `after_cooldown`); the store reads a key's
state, asks them, and writes the answer in the transaction that ended the attempts.

Example:
    >>> rule = CircuitBreaker(failures=2, window=60, cooldown=30)
    >>> state = after_outcome(rule, CLOSED, success=False, now=0)
    >>> after_outcome(rule, state, success=False, now=10).state
    <BreakerStatus.OPEN: 'open'>
    >>> rated = CircuitBreaker(failures=2, window=60, cooldown=30, failure_rate=0.5)
    >>> state = CLOSED
    >>> for success in (True, True, False, False):
    ...     state = after_outcome(rated, state, success=success, now=1)
    >>> state.state, state.failures, state.attempts
    (<BreakerStatus.OPEN: 'open'>, 0, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.limits import DEFAULT_KEY, BreakerRule, ConcurrencyLimit


class BreakerStatus(StrEnum):
    CLOSED = "closed"  # jobs run; failures are counted
    OPEN = "open"  # no job of the key is admitted until ``until`` (or a close by hand)
    HALF_OPEN = "half_open"  # one job at a time, the probe


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A key's breaker: its status, the failures counted in the window that began at
    ``window_started`` (and, under a failure rate, the attempts that ended in it), and
    when an open breaker half-opens (None: a close by hand)."""

    state: BreakerStatus = BreakerStatus.CLOSED
    failures: int = 0
    window_started: float | None = None
    until: float | None = None
    attempts: int = 0


CLOSED = BreakerState()


@dataclass(frozen=True, slots=True)
class KeyBreaker:
    """A key's breaker as the store has it (with the job it was read for, if any)."""

    job_id: int | None
    namespace: str
    key: str
    state: BreakerState
    rule: BreakerRule | None


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Open the key's breaker after ``failures`` failed attempts within ``window``, for
    ``cooldown``; then let one probe through. With ``failure_rate`` (a share, more than
    0 and at most 1), the failures must also be at least that share of the attempts
    that ended in the window.

    ``key``: the breaker's key when the task declares no `ConcurrencyLimit` (the same
    template; ``task:{task}`` by default); with one, the breaker is that limit's key.

    Example:
        >>> @app.task(breaker=CircuitBreaker(failures=5, window="1m", cooldown="30s",
        ...                                  key="api:{account}"))
        ... def call(account: str) -> None: ...
        >>> @app.task(breaker=CircuitBreaker(failures=10, failure_rate=0.5, window="1m"))
        ... def fetch(url: str) -> None: ...
    """

    failures: int = 5
    window: DurationLike = 60.0
    cooldown: DurationLike = 30.0
    key: str = DEFAULT_KEY
    failure_rate: float | None = None

    def __post_init__(self) -> None:
        if (isinstance(self.failures, bool) or not isinstance(self.failures, int)
                or not 1 <= self.failures <= 2**31 - 1):
            raise InvalidInput("breaker.failures", f"must be a whole number from 1, got "
                               f"{self.failures!r}")
        object.__setattr__(self, "window",
                           parse_duration(self.window, "breaker.window", allow_zero=False))
        object.__setattr__(self, "cooldown",
                           parse_duration(self.cooldown, "breaker.cooldown", allow_zero=False))
        rate = self.failure_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                                 or not (math.isfinite(rate) and 0 < rate <= 1)):
            raise InvalidInput("breaker.failure_rate", f"must be a share more than 0 and at "
                               f"most 1 (0.5: half the attempts), got {rate!r}")
        try:
            ConcurrencyLimit(key=self.key)  # the same template rules
        except InvalidInput as exc:
            raise InvalidInput("breaker.key", exc.reason) from None

    @property
    def rule(self) -> BreakerRule:
        """(failures, window, cooldown, failure rate), seconds, as the store keeps them."""
        return (self.failures, float(self.window), float(self.cooldown),  # type: ignore[arg-type]
                None if self.failure_rate is None else float(self.failure_rate))


class TripBreaker(Exception):
    """Raised by a task to open a breaker until ``until`` (an aware datetime, or epoch
    seconds): the job's own key's, or ``key``'s. The attempt fails and is retried by
    the task's policy; no job of the key is admitted before ``until``.

    Example:
        >>> raise TripBreaker(until=datetime.now(UTC) + timedelta(seconds=30))
    """

    def __init__(self, until: datetime | float, key: str | None = None,
                 reason: str = "upstream refused") -> None:
        self.until = until.timestamp() if isinstance(until, datetime) else float(until)
        self.key = key
        super().__init__(f"{reason}: breaker open until {self.until:.3f}"
                         + ("" if key is None else f" for key {key!r}"))


def after_outcome(rule: CircuitBreaker | BreakerRule | None,
                  state: BreakerState, *, success: bool, now: float) -> BreakerState:
    """The breaker after one attempt of its key ended at ``now``.

    A probe's (half-open) success closes it and its failure opens it again for the
    cooldown; while closed, failures are counted in a window that begins at the first
    failure after the previous window ended, and the count reaching ``failures`` opens
    it. Successes do not reset the count. Under a failure rate the window begins at the
    first attempt of either outcome and counts both; it opens once the failures reach
    ``failures`` and are at least ``failure_rate`` of the attempts. An open breaker
    ignores late outcomes (attempts that began before it opened). Without a rule (a
    breaker opened by hand or by a task's `TripBreaker` on a key that declares none)
    nothing is counted; a half-open one closes on a success and stays half-open on a
    failure (the next probe runs; the task trips it again if it must).
    """
    failures, window, cooldown, rate = (rule.rule if isinstance(rule, CircuitBreaker)
                                        else rule or (0, 0.0, 0.0, None))
    if state.state is BreakerStatus.OPEN:
        return state
    if state.state is BreakerStatus.HALF_OPEN:
        if success:
            return CLOSED
        if not rule:  # no cooldown of its own: the next probe runs (a task trips it again)
            return state
        return BreakerState(BreakerStatus.OPEN, until=now + cooldown)
    if not failures or (success and rate is None):
        return state
    failed = 0 if success else 1
    if state.window_started is None or now - state.window_started >= window:
        counted = BreakerState(failures=failed, window_started=now,
                               attempts=0 if rate is None else 1)
    else:
        counted = BreakerState(failures=state.failures + failed,
                               window_started=state.window_started,
                               attempts=0 if rate is None else state.attempts + 1)
    if counted.failures >= failures and (
            rate is None or counted.failures >= rate * counted.attempts - 1e-9):  # 0.3 * 10
        return BreakerState(BreakerStatus.OPEN, until=now + cooldown)
    return counted


def after_cooldown(state: BreakerState, now: float) -> BreakerState:
    """An open breaker whose time has come is half-open (one probe may run)."""
    if state.state is BreakerStatus.OPEN and state.until is not None and state.until <= now:
        return BreakerState(BreakerStatus.HALF_OPEN)
    return state
