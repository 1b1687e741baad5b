"""``taskwheel schedules``: every subcommand, in JSON and tables, and bad input."""

from __future__ import annotations

import signal
from datetime import datetime

import pytest

from waiting import wait_for

from .conftest import APP, Project


def add(project: Project, name: str, *options: str) -> dict[str, object]:
    created: dict[str, object] = project.run_json(
        "schedules", "add", name, "--app", APP, "--task", "add", "--args", "[1, 2]", *options
    )
    return created


def test_add_list_show_pause_resume_trigger_remove(project: Project) -> None:
    created = add(project, "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin",
                  "--overlap", "queue_one", "--misfire", "skip", "--dst-fold", "both")
    assert created["name"] == "nightly"
    assert created["trigger"] == {"kind": "cron", "expression": "0 3 * * *",
                                  "timezone": "Europe/Berlin", "dst_gap": "run_after_gap",
                                  "dst_fold": "both"}
    assert created["overlap"] == "queue_one"
    assert created["misfire"] == "skip"
    next_fire = datetime.fromisoformat(str(created["next_fire_at"]))
    assert next_fire.minute == 0
    assert next_fire.hour in (1, 2)

    [listed] = project.run_json("schedules", "list")
    assert listed["name"] == "nightly"
    assert listed["paused"] is False

    assert project.run_json("schedules", "pause", "nightly")["paused"] is True
    assert project.run_json("schedules", "resume", "nightly")["paused"] is False

    fired = project.run_json("schedules", "trigger", "nightly")
    assert fired["result"] == "created"
    shown = project.run_json("schedules", "show", "nightly")
    assert [job["id"] for job in shown["jobs"]] == [fired["job_id"]]
    assert shown["jobs"][0]["fire_at"] == fired["fire_at"]  # one instant, written one way
    assert shown["next_fire_at"] == created["next_fire_at"]  # a trigger does not move it

    table = project.run("schedules", "list")
    assert table.returncode == 0
    assert "nightly" in table.stdout
    assert "Europe/Berlin" in table.stdout

    assert project.run_json("schedules", "remove", "nightly") == {"removed": "nightly"}
    assert project.run_json("schedules", "list") == []
    gone = project.run("schedules", "show", "nightly")
    assert gone.returncode == 1
    assert "not found" in gone.stderr


def test_adding_again_updates_the_schedule_of_that_name(project: Project) -> None:
    first = add(project, "s", "--every", "15m")
    second = add(project, "s", "--every", "30m")
    assert second["id"] == first["id"]
    assert second["trigger"]["every"] == 1800.0  # type: ignore[index]
    assert len(project.run_json("schedules", "list")) == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--cron", "0 25 * * *"], "--cron"),
        (["--cron", "0 9 * * *", "--timezone", "Nowhere/Special"], "--timezone"),
        (["--every", "0s"], "--every"),
        (["--every", "soon"], "--every"),
        (["--every", "1m", "--start", "2026-02-01T00:00:00Z", "--end", "2026-01-01T00:00:00Z"],
         "--end"),
        (["--every", "1m", "--cron", "* * * * *"], "cron, every and at"),
        (["--every", "1m", "--misfire", "later"], "--misfire"),
    ],
)
def test_bad_input_is_refused_naming_the_option_and_writes_nothing(
    project: Project, options: list[str], named: str,
) -> None:
    done = project.run("schedules", "add", "bad", "--app", APP, "--task", "add",
                       "--args", "[1, 2]", *options)
    assert done.returncode == 2, done.stdout
    assert named in done.stderr
    assert project.run_json("schedules", "list") == []


def test_an_unknown_task_is_refused(project: Project) -> None:
    done = project.run("schedules", "add", "bad", "--app", APP, "--task", "nope",
                       "--every", "1m")
    assert done.returncode == 2
    assert "nope" in done.stderr
    assert project.run_json("schedules", "list") == []


def test_preview_marks_the_fire_times_a_dst_change_moved_or_doubled(project: Project) -> None:
    spring = project.run_json(
        "schedules", "preview", "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
        "--from", "2026-03-28T12:00:00Z", "--count", "2",
    )
    assert [f["utc"] for f in spring] == ["2026-03-29T01:00:00+00:00",
                                           "2026-03-30T00:30:00+00:00"]
    assert [f["dst"] for f in spring] == ["moved", "none"]

    autumn = project.run_json(
        "schedules", "preview", "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
        "--dst-fold", "both", "--from", "2026-10-24T12:00:00Z", "--count", "3",
    )
    assert [f["utc"] for f in autumn] == ["2026-10-25T00:30:00+00:00",
                                           "2026-10-25T01:30:00+00:00",
                                           "2026-10-26T01:30:00+00:00"]
    assert [f["dst"] for f in autumn] == ["first_of_two", "second_of_two", "none"]

    table = project.run("schedules", "preview", "--cron", "30 2 * * *", "--timezone",
                        "Europe/Berlin", "--from", "2026-03-28T12:00:00Z", "--count", "1")
    assert table.returncode == 0
    assert "does not exist" in table.stdout


