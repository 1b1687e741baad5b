"""What the command line shows people, on both stores: the traceback the table used to
hide, a hint when a listing stops at its limit, intervals as durations, refusals that
say why (and exit alike for jobs and workflow runs), JSON logs that keep data as data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli.output import JsonLogFormatter
from taskwheel.jobs import AttemptOutcome, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.workflows import Workflow

from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def fail_once(app: taskwheel.App, job_id: int, traceback: str) -> None:
    [claimed] = app.store.claim_jobs("default", "w1", ["default"], 1, 30).jobs
    assert claimed.id == job_id
    app.store.finish_attempts([Outcome(claimed.id, claimed.fence, JobStatus.DEAD,
                                       AttemptOutcome.FAILED, error="boom",
                                       traceback=traceback)])


def test_jobs_show_prints_the_latest_traceback_below_its_tables(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda: None, name="send")
    job = send.enqueue(max_attempts=1).record
    fail_once(app, job.id, 'Traceback (most recent call last):\n  File "t.py", line 1\n'
              "ValueError: boom [not markup]\n")

    shown = run("jobs", "show", str(job.id), url=url)

    assert shown.exit_code == 0, shown.stderr
    assert "traceback of attempt 1:" in shown.stdout
    assert 'File "t.py", line 1' in shown.stdout
    assert "ValueError: boom [not markup]" in shown.stdout


def test_a_listing_cut_at_its_limit_says_there_are_more(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda: None, name="send")
    for _ in range(3):
        send.enqueue()

    cut = run("jobs", "list", "--limit", "2", url=url)
    whole = run("jobs", "list", "--limit", "3", url=url)
    as_json = run("jobs", "list", "--limit", "2", "--format", "json", url=url)

    assert "showing the newest 2 jobs; there are more (raise --limit" in cut.stdout
    assert "there are more" not in whole.stdout
    assert len(as_json.json()) == 2  # one JSON document, no hint in it


def test_retrying_a_job_that_has_not_finished_says_why(app: taskwheel.App, url: str) -> None:
    job = app.task(lambda: None, name="send").enqueue().record

    line = run("jobs", "retry", str(job.id), url=url).refused()

    assert line == f"job {job.id} is queued: only a finished job can be retried"


def test_cancelling_a_finished_workflow_run_fails_as_cancelling_a_finished_job_does(
    app: taskwheel.App, url: str
) -> None:
    app.task(lambda: None, name="send")
    workflow = Workflow("wf")
    workflow.step("send")
    run_id = app.submit(workflow).id
    [step] = app.store.claim_jobs("default", "w1", ["default"], 1, 30).jobs
    app.store.finish_attempts([Outcome(step.id, step.fence, JobStatus.SUCCEEDED,
                                       AttemptOutcome.SUCCEEDED, result_json="null")])

    run_cancel = run("workflows", "cancel", str(run_id), url=url)
    job_cancel = run("jobs", "cancel", str(step.id), url=url)

    assert run_cancel.refused() == (f"workflow run {run_id} already ended succeeded: "
                                    "nothing to cancel")
    assert job_cancel.refused() == f"job {step.id} cannot go from succeeded to cancelled"
    assert run_cancel.exit_code == job_cancel.exit_code == 1


def test_an_interval_is_shown_as_a_duration(app: taskwheel.App, url: str) -> None:
    app.add_schedule("quarterly", app.task(lambda: None, name="send"), every="15m")

    listed = run("schedules", "list", url=url)

    assert "every 15m" in listed.stdout
    assert "900.0s" not in listed.stdout


def test_a_mapping_logged_as_a_value_is_data_in_json_logs() -> None:
    record = logging.LogRecord("taskwheel.worker", logging.INFO, __file__, 1,
                               "worker %s stopped: %s", ("w1", {"succeeded": 3}), None)

    entry = json.loads(JsonLogFormatter().format(record))

    assert entry["data"] == {"succeeded": 3}


def test_jobs_explain_prints_each_reason_and_its_code(app: taskwheel.App, url: str) -> None:
    send = app.task(lambda: None, name="send")
    job = send.enqueue(queue="nobody-serves-this").record

    table = run("jobs", "explain", str(job.id), url=url)
    as_json = run("jobs", "explain", str(job.id), "--format", "json", url=url)

    assert table.exit_code == 0, table.stderr
    assert f"job {job.id} is queued" in table.stdout
    assert ("no_live_worker: no live worker serves queue nobody-serves-this in namespace "
            "default") in table.stdout
    document = json.loads(as_json.stdout)
    assert [r["code"] for r in document["reasons"]] == ["no_live_worker"]
    assert document["status"] == "queued"


def test_jobs_explain_of_a_missing_job_is_one_line_and_exit_1(
    app: taskwheel.App, url: str
) -> None:
    app.task(lambda: None, name="send").enqueue()

    missing = run("jobs", "explain", "999", url=url)

    assert missing.exit_code == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "999" in missing.stderr
