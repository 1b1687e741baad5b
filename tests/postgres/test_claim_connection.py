"""The connection a process keeps for its claims: made by the first claim, it plans
every claim with the generic plan (no SET and RESET per claim), and nothing else runs
on it; a claim never waits for it (busy, not made yet, closed by the server: the claim
runs on the pool, as before)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from taskwheel.errors import StoreUnavailable
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.postgres import PostgresStore

from .conftest import NS, QUEUE, new_job, terminate

REQUEST = ClaimRequest(worker_id="w1", namespaces=(NS,), queues=(QUEUE,), limit=1,
                       lease_ttl=30.0)


def _claims_connection_ready(store: PostgresStore) -> None:
    """Claim once (which makes the claim connection, in the background) and wait
    until it is connected."""
    store.claim(REQUEST)
    claims = store._db._claims
    assert claims is not None
    claims.wait(timeout=10)


def _on_claims_connection(store: PostgresStore, sql: str) -> list[dict[str, Any]]:
    with store._db.claiming("probe") as (conn, generic):
        assert generic, "the claim connection was busy or gone"
        return conn.execute(sql).fetchall()


def test_claims_run_on_a_connection_of_their_own_with_generic_plans(
    store: PostgresStore,
) -> None:
    store.enqueue([new_job(n) for n in range(30)])
    _claims_connection_ready(store)

    for _ in range(12):
        assert len(store.claim(REQUEST).jobs) == 1

    [prepared] = _on_claims_connection(
        store, "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
               " WHERE statement LIKE '%claimed_namespaces%'")
    assert prepared["generic_plans"] >= 12, prepared
    assert prepared["custom_plans"] == 0, prepared
    [mode] = _on_claims_connection(store, "SHOW plan_cache_mode")
    assert mode == {"plan_cache_mode": "force_generic_plan"}
    [name] = _on_claims_connection(store, "SHOW application_name")
    assert name == {"application_name": f"{store._db.application_name}:claims"}
    # The pool's connections, where every other statement runs, choose their plans.
    with store._db.connection("probe") as conn:
        assert conn.execute("SHOW plan_cache_mode").fetchone() == {"plan_cache_mode": "auto"}


def test_a_process_that_never_claims_keeps_no_claim_connection(store: PostgresStore) -> None:
    store.enqueue([new_job(n) for n in range(3)])
    store.stats(NS)

    assert store._db._claims is None


def test_a_claim_runs_on_the_pool_when_the_claim_connection_is_busy_or_closed(
    store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    store.enqueue([new_job(n) for n in range(10)])
    _claims_connection_ready(store)

    with store._db.claiming("held") as (held, generic):
        assert generic
        # Another thread's claim would find it taken: it claims on the pool at once.
        assert len(store.claim(REQUEST).jobs) == 1
        [backend] = held.execute("SELECT pg_backend_pid() AS pid").fetchall()

    terminate(admin, {int(backend["pid"])})  # as a restart of the server would
    assert len(store.claim(REQUEST).jobs) == 1  # on the pool; a new one is being made
    claims = store._db._claims
    assert claims is not None
    claims.wait(timeout=10)
    assert len(store.claim(REQUEST).jobs) == 1
    [again] = _on_claims_connection(store, "SELECT pg_backend_pid() AS pid")
    assert again["pid"] != backend["pid"]


def test_closing_the_store_closes_its_claim_connection(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.enqueue([new_job(0)])
    _claims_connection_ready(store)

    store.close()

    claims = store._db._claims
    assert claims is not None
    assert claims.closed


def test_a_closed_store_makes_no_claim_connection(url: str) -> None:
    store = PostgresStore(url)
    store.migrate()
    store.close()

    with pytest.raises(StoreUnavailable):
        store.claim(REQUEST)
    assert store._db._claims is None
