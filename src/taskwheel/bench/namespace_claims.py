"""What weights between namespaces cost a claim (`taskwheel.stores.shares`).

One store, in this process, no workers: two namespaces with weights 1:3 and two
without, each with ``jobs`` ready jobs; claims of ``batch`` jobs over each pair, one
pair then the other, for ``rounds`` rounds of ``claims`` claims each. A claim over the
pair without weights is the plain merged claim (one statement); over the weighted pair
it is the stride claim (a probe of the weights, then a claim in steps). Each round
gives both pairs' rates (jobs claimed / wall seconds) and CPU of this process per job,
and their ratio, measured in the same round.

Example:
    >>> figures = measure_namespace_claims("sqlite:///claims.db", "bench", jobs=500,
    ...                                    claims=4, rounds=1)  # doctest: +SKIP
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from taskwheel.bench.app import QUEUE, noop
from taskwheel.fairness import NamespaceWeight
from taskwheel.stores import Store, open_store
from taskwheel.stores.claims import ClaimRequest

WEIGHTS = (1.0, 3.0)


@dataclass(frozen=True)
class ClaimRound:
    merged_per_s: float
    weighted_per_s: float
    merged_cpu_us: float  # this process's CPU per job claimed
    weighted_cpu_us: float
    weighted_shares: tuple[int, int]  # jobs the weighted claims took from each namespace


def measure_namespace_claims(
    url: str, prefix: str, *, jobs: int = 20_000, batch: int = 100, claims: int = 20,
    rounds: int = 5,
) -> dict[str, Any]:
    """The figures, as ``taskwheel bench dispatch`` reports them under
    ``namespace_shares``."""
    store = open_store(url)
    try:
        weighted = (f"{prefix}-weighted-1", f"{prefix}-weighted-3")
        merged = (f"{prefix}-merged-a", f"{prefix}-merged-b")
        for namespace, weight in zip(weighted, WEIGHTS, strict=True):
            store.set_namespace_weight(NamespaceWeight(namespace, weight))
        for namespace in (*weighted, *merged):
            store.enqueue([noop.request(namespace=namespace) for _ in range(jobs)])
        found = [_round(store, merged, weighted, batch, claims) for _ in range(rounds)]
    finally:
        store.close()
    return {
        "merged_per_s": _spread([r.merged_per_s for r in found]),
        "weighted_per_s": _spread([r.weighted_per_s for r in found]),
        "weighted_to_merged": _spread([r.weighted_per_s / r.merged_per_s for r in found]),
        "merged_cpu_us_per_job": _spread([r.merged_cpu_us for r in found]),
        "weighted_cpu_us_per_job": _spread([r.weighted_cpu_us for r in found]),
        "weighted_cpu_to_merged": _spread([r.weighted_cpu_us / r.merged_cpu_us
                                           for r in found]),
        "weighted_shares": [list(r.weighted_shares) for r in found],
        "settings": {"jobs_per_namespace": jobs, "batch": batch, "claims_per_round": claims,
                     "rounds": rounds, "weights": list(WEIGHTS)},
    }


def _round(store: Store, merged: tuple[str, str], weighted: tuple[str, str], batch: int,
           claims: int) -> ClaimRound:
    walls = {"merged": 0.0, "weighted": 0.0}
    cpus = {"merged": 0.0, "weighted": 0.0}
    counts = {"merged": 0, "weighted": 0}
    shares: Counter[str] = Counter()
    for n in range(claims):
        for kind in (("merged", "weighted") if n % 2 else ("weighted", "merged")):
            namespaces = merged if kind == "merged" else weighted
            wall, cpu = time.perf_counter(), time.process_time()
            taken = store.claim(ClaimRequest("bench-claims", namespaces, (QUEUE,), batch,
                                             60.0)).jobs
            walls[kind] += time.perf_counter() - wall
            cpus[kind] += time.process_time() - cpu
            counts[kind] += len(taken)
            if kind == "weighted":
                shares.update(job.namespace for job in taken)
    return ClaimRound(
        merged_per_s=counts["merged"] / walls["merged"],
        weighted_per_s=counts["weighted"] / walls["weighted"],
        merged_cpu_us=cpus["merged"] / counts["merged"] * 1e6,
        weighted_cpu_us=cpus["weighted"] / counts["weighted"] * 1e6,
        weighted_shares=(shares[weighted[0]], shares[weighted[1]]))


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}
