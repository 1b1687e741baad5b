"""``taskwheel jobs tail`` prints each job once, as it finishes, until Ctrl-C; on both
stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import watch
from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus

from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def finish(app: taskwheel.App, job_id: int, status: JobStatus) -> None:
    claimed = app.store.claim_jobs("default", "w1", ["default"], 10, 30).jobs
    [job] = [job for job in claimed if job.id == job_id]
    outcome = AttemptOutcome.SUCCEEDED if status is JobStatus.SUCCEEDED else AttemptOutcome.FAILED
    app.store.finish_attempts([Outcome(job.id, job.fence, status, outcome,
                                       error=None if status is JobStatus.SUCCEEDED else "boom")])
    for other in claimed:  # give back the others, unfinished
        if other.id != job_id:
            app.store.release_jobs("w1", {other.id: other.fence})


def test_tail_prints_each_job_once_as_it_finishes_and_not_those_finished_before(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = app.task(lambda: None, name="send")
    before = send.enqueue(max_attempts=1).id
    finish(app, before, JobStatus.SUCCEEDED)
    waiting = send.enqueue(max_attempts=1).id  # unfinished when the tail starts
    events: list[int] = []

    def meanwhile(seconds: float) -> None:
        events.append(len(events))
        if len(events) == 1:
            finish(app, waiting, JobStatus.DEAD)
        elif len(events) == 2:
            created = send.enqueue(max_attempts=1).id  # created after the tail started
            finish(app, created, JobStatus.SUCCEEDED)
        elif len(events) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(watch, "pause", meanwhile)

    done = run("jobs", "tail", "--format", "json", url=url)

    assert done.exit_code == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(job["id"], job["status"]) for job in lines] == [
        (waiting, "dead"), (waiting + 1, "succeeded")]


def test_tail_as_text_is_one_line_per_job_with_its_outcome(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = app.task(lambda: None, name="send")
    job_id = send.enqueue(max_attempts=1).id
    calls: list[float] = []

    def meanwhile(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1:
            finish(app, job_id, JobStatus.DEAD)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(watch, "pause", meanwhile)

    done = run("jobs", "tail", "--interval", "0.2", url=url)

    assert done.exit_code == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert f"job {job_id}  send  default  dead  attempt 1/1" in line
    assert line.endswith("boom")
    assert calls == [0.2, 0.2]
