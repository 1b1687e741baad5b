"""``taskwheel bench``: a small run prints every figure the benchmark promises."""

from __future__ import annotations

import pytest

from .conftest import Project


def test_bench_json_prints_every_figure_with_its_settings(project: Project) -> None:
    result = project.run_json(
        "bench", "--jobs", "300", "--single-jobs", "50", "--latency-jobs", "20",
        "--latency-rate", "200", "--delayed-jobs", "20", "--quiet", timeout=180,
    )
    for rate in ("enqueue_single_per_s", "enqueue_batch_per_s", "drain_per_s",
                 "ceiling_per_s"):
        assert result[rate] > 0, rate
    # Every figure also as a ratio to the raw ceiling measured in the same run, and what
    # each job cost in CPU.
    # (Of the rates before they were rounded for printing: within the third decimal.)
    assert result["ratio_to_ceiling"]["drain"] == pytest.approx(
        result["drain_per_s"] / result["ceiling_per_s"], abs=1e-3)
    assert result["details"]["ceiling"]["jobs"] == 300
    for phase in ("enqueue_single", "enqueue_batch", "drain", "ceiling"):
        cpu = result["cpu_us_per_job"][phase]
        assert cpu["total"] == pytest.approx(cpu["client"] + cpu["server"], abs=0.1), phase
        # The enqueues are this process's CPU (microseconds); a drain and the ceiling are
        # other processes', read from /proc in clock ticks (10 ms): a few hundred jobs
        # may cost less than one.
        assert cpu["total"] > 0 if phase.startswith("enqueue") else cpu["total"] >= 0, phase
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["count"] == 20
    late = result["delayed_start_lateness_ms"]
    assert late["count"] == 20
    assert 0 <= late["p50"] <= late["p99"] <= late["max"], "a delayed job started early"
    assert result["details"]["drain"]["jobs"] == 300
    settings = result["settings"]
    assert settings["store"]["kind"] == "sqlite"
    assert settings["store"]["journal_mode"] == "wal"
    assert settings["workers"] == 2


def test_bench_repeated_prints_each_figure_as_median_and_spread(project: Project) -> None:
    result = project.run_json(
        "bench", "--jobs", "200", "--single-jobs", "20", "--latency-jobs", "10",
        "--latency-rate", "200", "--delayed-jobs", "10", "--repeat", "3", "--quiet",
        timeout=300,
    )
    assert len(result["runs"]) == 3
    drains = sorted(run["drain_per_s"] for run in result["runs"])
    assert result["summary"]["drain_per_s"] == {
        "median": drains[1], "min": drains[0], "max": drains[2]}
    assert set(result["summary"]) >= {"ceiling_per_s", "drain_to_ceiling",
                                      "cpu_us_per_job_drain", "delayed_lateness_p99_ms"}


def test_bench_refuses_a_store_it_cannot_measure_and_names_the_option(
    project: Project,
) -> None:
    done = project.run("bench", "--database-url", "sqlite:///:memory:", "--jobs", "10")
    assert done.returncode == 2
    assert "--database-url" in done.stderr
    assert "in-memory" in done.stderr


def test_bench_schedules_json_prints_every_figure_and_no_duplicate_fire(
    project: Project,
) -> None:
    result = project.run_json(
        "bench", "schedules", "--schedules", "200", "--duration", "5s", "--burst", "100",
        "--workers", "1", "--quiet",
    )
    assert result["schedules"] == 200
    assert result["create"]["per_s"] > 0
    # 200 schedules a minute apart spread over 60 s: about 17 fire in 5 s, each once.
    assert 0 < result["fires"] == result["expected_fires"] < 200
    assert result["duplicates"] == 0
    for sample in ("fire_lateness_ms", "start_lateness_ms"):
        figures = result[sample]
        assert 0 <= figures["p50"] <= figures["p99"] <= figures["max"], sample
        assert figures["count"] == result["fires"], sample
    scheduler = result["scheduler"]
    assert 0 <= scheduler["cpu_share"] < 1
    assert scheduler["rss_bytes"] > 0
    assert scheduler["empty_rss_bytes"] > 0
    assert "memory_per_schedule_bytes" in scheduler
    burst = result["burst"]
    assert burst["fires"] == 100
    assert burst["duplicates"] == 0
    assert burst["all_created_s"] >= 0
    assert burst["fire_lateness_ms"]["count"] == 100
    settings = result["settings"]
    assert settings["store"]["kind"] == "sqlite"
    assert settings["scheduler"]["lease_ttl"] == 1.5
    assert settings["period_s"] == 60
    assert {"fire_lateness", "cpu_share", "memory_per_schedule"} <= set(settings["methods"])


