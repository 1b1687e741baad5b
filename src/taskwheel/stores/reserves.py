"""Reserved capacity: the claim policy that keeps a share of a queue's claims for its
lower bands (`fairness.QueueReserve`).

A claim of queues none of which has a reserve is the inner policy's, untouched (the
one-statement claims answer "slow" when one has, so that this policy runs). Otherwise,
in the claim's transaction: the reserves of its queues are read with their queues'
aging, each reserve's bands are asked for the claims this claimer owes them
(`fairness.ReserveCredit`), read off the ready index from their rank down, and the
inner policy takes the rest. What a claimer owes is its own (this store object's), as
the starts of `shares.NamespaceShares` are: no claim waits on another's.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from taskwheel.fairness import ReserveCredit
from taskwheel.jobs import Claim, Job
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.executor import Executor
from taskwheel.stores.policies import ClaimPolicy


@dataclass(frozen=True, slots=True)
class _Asked:
    """What one claim asked of one reserve."""

    namespace: str
    queue: str
    share: float
    rank_below: int  # the reserved bands: ready jobs ranked below this
    asked: int
    jobs: list[Job]  # the ones the bands gave (complete once the claim commits)


@dataclass(frozen=True, slots=True)
class _Pending:
    rest: Claim  # the inner policy's claim
    asked: list[_Asked]


class QueueReserves(ClaimPolicy):
    """``inner`` for the claims none of whose queues keeps a reserve; reserved bands
    first for the others."""

    def __init__(self, inner: ClaimPolicy, credit: ReserveCredit) -> None:
        self.inner = inner
        self._credit = credit
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}  # by claim, until it commits

    def claim_at_once(self, executor: Executor, request: ClaimRequest) -> Claim | None:
        return self.inner.claim_at_once(executor, request)

    def claim(self, transaction: Executor, request: ClaimRequest) -> Claim:
        reserves = transaction.claimed_reserves(request.namespaces, request.queues)
        if not reserves:
            return self.inner.claim(transaction, request)
        now = transaction.now()
        with self._lock:
            owed = [self._credit.asked((reserve.namespace, reserve.queue), reserve.share,
                                       request.limit) for reserve, _aging in reserves]
        left = request.limit
        asked = []
        for (reserve, aging), owes in zip(reserves, owed, strict=True):
            count = min(owes, left)
            rank_below = reserve.rank_below(aging, now)
            taken, jobs = (0, []) if count == 0 else transaction.claim_reserved(
                dataclasses.replace(request, limit=count), reserve.namespace, reserve.queue,
                rank_below)
            left -= taken
            asked.append(_Asked(reserve.namespace, reserve.queue, reserve.share, rank_below,
                                count, jobs))
        rest = self.inner.claim(transaction, dataclasses.replace(request, limit=left))
        claim = Claim(jobs=[], next_due=rest.next_due)
        if len(self._pending) > 64:  # claims that failed before `claimed`
            self._pending.clear()
        self._pending[id(claim)] = _Pending(rest, asked)
        return claim

    def claimed(self, claim: Claim) -> None:
        pending = self._pending.pop(id(claim), None)
        if pending is None:
            self.inner.claimed(claim)
            return
        self.inner.claimed(pending.rest)
        for part in pending.asked:
            claim.jobs.extend(part.jobs)
        claim.jobs.extend(pending.rest.jobs)
        with self._lock:
            for part in pending.asked:
                of_queue = [job for job in claim.jobs
                            if job.namespace == part.namespace and job.queue == part.queue]
                self._credit.settle(
                    (part.namespace, part.queue), part.share, taken=len(of_queue),
                    reserved=sum(job.priority + job.rank_offset < part.rank_below
                                 for job in of_queue),
                    asked=part.asked)
