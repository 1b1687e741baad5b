"""Delete finished jobs past the retention period, on a slower interval."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty
from taskwheel.stores.base import Store

# Jobs deleted by one pass at most: a pass stays short. On SQLite a pass holds the one
# write lock, so the workers' claims and reports wait for it: 1,000 jobs take about 5 ms
# (the jobs_prunable index finds them; 10,000 took 30-40 ms), and a backlog is worked
# off one short pass every `soon` seconds.
BATCH = 1_000


class Pruner(Duty):
    """Deletes jobs that ended more than ``retention`` ago, with their attempts, and the
    lease rows of processes that died long ago. Dead jobs stay (the dead-letter queue is
    emptied by ``dlq purge`` only). A pass that deleted a full batch is followed by
    another soon, so a backlog drains without one long transaction."""

    name = "prune"
    counts = "pruned"

    def __init__(
        self, store: Store, namespace: str, every: float, *, retention: float, source: str,
        soon: float = 0.2,
    ) -> None:
        super().__init__(store, namespace, every, source=source)
        self.retention = retention
        self.soon = min(soon, every)

    def run(self, now: float) -> int:
        return self.store.prune_finished(self.namespace, now - self.retention, BATCH)

    def next_after(self, now: float, count: int) -> float:
        return now + (self.soon if count >= BATCH else self.every)
