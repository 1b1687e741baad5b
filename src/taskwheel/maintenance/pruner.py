"""Delete finished jobs past the retention period, on a slower interval."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty
from taskwheel.stores.base import Store

BATCH = 10_000  # jobs deleted by one pass at most: a pass stays short


class Pruner(Duty):
    """Deletes jobs that ended more than ``retention`` ago, with their attempts, and the
    lease rows of processes that died long ago. Dead jobs stay (the dead-letter queue is
    emptied by ``dlq purge`` only). A pass that deleted a full batch is followed by
    another soon, so a backlog drains without one long transaction."""

    name = "prune"
    counts = "pruned"

    def __init__(
        self, store: Store, namespace: str, every: float, *, retention: float, source: str,
        soon: float = 1.0,
    ) -> None:
        super().__init__(store, namespace, every, source=source)
        self.retention = retention
        self.soon = min(soon, every)

    def run(self, now: float) -> int:
        return self.store.prune_finished(self.namespace, now - self.retention, BATCH)

    def next_after(self, now: float, count: int) -> float:
        return now + (self.soon if count >= BATCH else self.every)
