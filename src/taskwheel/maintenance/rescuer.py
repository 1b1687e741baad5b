"""Give back the jobs of workers that vanished: their leases expired."""

from __future__ import annotations

import logging

from taskwheel.events import Event, EventKind
from taskwheel.maintenance.duty import Duty
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.maintenance")


class Rescuer(Duty):
    """Finds running jobs whose lease expired (their worker died, froze or lost the
    database) and requeues them, or fails them when they are at-most-once or out of
    attempts; the store records a ``lease_expired`` attempt for each. Judged by the
    store's clock, so a worker whose clock is off cannot be rescued early.

    Emits ``job.rescued`` for each job, ``metadata["outcome"]`` ``requeued`` or
    ``failed``.

    After the store was out of reach (`out_of_reach`: a pass that failed, or its owner
    losing the store), nothing is rescued until it has been back for ``grace``, or for
    twice the slowest heartbeat of the namespace's registered workers if that is longer:
    every worker lost the store too, their leases lapsed meanwhile by the store's clock,
    and a live worker renews them at its next heartbeat; rescuing at the first pass that
    gets through would run their jobs a second time, beside the first. The first pass
    back reads that slowest heartbeat, which also says the store is back.
    """

    name = "rescue"
    counts = "rescued"

    def __init__(
        self, store: Store, namespace: str, every: float, *, source: str, grace: float = 0.0,
    ) -> None:
        super().__init__(store, namespace, every, source=source)
        self.grace = grace
        self._reached = True  # False from a loss of the store until a pass gets through
        self._resume_at = 0.0

    def out_of_reach(self) -> None:
        """The store could not be reached: the pass that reaches it again starts the
        grace."""
        self._reached = False

    def failed(self) -> None:
        self.out_of_reach()

    def run(self, now: float) -> int:
        if not self._reached:
            slowest = self.store.slowest_heartbeat(self.namespace)  # raises while away
            self._reached = True
            wait = max(self.grace, 2 * (slowest or 0.0))
            self._resume_at = now + wait
            if wait:
                log.info("the store is back: rescuing again in %gs, once live workers "
                         "have renewed their leases", wait)
        if now < self._resume_at:
            return 0
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
