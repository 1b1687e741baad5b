"""Make due delayed and backed-off jobs ready, at the instant the next one falls due."""

from __future__ import annotations

import math

from taskwheel.maintenance.duty import Duty


class Promoter(Duty):
    """Moves ``scheduled`` jobs whose time has come to ``queued`` (the store wakes the
    workers). Besides every ``every``, it runs at the instant the earliest delayed job
    falls due: the store says when that is after each pass, and an owner that learns of
    an earlier one (a fire due later, a ``due`` wake-up) tells it with `due_at` or `wake`.

    Workers promote due jobs in their claims too, so this is what makes a delayed job
    start on time when every worker is idle and polling slowly.
    """

    name = "promote"
    counts = "promoted"

    next_due: float | None = None  # the earliest delayed job, as the last pass saw it

    def run(self, now: float) -> int:
        promoted, self.next_due = self.store.promote_due_jobs(self.namespace)
        return promoted

    def next_after(self, now: float, count: int) -> float:
        due = math.inf if self.next_due is None else self.next_due
        return min(now + self.every, due)

    def due_at(self, when: float) -> None:
        """A job falls due at ``when``: promote it then (if no pass comes earlier)."""
        self.next_at = min(self.next_at, when)

    def wake(self) -> None:
        """Delayed jobs were added: look now (and learn the next due instant)."""
        self.next_at = 0.0
