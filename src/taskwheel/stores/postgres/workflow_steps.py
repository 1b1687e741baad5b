"""Workflow runs in the PostgreSQL store: writing a run, what the end of a step does to
the rest of its run, retries, and reading runs back. Every function works inside the
caller's transaction, on its connection; the store decides where transactions begin.

The rules are `taskwheel.workflows`' (`effect_of_end`, `run_status`, `plan_retry`); the
contract is in `Store`'s workflow section. Wake-ups for steps that become ready are sent
by the jobs table's trigger; the "cancel" wake-up for running steps asked to stop is
sent here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from taskwheel.errors import WorkflowRunNotFound
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.stores.postgres import records
from taskwheel.stores.postgres.connection import Connection
from taskwheel.stores.postgres.notifier import payload_of
from taskwheel.stores.sql_files import load_queries
from taskwheel.workflows import (
    FailurePolicy,
    StepEffect,
    StepState,
    WorkflowRun,
    WorkflowSpec,
    WorkflowStep,
    effect_of_end,
    plan_retry,
    run_status,
)

_Q = load_queries("taskwheel.stores.postgres", "queries.sql")

Params = dict[str, Any]


def insert_run(
    conn: Connection, scope: Params, spec: WorkflowSpec, *, now: float, run_at: float,
    started: float, schedule_id: int | None = None, fire_at: float | None = None,
) -> int | None:
    """Write a run, a job per step (ids ascending in the order of the steps) and the
    edges; None when the (schedule, fire time) has a run already. Deadlines count from
    ``started``; ``now`` is the transaction's instant."""
    row = conn.execute(_Q["insert_workflow_run"], {
        **scope, "namespace": spec.namespace, "name": spec.name,
        "on_failure": spec.on_failure.value, "schedule_id": schedule_id, "fire_at": fire_at,
    }).fetchone()
    if row is None:
        return None
    run_id = int(row["id"])
    reserved = conn.execute(_Q["reserve_jobs"], {**scope, "count": len(spec.steps)}).fetchone()
    assert reserved is not None
    ids = {step.name: int(job_id) for step, job_id in zip(spec.steps, reserved["ids"],
                                                          strict=True)}
    root = JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED
    steps = spec.steps
    conn.execute(_Q["insert_steps"], {
        **scope, "namespace": spec.namespace, "run_id": run_id, "run_at": run_at,
        "id": [ids[step.name] for step in steps],
        "task": [step.job.task for step in steps],
        "queue": [step.job.queue for step in steps],
        "args": [step.job.args_json for step in steps],
        "kwargs": [step.job.kwargs_json for step in steps],
        "status": [(JobStatus.WAITING if step.after else root).value for step in steps],
        "priority": [step.job.priority for step in steps],
        "deadline": [None if step.job.deadline_in is None else started + step.job.deadline_in
                     for step in steps],
        "timeout": [step.job.timeout for step in steps],
        "max_attempts": [step.job.max_attempts for step in steps],
        "guarantee": [step.job.guarantee for step in steps],
        "deadline_policy": [step.job.deadline_policy for step in steps],
        "step": [step.name for step in steps],
        "failure_policy": [step.on_failure.value for step in steps],
        "waiting_on": [len(set(step.after)) for step in steps],
    })
    edges = [(ids[dep], ids[step.name]) for step in steps for dep in dict.fromkeys(step.after)]
    if edges:
        conn.execute(_Q["insert_dependencies"], {
            "namespace": spec.namespace, "run_id": run_id,
            "depends_on": [dep for dep, _ in edges], "job_id": [job for _, job in edges],
        })
    return run_id


def steps_ended(conn: Connection, scope: Params, rows: Iterable[records.Row]) -> None:
    """What the end of workflow steps does, in the transaction that ended them: each
    step's policy releases its dependents (the last dependency makes one ready), blocks
    them (upstream_failed, transitively) or stops its whole run; then each touched run
    whose steps have all ended gets its final state. ``rows`` carry id, namespace,
    status, workflow_run_id, step and failure_policy; rows of plain jobs and of steps
    that did not end (a retry) are passed over."""
    runs: dict[int, str] = {}
    release: list[int] = []
    block: list[records.Row] = []
    stop: list[records.Row] = []
    for row in rows:
        run_id = row["workflow_run_id"]
        status = JobStatus(row["status"])
        if run_id is None or status not in TERMINAL:
            continue
        runs[run_id] = row["namespace"]
        effect = effect_of_end(status, FailurePolicy(row["failure_policy"]))
        if effect is StepEffect.RELEASE:
            release.append(int(row["id"]))
        elif effect is StepEffect.BLOCK:
            block.append(row)
        else:
            stop.append(row)
    if not runs:
        return
    if release:
        conn.execute(_Q["release_dependents"], {**scope, "ids": release})
    for row in block:
        conn.execute(_Q["block_downstream"], {
            **scope, "id": row["id"],
            "error": f"upstream step {row['step']!r} ended {row['status']}",
        })
    for row in stop:  # last: steps released above are stopped too
        stop_steps(conn, scope, row["namespace"], row["workflow_run_id"],
                   reason=f"step {row['step']!r} ended {row['status']} (fail_fast)")
    for run_id in runs:
        settle_run(conn, scope, run_id)


