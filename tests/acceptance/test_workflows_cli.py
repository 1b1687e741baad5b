"""``taskwheel workflows``: submit JSON and YAML files, list, show, retry and cancel runs,
refuse bad files without writing anything; and a run that survives a worker killed with
SIGKILL in the middle of a step."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from taskwheel.jobs import AttemptOutcome
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import APP, Project, worker_pid

DIAMOND: dict[str, Any] = {
    "name": "sums",
    "steps": [
        {"task": "add", "name": "one", "args": [1, 2]},
        {"task": "add", "name": "two", "args": [3, 4]},
        {"task": "sum_upstream", "name": "total", "after": ["one", "two"]},
    ],
}


def write(project: Project, name: str, content: Any) -> str:
    path = project.root / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def submit(project: Project, content: Any, name: str = "wf.json", *options: str) -> Any:
    return project.run_json("workflows", "submit", write(project, name, content), "--app", APP,
                            *options)


def drain(project: Project) -> None:
    done = project.run("worker", "--app", APP, "--burst", "--log-level", "warning")
    assert done.returncode == 0, done.stderr


def test_a_submitted_file_runs_and_shows_every_step_and_the_dag(project: Project) -> None:
    run = submit(project, DIAMOND)
    assert (run["name"], run["status"]) == ("sums", "running")
    assert {s["name"]: s["job"]["status"] for s in run["steps"]} == {
        "one": "queued", "two": "queued", "total": "waiting"
    }

    drain(project)

    shown = project.run_json("workflows", "show", str(run["id"]))
    assert shown["status"] == "succeeded"
    assert {s["name"]: (s["job"]["status"], s["job"]["result"], s["job"]["attempt"])
            for s in shown["steps"]} == {
        "one": ("succeeded", 3, 1), "two": ("succeeded", 7, 1), "total": ("succeeded", 10, 1)
    }
    assert shown["steps"][2]["after"] == ["one", "two"]
    table = project.run("workflows", "show", str(run["id"]))
    assert table.returncode == 0, table.stderr
    for line in ("one (succeeded)", "└─ total (succeeded)", "two (succeeded)", "└─ total ↑"):
        assert line in table.stdout, table.stdout
    listed = project.run_json("workflows", "list")
    assert [(r["id"], r["status"], r["step_counts"]) for r in listed] == [
        (run["id"], "succeeded", {"succeeded": 3})
    ]
    assert "succeeded" in project.run("workflows", "list").stdout


def test_a_yaml_file_is_submitted_like_a_json_one(project: Project) -> None:
    text = (
        "name: sums\n"
        "on_failure: fail_fast\n"
        "steps:\n"
        "  - {task: add, name: one, args: [1, 2]}\n"
        "  - task: sum_upstream\n"
        "    name: total\n"
        "    after: one\n"
    )
    run = submit(project, text, "wf.yaml")
    assert (run["on_failure"], [s["name"] for s in run["steps"]]) == ("fail_fast",
                                                                     ["one", "total"])
    drain(project)
    assert project.run_json("workflows", "show", str(run["id"]))["status"] == "succeeded"


@pytest.mark.parametrize(("content", "message"), [
    ({"name": "loop", "steps": [{"task": "ok", "name": "a", "after": "c"},
                                {"task": "ok", "name": "b", "after": "a"},
                                {"task": "ok", "name": "c", "after": "b"}]},
     "after: the steps form a cycle: a -> b -> c -> a"),
    ({"name": "typo", "steps": [{"task": "okk"}]}, "steps.okk.task: unknown task 'okk'"),
    ({"name": "args", "steps": [{"task": "add", "args": [1]}]},
     "steps.add.args: task 'add': missing a required argument: 'b'"),
    ({"name": "dup", "steps": [{"task": "ok"}, {"task": "ok"}]},
     "steps[1].name: duplicate step 'ok'"),
    ("{", "file: not valid JSON"),
])
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_stored(
    project: Project, content: Any, message: str
) -> None:
    path = write(project, "bad.json", content)
    done = project.run("workflows", "submit", path, "--app", APP)

    assert done.returncode == 2
    assert done.stderr.startswith(f"error: FILE: {path}: {message}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert project.run_json("workflows", "list") == []
    assert project.count_jobs() == 0


def test_a_failed_step_is_retried_from_the_command_line(project: Project) -> None:
    run = submit(project, {"name": "fails", "steps": [
        {"task": "ok", "name": "first"},
        {"task": "boom", "after": "first"},
        {"task": "ok", "name": "last", "after": "boom"},
    ]})
    drain(project)
    failed = project.run_json("workflows", "show", str(run["id"]))
    assert failed["status"] == "failed"
    assert [s["job"]["status"] for s in failed["steps"]] == ["succeeded", "dead",
                                                             "upstream_failed"]

    retried = project.run_json("workflows", "retry", str(run["id"]), "--step", "boom")

    assert retried["status"] == "running"
    assert [s["job"]["status"] for s in retried["steps"]] == ["succeeded", "queued", "waiting"]
    refused = project.run("workflows", "retry", str(run["id"]), "--step", "first")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: --step: step 'first' succeeded; only steps that did not succeed are retried"
    )


def test_a_run_is_cancelled_from_the_command_line(project: Project) -> None:
    run = submit(project, DIAMOND)

    cancelled = project.run_json("workflows", "cancel", str(run["id"]))

    assert cancelled["status"] == "cancelled"
    assert {s["job"]["status"] for s in cancelled["steps"]} == {"cancelled"}
    listed = project.run_json("workflows", "list", "--status", "cancelled")
    assert [r["id"] for r in listed] == [run["id"]]
    missing = project.run("workflows", "show", "999")
    assert (missing.returncode, missing.stderr.strip()) == (
        1, "error: workflow run 999 not found"
    )


def test_a_run_completes_when_the_worker_running_a_step_is_killed(
    any_project: Project,
) -> None:
    project = any_project
    lease = ("--lease-ttl", "1s", "--heartbeat", "0.3s")
    first = project.start_worker("-c", "4", *lease)
    second = project.start_worker("-c", "4", *lease)
    wait_for(lambda: len(project.store.stats("default").workers) == 2,
             timeout=20, what="workers registered")
    run = submit(project, {"name": "survives", "steps": [
        {"task": "add", "name": "before", "args": [1, 1]},
        # Blocks for a minute on its first claim only: the attempt that is killed.
        {"task": "long_only_the_first_time", "name": "middle", "args": [60],
         "after": "before"},
        {"task": "sum_upstream", "name": "after", "after": ["before"]},
        {"task": "ok", "name": "last", "after": ["middle", "after"]},
    ]})
    middle_id = run["steps"][1]["job"]["id"]

    holder = wait_for(lambda: project.job(middle_id).worker_id
                      if project.job(middle_id).status is JobStatus.RUNNING else None,
                      timeout=20, what="the middle step to start")
    victim, survivor = ((first, second) if worker_pid(holder) == first.pid
                        else (second, first))
    victim.signal_group(signal.SIGKILL)  # the node dies: supervisor and worker process
    assert victim.wait() == -signal.SIGKILL

    wait_for(lambda: project.run_json("workflows", "show", str(run["id"]))["status"]
             == "succeeded", timeout=30, what="the run to succeed")
    history = project.attempts(middle_id)
    assert [a.outcome for a in history] == [AttemptOutcome.LEASE_EXPIRED,
                                            AttemptOutcome.SUCCEEDED]
    assert worker_pid(history[0].worker_id) == victim.pid
    assert worker_pid(history[1].worker_id) == survivor.pid
    assert survivor.alive()
    survivor.signal(signal.SIGTERM)
    assert survivor.wait() == 0
