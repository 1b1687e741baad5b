"""``taskwheel workflows``: submit a workflow file; list, show, retry and cancel runs."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path

import click

from taskwheel.cli.options import Target, app_option, common_options, listing_options
from taskwheel.cli.output import Output, _when, new_table
from taskwheel.durations import format_duration
from taskwheel.errors import InvalidInput
from taskwheel.workflows import (
    FailurePolicy,
    RunStatus,
    Workflow,
    WorkflowRun,
    WorkflowRunFilter,
    draw,
)

_FILE_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


@click.group()
def workflows() -> None:
    """Workflows: DAGs of jobs with dependencies, run as one."""


@workflows.command("submit")
@click.argument("file", metavar="FILE")
@click.option("--on-failure", type=click.Choice([p.value for p in FailurePolicy]),
              default=None, help="The run's failure policy.  [default: the file's, else "
              "fail_downstream]")
@app_option
@common_options
def submit_workflow(target: Target, *, file: str, on_failure: str | None, app_spec: str) -> None:
    """Start a run of the workflow in FILE (.json, .yaml or .yml; - reads JSON from
    stdin), checked against the app's tasks first: a cycle, an unknown step or task
    or arguments a task cannot take are refused and nothing is written."""
    if file == "-":
        file_format = "json"
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("file", f"stdin is not UTF-8 text (byte {exc.start})") from None
    else:
        path = Path(file)
        file_format = _FILE_FORMATS.get(path.suffix.lower(), "")
        if not file_format:
            raise InvalidInput("file", f"{file}: name it .json, .yaml or .yml")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("file", f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InvalidInput("file", f"{file} is not UTF-8 text (byte {exc.start})") from None
    try:
        workflow = Workflow.parse(text, file_format)
    except InvalidInput as exc:
        # A field of the file, not an option of the command (the file's on_failure is
        # not --on-failure).
        raise InvalidInput("file", f"{file}: {exc}") from None
    with contextlib.closing(target.load(app_spec)) as app:
        try:
            run = app.submit(workflow, on_failure=on_failure).record
        except InvalidInput as exc:
            if exc.field == "on_failure":  # the command's --on-failure
                raise
            raise InvalidInput("file", f"{file}: {exc}") from None
    show_run(target.output, run)


@workflows.command("list")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]), default=None)
@click.option("--name", default=None, help="Only runs of this workflow.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@listing_options
def list_runs(target: Target, *, status: str | None, name: str | None, limit: int) -> None:
    """Workflow runs, newest first, with their state and their steps' states."""
    where = WorkflowRunFilter(status=None if status is None else RunStatus(status), name=name,
                              limit=limit)
    with target.client() as client:
        runs = client.list_workflow_runs(where)
    output = target.output
    if output.data:
        output.records([run.to_dict() for run in runs], columns=WorkflowRun.__slots__)
        return
    if not runs:
        output.note("no workflow runs")
        return
    table = new_table(title="workflow runs", title_justify="left")
    for column in ("run", "workflow", "state", "steps", "created", "finished", "took"):
        table.add_column(column, no_wrap=column != "steps")
    for run in runs:
        table.add_row(str(run.id), run.name, run.status.value, _counts(run), _when(run.created_at),
                      _when(run.finished_at), _took(run.created_at, run.finished_at))
    output.console.print(table)


@workflows.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@common_options
def show(target: Target, *, run_id: int) -> None:
    """A run: every step with its state, attempts and timing, and a drawing of the DAG."""
    with target.client() as client:
        show_run(target.output, client.workflow_run(run_id).record)


@workflows.command("retry")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--step", default=None, help="Retry this step (and the steps after it that "
              "did not succeed) only.  [default: every failed step]")
@common_options
def retry(target: Target, *, run_id: int, step: str | None) -> None:
    """Run the failed steps again, and every step after them that did not succeed;
    steps that succeeded are not run again."""
    with target.client() as client:
        show_run(target.output, client.retry_workflow_run(run_id, step))


@workflows.command("cancel")
@click.argument("run_id", metavar="RUN", type=int)
@common_options
def cancel(target: Target, *, run_id: int) -> None:
    """Cancel the steps not yet finished; running ones are asked to stop (as by
    ``jobs cancel``)."""
    with target.client() as client:
        run = client.cancel_workflow_run(run_id)
    show_run(target.output, run)
    running = run.step_counts.get("running", 0)
    if running:
        target.output.note(f"cancel requested: {running} running steps will be stopped")


# -- printing --------------------------------------------------------------------------------


def show_run(output: Output, run: WorkflowRun) -> None:
    if output.json:
        output.emit_json(run.to_dict())
        return
    header = new_table(title=f"workflow run {run.id}", title_justify="left", show_header=False)
    header.add_column("field", style="bold")
    header.add_column("value", overflow="fold")
    rows = [
        ("workflow", run.name),
        ("state", run.status.value + (" (cancel requested)" if run.cancel_requested
                                      and run.status is RunStatus.RUNNING else "")),
        ("on failure", run.on_failure.value),
        ("steps", _counts(run)),
        ("created", _when(run.created_at)),
        ("finished", _when(run.finished_at)),
        ("took", _took(run.created_at, run.finished_at)),
    ]
    if run.schedule_id is not None:
        rows.append(("fired by", f"schedule {run.schedule_id} at {_when(run.fire_at)}"))
    for field, value in rows:
        header.add_row(field, value)
    output.console.print(header)
    steps = new_table(title="steps", title_justify="left")
    for column in ("step", "job", "task", "state", "attempts", "started", "finished", "took",
                   "on failure"):
        steps.add_column(column, no_wrap=True)
    steps.add_column("error", overflow="ellipsis", max_width=60, no_wrap=True)
    for step in run.steps:
        job = step.job
        steps.add_row(
            step.name, str(job.id), job.task, job.status.value,
            f"{job.attempt}/{job.max_attempts}", _when(job.started_at), _when(job.finished_at),
            _took(job.started_at, job.finished_at), step.on_failure.value,
            job.last_error or "-",
        )
    output.console.print(steps)
    labels = {step.name: f"{step.name} ({step.job.status.value})" for step in run.steps}
    drawing = draw({step.name: step.after for step in run.steps}, labels)
    output.console.print("\n".join(drawing), markup=False, highlight=False)


def _counts(run: WorkflowRun) -> str:
    counts = sorted(run.step_counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {status}" for status, count in counts) or "-"


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return format_duration(max(0.0, (end - start).total_seconds()))
