"""``taskwheel jobs tail`` prints each job once, as it finishes, until Ctrl-C; on both
stores. It looks again when the store's notifier announces jobs that ended, and polls
only as a fallback."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import tail
from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import engine

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

    def meanwhile(listener: Any, namespace: str, seconds: float) -> None:
        events.append(len(events))
        if len(events) == 1:
            finish(app, waiting, JobStatus.DEAD)
        elif len(events) == 2:
            created = send.enqueue(max_attempts=1).id  # created after the tail started
            finish(app, created, JobStatus.SUCCEEDED)
        elif len(events) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(tail, "wait_for_news", meanwhile)

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

    def meanwhile(listener: Any, namespace: str, seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1:
            finish(app, job_id, JobStatus.DEAD)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(tail, "wait_for_news", meanwhile)

    done = run("jobs", "tail", "--interval", "0.2", url=url)

    assert done.exit_code == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert f"job {job_id}  send  default  dead  attempt 1/1" in line
    assert line.endswith("boom")
    assert calls == [0.2, 0.2]


def test_tail_prints_a_job_when_its_end_is_announced_not_a_poll_interval_later(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback poll is a minute: only the store's notification of the finished
    job gets it printed in time. The job ends in another thread while the tail waits."""
    send = app.task(lambda: None, name="send")
    job_id = send.enqueue(max_attempts=1).id  # announced before the tail listens
    waits: list[float] = []
    really_wait = tail.wait_for_news

    def waiting(listener: Any, namespace: str, seconds: float) -> None:
        assert listener is not None, "the store's notifier gives the tail a listener"
        if waits:  # the job was printed before this second wait
            raise KeyboardInterrupt
        finisher = threading.Timer(0.2, finish, [app, job_id, JobStatus.SUCCEEDED])
        finisher.start()
        started = time.monotonic()
        really_wait(listener, namespace, seconds)
        waits.append(time.monotonic() - started)
        finisher.join()

    monkeypatch.setattr(tail, "wait_for_news", waiting)

    done = run("jobs", "tail", "--interval", "60", "--format", "json", url=url)

    assert done.exit_code == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["succeeded"]
    # Woken by the notification: a poll would have waited the whole minute.
    assert waits[0] < 30, waits


def test_tail_without_a_notification_looks_again_after_the_interval(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose end is not announced (as a deadline's passing is not) is printed at
    the next fallback look."""
    monkeypatch.setattr(engine, "announce_finished", lambda tx, moved: None)
    send = app.task(lambda: None, name="send")
    job_id = send.enqueue(max_attempts=1).id
    waits: list[float] = []
    really_wait = tail.wait_for_news

    def waiting(listener: Any, namespace: str, seconds: float) -> None:
        if waits:
            raise KeyboardInterrupt
        finish(app, job_id, JobStatus.SUCCEEDED)
        started = time.monotonic()
        really_wait(listener, namespace, seconds)
        waits.append(time.monotonic() - started)

    monkeypatch.setattr(tail, "wait_for_news", waiting)

    done = run("jobs", "tail", "--interval", "0.3", "--format", "json", url=url)

    assert done.exit_code == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [job_id]
    assert waits[0] >= 0.3


def test_new_work_alone_does_not_make_the_tail_look(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enqueues are announced too, but end nothing: the tail sleeps through them."""
    send = app.task(lambda: None, name="send")
    waits: list[float] = []
    really_wait = tail.wait_for_news

    def waiting(listener: Any, namespace: str, seconds: float) -> None:
        if waits:
            raise KeyboardInterrupt
        enqueuer = threading.Timer(0.05, send.enqueue)
        enqueuer.start()
        started = time.monotonic()
        really_wait(listener, namespace, seconds)
        waits.append(time.monotonic() - started)
        enqueuer.join()

    monkeypatch.setattr(tail, "wait_for_news", waiting)

    done = run("jobs", "tail", "--interval", "0.5", url=url)

    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    assert waits[0] >= 0.5, waits
    assert len(app.list_jobs()) == 1
