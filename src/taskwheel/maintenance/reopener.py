"""Resume the pauses whose time has come."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty


class Reopener(Duty):
    """Resumes each paused queue or task whose ``until`` has passed (`taskwheel.gates`),
    putting its jobs back in dispatch and waking the workers. Runs on ``release_every``:
    a timed pause ends within that long after its time."""

    name = "reopen"
    counts = "reopened"

    def run(self, now: float) -> int:
        return self.store.resume_due_pauses(self.namespace)
