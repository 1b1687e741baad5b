"""Weights between namespaces: the claim policy of a claim over several namespaces.

A worker that serves several namespaces claims from all of them at once. Without
weights its claims merge the namespaces' ready jobs by rank, then pass: a tenant with
a flood of high priorities takes every claim. Once one of the claim's namespaces has a
weight (`Client.set_namespace_weight`), the claim divides its jobs between them by
stride scheduling (`fairness.NamespaceStride`): the n-th ready job of a namespace of
weight ``w``, in the namespace's own dispatch order, is placed at ``start + n / w``,
and the claim takes the lowest places, in one statement that reads each namespace's
range of the ready index (as the plain claim does). The starts are the claimer's own
(this store object's): they need no shared row, so no claim waits on another's.
Within a namespace, everything is as before (rank, then fair pass, then deadline,
due time and id).
"""

from __future__ import annotations

import threading
from collections import Counter

from taskwheel.fairness import NamespaceStride
from taskwheel.jobs import Claim
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.executor import Executor
from taskwheel.stores.policies import ClaimPolicy


class NamespaceShares(ClaimPolicy):
    """``inner`` for claims whose namespaces have no weight; stride between the
    namespaces for the others."""

    def __init__(self, inner: ClaimPolicy) -> None:
        self.inner = inner
        self._stride = NamespaceStride()
        self._lock = threading.Lock()
        self._weights: dict[int, dict[str, float]] = {}  # by claim, until it commits
        self._weighted = False  # whether the last claim found weights

    def claim_at_once(self, executor: Executor, request: ClaimRequest) -> Claim | None:
        # Weights found by the last claim: most likely there still, so straight to the
        # claim in steps, which reads them again in its transaction (and claims as
        # `inner` if they are gone).
        if self._weighted or executor.namespace_weights(request.namespaces):
            return None
        return self.inner.claim_at_once(executor, request)

    def claim(self, transaction: Executor, request: ClaimRequest) -> Claim:
        weighed = transaction.namespace_weights(request.namespaces)
        self._weighted = bool(weighed)
        if not weighed:
            return self.inner.claim(transaction, request)
        namespaces = list(dict.fromkeys(request.namespaces))
        weights = {namespace: weighed.get(namespace, 1.0) for namespace in namespaces}
        with self._lock:
            starts = self._stride.starts(namespaces)
        claim = transaction.claim_shares(request, [
            (namespace, start, weights[namespace])
            for namespace, start in zip(namespaces, starts, strict=True)])
        if len(self._weights) > 64:  # claims that failed before `claimed`
            self._weights.clear()
        self._weights[id(claim)] = weights
        return claim

    def claimed(self, claim: Claim) -> None:
        weights = self._weights.pop(id(claim), None)
        if weights is not None:
            with self._lock:
                self._stride.taken(weights, Counter(job.namespace for job in claim.jobs))
