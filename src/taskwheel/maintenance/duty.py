"""A background duty: one small loop object, driven by `step`.

Each duty (promote, rescue, expire, release, prune) is a subclass that says what one
pass does (`run`) and, if it is not simply "again after ``every``", when the next pass
is due (`next_after`). `Maintenance` calls `step` while its owner holds the maintenance
lease; nothing here sleeps or reads a clock of its own, so a `ManualClock` drives a duty
in tests exactly as a running process does.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import ClassVar

from taskwheel.events import Event, EventKind
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.maintenance")


class Duty(ABC):
    """One duty of the maintenance lease holder.

    ``next_at`` is when `step` should be called next (store clock); 0 means at once.
    ``done`` counts what every pass touched (jobs promoted, rescued, ...): it is the
    same number the ``maintenance.ran`` event carries, counted where the event is built.
    """

    name: ClassVar[str]  # the duty, in logs and in ``maintenance.ran`` events
    counts: ClassVar[str]  # what `done` counts, as a stats key ("rescued", ...)

    def __init__(self, store: Store, namespace: str, every: float, *, source: str) -> None:
        self.store = store
        self.namespace = namespace
        self.every = every
        self.source = source
        self.next_at = 0.0
        self.done = 0

    def step(self, now: float) -> float:
        """One pass at ``now``; returns (and remembers) when the next one is due. A pass
        that fails is logged and tried again after ``every``."""
        began = time.perf_counter()
        try:
            count = self.run(now)
        except Exception:
            log.exception("maintenance: %s failed; trying again in %gs", self.name, self.every)
            self.failed()
            self.next_at = now + self.every
            return self.next_at
        self.done += count
        events = self.store.events
        if events.wants(EventKind.MAINTENANCE_RAN):
            events.emit(Event(
                EventKind.MAINTENANCE_RAN, self.namespace, now,
                measurements={"count": count, "duration": time.perf_counter() - began},
                metadata={"duty": self.name}, source=self.source,
            ))
        self.next_at = self.next_after(now, count)
        return self.next_at

    @abstractmethod
    def run(self, now: float) -> int:
        """Do one pass; return how many jobs it touched."""

    def failed(self) -> None:  # noqa: B027 (a hook: most duties need nothing)
        """A pass raised (the store unreachable, most often); the next is tried after
        ``every`` whatever this does."""

    def next_after(self, now: float, count: int) -> float:
        """When the next pass is due after one at ``now`` that touched ``count``."""
        return now + self.every
