"""Resume the pauses whose time has come, and give key slots to waiting jobs."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty


class Reopener(Duty):
    """Resumes each paused queue or task whose ``until`` has passed (`taskwheel.gates`),
    putting its jobs back in dispatch and waking the workers, and each paused key
    (`taskwheel.limits`) likewise; then gives a key's free slots to jobs still waiting
    (a freed slot skips a waiting job someone holds locked at that moment). Runs on
    ``release_every``: a timed pause ends within that long after its time."""

    name = "reopen"
    counts = "reopened"

    def run(self, now: float) -> int:
        return (self.store.resume_due_pauses(self.namespace)
                + self.store.admit_due_keys(self.namespace))
