"""Release ``queue_one`` jobs whose predecessor ended."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty


class Releaser(Duty):
    """Makes ready each ``waiting`` job of a ``queue_one`` schedule once no earlier job
    of that schedule is unfinished. The store already does this in the transaction that
    ends the predecessor; this pass catches the ends that happen without an outcome
    (a rescue, an expiry, a deletion)."""

    name = "release"
    counts = "released"

    def run(self, now: float) -> int:
        return self.store.release_waiting(self.namespace)
