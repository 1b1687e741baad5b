"""``taskwheel schedules``: every subcommand, in JSON and tables, and bad input."""

from __future__ import annotations

from datetime import datetime

import pytest

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


def test_preview_of_a_stored_schedule(project: Project) -> None:
    add(project, "q", "--every", "15m")
    fires = project.run_json("schedules", "preview", "q", "--from", "2026-01-01T00:07:00Z",
                             "--count", "2")
    assert [f["utc"] for f in fires] == ["2026-01-01T00:15:00+00:00",
                                         "2026-01-01T00:30:00+00:00"]
