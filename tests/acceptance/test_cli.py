"""The ``taskwheel`` commands, in table and JSON formats, and how they refuse bad input.

The test environment sets no ``TASKWHEEL_APP``: only ``worker`` and ``enqueue`` are
given ``--app``, which shows the other commands do without one.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import APP, COMMAND, Project


def enqueue(project: Project, task: str, *options: str) -> dict[str, Any]:
    job: dict[str, Any] = project.run_json("enqueue", task, "--app", APP, *options)
    return job


def drain(project: Project, *options: str) -> None:
    """Run a worker until no job is left to run."""
    done = project.run("worker", "--app", APP, "--burst", *options)
    assert done.returncode == 0, done.stderr


def test_migrate_applies_pending_migrations_then_says_it_is_up_to_date(
    fresh_project: Project,
) -> None:
    project = fresh_project
    first = project.run("migrate")
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial.sql" in first.stdout
    assert "applied 0002_schedules.sql" in first.stdout
    assert "applied 0003_workflows.sql" in first.stdout
    assert "applied 0004_due_wakeups.sql" in first.stdout
    assert "applied 0005_schedule_owner.sql" in first.stdout
    assert "applied 0006_api_keys_and_quotas.sql" in first.stdout
    assert "applied 0007_webhooks.sql" in first.stdout
    assert "applied 0008_dispatch_control.sql" in first.stdout
    assert "applied 0009_observability.sql" in first.stdout
    assert "applied 0010_prunable.sql" in first.stdout
    assert "applied 0011_prune_by_status.sql" in first.stdout
    assert "applied 0012_key_gates.sql" in first.stdout
    assert "applied 0013_fair_shares.sql" in first.stdout
    assert "applied 0014_rate_limits.sql" in first.stdout
    assert "applied 0015_key_room.sql" in first.stdout
    assert "applied 0016_namespace_shares.sql" in first.stdout
    assert "applied 0017_caps_reserves_failure_rates.sql" in first.stdout
    assert "applied 0018_slots_released_by_report.sql" in first.stdout
    assert "applied 0019_ready_jobs_whatever_the_statistics.sql" in first.stdout
    assert "applied 0020_admission_by_statement.sql" in first.stdout
    assert "applied 0021_pauses_probed_by_key.sql" in first.stdout
    assert "applied 0022_jobs_checks_without_lists.sql" in first.stdout

    again = project.run("migrate")
    assert again.returncode == 0
    assert "already up to date" in again.stdout
    assert project.run_json("migrate") == {"applied": [], "schema_version": 22}


def test_enqueue_prints_the_job_it_created_in_table_and_json(project: Project) -> None:
    table = project.run("enqueue", "add", "--args", "[1, 2]", "--app", APP)
    assert table.returncode == 0, table.stderr
    assert "add" in table.stdout
    assert "queued" in table.stdout

    before = datetime.now(UTC)
    delayed = enqueue(project, "add", "--kwargs", '{"a": 1, "b": 2}', "--queue", "math",
                      "--priority", "7", "--delay", "1h", "--deadline", "2h", "--timeout", "30s",
                      "--max-attempts", "5")
    assert delayed["status"] == "scheduled"
    assert (delayed["queue"], delayed["priority"]) == ("math", 7)
    assert (delayed["timeout"], delayed["max_attempts"]) == (30.0, 5)
    assert delayed["kwargs"] == {"a": 1, "b": 2}
    run_at = datetime.fromisoformat(delayed["run_at"])
    assert timedelta(minutes=59) < run_at - before < timedelta(minutes=61)

    at = enqueue(project, "add", "--args", "[1, 2]", "--at", "2031-02-03T04:05:06+02:00",
                 "--deadline", "2031-02-04T00:00:00Z")
    assert at["run_at"] == "2031-02-03T02:05:06+00:00"
    assert at["deadline"] == "2031-02-04T00:00:00+00:00"

    keyed = [enqueue(project, "add", "--args", "[1, 2]", "--idempotency-key", "k1")
             for _ in range(2)]
    assert keyed[0]["id"] == keyed[1]["id"]

    stored = project.job(delayed["id"])
    assert (stored.status, stored.queue, stored.priority) == (JobStatus.SCHEDULED, "math", 7)
    assert project.count_jobs() == 4


def test_jobs_list_filters_and_show_gives_the_attempt_history(project: Project) -> None:
    good = enqueue(project, "add", "--args", "[2, 3]")["id"]
    bad = enqueue(project, "boom", "--queue", "risky")["id"]
    drain(project, "-q", "default", "-q", "risky")

    everything = project.run_json("jobs", "list")
    assert [job["id"] for job in everything] == [bad, good]  # newest first
    succeeded = project.run_json("jobs", "list", "--status", "succeeded")
    assert [(job["id"], job["result"]) for job in succeeded] == [(good, 5)]
    assert [j["id"] for j in project.run_json("jobs", "list", "--queue", "risky")] == [bad]
    assert [j["id"] for j in project.run_json("jobs", "list", "--task", "add")] == [good]
    assert len(project.run_json("jobs", "list", "--limit", "1")) == 1
    table = project.run("jobs", "list")
    assert table.returncode == 0
    assert "succeeded" in table.stdout
    assert "RuntimeError: boom" in table.stdout

    shown = project.run_json("jobs", "show", str(bad))
    assert shown["job"]["status"] == "dead"
    [attempt] = shown["attempts"]
    assert (attempt["attempt"], attempt["fence"], attempt["outcome"]) == (1, 1, "failed")
    assert attempt["error"] == "RuntimeError: boom"
    assert attempt["worker_id"]
    assert datetime.fromisoformat(attempt["started_at"]) <= datetime.fromisoformat(
        attempt["ended_at"]
    )
    table = project.run("jobs", "show", str(bad))
    assert table.returncode == 0
    assert "attempts" in table.stdout
    assert "RuntimeError: boom" in table.stdout


def test_cancel_stops_a_waiting_job_and_retry_runs_a_finished_one_again(
    project: Project,
) -> None:
    waiting = enqueue(project, "add", "--args", "[1, 1]", "--delay", "1h")["id"]
    cancelled = project.run_json("jobs", "cancel", str(waiting))
    assert cancelled["status"] == "cancelled"

    retried = project.run_json("jobs", "retry", str(waiting))
    assert (retried["status"], retried["attempt"]) == ("queued", 0)
    assert project.job(waiting).status is JobStatus.QUEUED
    drain(project)
    assert project.job(waiting).result == 2

    table = project.run("jobs", "retry", str(waiting))
    assert table.returncode == 0
    assert "queued" in table.stdout
    table = project.run("jobs", "cancel", str(waiting))
    assert table.returncode == 0
    assert "cancelled" in table.stdout


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["jobs", "show", "999"], "error: job 999 not found"),
        (["jobs", "cancel", "999"], "error: job 999 not found"),
        (["jobs", "retry", "999"], "error: job 999 not found"),
        (["dlq", "replay", "999"], "error: job 999 not found"),
    ],
)
def test_a_missing_job_is_one_error_line_and_exit_code_1(
    project: Project, command: list[str], message: str
) -> None:
    done = project.run(*command)
    assert done.returncode == 1
    assert done.stderr.strip() == message
    assert done.stdout == ""


def test_an_illegal_transition_is_refused_and_changes_nothing(project: Project) -> None:
    job_id = enqueue(project, "add", "--args", "[1, 1]")["id"]
    done = project.run("jobs", "retry", str(job_id))
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: job {job_id} is queued: only a finished job can "
                                   "be retried")
    assert project.job(job_id).status is JobStatus.QUEUED


def test_dlq_lists_replays_and_purges_dead_jobs(project: Project) -> None:
    dead = project.enqueue_many("boom", [[], [], []])
    survivor = enqueue(project, "add", "--args", "[1, 1]")["id"]
    drain(project)
    assert project.all_in(dead, JobStatus.DEAD)

    assert sorted(job["id"] for job in project.run_json("dlq", "list")) == dead
    table = project.run("dlq", "list")
    assert table.returncode == 0
    assert "RuntimeError: boom" in table.stdout

    assert project.run_json("dlq", "replay", str(dead[0])) == {"replayed": [dead[0]]}
    assert project.job(dead[0]).status is JobStatus.QUEUED
    assert sorted(job["id"] for job in project.run_json("dlq", "list")) == dead[1:]
    table = project.run("dlq", "replay", "--all")
    assert table.returncode == 0
    assert f"replayed 2 jobs: {dead[1]}, {dead[2]}" in table.stdout
    assert project.run_json("dlq", "list") == []
    neither = project.run("dlq", "replay")
    assert neither.returncode == 2
    assert "--all" in neither.stderr

    drain(project)
    assert project.all_in(dead, JobStatus.DEAD)
    assert [len(project.attempts(job_id)) for job_id in dead] == [2, 2, 2]

    refused = project.run("dlq", "purge")  # stdin is not a terminal: nobody to ask
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert project.all_in(dead, JobStatus.DEAD)

    assert project.run_json("dlq", "purge", "--yes") == {"purged": 3}
    assert [job.id for job in project.jobs()] == [survivor]
    assert all(project.attempts(job_id) == [] for job_id in dead)
    empty = project.run("dlq", "purge", "--yes")
    assert empty.returncode == 0
    assert "purged 0 dead jobs" in empty.stdout


@pytest.mark.parametrize(("answer", "left"), [("n", 1), ("y", 0)])
def test_dlq_purge_on_a_terminal_asks_first(project: Project, answer: str, left: int) -> None:
    project.enqueue_many("boom", [[]])
    drain(project)
    controller, terminal = pty.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())
        done = subprocess.run(
            [*COMMAND, "dlq", "purge"], cwd=project.root, env=project.env, stdin=terminal,
            capture_output=True, text=True, timeout=30, check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert "Delete 1 dead jobs" in done.stderr
    assert done.returncode == (0 if answer == "y" else 1)
    assert project.count(JobStatus.DEAD) == left
    assert project.count_jobs() == left


def test_stats_counts_jobs_per_queue_and_state_and_lists_workers(project: Project) -> None:
    project.enqueue_many("ok", [[]])
    enqueue(project, "ok", "--queue", "emails", "--priority", "5")
    enqueue(project, "ok", "--queue", "emails", "--priority", "5")
    enqueue(project, "ok", "--queue", "emails", "--priority", "1")
    enqueue(project, "ok", "--queue", "emails", "--delay", "1h")
    # A worker serving only "default": it drains it and leaves "emails" alone.
    # One process, whose death nobody reports but its silence.
    worker = project.start_worker("-q", "default", "--lease-ttl", "0.6s", "--heartbeat", "0.2s",
                                  "--no-supervisor")
    wait_for(lambda: project.count(JobStatus.SUCCEEDED) == 1,
             timeout=20, what="the default job to run")

    stats = project.run_json("stats")
    queues = {queue["queue"]: queue for queue in stats["queues"]}
    assert queues["default"]["counts"] == {"succeeded": 1}
    assert queues["emails"]["counts"] == {"queued": 3, "scheduled": 1}
    assert queues["emails"]["ready_by_priority"] == {"5": 2, "1": 1}
    assert queues["emails"]["oldest_ready_age"] >= 0
    assert queues["default"]["oldest_ready_age"] is None
    [seen] = stats["workers"]
    assert (seen["pid"], seen["alive"], seen["queues"]) == (worker.pid, True, ["default"])
    table = project.run("stats")
    assert table.returncode == 0
    for text in ("emails", "p5: 2", "p1: 1", "scheduled", "yes"):
        assert text in table.stdout

    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not project.run_json("stats")["workers"][0]["alive"], timeout=10,
             what="the killed worker to be reported dead")
    assert "no" in project.run("stats").stdout


def test_database_url_and_namespace_options_choose_where_commands_act(
    project: Project,
) -> None:
    elsewhere = ("--database-url", f"sqlite:///{project.root / 'other.db'}",
                 "--namespace", "tenant-a")
    assert project.run("migrate", *elsewhere[:2]).returncode == 0
    job_id = enqueue(project, "add", "--args", "[20, 22]", *elsewhere)["id"]
    assert project.run_json("jobs", "list") == []  # not in the default database
    assert [j["id"] for j in project.run_json("jobs", "list", *elsewhere)] == [job_id]
    assert project.run_json("jobs", "list", elsewhere[0], elsewhere[1]) == []  # other tenant

    drain(project, *elsewhere)
    assert project.run_json("jobs", "show", str(job_id), *elsewhere)["job"]["result"] == 42


def test_one_worker_serves_the_namespaces_it_is_given_or_every_namespace(
    project: Project,
) -> None:
    jobs = {ns: enqueue(project, "add", "--args", "[1, 2]", "--namespace", ns)["id"]
            for ns in ("tenant-a", "tenant-b", "tenant-c")}

    drain(project, "--namespace", "tenant-a", "--namespace", "tenant-b")
    states = {ns: project.run_json("jobs", "show", str(job_id), "--namespace", ns)["job"]
              for ns, job_id in jobs.items()}
    assert {ns: job["status"] for ns, job in states.items()} == {
        "tenant-a": "succeeded", "tenant-b": "succeeded", "tenant-c": "queued",
    }

    drain(project, "--all-namespaces")
    left = project.run_json("jobs", "show", str(jobs["tenant-c"]), "--namespace", "tenant-c")
    assert left["job"]["status"] == "succeeded"

    both = project.run("worker", "--app", APP, "--all-namespaces", "--namespace", "tenant-a")
    assert both.returncode == 2
    assert both.stderr.startswith("error: --all-namespaces: ")
    assert both.stderr.count("\n") == 1


BAD_ENQUEUES = [
    pytest.param(["nope"], "task", "unknown task 'nope'", id="unknown-task"),
    pytest.param(["add", "--args", "[1,"], "--args", "not valid JSON", id="args-not-json"),
    pytest.param(["add", "--args", '{"a": 1}'], "--args", "must be a JSON list",
                 id="args-not-list"),
    pytest.param(["add", "--kwargs", "[1]"], "--kwargs", "must be a JSON object",
                 id="kwargs-not-object"),
    pytest.param(["add", "--kwargs", "null"], "--kwargs", "must be a JSON object",
                 id="kwargs-null"),
    pytest.param(["add", "--args", "[1]"], "--args", "missing a required argument: 'b'",
                 id="args-do-not-fit"),
    pytest.param(["add", "--args", "[1, 2]", "--timeout", "-5s"], "--timeout", "negative",
                 id="negative-timeout"),
    pytest.param(["add", "--args", "[1, 2]", "--delay", "10 parsecs"], "--delay",
                 "malformed duration", id="malformed-duration"),
    pytest.param(["add", "--args", "[1, 2]", "--at", "2031-01-01T09:00:00"], "--at",
                 "no timezone", id="naive-datetime"),
    pytest.param(["add", "--args", "[1, 2]", "--priority", "high"], "--priority",
                 "not a valid integer", id="priority-not-integer"),
    pytest.param(["add", "--args", "[1, 2]", "--max-attempts", "0"], "--max-attempts",
                 "must be an integer from 1 to 1000000", id="no-attempts"),
    pytest.param(["add", "--args", "[1, 2]", "--colour", "red"], "--colour",
                 "--colour: no such option", id="unknown-option"),
]


@pytest.mark.parametrize(("arguments", "field", "reason"), BAD_ENQUEUES)
def test_bad_enqueue_input_names_the_field_and_writes_nothing(
    project: Project, arguments: list[str], field: str, reason: str
) -> None:
    enqueue(project, "add", "--args", "[1, 2]")
    before = project.count_jobs()

    done = project.run("enqueue", *arguments, "--app", APP)

    assert done.returncode == 2
    assert field in done.stderr
    assert reason in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1  # click's usage errors too
    assert done.stderr.startswith("error: ")
    assert project.count_jobs() == before


def test_worker_refuses_bad_settings_before_starting(project: Project) -> None:
    started = time.monotonic()
    done = project.run("worker", "--app", APP, "--lease-ttl", "1s", "--heartbeat", "2s")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --heartbeat: must be shorter than the lease")
    assert time.monotonic() - started < 10
    missing = project.run("worker", "--app", "no_such_module:app")
    assert missing.returncode == 2
    assert "--app: cannot import 'no_such_module'" in missing.stderr



def test_demo_drains_its_jobs_and_leaves_the_failing_one_in_the_dead_letter_queue(
    fresh_project: Project,
) -> None:
    project = fresh_project  # the demo migrates the database itself
    summary = project.run_json("demo")
    assert summary["jobs_by_status"] == {"succeeded": 34, "dead": 1}
    [dead] = summary["dead"]
    assert [a["outcome"] for a in dead["attempts"]] == ["failed"] * 3
    assert [j["task"] for j in project.run_json("dlq", "list")] == ["export_report"]


# -- nothing migrates implicitly -------------------------------------------------------------

NOT_MIGRATED = ("error: sqlite store: open failed: the database has no taskwheel schema yet: "
                "run `taskwheel migrate`\n")
WORKFLOW_FILE = '{"name": "sums", "steps": [{"task": "add", "args": [1, 2]}]}'
COMMANDS_THAT_NEED_A_SCHEMA = [
    ["enqueue", "add", "--args", "[1, 2]", "--app", APP],
    ["jobs", "list"], ["jobs", "show", "1"], ["jobs", "cancel", "1"], ["jobs", "retry", "1"],
    ["dlq", "list"], ["dlq", "replay", "--all"], ["dlq", "purge", "--yes"],
    ["stats"],
    ["schedules", "add", "s", "--task", "add", "--args", "[1, 2]", "--every", "1m",
     "--app", APP],
    ["schedules", "list"], ["schedules", "show", "s"], ["schedules", "pause", "s"],
    ["schedules", "resume", "s"], ["schedules", "remove", "s"], ["schedules", "trigger", "s"],
    ["schedules", "preview", "s"],
    ["workflows", "submit", "sums.json", "--app", APP],
    ["workflows", "list"], ["workflows", "show", "1"], ["workflows", "retry", "1"],
    ["workflows", "cancel", "1"],
    ["worker", "--app", APP, "--burst"],
    ["scheduler", "--app", APP],
]


def tables(database: Path) -> list[str]:
    """The tables of a SQLite file (none when there is no file), opened read-only."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute("SELECT name FROM sqlite_master")]


