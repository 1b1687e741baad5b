"""Workflows run by a real worker on a real database: results flow down the DAG, independent
steps run at the same time, failure policies, cancellation and retries end to end, and a
schedule that fires a workflow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import taskwheel
from taskwheel import AttemptOutcome, JobStatus, Retry, RunStatus, Workflow
from waiting import wait_for

from . import workflow_tasks as steps
from .conftest import running_worker

S = JobStatus


def statuses(run: taskwheel.WorkflowRunHandle) -> dict[str, JobStatus]:
    return {s.name: s.job.status for s in run.refresh().record.steps}


def test_a_diamond_hands_results_down_and_runs_its_middle_steps_at_once(
    app: taskwheel.App, tmp_path: Path
) -> None:
    numbers = app.task(steps.numbers)
    together = app.task(pass_context=True)(steps.together)
    total = app.task(pass_context=True)(steps.total)
    log = str(tmp_path / "log")
    wf = Workflow("diamond")
    first = wf.step(numbers, [log, 4])
    doubled = wf.step(together, [log, 2], name="doubled", after=[first])
    tripled = wf.step(together, [log, 3], name="tripled", after=[first])
    wf.step(total, [log], after=[doubled, tripled])

    run = app.submit(wf)
    with running_worker(app, concurrency=4, pool="thread"):
        results = run.result(timeout=20)

    assert results == {"numbers": [0, 1, 2, 3], "doubled": [0, 2, 4, 6],
                       "tripled": [0, 3, 6, 9], "total": {"sum": 30,
                                                          "from": ["doubled", "tripled"]}}
    lines = Path(log).read_text().split("\n")
    assert lines[0] == "numbers"
    assert sorted(lines[1:3]) == ["doubled waiting", "tripled waiting"]
    assert lines[3] == "total"
    # Each step started after its dependencies had finished.
    record = run.record
    for step in record.steps:
        for dependency in step.after:
            finished_at = record.step(dependency).job.finished_at
            assert finished_at is not None
            assert step.job.started_at is not None
            assert step.job.started_at >= finished_at


@pytest.mark.parametrize("pool", ["async", "process"])
def test_a_step_sees_its_dependencies_results_and_failures_in_its_context(
    app: taskwheel.App, pool: str
) -> None:
    numbers = app.task(steps.numbers)
    broken = app.task(retry=1)(steps.broken)
    report = app.task(pass_context=True, pool=pool)(steps.upstream_report)
    wf = Workflow("report", on_failure="continue")
    a = wf.step(numbers, ["/dev/null", 3])
    b = wf.step(broken, after=[a])
    c = wf.step(report, after=[a, b])

    run = app.submit(wf)
    with running_worker(app):
        run.wait(timeout=20)

    assert run.status is RunStatus.FAILED
    assert run.record.step(c.name).job.result == {
        "pid_step": "upstream_report",
        "run": run.id,
        "results": {"numbers": [0, 1, 2]},
        "upstream": {"numbers": ["succeeded", None],
                     "broken": ["dead", "ValueError: this step always fails"]},
    }


@pytest.mark.parametrize("policy", [
    "fail_downstream",
    "fail_fast",
    "continue",
])
def test_a_failing_step_uses_up_its_retries_then_its_policy_applies(
    app: taskwheel.App, tmp_path: Path, policy: str
) -> None:
    broken = app.task(retry=Retry(max_attempts=2, base=0))(steps.broken)
    after = app.task(steps.numbers)
    other = app.task(pass_context=True)(steps.wait_for_release_or_cancel)
    marker, release = tmp_path / "marker", tmp_path / "release"
    wf = Workflow("policies")
    failing = wf.step(broken)
    wf.step(after, [str(tmp_path / "log"), 1], after=[failing])
    wf.step(other, [str(marker), str(release)])

    run = app.submit(wf, on_failure=policy)
    # Heartbeats far apart: under fail_fast the running step must be told by a wake-up.
    with running_worker(app, concurrency=4, pool="thread", heartbeat="60s", lease_ttl="180s"):
        wait_for(lambda: statuses(run)["broken"] is S.DEAD, what="the step to die")
        if policy != "fail_fast":
            release.write_text("go")
        run.wait(timeout=20)

    assert [a.outcome for a in app.job(run.record.step("broken").job.id).attempts()] == [
        AttemptOutcome.FAILED, AttemptOutcome.FAILED
    ]
    expected = {
        "fail_downstream": {"broken": S.DEAD, "numbers": S.UPSTREAM_FAILED,
                            "wait_for_release_or_cancel": S.SUCCEEDED},
        "fail_fast": {"broken": S.DEAD, "numbers": S.CANCELLED,
                      "wait_for_release_or_cancel": S.CANCELLED},
        "continue": {"broken": S.DEAD, "numbers": S.SUCCEEDED,
                     "wait_for_release_or_cancel": S.SUCCEEDED},
    }[policy]
    assert statuses(run) == expected
    assert run.status is RunStatus.FAILED
    if policy == "fail_fast":  # stopped through the usual cancellation: ctx.cancelled
        assert marker.read_text().split() == ["started", "saw-cancel"]


def test_cancelling_a_run_stops_its_running_step_and_its_other_steps_never_run(
    app: taskwheel.App, tmp_path: Path
) -> None:
    waiting = app.task(pass_context=True)(steps.wait_for_release_or_cancel)
    numbers = app.task(steps.numbers)
    marker, log = tmp_path / "marker", tmp_path / "log"
    wf = Workflow("cancelled")
    first = wf.step(waiting, [str(marker), str(tmp_path / "never")])
    wf.step(numbers, [str(log), 2], after=[first])

    run = app.submit(wf)
    with running_worker(app, heartbeat="20s", lease_ttl="60s"):
        wait_for(marker.exists, what="the first step to start")
        assert run.cancel().status is RunStatus.RUNNING
        run.wait(timeout=10)

    assert run.status is RunStatus.CANCELLED
    assert statuses(run) == {"wait_for_release_or_cancel": S.CANCELLED, "numbers": S.CANCELLED}
    assert marker.read_text().split() == ["started", "saw-cancel"]
    assert not log.exists()


def test_retrying_a_run_reruns_the_failed_step_and_not_what_succeeded(
    app: taskwheel.App, tmp_path: Path
) -> None:
    numbers = app.task(steps.numbers)
    flaky = app.task(retry=1)(steps.fails_until)
    log, fixed = tmp_path / "log", tmp_path / "fixed"
    wf = Workflow("retry")
    a = wf.step(numbers, [str(log), 2])
    b = wf.step(flaky, [str(fixed)], after=[a])
    wf.step(numbers, [str(log), 1], name="after", after=[b])

    run = app.submit(wf)
    with running_worker(app):
        run.wait(timeout=20)
        assert statuses(run) == {"numbers": S.SUCCEEDED, "fails_until": S.DEAD,
                                 "after": S.UPSTREAM_FAILED}
        fixed.write_text("")
        run.retry()
        results = run.result(timeout=20)

    assert results == {"numbers": [0, 1], "fails_until": "fixed", "after": [0]}
    assert log.read_text().split() == ["numbers", "numbers"]  # the first ran once


def test_a_schedule_fires_runs_of_a_workflow(app: taskwheel.App, tmp_path: Path) -> None:
    numbers = app.task(steps.numbers)
    wf = Workflow("nightly")
    first = wf.step(numbers, [str(tmp_path / "log"), 2])
    wf.step(numbers, [str(tmp_path / "log"), 3], name="second", after=[first])
    app.add_schedule("nightly", workflow=wf, cron="0 2 * * *",
                     start=datetime(2020, 1, 1, tzinfo=UTC))

    fired = app.store.trigger_schedule(app.namespace, "nightly")

    assert fired.workflow_run_id is not None
    assert fired.job_id is None
    run = app.workflow_run(fired.workflow_run_id)
    with running_worker(app):
        assert run.result(timeout=20) == {"numbers": [0, 1], "second": [0, 1, 2]}
    assert run.record.schedule_id == app.get_schedule("nightly").id
    assert app.get_schedule("nightly").definition.target == "workflow nightly"


def test_a_workflow_schedule_refuses_task_arguments_and_queue_one(app: taskwheel.App) -> None:
    numbers = app.task(steps.numbers)
    wf = Workflow("nightly")
    wf.step(numbers, ["/dev/null", 1])
    with pytest.raises(taskwheel.InvalidInput) as refused:
        app.schedule("a", workflow=wf, every="1h", args=[1])
    assert refused.value.field == "args"
    with pytest.raises(taskwheel.InvalidInput) as refused:
        app.schedule("b", workflow=wf, every="1h", overlap="queue_one")
    assert refused.value.field == "overlap"
    with pytest.raises(taskwheel.InvalidInput) as refused:
        app.schedule("c", numbers, workflow=wf, every="1h")
    assert refused.value.field == "workflow"
    assert app.schedules == {}
