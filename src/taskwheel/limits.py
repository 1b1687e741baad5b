"""Gates per key: concurrency limits, paused keys (and circuit breakers, which close the
same gate).

A task may give each job a key, a template over the job's arguments
(``ConcurrencyLimit(key="tenant:{tenant_id}", limit=5)``), and a number of slots per
key. A job of a key holds a slot while it is ready (queued, in the ready index) or
running; a job that finds every slot taken waits queued but blocked, out of the ready
index, so a claim never reads it and stays one indexed scan. When a job gives its slot
back (it finished, failed, was cancelled or expired, went back to wait for a retry, or a
pause blocked it) the store admits the first job waiting in dispatch order, in the same
transaction. A job's move out of running is fenced, so its slot is given back once,
however often a presumed-dead worker reports: never more than ``limit`` jobs of a key
hold a slot, hence never more than ``limit`` run at once, across workers, machines,
lease expiries and rescues (a job whose worker died keeps its slot until its lease is
rescued).

The slots of a key live in one row of the store (`KeyLimit`), created with the task's
declared limit when its first job is enqueued; ``taskwheel limits set`` changes it at
run time and a later declaration no longer does. Pausing a key closes its gate (no
slot is given until it is resumed, or until the time given); running jobs finish.

Example:
    >>> limit = ConcurrencyLimit(key="tenant:{tenant_id}", limit=5)
    >>> limit.render("sync", "default", {"tenant_id": 42})
    'tenant:42'
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskwheel.errors import InvalidInput

_INT32 = 2**31 - 1  # the stores keep a capacity in a 32-bit column
_MAX_KEY = 200
DEFAULT_KEY = "task:{task}"
BreakerRule = tuple[int, float, float, float | None]
"""A key's breaker rule as the store keeps it (`taskwheel.breakers`): failures, window,
cooldown (seconds), failure rate (None: the count alone)."""


def validate_key(value: object, field_name: str = "key") -> str:
    """A key: 1-200 characters, none of them white space or a control character.

    Example:
        >>> validate_key("tenant:42")
        'tenant:42'
    """
    if (not isinstance(value, str) or not 0 < len(value) <= _MAX_KEY
            or any(ch.isspace() or not ch.isprintable() for ch in value)):
        raise InvalidInput(field_name, f"must be 1-{_MAX_KEY} characters without spaces or "
                           f"control characters, got {value!r}")
    return value


def validate_capacity(value: object, field_name: str = "limit") -> int:
    """A number of slots: a whole number from 1 (to stop a key, pause it instead)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT32:
        raise InvalidInput(field_name, f"must be a whole number from 1 to {_INT32} (pause "
                           f"the key to stop it), got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most ``limit`` jobs with the same key run at once, across every worker.

    ``key`` is a template: ``{name}`` fields name the task's arguments (``{0}`` the
    first positional one), ``{task}`` and ``{queue}`` the job's. The default,
    ``task:{task}``, limits the task as a whole; ``queue:{queue}`` limits a queue
    (give the same limit to each task of the queue).

    Example:
        >>> @app.task(concurrency=ConcurrencyLimit(key="tenant:{tenant_id}", limit=5))
        ... def sync(tenant_id: int) -> None: ...
    """

    key: str = DEFAULT_KEY
    limit: int = 1

    def __post_init__(self) -> None:
        validate_capacity(self.limit, "concurrency.limit")
        if not isinstance(self.key, str) or not self.key:
            raise InvalidInput("concurrency.key", f"must be a template string, got {self.key!r}")
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(self.key)
                      if name is not None]
        except ValueError as exc:
            raise InvalidInput("concurrency.key",
                               f"{self.key!r} is not a template: {exc}") from None
        if any(name == "" for name in fields):
            raise InvalidInput("concurrency.key", f"{self.key!r}: name each field "
                               "({tenant_id}, {0}), none may be empty")

    def render(self, task: str, queue: str, arguments: Mapping[str, Any]) -> str:
        """The key of a job of ``task`` on ``queue`` with ``arguments`` (by parameter
        name, and by position as ``"0"``, ``"1"``...); `InvalidInput` naming
        ``concurrency.key`` when a field names no argument."""
        values = {**arguments, "task": task, "queue": queue}
        positional: list[Any] = []
        while str(len(positional)) in values:
            positional.append(values[str(len(positional))])
        try:
            rendered = string.Formatter().vformat(self.key, positional, _ByName(values))
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise InvalidInput("concurrency.key", f"{self.key!r} names {exc}, which the job's "
                               "arguments do not have") from None
        return validate_key(rendered, "concurrency.key")


class _ByName(dict[str, Any]):
    """Template fields by name; ``{0}`` looks up ``"0"`` (positional arguments)."""

    def __missing__(self, name: str) -> Any:
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class KeyLimit:
    """A key's gate as the store has it: its slots (``capacity``; None: no limit),
    ``in_use`` (jobs holding a slot: ready or running) and ``waiting`` (queued jobs
    blocked for want of one), whether it was set by hand, and its pause."""

    namespace: str
    key: str
    capacity: int | None
    in_use: int = 0
    waiting: int = 0
    set_by_hand: bool = False
    paused_at: datetime | None = None
    paused_until: datetime | None = None
    breaker: str = "closed"  # `taskwheel.breakers.BreakerStatus`'s value
    breaker_until: datetime | None = None  # when an open breaker half-opens
    failures: int = 0  # counted in the breaker's current window
    attempts: int = 0  # ended in that window (counted under a failure rate only)
    breaker_rule: BreakerRule | None = None  # failures, window, cooldown, failure rate

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "key": self.key, "capacity": self.capacity,
                "in_use": self.in_use, "waiting": self.waiting,
                "set_by_hand": self.set_by_hand, "paused": self.paused,
                "paused_at": None if self.paused_at is None else self.paused_at.isoformat(),
                "paused_until": (None if self.paused_until is None
                                 else self.paused_until.isoformat()),
                "breaker": self.breaker,
                "breaker_until": (None if self.breaker_until is None
                                  else self.breaker_until.isoformat()),
                "failures": self.failures, "attempts": self.attempts,
                "breaker_failures": None if self.breaker_rule is None else self.breaker_rule[0],
                "breaker_window": None if self.breaker_rule is None else self.breaker_rule[1],
                "breaker_cooldown": None if self.breaker_rule is None else self.breaker_rule[2],
                "breaker_failure_rate": (None if self.breaker_rule is None
                                         else self.breaker_rule[3])}
