"""Claim policies: which ready jobs a claim takes, and in which order.

A worker's `ClaimRequest` is answered by the store's `ClaimPolicy` inside the claim's
transaction, after due jobs were promoted and missed ones expired. `DispatchOrder`
(priority, then deadline, then due time, then id: one indexed scan) is the default.
Fair shares, priority aging, concurrency and rate limits and open circuit breakers
belong here as policies, or as admission gates before a job becomes claimable; a
policy composes the executor's statements, and one that needs a statement of its own
adds it to `Executor` and to both dialects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from taskwheel.jobs import Claim
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.executor import Executor


class ClaimPolicy(ABC):
    """Which ready jobs a claim takes, and in which order."""

    def claim_at_once(self, executor: Executor, request: ClaimRequest) -> Claim | None:
        """The whole claim in one statement outside any transaction, or None to claim
        in steps (`claim`). Only for a policy the dialect has such a statement for. On
        PostgreSQL ``executor`` is usually on the claim connection, which plans every
        statement generically (`Database.claiming`): run there only the claim and
        reads by key."""
        return None

    @abstractmethod
    def claim(self, transaction: Executor, request: ClaimRequest) -> Claim:
        """Take the jobs, inside the claim's transaction; with the earliest due time
        of a delayed job, for the worker's alarm."""

    def claimed(self, claim: Claim) -> None:
        """Called once the claim's transaction has committed (its jobs are final)."""
        return None


class DispatchOrder(ClaimPolicy):
    """The default: priority, then deadline, then due time, then id, strictly. A flood
    of high-priority jobs goes first (the dispatch-control policies soften this)."""

    def claim_at_once(self, executor: Executor, request: ClaimRequest) -> Claim | None:
        return executor.claim_at_once(request)

    def claim(self, transaction: Executor, request: ClaimRequest) -> Claim:
        return transaction.claim_jobs(request)


DEFAULT_POLICY: ClaimPolicy = DispatchOrder()
