"""Retry policy: how many attempts, and how long to wait between them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.validators import validate_choice, validate_max_attempts


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"  # base * 2**(n-1)
    LINEAR = "linear"  # base * n
    FIXED = "fixed"  # base


@dataclass(frozen=True, init=False)
class Retry:
    """How a failed job is tried again.

    ``max_attempts`` counts every attempt, the first included; after the last one
    the job is dead (the dead-letter queue). The wait before attempt ``n + 1``
    is ``base * 2**(n-1)`` (exponential), capped at ``cap``, then spread by
    ``jitter``: a fraction of the wait added or removed at random, so jobs that
    failed together do not all return together.

    Example:
        >>> policy = Retry(max_attempts=5, backoff="exponential", base="1s", cap="10m", jitter=0.2)
        >>> policy.delay(3, random.Random(0)) <= 4.0 * 1.2
        True
    """

    max_attempts: int
    backoff: Backoff
    base: float
    cap: float
    jitter: float = field(default=0.0)

    def __init__(
        self,
        max_attempts: int = 3,
        backoff: Backoff | str = Backoff.EXPONENTIAL,
        base: DurationLike = "1s",
        cap: DurationLike = "10m",
        jitter: float = 0.1,
    ) -> None:
        validate_max_attempts(max_attempts)
        policy = validate_choice(Backoff, backoff, "backoff", noun="backoff")
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise InvalidInput("jitter", f"must be a fraction between 0 and 1, got {jitter!r}")
        base_s = parse_duration(base, "base")
        cap_s = parse_duration(cap, "cap")
        if cap_s < base_s:
            raise InvalidInput("cap", f"must not be shorter than base ({cap!r} < {base!r})")
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "backoff", policy)
        object.__setattr__(self, "base", base_s)
        object.__setattr__(self, "cap", cap_s)
        object.__setattr__(self, "jitter", float(jitter))

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed."""
        n = max(1, failed_attempt)
        if self.backoff is Backoff.EXPONENTIAL:
            # Cap the exponent before computing it: 2**n overflows floats for large n.
            raw = self.base * (2.0 ** min(n - 1, 64))
        elif self.backoff is Backoff.LINEAR:
            raw = self.base * n
        else:
            raw = self.base
        wait = min(raw, self.cap)
        if self.jitter:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            wait = wait * (1.0 + spread)
        return max(0.0, wait)

    def to_dict(self) -> dict[str, object]:
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff.value,
            "base": self.base,
            "cap": self.cap,
            "jitter": self.jitter,
        }


NO_RETRY = Retry(max_attempts=1, jitter=0.0)
DEFAULT_RETRY = Retry()