@pytest.mark.parametrize("arguments", COMMANDS_THAT_NEED_A_SCHEMA,
                         ids=lambda arguments: " ".join(arguments[:2]))
def test_a_command_on_an_unmigrated_database_is_one_line_and_creates_no_schema(
    fresh_project: Project, arguments: list[str]
) -> None:
    (fresh_project.root / "sums.json").write_text(WORKFLOW_FILE)

    done = fresh_project.run(*arguments)

    assert done.returncode == 1
    assert done.stderr == NOT_MIGRATED
    assert done.stdout == ""
    assert tables(fresh_project.database) == []


def test_migrate_dev_and_demo_are_the_commands_that_create_a_schema(
    fresh_project: Project,
) -> None:
    assert fresh_project.run("jobs", "list").returncode == 1
    assert fresh_project.run("migrate").returncode == 0
    assert "taskwheel_jobs" in tables(fresh_project.database)
    assert fresh_project.run_json("jobs", "list") == []


def test_a_mistyped_database_path_leaves_no_file_behind(fresh_project: Project) -> None:
    typo = fresh_project.root / "taskwhee.db"

    done = fresh_project.run("jobs", "list", "--database-url", f"sqlite:///{typo}")

    assert done.returncode == 1
    assert done.stderr == NOT_MIGRATED
    assert sorted(path.name for path in fresh_project.root.glob("taskwhee.db*")) == []
