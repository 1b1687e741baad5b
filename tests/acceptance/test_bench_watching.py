"""``taskwheel bench watching``: a small run on each store prints the scrape's figures
and a plain and a watched drain per run, with their ratio and the settings."""

from __future__ import annotations

import pytest

from pg_server import postgres_url

from .conftest import Project


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_bench_watching_json_prints_the_scrape_and_both_drains(
    project: Project, store: str
) -> None:
    where = ["--store", "postgres", "--database-url", postgres_url()] if store == "postgres" \
        else []
    result = project.run_json(
        "bench", *where, "watching", "--queues", "20", "--priorities", "3", "--scrapes", "2",
        "--jobs", "200", "--runs", "1", "--tabs", "2", "--scrape-every", "0.05", "--quiet",
        timeout=300,
    )
    scrape = result["scrape"]
    assert (scrape["bands"], scrape["jobs"], scrape["scrapes"]) == (60, 60 + 2 * 20, 2)
    assert scrape["answer_bytes"] > 0
    for figure in ("render_ms", "render_cpu_ms", "http_ms"):
        found = scrape[figure]
        assert 0 <= found["min"] <= found["median"] <= found["max"], figure
    drain = result["drain"]
    assert [run["mode"] for run in drain["runs"]] == ["plain", "watched"]
    plain, watched = drain["runs"]
    assert (plain["scrapes"], plain["tab_events"]) == (0, 0)
    # Every tab got its first versions of its three topics, at least.
    assert watched["tab_events"] >= 2 * 3
    assert drain["plain_per_s"]["median"] > 0
    assert drain["watched_over_plain"] == pytest.approx(
        watched["drain_per_s"] / plain["drain_per_s"], rel=1e-3)
    assert drain["pair_ratios"]["each"] == [drain["watched_over_plain"]]
    settings = result["settings"]
    assert settings["store"]["kind"] == store
    assert settings["load"]["tabs"] == 2


def test_bench_watching_names_a_bad_option(project: Project) -> None:
    done = project.run("bench", "watching", "--runs", "0")
    assert done.returncode == 2
    assert "--runs" in done.stderr
