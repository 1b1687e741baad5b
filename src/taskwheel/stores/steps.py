"""What happens to a workflow run when its steps end, are retried or are cancelled:
the decisions of `taskwheel.workflows` (`effect_of_end`, `run_status`, `plan_retry`)
applied through an `Executor`, inside the caller's transaction.

The contract is in `Store`'s workflow section. Every function here works in the
transaction that changed the steps, so a dependent becomes ready, or a run ends, in
the same commit as the step that caused it: no scan, no poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from taskwheel.errors import WorkflowRunNotFound
from taskwheel.lifecycle import TERMINAL
from taskwheel.stores.executor import Executor, Moved, StepReset
from taskwheel.workflows import (
    FailurePolicy,
    StepEffect,
    StepState,
    WorkflowRun,
    WorkflowStep,
    effect_of_end,
    plan_retry,
    run_status,
)


def steps_ended(tx: Executor, moved: Iterable[Moved]) -> None:
    """What the end of workflow steps does: each step's policy releases its
    dependents (the last dependency makes one ready), blocks them (upstream_failed,
    transitively) or stops its whole run; then each touched run whose steps have all
    ended gets its final state. Plain jobs, and steps that did not end (a retry), are
    passed over."""
    runs: dict[int, str] = {}
    release: list[int] = []
    block: list[Moved] = []
    stop: list[Moved] = []
    for row in moved:
        if row.workflow_run_id is None or row.status not in TERMINAL:
            continue
        runs[row.workflow_run_id] = row.namespace
        effect = effect_of_end(row.status, FailurePolicy(row.failure_policy or ""))
        if effect is StepEffect.RELEASE:
            release.append(row.id)
        elif effect is StepEffect.BLOCK:
            block.append(row)
        else:
            stop.append(row)
    if not runs:
        return
    if release:
        tx.release_dependents(release)
    for row in block:
        tx.block_downstream(row.id, f"upstream step {row.step!r} ended {row.status.value}")
    for row in stop:  # last: steps released above are stopped too
        assert row.workflow_run_id is not None
        stop_steps(tx, row.namespace, row.workflow_run_id,
                   reason=f"step {row.step!r} ended {row.status.value} (fail_fast)")
    for run_id in runs:
        settle_run(tx, run_id)


def stop_steps(tx: Executor, namespace: str, run_id: int, *, reason: str) -> None:
    """Cancel a run's pending steps; ask its running ones to stop."""
    tx.cancel_pending_steps(run_id, reason)
    if tx.request_cancel_running_steps(run_id):
        tx.wake(namespace, "cancel")


def settle_run(tx: Executor, run_id: int) -> None:
    """Give a running run its final state once none of its steps is unfinished."""
    settlement = tx.settlement(run_id)
    if settlement is not None:
        status = run_status(settlement.counts, settlement.cancel_requested)
        tx.finish_run(run_id, status.value)


def retry_steps(tx: Executor, namespace: str, run_id: int, step: str | None) -> None:
    """Run again what `plan_retry` says, and reopen the run."""
    if not tx.lock_run(namespace, run_id):
        raise WorkflowRunNotFound(run_id)
    steps = tx.workflow_steps(run_id)
    after = _dependencies(tx, run_id, steps)
    states = [
        StepState(s.name, s.job.id, s.job.status, s.on_failure, tuple(after[s.job.id]))
        for s in steps
    ]
    current = {s.job.id: s.job.status for s in steps}
    tx.reset_steps([
        StepReset(reset.job_id, reset.status, reset.waiting_on, current[reset.job_id])
        for reset in plan_retry(states, step)
    ])
    tx.reopen_run(run_id)


def cancel_run(tx: Executor, namespace: str, run_id: int) -> None:
    """Stop a run: its pending steps cancelled, its running ones asked to stop; it
    ends once none is unfinished."""
    if not tx.lock_run(namespace, run_id):
        raise WorkflowRunNotFound(run_id)
    tx.request_cancel_run(namespace, run_id)
    stop_steps(tx, namespace, run_id, reason="cancelled with its workflow run")
    settle_run(tx, run_id)


def read_run(tx: Executor, namespace: str, run_id: int) -> WorkflowRun:
    """The run with its steps (each with its job and the names it runs after) and
    its step counts, or `WorkflowRunNotFound`."""
    run = tx.workflow_run(namespace, run_id)
    if run is None:
        raise WorkflowRunNotFound(run_id)
    steps = tx.workflow_steps(run_id)
    after = _dependencies(tx, run_id, steps)
    counts = tx.step_counts([run_id]).get(run_id, {})
    return replace(run, step_counts=counts, steps=tuple(
        replace(step, after=tuple(after[step.job.id])) for step in steps
    ))


def list_runs(tx: Executor, runs: list[WorkflowRun]) -> list[WorkflowRun]:
    """Runs with their step counts (and no steps)."""
    counts = tx.step_counts([run.id for run in runs])
    return [replace(run, step_counts=counts.get(run.id, {})) for run in runs]


def _dependencies(
    tx: Executor, run_id: int, steps: Sequence[WorkflowStep]
) -> dict[int, list[str]]:
    """Each step's dependencies by name, keyed by the step's job id."""
    names = {step.job.id: step.name for step in steps}
    after: dict[int, list[str]] = {job_id: [] for job_id in names}
    for depends_on, job_id in tx.workflow_edges(run_id):
        if depends_on in names and job_id in after:
            after[job_id].append(names[depends_on])
    return after

