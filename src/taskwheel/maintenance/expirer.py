"""Expire waiting jobs whose deadline passed before they started."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty


class Expirer(Duty):
    """Ends ``queued``/``scheduled`` jobs past their deadline as ``expired`` (unless
    their task runs late). Claims skip such jobs anyway; this makes them visible as
    expired without waiting for a claim to pass by, and releases their workflow steps."""

    name = "expire"
    counts = "expired"

    def run(self, now: float) -> int:
        return self.store.expire_missed_deadlines(self.namespace)
