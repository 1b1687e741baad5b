"""What stores give back about workflow runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskwheel.jobs import Job
from taskwheel.lifecycle import JobStatus
from taskwheel.workflows.policies import FailurePolicy, RunStatus

# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """A step of a stored run and its job."""

    name: str
    after: tuple[str, ...]
    on_failure: FailurePolicy
    job: Job

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "after": list(self.after),
                "on_failure": self.on_failure.value, "job": self.job.to_dict()}


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """A run as the store holds it. ``steps`` (in topological order) are filled by
    `Store.get_workflow_run` and `Store.submit_workflow`, empty in listings;
    ``step_counts`` (steps by job status) always."""

    id: int
    namespace: str
    name: str
    status: RunStatus
    on_failure: FailurePolicy
    cancel_requested: bool
    created_at: datetime
    finished_at: datetime | None
    schedule_id: int | None
    fire_at: datetime | None
    step_counts: dict[str, int]
    steps: tuple[WorkflowStep, ...] = ()

    @property
    def total_steps(self) -> int:
        return sum(self.step_counts.values())

    def step(self, name: str) -> WorkflowStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["steps"] = [step.to_dict() for step in self.steps]
        return out


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How a dependency of a running step ended, as its context shows it."""

    step: str
    job_id: int
    status: JobStatus
    result: Any
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status is JobStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class WorkflowRunFilter:
    status: RunStatus | None = None
    name: str | None = None
    limit: int = 100
