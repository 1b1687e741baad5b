"""A claim is a request answered by a policy (`taskwheel.stores.policies`).

A worker asks for up to ``limit`` ready jobs of some queues in some namespaces
(`ClaimRequest`); the store's `ClaimPolicy` decides which ready jobs are eligible and in
which order, inside the claim's transaction, after due jobs were promoted and missed
ones expired. Today's order -- priority (higher first), then deadline (earliest first,
none last), then due time, then id -- is the default policy, `DispatchOrder`, one
indexed scan.

This is the plug point for dispatch control: fair shares, priority aging, concurrency
and rate limits and open circuit breakers are policies here, or admission gates that
decide which jobs become claimable at all, never edits of the claim statements of each
dialect. A policy composes the executor's statements; a policy that needs a statement
of its own adds it to `Executor` (and to both dialects).

Example:
    >>> request = ClaimRequest("w1", namespaces=("default",), queues=("emails",), limit=10,
    ...                        lease_ttl=30.0)
    >>> request.namespaces
    ('default',)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from taskwheel.errors import InvalidInput

MAX_AHEAD = 1.0  # seconds: a claim ahead covers a claim's round trip, not a schedule


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Up to ``limit`` ready jobs of ``queues`` in ``namespaces`` for ``worker_id``,
    each held under a lease of ``lease_ttl`` seconds. Rows still belong to one
    namespace each: a claim over several reads each namespace's own jobs.

    ``tasks``: only jobs of these tasks (the ones the worker can run), so a worker of
    an older deploy leaves a newer task's jobs to the workers that have it rather than
    failing them; None takes any task.

    ``due``: the worker knows a delayed job has fallen due (its alarm rang). A store
    whose one-statement claim cannot make due jobs ready (SQLite's) then goes straight
    to the steps that do so first; PostgreSQL's makes them ready and claims them in
    that one statement (see ``claim_at_once`` in its queries.sql).

    ``alarm``: the claimer keeps an alarm at the answer's `Claim.next_due` and claims
    with ``due`` when it rings (a worker does). Without ``due`` it then knows of no
    delayed job due, so a store may read only the ready jobs (PostgreSQL's
    ``claim_ready``): a job that fell due unknown to it shows in ``next_due``, which
    rings the alarm at once. A claimer that keeps none leaves it False, and each claim
    looks at the due jobs too.

    ``ahead``: the claimer holds each job it gets until the job's due time, so a plain
    delayed job falling due within this many seconds may be claimed now, its
    ``started_at`` being its due time. A store that claims ahead (`Store.claims_ahead`)
    does so, so the job's code starts when it falls due rather than one claim and its
    commit later: PostgreSQL's one-statement claim takes them in dispatch order with
    the ready ones, a claim in steps after the ready ones (`Executor.claim_ahead`: on
    SQLite, a claim with ``due``; on PostgreSQL, one behind a gate or a queue's
    reserve). A claimer that runs what it gets at once leaves it 0.
    """

    worker_id: str
    namespaces: tuple[str, ...]
    queues: tuple[str, ...]
    limit: int
    lease_ttl: float
    tasks: tuple[str, ...] | None = None
    due: bool = False
    ahead: float = 0.0
    alarm: bool = False

    def __post_init__(self) -> None:
        if not self.namespaces:
            raise InvalidInput("namespaces", "a claim names at least one namespace")
        if not self.queues:
            raise InvalidInput("queues", "a claim names at least one queue")
        if self.tasks is not None and not self.tasks:
            raise InvalidInput("tasks", "a claim limited to tasks names at least one")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise InvalidInput("limit", f"must be an integer >= 0, got {self.limit!r}")
        if not isinstance(self.lease_ttl, int | float) or not (
            math.isfinite(self.lease_ttl) and self.lease_ttl > 0
        ):
            raise InvalidInput("lease_ttl", f"must be a number of seconds > 0, got "
                               f"{self.lease_ttl!r}")
        if isinstance(self.ahead, bool) or not isinstance(self.ahead, int | float) or not (
            0 <= self.ahead <= MAX_AHEAD
        ):
            raise InvalidInput("ahead", f"must be a number of seconds from 0 to "
                               f"{MAX_AHEAD:g}, got {self.ahead!r}")
