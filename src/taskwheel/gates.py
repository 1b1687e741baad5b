"""Gates before dispatch: paused queues and tasks, and a queue's maximum depth.

A pause is a gate closed until someone resumes it (or until the time it was given, when
maintenance resumes it): the queued jobs it matches stay
queued, in their place in the dispatch order, but blocked (out of the store's ready
index), so no worker claims them and a claim reads none of them; jobs that become
ready behind a closed gate are blocked as they arrive. Running jobs finish; nothing is
lost. Resuming puts the jobs no other gate holds back in the ready index and wakes the
workers.

A queue's maximum depth is backpressure at the door: an enqueue that would leave more
jobs waiting to run in the queue (queued, scheduled or waiting) than its maximum is
refused (`QueueFull`) and writes nothing, the whole batch. Pure: the store reads the
limit and the depth inside the enqueue's transaction and asks `admit_depth`.

Example:
    >>> admit_depth(QueueLimit("default", "emails", max_depth=100), depth=98, count=2)
    >>> admit_depth(QueueLimit("default", "emails", max_depth=100), depth=99, count=2)
    Traceback (most recent call last):
      ...
    QueueFull: queue 'emails' of namespace 'default' is full: 99 jobs waiting to run, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from taskwheel.errors import InvalidInput, QueueFull
from taskwheel.validators import validate_name

_INT32 = 2**31 - 1  # the stores keep a maximum depth in a 32-bit column


class GateKind(StrEnum):
    """What a pause holds: the jobs of one queue, or of one task."""

    QUEUE = "queue"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class Pause:
    """A closed gate of a namespace, since ``paused_at`` (until ``until``, when given);
    ``held``: the queued jobs it holds now."""

    namespace: str
    kind: GateKind
    name: str
    paused_at: datetime
    held: int = 0
    until: datetime | None = None  # when maintenance resumes it (None: only by hand)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "kind": self.kind.value, "name": self.name,
                "paused_at": self.paused_at.isoformat(), "held": self.held,
                "until": None if self.until is None else self.until.isoformat()}


@dataclass(frozen=True, slots=True)
class QueueLimit:
    """A queue's maximum depth; ``depth``, when read from a store, its jobs waiting to
    run then.

    Example:
        >>> QueueLimit("default", "emails", max_depth=10_000)
    """

    namespace: str
    queue: str
    max_depth: int
    depth: int | None = None

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        validate_name(self.queue, "queue")
        validate_max_depth(self.max_depth)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "queue": self.queue,
                "max_depth": self.max_depth, "depth": self.depth}


def validate_max_depth(value: object) -> int:
    """A maximum depth: a whole number from 1 (0 would refuse every enqueue: pause the
    queue instead, or stop enqueueing)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT32:
        raise InvalidInput("max_depth", f"must be a whole number from 1 to {_INT32}, "
                           f"got {value!r}")
    return value


def admit_depth(limit: QueueLimit, depth: int, count: int) -> None:
    """`QueueFull` unless ``count`` more jobs fit ``limit`` when ``depth`` wait to run.
    A batch fits whole or not at all."""
    if depth + count > limit.max_depth:
        raise QueueFull(limit.namespace, limit.queue, limit.max_depth, depth, count)
