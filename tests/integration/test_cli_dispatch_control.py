"""``taskwheel queues`` and ``taskwheel tasks`` on both stores: a paused queue's jobs are
not claimed until ``resume``; a queue's maximum depth refuses an enqueue in one line and
writes nothing; bad input and unknown names are one line each, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS

from .command_line import APP
from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def test_a_paused_queue_waits_for_resume(app: taskwheel.App, url: str) -> None:
    send = app.task(lambda: None, name="send", queue="emails")
    job = send.enqueue().record
    assert run("queues", "pause", "emails", "--format", "json", url=url).json()["held"] == 1
    listed = run("queues", "list", "--format", "json", url=url).json()
    assert [(q["queue"], q["paused"], q["held"]) for q in listed] == [("emails", True, 1)]
    assert app.store.claim_jobs("default", "w1", ["emails"], 10, 30).jobs == []
    assert run("queues", "resume", "emails", "--format", "json", url=url).json()[
        "released"] == 1
    assert run("queues", "resume", "emails", url=url).refused() == (
        "queue 'emails' is not paused")
    assert [j.id for j in app.store.claim_jobs("default", "w1", ["emails"], 10, 30).jobs] == [
        job.id]


def test_a_paused_task_is_listed_and_resumed(app: taskwheel.App, url: str) -> None:
    assert run("tasks", "pause", "send", url=url).exit_code == 0
    assert [p["name"] for p in run("tasks", "paused", "--format", "json", url=url).json()] == [
        "send"]
    assert run("tasks", "resume", "send", url=url).exit_code == 0
    assert run("tasks", "paused", "--format", "json", url=url).json() == []


def test_an_enqueue_into_a_full_queue_is_refused_in_one_line(
    app: taskwheel.App, url: str
) -> None:
    app.task(lambda: None, name="send")
    # The app module is loaded once per test process: it keeps the namespace an earlier
    # command gave it unless told.
    ns = ("--namespace", "default")
    assert run("queues", "limit", "default", "--max-depth", "1", "--format", "json",
               url=url).json()["max_depth"] == 1
    assert run("enqueue", "send", "--app", APP, *ns, url=url).exit_code == 0
    refused = run("enqueue", "send", "--app", APP, *ns, url=url).refused()
    assert refused.startswith("queue 'default' of namespace 'default' is full")
    assert len(app.client.list_jobs()) == 1
    for bad in ("0", "-3", "ten", "1.5"):
        assert "max-depth" in run("queues", "limit", "default", "--max-depth", bad,
                                  url=url).refused()
    assert run("enqueue", "send", "--app", APP, "--wait", "1ms", *ns, url=url).refused(
    ).startswith(
        "queue 'default' of namespace 'default' is full")
    assert "--wait" in run("enqueue", "send", "--app", APP, "--wait", "2d", *ns,
                           url=url).refused()
    assert run("queues", "list", "--format", "json", url=url).json()[0]["max_depth"] == 1
    assert run("queues", "unlimit", "default", url=url).exit_code == 0
    assert run("queues", "unlimit", "default", url=url).refused() == (
        "queue 'default' has no maximum depth")


def test_a_pause_may_end_by_itself_and_a_bad_end_is_refused(
    app: taskwheel.App, url: str
) -> None:
    paused = run("queues", "pause", "emails", "--for", "10m", "--format", "json",
                 url=url).json()
    assert paused["until"] is not None
    assert run("queues", "list", "--format", "json", url=url).json()[0]["until"] == paused[
        "until"]
    assert run("tasks", "pause", "send", "--until", "2100-01-01T00:00:00+00:00",
               url=url).exit_code == 0
    for args in (["--for", "0s"], ["--for", "soon"], ["--until", "2000-01-01T00:00:00+00:00"],
                 ["--until", "2100-01-01T00:00:00"], ["--until", "tomorrow"],
                 ["--for", "1m", "--until", "2100-01-01T00:00:00+00:00"]):
        refused = run("tasks", "pause", "other", *args, url=url).refused()
        assert refused.startswith(("--for", "--until")), refused
    assert [p["name"] for p in run("tasks", "paused", "--format", "json", url=url).json()] == [
        "send"]
