"""The time of a claim of 100 in a plain namespace and in a fair one, claim by claim.

One process, no workers, a fresh schema of the PostgreSQL server (or a SQLite file):
``--jobs`` ready jobs in a namespace without fairness and as many spread over keys of
weights 1:2:4 in another, written by one enqueue each; then claims of 100, alternating
between the two namespaces, until both are drained. Prints each kind's median, mean
and 90th percentile claim time, and the fair/plain ratio of the claim rates (the
inverse ratio of the median times).

    .venv/bin/python bench/fair_claims.py --url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg

from taskwheel.bench.app import QUEUE, noop
from taskwheel.fairness import FairWeight
from taskwheel.stores import open_store
from taskwheel.stores.claims import ClaimRequest

WEIGHTS = {"a": 1.0, "b": 2.0, "c": 4.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="postgresql://... or sqlite:///file")
    parser.add_argument("--jobs", type=int, default=20_000)
    options = parser.parse_args()
    url, schema = options.url, None
    if url.startswith("postgresql"):
        schema = "fair_claims_" + uuid.uuid4().hex[:8]
        url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    store = open_store(url)
    try:
        store.migrate()
        for key, weight in WEIGHTS.items():
            store.set_fair_weight(FairWeight("fair", key, weight))
        keys = list(WEIGHTS)
        started = time.perf_counter()
        store.enqueue([noop.request(namespace="plain") for _ in range(options.jobs)])
        plain_enqueue = time.perf_counter() - started
        started = time.perf_counter()
        store.enqueue([noop.request(namespace="fair", fairness_key=keys[n % len(keys)])
                       for n in range(options.jobs)])
        fair_enqueue = time.perf_counter() - started
        times: dict[str, list[float]] = {"plain": [], "fair": []}
        for n in range(options.jobs // 100):
            for namespace in ("plain", "fair") if n % 2 else ("fair", "plain"):
                started = time.perf_counter()
                store.claim(ClaimRequest("fair-claims", (namespace,), (QUEUE,), 100, 60.0))
                times[namespace].append(time.perf_counter() - started)
    finally:
        store.close()
        if schema is not None:
            with psycopg.connect(options.url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"enqueue: plain {options.jobs / plain_enqueue:,.0f} jobs/s, "
          f"fair {options.jobs / fair_enqueue:,.0f} jobs/s")
    for kind, found in times.items():
        ordered = sorted(found)
        print(f"{kind} claim of 100: median {statistics.median(found) * 1e3:.2f} ms, "
              f"mean {statistics.mean(found) * 1e3:.2f} ms, "
              f"p90 {ordered[int(len(ordered) * 0.9)] * 1e3:.2f} ms")
    print(f"fair / plain, claim rate: "
          f"{statistics.median(times['plain']) / statistics.median(times['fair']):.3f}")


if __name__ == "__main__":
    main()
