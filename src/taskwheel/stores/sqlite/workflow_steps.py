"""Workflow statements of the SQLite executor: writing a run, counting dependencies
down, blocking and cancelling steps, reading runs back. No decisions: those are in
`taskwheel.stores.steps`. Every statement runs in the executor's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from taskwheel.jobs import NewJob, loads_json
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import rows
from taskwheel.stores.executor import RunSettlement, StepReset
from taskwheel.stores.sqlite.connection import Q, Statements, job_record
from taskwheel.workflows import (
    FailurePolicy,
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
    WorkflowStep,
)


class WorkflowStatements(Statements):
    """The workflow half of `SQLiteExecutor` (which supplies the connection, the
    transaction's instant and its wake-ups)."""

    def now(self) -> float:
        raise NotImplementedError

    def wake(self, namespace: str, event: str) -> None:
        raise NotImplementedError

    def _reserve(self, jobs: Sequence[NewJob] = ()) -> tuple[int, bool]:
        """The first id of the jobs about to be written, and whether a namespace of
        ``jobs`` has a quota (reserve_jobs)."""
        raise NotImplementedError

    def insert_run(
        self, spec: WorkflowSpec, *, run_at: float, started: float,
        schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        conn, now = self._c(), self.now()
        insert_run, insert_steps, insert_edges = Q["insert_run"]
        cursor = conn.execute(insert_run, {
            "namespace": spec.namespace, "name": spec.name, "on_failure": spec.on_failure.value,
            "now": now, "schedule_id": schedule_id, "fire_at": fire_at,
        })
        if cursor.rowcount != 1:
            return None
        run_id = cursor.lastrowid
        root = JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED
        first, _ = self._reserve()  # a run's steps are not under the enqueue quota
        ids = {step.name: first + n for n, step in enumerate(spec.steps)}
        conn.executemany(insert_steps, [
            (ids[step.name], spec.namespace, step.job.task, step.job.queue, step.job.args_json,
             step.job.kwargs_json, (JobStatus.WAITING if step.after else root).value,
             step.job.priority, run_at,
             None if step.job.deadline_in is None else started + step.job.deadline_in,
             step.job.timeout, step.job.max_attempts, step.job.guarantee,
             step.job.deadline_policy, now, run_id, step.name, step.on_failure.value,
             len(set(step.after)))
            for step in spec.steps
        ])
        conn.executemany(insert_edges, [
            (spec.namespace, run_id, ids[dep], ids[step.name])
            for step in spec.steps for dep in dict.fromkeys(step.after)
        ])
        if root is JobStatus.QUEUED:
            self.wake(spec.namespace, "jobs")
        return run_id

    def release_dependents(self, job_ids: Sequence[int]) -> None:
        now = self.now()
        for job_id in job_ids:
            for row in self._execute("release_dependents", {"id": job_id, "now": now}):
                if row["status"] == JobStatus.QUEUED.value:
                    self.wake(row["namespace"], "jobs")

    def block_downstream(self, job_id: int, error: str) -> None:
        self._execute("block_downstream", {"id": job_id, "now": self.now(), "error": error})

    def cancel_pending_steps(self, run_id: int, error: str) -> None:
        self._execute("cancel_pending_steps", {"run_id": run_id, "now": self.now(),
                                               "error": error})

    def request_cancel_running_steps(self, run_id: int) -> int:
        return self._execute("request_cancel_running_steps", {"run_id": run_id}).rowcount

    def settlement(self, run_id: int) -> RunSettlement | None:
        return rows.settlement(self._execute("settlement", {"run_id": run_id}).fetchall())

    def finish_run(self, run_id: int, status: str) -> None:
        self._execute("finish_run", {"id": run_id, "status": status, "now": self.now()})

    def lock_run(self, namespace: str, run_id: int) -> bool:
        return self._execute(
            "lock_run", {"namespace": namespace, "id": run_id}).fetchone() is not None

    def request_cancel_run(self, namespace: str, run_id: int) -> None:
        self._execute("request_cancel_run", {"namespace": namespace, "id": run_id})

    def reopen_run(self, run_id: int) -> None:
        self._execute("reopen_run", {"id": run_id})

    def reset_steps(self, resets: Sequence[StepReset]) -> None:
        now = self.now()
        for reset in resets:
            row = self._execute("reset_steps", {
                "id": reset.job_id, "status": reset.status.value, "waiting_on": reset.waiting_on,
                "expected_status": reset.expected.value, "now": now,
            }).fetchone()
            if row is not None and reset.status is JobStatus.QUEUED:
                self.wake(row["namespace"], "jobs")

    def workflow_run(self, namespace: str, run_id: int) -> WorkflowRun | None:
        row = self._execute("workflow_run", {"namespace": namespace, "id": run_id}).fetchone()
        return None if row is None else rows.workflow_run(row, {}, ())

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        found = self._execute("list_workflow_runs", {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "name": where.name, "limit": where.limit,
        }).fetchall()
        return [rows.workflow_run(row, {}, ()) for row in found]

    def workflow_steps(self, run_id: int) -> list[WorkflowStep]:
        return [
            WorkflowStep(name=row["step"], after=(),
                         on_failure=FailurePolicy(row["failure_policy"]), job=job_record(row))
            for row in self._execute("workflow_steps", {"run_id": run_id})
        ]

    def workflow_edges(self, run_id: int) -> list[tuple[int, int]]:
        return [(int(depends_on), int(job_id)) for depends_on, job_id in
                self._execute("workflow_edges", {"run_id": run_id})]

    def step_counts(self, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        if run_ids:
            for run_id, status, count in self._execute(
                "step_counts", {"run_ids": json.dumps(list(run_ids))}
            ):
                counts.setdefault(run_id, {})[status] = int(count)
        return counts

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        found: list[Any] = self._execute(
            "upstream_outcomes", {"namespace": namespace, "job_id": job_id}
        ).fetchall()
        return [
            StepOutcome(step=row["step"], job_id=row["id"], status=JobStatus(row["status"]),
                        result=loads_json(row["result"]), error=row["last_error"])
            for row in found
        ]
