"""``taskwheel bench scale`` and ``taskwheel bench features``: small runs print every
figure they promise (never judged: only their shape), and bad options are one line
naming the option."""

from __future__ import annotations

import pytest

from .conftest import Project


def test_bench_scale_json_prints_the_loaded_drain_against_the_empty_one(
    project: Project,
) -> None:
    result = project.run_json(
        "bench", "scale", "--finished", "3000", "--scheduled", "300", "--drain-jobs", "200",
        "--schedules", "0", "--timers", "none", "--quiet", timeout=240,
    )
    [run] = result["history"]["runs"]
    # The fill wrote every row, and said how (set-based SQL, not the enqueue API).
    assert run["fill"]["rows"] == 3300
    assert "WITH RECURSIVE" in run["fill"]["method"]
    for drain in ("empty", "loaded", "analysed"):
        assert run[drain]["jobs"] == 200, drain
        assert run[drain]["per_s"] > 0, drain
    ratios = run["ratio_to_empty"]
    # The ratio is of the rates before they were rounded for printing: the printed ones
    # can round the other way at the third decimal.
    assert ratios["loaded_rate"] == pytest.approx(
        run["loaded"]["per_s"] / run["empty"]["per_s"], abs=1e-3)
    assert set(result["history"]["summary"]["-"]) == set(ratios)
    assert run["autovacuum"] == {}  # SQLite has none
    assert result["schedules"] == []
    assert result["wheel"] == []
    settings = result["settings"]
    assert settings["store"]["kind"] == "sqlite"
    assert settings["sizes"]["full_run"]["finished"] == 10_000_000
    assert {"history", "fill", "autovacuum", "schedules", "wheel"} <= set(settings["methods"])


def test_bench_scale_json_prints_schedulers_sharing_and_the_wheel_per_size(
    project: Project,
) -> None:
    result = project.run_json(
        "bench", "scale", "--finished", "0", "--scheduled", "0", "--schedules", "100",
        "--period", "10s", "--schedulers", "2", "--duration", "3s", "--timers", "1000,2000",
        "--quiet", timeout=300,
    )
    assert result["history"]["runs"] == []
    one, shared = result["schedules"]
    assert (one["schedulers"], shared["schedulers"]) == (1, 2)
    for run in (one, shared):
        assert run["duplicates"] == 0
        assert run["period_s"] == 10
        # 100 schedules every 10 s, spread over it: 30 fire in the 3 s window.
        assert run["fires"] == run["expected_fires"] == 30
        assert run["fire_lateness_ms"]["count"] == run["fires"]
        assert run["startup_s"] > 0
        assert len(run["per_scheduler"]) == run["schedulers"]
        # The window began a second or more after every scheduler was ready (moved
        # later when they were late), so no start-up is timed as fire lateness.
        window = run["window"]
        assert window["ready_margin_s"] + window["moved_s"] >= 1.0
        assert window["moved_s"] >= 0
    # Each of the sharing schedulers is read over its share.
    assert [u["schedules"] for u in shared["per_scheduler"]] == [50, 50]
    assert [cost["timers"] for cost in result["wheel"]] == [1000, 2000]
    for cost in result["wheel"]:
        assert cost["idle_us_per_tick"] > 0
        assert cost["firing_us_per_tick"] > 0
        assert cost["expired_per_stretch"] > 0


@pytest.mark.parametrize(("options", "named"), [
    (["--timers", "10k"], "--timers"),
    (["--timers", "0"], "--timers"),
    (["--schedulers", "17"], "--schedulers"),
    (["--drain-jobs", "0"], "--drain-jobs"),
    (["--duration", "soon"], "--duration"),
    (["--period", "0.5s"], "--period"),
    (["--period", "2d"], "--period"),
    (["--period", "90.5s"], "--period"),
])
def test_bench_scale_refuses_a_bad_option_in_one_line_naming_it(
    project: Project, options: list[str], named: str,
) -> None:
    done = project.run("bench", "scale", *options)
    assert done.returncode == 2
    assert named in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bench_features_json_prints_each_feature_against_the_plain_drain(
    project: Project,
) -> None:
    result = project.run_json(
        "bench", "features", "--jobs", "200", "--feature", "metrics", "--feature",
        "workflows", "--feature", "pauses", "--quiet", timeout=300,
    )
    features = result["features"]
    assert list(features) == ["plain", "metrics", "workflows", "pauses"]
    for name, figures in features.items():
        assert len(figures["drain_per_s"]) == 1, name
        assert figures["drain_per_s"][0] > 0, name
        assert figures["method"], name
    plain = features["plain"]["drain_per_s"][0]
    for name in ("metrics", "workflows", "pauses"):
        ratio = features[name]["ratio_to_plain"]["rate"]
        assert ratio["median"] == pytest.approx(  # of unrounded rates, as above
            features[name]["drain_per_s"][0] / plain, abs=1e-3), name
    assert "ratio_to_plain" not in features["plain"]
    [round_] = result["rounds"]
    assert round_["workflows"]["jobs"] == 200


def test_bench_features_refuses_an_unknown_feature_naming_the_option(project: Project) -> None:
    done = project.run("bench", "features", "--feature", "telepathy")
    assert done.returncode == 2
    assert "--feature" in done.stderr
