"""Give back the jobs of workers that vanished: their leases expired."""

from __future__ import annotations

import logging

from taskwheel.events import Event, EventKind
from taskwheel.maintenance.duty import Duty

log = logging.getLogger("taskwheel.maintenance")


class Rescuer(Duty):
    """Finds running jobs whose lease expired (their worker died, froze or lost the
    database) and requeues them, or fails them when they are at-most-once or out of
    attempts; the store records a ``lease_expired`` attempt for each. Judged by the
    store's clock, so a worker whose clock is off cannot be rescued early.

    Emits ``job.rescued`` for each job, ``metadata["outcome"]`` ``requeued`` or
    ``failed``.
    """

    name = "rescue"
    counts = "rescued"

    def run(self, now: float) -> int:
        rescue = self.store.rescue_expired_leases(self.namespace)
        if not (rescue.requeued or rescue.failed):
            return 0
        log.warning("rescued expired leases: requeued %s, failed %s",
                    rescue.requeued, rescue.failed)
        events = self.store.events
        if events.wants(EventKind.JOB_RESCUED):
            for outcome, ids in (("requeued", rescue.requeued), ("failed", rescue.failed)):
                for job_id in ids:
                    events.emit(Event(EventKind.JOB_RESCUED, self.namespace, now,
                                      job_id=job_id, metadata={"outcome": outcome},
                                      source=self.source))
        return len(rescue.requeued) + len(rescue.failed)