def test_bench_failover_json_prints_each_run_and_loses_no_fire(project: Project) -> None:
    result = project.run_json("bench", "failover", "--runs", "1", "--quiet")
    [run] = result["runs"]
    # The lease lapses at most its TTL after the kill; the standby then fires at once.
    assert 0 < run["failover_s"] < 10
    assert run["lease_taken_s"] is None or 0 < run["lease_taken_s"] <= run["failover_s"] + 0.1
    assert result["failover_s"]["min"] == result["failover_s"]["max"] == run["failover_s"]
    assert result["default_misfire_grace_s"] == 3.0
    assert result["runs_over_default_grace"] == int(run["failover_s"] > 3.0)
    assert result["duplicates"] == 0
    assert result["lost_instants"] == 0
    assert result["settings"]["scheduler"]["lease_ttl"] == 1.5


def test_bench_schedules_refuses_a_malformed_duration_and_names_the_option(
    project: Project,
) -> None:
    done = project.run("bench", "schedules", "--schedules", "10", "--duration", "soon")
    assert done.returncode == 2
    assert "--duration" in done.stderr
    done = project.run("bench", "schedules", "--schedules", "10", "--period", "0s")
    assert done.returncode == 2
    assert "--period" in done.stderr


def test_bench_workflows_json_prints_both_shapes_with_their_overhead(project: Project) -> None:
    result = project.run_json("bench", "workflows", "--steps", "20", "--quiet")
    for shape in ("chain", "fan_out_fan_in"):
        figures = result[shape]
        assert figures["steps"] == 20, shape
        assert figures["total_s"] > 0, shape
        assert 0 <= figures["work_s"] < figures["total_s"], shape
        assert figures["overhead_per_step_ms"] > 0, shape
        handoff = figures["handoff_ms"]
        assert 0 <= handoff["p50"] <= handoff["p99"] <= handoff["max"], shape
    assert result["chain"]["handoff_ms"]["count"] == 19
    assert result["fan_out_fan_in"]["fan_in_ms"] >= 0
    settings = result["settings"]
    assert (settings["workers"], settings["steps"]) == (2, 20)
    assert settings["store"]["kind"] == "sqlite"
    assert {"total", "work", "overhead_per_step", "handoff"} <= set(settings["methods"])


def test_bench_workflows_refuses_too_few_steps_and_names_the_option(project: Project) -> None:
    done = project.run("bench", "workflows", "--steps", "2")
    assert done.returncode == 2
    assert "--steps" in done.stderr


def test_bench_dispatch_json_compares_the_fair_and_limited_drains_with_the_plain_one(
    project: Project,
) -> None:
    # Five drains with worker processes of their own, and the starvation case; the fair
    # drain first (the plain one by default), reported second whatever ran first.
    result = project.run_json("bench", "dispatch", "--jobs", "700", "--fair-first", "--quiet",
                              timeout=300)
    assert list(result["drain"]) == ["plain", "fair", "limited", "rate_limited", "reserved"]
    for name, drain in result["drain"].items():
        assert drain["jobs"] == 700, name
        assert drain["per_s"] > 0, name
    assert set(result["ratio_to_plain"]) == {"fair", "limited", "rate_limited", "reserved"}
    assert set(result["workers_cpu_ratio_to_plain"]) <= set(result["ratio_to_plain"])
    assert result["settings"]["rate_limited"]["keys"] == 100
    assert result["settings"]["reserved"] == {"share": 0.1, "below": 5, "priorities": [9, 0]}
    assert result["drain"]["fair"]["cpu_us_per_job"]["client"] >= 0
    assert (result["settings"]["limited_keys"], result["settings"]["key_limit"]) == (1000, 1)
    keys = result["fairness"]["keys"]
    assert [key["weight"] for key in keys] == [1.0, 2.0, 4.0]
    assert sum(key["claims"] for key in keys) == 350  # the first half of the claims
    assert 0 < result["fairness"]["jain_index"] <= 1
    starvation = result["starvation"]
    assert starvation["claimed_without_aging"] == 0
    assert starvation["trickle_wait_s"]["max"] <= starvation["bound_s"]
    assert "not_measured" not in result  # every drain the issue names is measured
    assert {"drain", "jain_index", "starvation"} <= set(result["settings"]["methods"])
    shares = result["namespace_shares"]
    assert shares["weighted_to_merged"]["median"] > 0
    assert all(abs(light * 3 - heavy) <= 4 for light, heavy in shares["weighted_shares"])
    assert result["settings"]["first_drain"] == "fair"


def test_bench_dispatch_refuses_too_few_jobs_and_names_the_option(project: Project) -> None:
    done = project.run("bench", "dispatch", "--jobs", "3")
    assert done.returncode == 2
    assert "--jobs" in done.stderr
