"""``taskwheel bench``: a small run prints every figure the benchmark promises."""

from __future__ import annotations

from .conftest import Project


def test_bench_json_prints_every_figure_with_its_settings(project: Project) -> None:
    result = project.run_json(
        "bench", "--jobs", "300", "--single-jobs", "50", "--latency-jobs", "20",
        "--latency-rate", "200", "--quiet",
    )
    for rate in ("enqueue_single_per_s", "enqueue_batch_per_s", "drain_per_s"):
        assert result[rate] > 0, rate
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["count"] == 20
    assert result["details"]["drain"]["jobs"] == 300
    settings = result["settings"]
    assert settings["store"]["kind"] == "sqlite"
    assert settings["store"]["journal_mode"] == "wal"
    assert settings["workers"] == 2


def test_bench_refuses_a_store_it_cannot_measure_and_names_the_option(
    project: Project,
) -> None:
    done = project.run("bench", "--database-url", "sqlite:///:memory:", "--jobs", "10")
    assert done.returncode == 2
    assert "--database-url" in done.stderr
    assert "in-memory" in done.stderr
