"""Jobs' places in the dispatch order (`taskwheel.fairness`), given in the transaction
that writes them, for both dialects.

A namespace that uses neither fair shares nor aging has nothing here: its enqueues
never come this way (the statement that writes them finds no flow and no aging rate
of their namespaces), and its jobs keep rank offset and pass 0. Otherwise, inside the
enqueue's transaction: the flows of the batch locked in key order (two enqueues of
one flow take passes one after the other), the frontier of each rank read off the
ready index, the places computed (`fairness.place_jobs`), the flows' last passes
saved, and the jobs written with their places.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from taskwheel.fairness import Flow, Placed, Request, flow_keys, place_jobs
from taskwheel.jobs import Job, NewJob
from taskwheel.stores.executor import Executor
from taskwheel.stores.rows import placement


def placed_jobs(tx: Executor, jobs: Sequence[NewJob], now: float) -> list[NewJob]:
    """``jobs`` (enqueued at ``now``) with their places, their flows locked and
    advanced; the jobs of namespaces that use neither fair shares nor aging as they
    are."""
    by_namespace: dict[str, list[int]] = {}
    for index, new in enumerate(jobs):
        by_namespace.setdefault(new.namespace, []).append(index)
    placed = list(jobs)
    for namespace in sorted(by_namespace):  # flows locked in one order
        indices = by_namespace[namespace]
        requests = []
        for i in indices:
            due, deadline, _status = placement(jobs[i], now)
            requests.append(Request(jobs[i].fairness_key, jobs[i].queue, jobs[i].priority,
                                    due, deadline))
        for place in _places(tx, namespace, requests):
            i = indices[place.index]
            placed[i] = dataclasses.replace(jobs[i], rank_offset=place.rank_offset,
                                            fair_pass=place.fair_pass)
    return placed


def in_use(tx: Executor, namespace: str) -> bool:
    """Whether the namespace has fair shares or a queue that ages."""
    return tx.uses_placing(namespace)


def place_written(tx: Executor, namespace: str, jobs: Sequence[Job]) -> None:
    """Place jobs of ``namespace`` written without a request of their own (a schedule's
    fire, a workflow run's steps), in the transaction that wrote them."""
    requests = [Request(job.fairness_key, job.queue, job.priority, job.run_at.timestamp(),
                        None if job.deadline is None else job.deadline.timestamp())
                for job in jobs]
    written = []
    for place in _places(tx, namespace, requests):
        job = jobs[place.index]
        job.rank_offset, job.fair_pass = place.rank_offset, place.fair_pass
        written.append((job.id, job.fairness_key, place.rank_offset, place.fair_pass))
    if written:
        tx.place_jobs(written)


def _places(tx: Executor, namespace: str, requests: list[Request]) -> list[Placed]:
    """The places of a namespace's requests, in their order (none when it uses neither
    fair shares nor aging)."""
    if not requests:
        return []
    aging = {queue_aging.queue: queue_aging for queue_aging in tx.list_queue_aging(namespace)}
    fair = any(r.key is not None for r in requests) or tx.is_fair(namespace)
    if not fair and not aging:
        return []
    flows: dict[str, Flow] = {}
    frontier: dict[int, float] = {}
    ceiling = 0.0
    if fair:
        for key in flow_keys(request.key for request in requests):
            flows[key] = tx.lock_fair_flow(namespace, key) or Flow(1.0, 0.0)
        ranks = {r.priority + (0 if r.queue not in aging else
                               aging[r.queue].rank_offset(r.priority, r.due))
                 for r in requests}
        for rank in sorted(ranks):
            found = tx.pass_frontier(namespace, rank)
            if found is not None:
                frontier[rank] = found
        if len(frontier) < len(ranks):
            ceiling = tx.fair_ceiling(namespace)
    placed = place_jobs(requests, fair=fair, aging=aging, flows=flows, frontier=frontier,
                        ceiling=ceiling)
    for key, flow in flows.items():
        tx.save_fair_flow(namespace, key, flow.last_pass)
    return placed