def stop_steps(
    conn: Connection, scope: Params, namespace: str, run_id: int, *, reason: str
) -> None:
    """Cancel a run's pending steps; ask its running ones to stop."""
    conn.execute(_Q["cancel_pending_steps"], {**scope, "run_id": run_id, "error": reason})
    if conn.execute(_Q["request_cancel_running_steps"], {"run_id": run_id}).rowcount > 0:
        conn.execute(_Q["notify"], {"channel": scope["channel"],
                                    "payload": payload_of(namespace, "cancel")})


def settle_run(conn: Connection, scope: Params, run_id: int) -> None:
    """Give a running run its final state once none of its steps is unfinished."""
    rows = conn.execute(_Q["settle_workflow_run"], {"run_id": run_id}).fetchall()
    if not rows:
        return
    counts = {JobStatus(row["status"]): int(row["count"]) for row in rows}
    status = run_status(counts, bool(rows[0]["cancel_requested"]))
    conn.execute(_Q["finish_workflow_run"], {**scope, "id": run_id, "status": status.value})


def retry_steps(
    conn: Connection, scope: Params, namespace: str, run_id: int, step: str | None
) -> None:
    """Run again what `plan_retry` says (the trigger wakes the workers for those queued)."""
    lock_run(conn, namespace, run_id)
    rows = conn.execute(_Q["workflow_steps"], {"run_id": run_id}).fetchall()
    after = _edges(conn, run_id, rows)
    states = [
        StepState(row["step"], row["id"], JobStatus(row["status"]),
                  FailurePolicy(row["failure_policy"]), tuple(after[row["id"]]))
        for row in rows
    ]
    current = {row["id"]: row["status"] for row in rows}
    for reset in plan_retry(states, step):
        conn.execute(_Q["reset_step"], {
            **scope, "id": reset.job_id, "status": reset.status.value,
            "waiting_on": reset.waiting_on, "expected_status": current[reset.job_id],
        })
    conn.execute(_Q["reopen_workflow_run"], {"id": run_id})


def lock_run(conn: Connection, namespace: str, run_id: int) -> records.Row:
    """The run's row, locked until the transaction ends, or `WorkflowRunNotFound`."""
    row = conn.execute(_Q["lock_workflow_run"], {"namespace": namespace, "id": run_id}).fetchone()
    if row is None:
        raise WorkflowRunNotFound(run_id)
    return row


def read_run(conn: Connection, namespace: str, run_id: int) -> WorkflowRun:
    """The run with its steps and step counts, or `WorkflowRunNotFound`."""
    row = conn.execute(_Q["workflow_run"], {"namespace": namespace, "id": run_id}).fetchone()
    if row is None:
        raise WorkflowRunNotFound(run_id)
    rows = conn.execute(_Q["workflow_steps"], {"run_id": run_id}).fetchall()
    after = _edges(conn, run_id, rows)
    steps = tuple(
        WorkflowStep(name=r["step"], after=tuple(after[r["id"]]),
                     on_failure=FailurePolicy(r["failure_policy"]), job=records.job(r))
        for r in rows
    )
    return records.workflow_run(row, step_counts(conn, [run_id]).get(run_id, {}), steps)


def list_runs(conn: Connection, params: Params) -> list[WorkflowRun]:
    rows = conn.execute(_Q["list_workflow_runs"], params).fetchall()
    counts = step_counts(conn, [row["id"] for row in rows])
    return [records.workflow_run(row, counts.get(row["id"], {}), ()) for row in rows]


def step_counts(conn: Connection, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if run_ids:
        for row in conn.execute(_Q["workflow_step_counts"], {"run_ids": list(run_ids)}):
            counts.setdefault(row["workflow_run_id"], {})[row["status"]] = int(row["count"])
    return counts


def _edges(conn: Connection, run_id: int, steps: Sequence[records.Row]) -> dict[int, list[str]]:
    """Each step's dependencies by name, keyed by the step's job id."""
    names = {row["id"]: row["step"] for row in steps}
    after: dict[int, list[str]] = {job_id: [] for job_id in names}
    for row in conn.execute(_Q["workflow_edges"], {"run_id": run_id}):
        if row["depends_on"] in names and row["job_id"] in after:
            after[row["job_id"]].append(names[row["depends_on"]])
    return after