def test_preview_says_six_cron_fields_start_with_seconds(project: Project) -> None:
    """A six-field cron is read seconds-first: the preview says so, and fires by it."""
    six = project.run("schedules", "preview", "--cron", "*/10 * * * * *",
                      "--from", "2026-01-01T00:00:00Z", "--count", "2")
    assert six.returncode == 0
    heading = " ".join(six.stdout.split())
    assert "(second minute hour day-of-month month day-of-week)" in heading
    assert "2026-01-01 00:00:10" in six.stdout
    assert "2026-01-01 00:00:20" in six.stdout
    five = project.run("schedules", "preview", "--cron", "*/10 * * * *",
                       "--from", "2026-01-01T00:00:00Z", "--count", "1")
    assert "(minute hour day-of-month month day-of-week)" in " ".join(five.stdout.split())


@pytest.mark.parametrize(
    ("zone", "expression", "after", "local", "nominal"),
    [
        ("Europe/Berlin", "30 2 * * *", "2026-03-28T12:00:00Z", "2026-03-29T03:00:00+02:00",
         "2026-03-29T02:30:00"),
        ("Australia/Lord_Howe", "15 2 * * *", "2026-10-03T00:00:00Z",
         "2026-10-04T02:30:00+11:00", "2026-10-04T02:15:00"),
        ("Pacific/Chatham", "0 3 * * *", "2026-09-26T00:00:00Z", "2026-09-27T03:45:00+13:45",
         "2026-09-27T03:00:00"),
    ],
)
def test_preview_local_time_is_the_instant_that_fires(
    project: Project, *, zone: str, expression: str, after: str, local: str, nominal: str
) -> None:
    fires = project.run_json("schedules", "preview", "--cron", expression, "--timezone", zone,
                             "--from", after, "--count", "2")
    for fire in fires:
        assert datetime.fromisoformat(fire["local"]) == datetime.fromisoformat(fire["utc"])
    moved, ordinary = fires
    assert (moved["dst"], moved["local"], moved["nominal"]) == ("moved", local, nominal)
    assert ordinary["nominal"] == ordinary["local"][:19]

    table = project.run("schedules", "preview", "--cron", expression, "--timezone", zone,
                        "--from", after, "--count", "1")
    assert table.returncode == 0
    [row] = [line for line in table.stdout.splitlines() if local[:10] in line]
    assert local[11:19] in row  # the wall time that fired ...
    assert nominal[11:16] in row  # ... and, apart, the one that did not exist


def test_preview_of_a_stored_schedule(project: Project) -> None:
    add(project, "q", "--every", "15m")
    fires = project.run_json("schedules", "preview", "q", "--from", "2026-01-01T00:07:00Z",
                             "--count", "2")
    assert [f["utc"] for f in fires] == ["2026-01-01T00:15:00+00:00",
                                         "2026-01-01T00:30:00+00:00"]


def test_preview_of_a_stored_schedule_keeps_to_its_start_and_end(any_project: Project) -> None:
    project = any_project
    add(project, "january", "--cron", "0 9 * * *", "--start", "2027-01-01T00:00:00Z",
        "--end", "2027-01-03T23:59:00Z")
    fires = project.run_json("schedules", "preview", "january", "--count", "10")
    assert [f["utc"] for f in fires] == [f"2027-01-0{day}T09:00:00+00:00" for day in (1, 2, 3)]


def test_preview_of_a_paused_schedule_says_it_fires_nothing(any_project: Project) -> None:
    project = any_project
    add(project, "held", "--every", "15m")
    project.run_json("schedules", "pause", "held")
    assert project.run_json("schedules", "preview", "held") == []
    table = project.run("schedules", "preview", "held")
    assert table.returncode == 0
    assert "paused" in table.stdout
    assert "UTC" not in table.stdout  # no table of fire times


def test_the_scheduler_reports_a_schedule_removed_from_the_code_and_can_pause_it(
    any_project: Project,
) -> None:
    """A deploy drops the declaration of "every-second": the next scheduler says so in
    one line (and keeps it firing); with --prune-undeclared it pauses it."""
    project = any_project
    first = project.start_scheduler()
    wait_for(lambda: "started" in first.log_text(), timeout=20, what="the scheduler to start")
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    [declared] = project.run_json("schedules", "list")
    assert (declared["name"], declared["declared_by"]) == ("every-second", "acceptance_app")

    app_file = project.root / "acceptance_app.py"
    lines = app_file.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith('app.schedule("every-second"')]
    assert len(kept) == len(lines) - 1
    app_file.write_text("".join(kept))

    reporting = project.start_scheduler()
    wait_for(lambda: "started" in reporting.log_text(), timeout=20,
             what="the scheduler to start")
    reporting.signal(signal.SIGTERM)
    assert reporting.wait() == 0
    reported = [line for line in reporting.log_text().splitlines() if "no longer" in line]
    assert len(reported) == 1, reporting.log_text()
    assert "every-second" in reported[0]
    assert project.run_json("schedules", "show", "every-second")["paused"] is False

    pruning = project.start_scheduler("--prune-undeclared")
    wait_for(lambda: "started" in pruning.log_text(), timeout=20,
             what="the scheduler to start")
    pruning.signal(signal.SIGTERM)
    assert pruning.wait() == 0
    assert project.run_json("schedules", "show", "every-second")["paused"] is True
    assert "paused" in "".join(
        line for line in pruning.log_text().splitlines() if "no longer" in line
    )
