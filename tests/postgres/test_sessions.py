"""The store's sessions: no parallel plans unless the URL's own options ask for them
(its periodic reads, a /metrics scrape, run beside the jobs' work and cost about twice
the CPU spread over parallel workers), and always the store's schema first."""

from __future__ import annotations

from urllib.parse import quote

from taskwheel.stores.postgres import PostgresStore


def settings_of(store: PostgresStore) -> tuple[str, str]:
    store.migrate()  # the schema exists
    with store._db.connection("test") as conn:
        row = conn.execute("SELECT current_setting('max_parallel_workers_per_gather') AS p,"
                           " current_schema() AS s").fetchone()
    assert row is not None
    return str(row["p"]), str(row["s"])


def test_the_stores_sessions_plan_without_parallel_workers(url: str, schema: str) -> None:
    store = PostgresStore(url)
    try:
        assert settings_of(store) == ("0", schema)
    finally:
        store.close()


def test_the_urls_own_options_decide_parallel_plans(url: str, schema: str) -> None:
    # Two settings, so a space in the value: it reaches the server as one.
    given = quote("-c max_parallel_workers_per_gather=2 -c search_path=public")
    store = PostgresStore(f"{url}&options={given}")
    try:
        # The URL's setting wins over the default; its search_path does not.
        assert settings_of(store) == ("2", schema)
    finally:
        store.close()
