"""``taskwheel enqueue --from-file``: one job per line of a JSON-lines file, every line
checked before anything is written; on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import batch
from taskwheel.jobs import JobFilter

from .command_line import APP
from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def all_jobs(app: taskwheel.App) -> list[taskwheel.Job]:
    return list(reversed(app.list_jobs(JobFilter(limit=10_000))))


def test_each_line_becomes_a_job_as_the_api_body_describes_it(
    app: taskwheel.App, url: str, tmp_path: Path
) -> None:
    lines = [
        {"task": "add", "args": [1, 2]},
        {"task": "send", "kwargs": {"to": "a@b.c"}, "queue": "emails", "priority": 7,
         "idempotency_key": "k1"},
        {"task": "send", "delay": "1h", "deadline": "2h", "max_attempts": 2, "timeout": "30s"},
        {"task": "send", "at": "2031-01-01T09:00:00+00:00"},
    ]
    file = tmp_path / "jobs.jsonl"
    file.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")

    done = run("enqueue", "--from-file", str(file), "--app", APP, "--queue", "bulk",
               "--format", "json", url=url)

    answer = done.json()
    jobs = all_jobs(app)
    assert answer == {"enqueued": 4, "existing": 0, "ids": [job.id for job in jobs]}
    assert [(job.task, job.args, job.kwargs, job.queue) for job in jobs] == [
        ("add", [1, 2], {}, "bulk"), ("send", [], {"to": "a@b.c"}, "emails"),
        ("send", [], {}, "bulk"), ("send", [], {}, "bulk")]
    assert (jobs[1].priority, jobs[1].idempotency_key) == (7, "k1")
    assert (jobs[2].status.value, jobs[2].max_attempts, jobs[2].timeout) == ("scheduled", 2, 30)
    assert jobs[2].deadline is not None
    assert jobs[3].run_at.year == 2031


BAD_LINES = [
    pytest.param('{"task": "send", "priority": "high"}', "jobs.jsonl:3: priority: ",
                 id="bad-option"),
    pytest.param('{"task": "nope"}', "jobs.jsonl:3: task: unknown task 'nope'",
                 id="unknown-task"),
    pytest.param('{"task": "add", "args": [1, 2, 3]}', "jobs.jsonl:3: args: ",
                 id="arguments-do-not-fit"),
    pytest.param('{"task": "send", "colour": "red"}', "jobs.jsonl:3: colour: unknown field",
                 id="unknown-field"),
    pytest.param('{"task": "send",', "jobs.jsonl:3: line: not valid JSON", id="not-json"),
    pytest.param('["send"]', "jobs.jsonl:3: line: must be a JSON object", id="not-an-object"),
    pytest.param('{"args": []}', "jobs.jsonl:3: task: required", id="no-task"),
    pytest.param('{"task": "send", "at": "tomorrow"}', "jobs.jsonl:3: at: not an ISO 8601",
                 id="bad-time"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_a_bad_line_is_named_with_its_number_and_nothing_is_written(
    app: taskwheel.App, url: str, tmp_path: Path, line: str, reason: str, *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "BATCH", 1)  # the good lines before it would be a batch each
    monkeypatch.chdir(tmp_path)
    Path("jobs.jsonl").write_text('{"task": "send"}\n{"task": "send"}\n' + line + "\n")

    refused = run("enqueue", "--from-file", "jobs.jsonl", "--app", APP, url=url).refused()

    assert refused.startswith(f"--from-file: {reason}"), refused
    assert all_jobs(app) == []


def test_requests_are_written_in_batches_and_idempotency_keys_hold_across_them(
    app: taskwheel.App, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "BATCH", 2)
    written: list[int] = []
    enqueue_many = taskwheel.App.enqueue_many

    def counted(self: taskwheel.App, requests: list[taskwheel.NewJob]) -> object:
        written.append(len(requests))
        return enqueue_many(self, requests)

    monkeypatch.setattr(taskwheel.App, "enqueue_many", counted)
    file = tmp_path / "jobs.jsonl"
    file.write_text("".join(json.dumps({"task": "send", "idempotency_key": f"k{n % 3}"}) + "\n"
                            for n in range(5)))

    answer = run("enqueue", "--from-file", str(file), "--app", APP, "--format", "json",
                 url=url).json()

    assert written == [2, 2, 1]
    assert (answer["enqueued"], answer["existing"]) == (3, 2)
    assert len(all_jobs(app)) == 3


def test_from_file_and_task_are_one_or_the_other(app: taskwheel.App, url: str,
                                                 tmp_path: Path) -> None:
    file = tmp_path / "jobs.jsonl"
    file.write_text('{"task": "send"}\n')

    both = run("enqueue", "send", "--from-file", str(file), "--app", APP, url=url).refused()
    neither = run("enqueue", "--app", APP, url=url).refused()
    with_args = run("enqueue", "--from-file", str(file), "--args", "[1]", "--app", APP,
                    url=url).refused()
    missing = run("enqueue", "--from-file", str(tmp_path / "nope.jsonl"), "--app", APP,
                  url=url).refused()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    nothing = run("enqueue", "--from-file", str(empty), "--app", APP, url=url).refused()

    assert both == neither == "TASK: give TASK or --from-file (one of them)"
    assert with_args.startswith("--from-file: each line of the file has its own args")
    assert missing.startswith("--from-file: cannot read ")
    assert nothing == f"--from-file: {empty}: no requests in it"
    assert all_jobs(app) == []
