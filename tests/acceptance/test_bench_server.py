"""``taskwheel bench server``: a small run on each store prints every figure with the
server's and the store's settings."""

from __future__ import annotations

import pytest

from pg_server import postgres_url

from .conftest import Project


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_bench_server_json_prints_every_figure_with_its_settings(
    project: Project, store: str
) -> None:
    where = ["--store", "postgres", "--database-url", postgres_url()] if store == "postgres" \
        else []
    result = project.run_json(
        "bench", *where, "server", "--clients", "2", "--single-jobs", "40", "--batch-jobs",
        "200", "--batch-size", "50", "--latency-jobs", "20", "--latency-rate", "200",
        "--drain-jobs", "100", "--http-workers", "2", "--claim-limit", "10", "--quiet",
    )
    assert result["enqueue_single"]["jobs"] == result["enqueue_single"]["requests"] == 40
    assert (result["enqueue_batch"]["jobs"], result["enqueue_batch"]["requests"]) == (200, 4)
    assert result["drain"]["jobs"] == 100
    for rate in ("enqueue_single", "enqueue_batch", "drain"):
        assert result[rate]["jobs_per_s"] > 0, rate
    latency = result["enqueue_to_claim_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["count"] == 20
    settings = result["settings"]
    assert settings["store"]["kind"] == store
    assert settings["server"]["max_body_bytes"] > 0
    assert settings["load"]["http_workers"] == 2
