"""Admit rate-limited jobs as their keys' buckets fill (`taskwheel.rates`)."""

from __future__ import annotations

from taskwheel.maintenance.duty import Duty
from taskwheel.rates import AdmissionPass


class Admitter(Duty):
    """Admits the jobs waiting for their rate keys' tokens, in dispatch order, as the
    buckets allow (the store wakes the workers). Runs on ``promote_every`` while no job
    waits for tokens; while some do, again when their buckets will have the tokens of
    the next one, but not sooner than a tenth of ``promote_every`` (a pass admits what
    accrued meanwhile, several jobs at once) nor later than ``promote_every``. When the
    room the tokens need is held by admitted jobs that have not started, it looks again
    after that tenth: the room frees as they start. So a key admits at its rate,
    whatever its burst; a ready job whose bucket has tokens waits at most
    ``promote_every`` to be admitted."""

    name = "admit"
    counts = "admitted"
    _last = AdmissionPass()

    def run(self, now: float) -> int:
        self._last = self.store.admission_pass(self.namespace)
        return self._last.admitted

    def next_after(self, now: float, count: int) -> float:
        # A thousandth of the interval later than the tokens are due: a pass exactly
        # then could count a rounding error less than a whole job's tokens.
        late = self.every / 1000
        soon = now + self.every / 10 + late
        last = self._last
        if last.waiting:
            if last.tokens_at is None:
                return soon
            return min(now + self.every, max(soon, last.tokens_at + late))
        return soon if count else now + self.every
