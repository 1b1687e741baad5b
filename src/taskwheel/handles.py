"""Handles on jobs and workflow runs: a record with the store and namespace it came from,
so the caller can refresh it, wait for it, cancel or retry it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from taskwheel.errors import JobFailed, WorkflowFailed
from taskwheel.jobs import Attempt, Job
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.stores.base import Store
from taskwheel.workflows import RunStatus, WorkflowRun


class JobHandle:
    """A job as the caller sees it: refresh it, wait for its result, cancel it.

    Args:
        store: where the job lives.
        namespace: the job's namespace.
        record: the job as last read.
        existing: True when the enqueue that gave this handle created nothing: the job
            already held the request's idempotency key and was returned in its place.

    Example:
        >>> job = send.enqueue("a@b.c")
        >>> job.result(timeout=30)
        'sent to a@b.c'
        >>> send.enqueue("a@b.c", idempotency_key="k").existing    # the first time
        False
        >>> send.enqueue("a@b.c", idempotency_key="k").existing    # the same key again
        True
        >>> JobHandle(store, "default", store.get_job("default", job.id)).refresh().status
        <JobStatus.SUCCEEDED: 'succeeded'>
    """

    def __init__(
        self, store: Store, namespace: str, record: Job, *, existing: bool = False
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.record = record
        self.existing = existing

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.record.task} {self.status.value}>"

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def status(self) -> JobStatus:
        return self.record.status

    def refresh(self) -> JobHandle:
        self.record = self.store.get_job(self.namespace, self.id)
        return self

    def attempts(self) -> list[Attempt]:
        return self.store.list_attempts(self.namespace, self.id)

    def cancel(self) -> JobHandle:
        self.record = self.store.cancel_job(self.namespace, self.id)
        return self

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the job ends; its return value, or `JobFailed`.

        Raises `TimeoutError` if it has not ended after ``timeout`` seconds.
        """
        wait_until(lambda: self.refresh().status in TERMINAL, timeout,
                   lambda: f"job {self.id} still {self.status.value}")
        if self.status is not JobStatus.SUCCEEDED:
            raise JobFailed(self.id, self.status.value, self.record.last_error)
        return self.record.result


class WorkflowRunHandle:
    """A workflow run as the caller sees it: refresh it, wait for it, retry or cancel it.

    Args:
        store: where the run lives.
        namespace: the run's namespace.
        record: the run as last read.

    Example:
        >>> run = app.submit(wf)
        >>> run.wait(timeout=60).status
        <RunStatus.SUCCEEDED: 'succeeded'>
        >>> run.record.step("load").job.attempt
        1
    """

    def __init__(self, store: Store, namespace: str, record: WorkflowRun) -> None:
        self.store = store
        self.namespace = namespace
        self.record = record

    def __repr__(self) -> str:
        return f"<WorkflowRun {self.id} {self.record.name} {self.status.value}>"

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def status(self) -> RunStatus:
        return self.record.status

    def refresh(self) -> WorkflowRunHandle:
        self.record = self.store.get_workflow_run(self.namespace, self.id)
        return self

    def wait(self, timeout: float | None = None) -> WorkflowRun:
        """Wait until the run ends (or `TimeoutError` after ``timeout`` seconds)."""
        wait_until(lambda: self.refresh().status is not RunStatus.RUNNING, timeout,
                   lambda: f"workflow run {self.id} still running")
        return self.record

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the run ends; each step's return value by step name, or
        `WorkflowFailed` naming the steps that did not succeed."""
        run = self.wait(timeout)
        if run.status is not RunStatus.SUCCEEDED:
            raise WorkflowFailed(self.id, run.status.value, {
                step.name: step.job.status.value for step in run.steps
                if step.job.status is not JobStatus.SUCCEEDED
            })
        return {step.name: step.job.result for step in run.steps}

    def cancel(self) -> WorkflowRunHandle:
        """Cancel the steps not yet finished; running ones are asked to stop."""
        self.record = self.store.cancel_workflow_run(self.namespace, self.id)
        return self

    def retry(self, step: str | None = None) -> WorkflowRunHandle:
        """Run the failed steps (or ``step``) again, with every step after them that
        did not succeed."""
        self.record = self.store.retry_workflow_run(self.namespace, self.id, step)
        return self


def wait_until(done: Callable[[], bool], timeout: float | None,
               describe: Callable[[], str]) -> None:
    """Poll ``done`` with a growing pause (2 ms to 100 ms); `TimeoutError` after
    ``timeout`` seconds, saying what ``describe`` says."""
    limit = None if timeout is None else time.monotonic() + timeout
    pause = 0.002
    while not done():
        if limit is not None and time.monotonic() >= limit:
            raise TimeoutError(f"{describe()} after {timeout}s")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
