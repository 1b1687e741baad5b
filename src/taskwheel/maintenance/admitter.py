"""Admit rate-limited jobs as their keys' buckets fill (`taskwheel.rates`)."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty


class Admitter(Duty):
    """Admits the jobs waiting for their rate keys' tokens, in dispatch order, as the
    buckets allow (the store wakes the workers). Runs on ``promote_every``, and ten
    times as often while a pass admits jobs (tokens keep coming in): a ready job whose
    bucket has tokens waits at most ``promote_every`` to be admitted."""

    name = "admit"
    counts = "admitted"

    def run(self, now: float) -> int:
        return self.store.admit_rated_jobs(self.namespace)

    def next_after(self, now: float, count: int) -> float:
        return now + (self.every / 10 if count else self.every)
