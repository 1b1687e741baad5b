"""Workflow statements of the SQLite executor: writing a run, counting dependencies
down, blocking and cancelling steps, reading runs back. No decisions: those are in
`taskwheel.stores.steps`. Every statement runs in the executor's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from taskwheel.jobs import loads_json
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import rows
from taskwheel.stores.executor import RunSettlement, StepReset
from taskwheel.stores.sql_files import load_queries
from taskwheel.workflows import (
    FailurePolicy,
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
    WorkflowStep,
)

Q = load_queries("taskwheel.stores.sqlite", "queries.sql")


class WorkflowStatements:
    """The workflow half of `SQLiteExecutor` (which supplies the connection, the
    transaction's instant and its wake-ups)."""

    def _c(self) -> sqlite3.Connection:
        raise NotImplementedError

    def now(self) -> float:
        raise NotImplementedError

    def wake(self, namespace: str, event: str) -> None:
        raise NotImplementedError

    def insert_run(
        self, spec: WorkflowSpec, *, run_at: float, started: float,
        schedule_id: int | None = None, fire_at: float | None = None,
    ) -> int | None:
        conn, now = self._c(), self.now()
        cursor = conn.execute(Q["insert_run"], {
            "namespace": spec.namespace, "name": spec.name, "on_failure": spec.on_failure.value,
            "now": now, "schedule_id": schedule_id, "fire_at": fire_at,
        })
        if cursor.rowcount != 1:
            return None
        run_id = cursor.lastrowid
        assert run_id is not None
        root = JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED
        params = []
        for step in spec.steps:
            job = step.job
            deps = set(step.after)
            params.append((
                spec.namespace, job.task, job.queue, job.args_json, job.kwargs_json,
                (JobStatus.WAITING if deps else root).value, job.priority, run_at,
                None if job.deadline_in is None else started + job.deadline_in, job.timeout,
                job.max_attempts, job.guarantee, job.deadline_policy, now, run_id, step.name,
                step.on_failure.value, len(deps),
            ))
        conn.executemany(Q["insert_steps"], params)
        # Consecutive ids: nobody else inserts inside this IMMEDIATE transaction.
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        ids = {step.name: last - len(spec.steps) + 1 + n for n, step in enumerate(spec.steps)}
        conn.executemany(Q["insert_dependencies"], [
            (spec.namespace, run_id, ids[dep], ids[step.name])
            for step in spec.steps for dep in dict.fromkeys(step.after)
        ])
        if root is JobStatus.QUEUED:
            self.wake(spec.namespace, "jobs")
        return run_id

    def release_dependents(self, job_ids: Sequence[int]) -> None:
        conn, now = self._c(), self.now()
        for job_id in job_ids:
            for row in conn.execute(Q["release_dependents"], {"id": job_id, "now": now}):
                if row["status"] == JobStatus.QUEUED.value:
                    self.wake(row["namespace"], "jobs")

    def block_downstream(self, job_id: int, error: str) -> None:
        self._c().execute(Q["block_downstream"], {"id": job_id, "now": self.now(),
                                                  "error": error}).fetchall()

    def cancel_pending_steps(self, run_id: int, error: str) -> None:
        self._c().execute(Q["cancel_pending_steps"],
                          {"run_id": run_id, "now": self.now(), "error": error})

    def request_cancel_running_steps(self, run_id: int) -> int:
        # len(), not rowcount: with RETURNING, rowcount counts only the rows fetched.
        return len(self._c().execute(
            Q["request_cancel_running_steps"], {"run_id": run_id}).fetchall())

    def settlement(self, run_id: int) -> RunSettlement | None:
        found = self._c().execute(Q["settlement"], {"run_id": run_id}).fetchall()
        if not found:
            return None
        return RunSettlement(
            cancel_requested=bool(found[0]["cancel_requested"]),
            counts={JobStatus(row["status"]): int(row["count"]) for row in found},
        )

    def finish_run(self, run_id: int, status: str) -> None:
        self._c().execute(Q["finish_run"], {"id": run_id, "status": status, "now": self.now()})

    def lock_run(self, namespace: str, run_id: int) -> bool:
        # The write lock is held: nobody else changes the run until this transaction ends.
        return self._c().execute(
            Q["lock_run"], {"namespace": namespace, "id": run_id}
        ).fetchone() is not None

    def request_cancel_run(self, namespace: str, run_id: int) -> None:
        self._c().execute(Q["request_cancel_run"], {"namespace": namespace, "id": run_id})

    def reopen_run(self, run_id: int) -> None:
        self._c().execute(Q["reopen_run"], {"id": run_id})

    def reset_steps(self, resets: Sequence[StepReset]) -> None:
        conn, now = self._c(), self.now()
        for reset in resets:
            row = conn.execute(Q["reset_steps"], {
                "id": reset.job_id, "status": reset.status.value, "waiting_on": reset.waiting_on,
                "expected_status": reset.expected.value, "now": now,
            }).fetchone()
            if row is not None and reset.status is JobStatus.QUEUED:
                self.wake(row["namespace"], "jobs")

    def workflow_run(self, namespace: str, run_id: int) -> WorkflowRun | None:
        row = self._c().execute(Q["workflow_run"], {"namespace": namespace, "id": run_id}
                                ).fetchone()
        return None if row is None else rows.workflow_run(row, {}, ())

    def list_workflow_runs(self, namespace: str, where: WorkflowRunFilter) -> list[WorkflowRun]:
        found = self._c().execute(Q["list_workflow_runs"], {
            "namespace": namespace, "status": where.status.value if where.status else None,
            "name": where.name, "limit": where.limit,
        }).fetchall()
        return [rows.workflow_run(row, {}, ()) for row in found]

    def workflow_steps(self, run_id: int) -> list[WorkflowStep]:
        return [
            WorkflowStep(name=row["step"], after=(),
                         on_failure=FailurePolicy(row["failure_policy"]), job=rows.job(row))
            for row in self._c().execute(Q["workflow_steps"], {"run_id": run_id})
        ]

    def workflow_edges(self, run_id: int) -> list[tuple[int, int]]:
        return [(int(depends_on), int(job_id)) for depends_on, job_id in
                self._c().execute(Q["workflow_edges"], {"run_id": run_id})]

    def step_counts(self, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        if run_ids:
            for run_id, status, count in self._c().execute(
                Q["step_counts"], {"run_ids": json.dumps(list(run_ids))}
            ):
                counts.setdefault(run_id, {})[status] = int(count)
        return counts

    def upstream_outcomes(self, namespace: str, job_id: int) -> list[StepOutcome]:
        found: list[Any] = self._c().execute(
            Q["upstream_outcomes"], {"namespace": namespace, "job_id": job_id}
        ).fetchall()
        return [
            StepOutcome(step=row["step"], job_id=row["id"], status=JobStatus(row["status"]),
                        result=loads_json(row["result"]), error=row["last_error"])
            for row in found
        ]
