"""The workflow statements of the PostgreSQL executor: writing a run, the statements
that the end, retry or cancellation of steps runs (`stores.steps` decides which, and
when), and reading runs back. No decisions here.

Wake-ups for steps that become ready are sent by the jobs table's trigger.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow

from taskwheel.lifecycle import JobStatus
from taskwheel.stores import rows
from taskwheel.stores.executor import RunSettlement, StepReset
from taskwheel.workflows import (
    FailurePolicy,
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
    WorkflowStep,
)


class WorkflowStatements(ABC):
    """The workflow half of `PostgresExecutor`, over its ``_execute``."""

    @abstractmethod
    def _execute(self, name: str, params: dict[str, Any]) -> Cursor[DictRow]:
        """Run the statement ``name`` of queries.sql in the executor's transaction."""

    def insert_run(
        self, spec: WorkflowSpec, *, run_at: float, started: float,
        schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        steps = spec.steps
        edges = [(dep, step.name) for step in steps for dep in dict.fromkeys(step.after)]
        row = self._execute("insert_run", {
            "namespace": spec.namespace, "name": spec.name, "on_failure": spec.on_failure.value,
            "schedule_id": schedule_id, "fire_at": fire_at, "run_at": float(run_at),
            "task": [step.job.task for step in steps],
            "queue": [step.job.queue for step in steps],
            "args": [step.job.args_json for step in steps],
            "kwargs": [step.job.kwargs_json for step in steps],
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
            "edge_from": [dep for dep, _ in edges],
            "edge_to": [name for _, name in edges],
        }).fetchone()
        return None if row is None else int(row["id"])

    def release_dependents(self, job_ids: Sequence[int]) -> None:
        self._execute("release_dependents", {"ids": list(job_ids)})

    def block_downstream(self, job_id: int, error: str) -> None:
        self._execute("block_downstream", {"id": job_id, "error": error})

    def cancel_pending_steps(self, run_id: int, error: str) -> None:
        self._execute("cancel_pending_steps", {"run_id": run_id, "error": error})

    def request_cancel_running_steps(self, run_id: int) -> int:
        row = self._execute("request_cancel_running_steps", {"run_id": run_id}).fetchone()
        assert row is not None
        return int(row["asked"])

    def settlement(self, run_id: int) -> RunSettlement | None:
        return rows.settlement(self._execute("settlement", {"run_id": run_id}).fetchall())

    def finish_run(self, run_id: int, status: str) -> None:
        self._execute("finish_run", {"run_id": run_id, "status": status})

    def lock_run(self, namespace: str, run_id: int) -> bool:
        params = {"namespace": namespace, "run_id": run_id}
        return self._execute("lock_run", params).fetchone() is not None

    def request_cancel_run(self, namespace: str, run_id: int) -> None:
        self._execute("request_cancel_run", {"namespace": namespace, "run_id": run_id})

    def reopen_run(self, run_id: int) -> None:
        self._execute("reopen_run", {"run_id": run_id})

    def reset_steps(self, resets: Sequence[StepReset]) -> None:
        if not resets:
            return
        self._execute("reset_steps", {
            "id": [reset.job_id for reset in resets],
            "status": [reset.status.value for reset in resets],
            "waiting_on": [reset.waiting_on for reset in resets],
            "expected": [reset.expected.value for reset in resets],
        })

    def workflow_run(self, namespace: str, run_id: int) -> WorkflowRun | None:
        row = self._execute(
            "workflow_run", {"namespace": namespace, "run_id": run_id}
        ).fetchone()
        return None if row is None else rows.workflow_run(row, {}, ())

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        found = self._execute("list_workflow_runs", {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "name": where.name, "limit": where.limit,
        }).fetchall()
        return [rows.workflow_run(row, {}, ()) for row in found]

    def workflow_steps(self, run_id: int) -> list[WorkflowStep]:
        found = self._execute("workflow_steps", {"run_id": run_id}).fetchall()
        return [
            WorkflowStep(name=row["step"], after=(),
                         on_failure=FailurePolicy(row["failure_policy"]),
                         job=rows.job(row, rows.as_stored))
            for row in found
        ]

    def workflow_edges(self, run_id: int) -> list[tuple[int, int]]:
        found = self._execute("workflow_edges", {"run_id": run_id}).fetchall()
        return [(int(row["depends_on"]), int(row["job_id"])) for row in found]

    def step_counts(self, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        if run_ids:
            for row in self._execute("step_counts", {"run_ids": list(run_ids)}).fetchall():
                counts.setdefault(int(row["workflow_run_id"]), {})[row["status"]] = int(
                    row["count"])
        return counts

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        found = self._execute(
            "upstream_outcomes", {"namespace": namespace, "job_id": job_id}
        ).fetchall()
        return [
            StepOutcome(step=row["step"], job_id=int(row["id"]), status=JobStatus(row["status"]),
                        result=row["result"], error=row["last_error"])
            for row in found
        ]
