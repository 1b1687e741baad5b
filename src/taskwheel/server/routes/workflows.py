"""Workflow runs: submit a definition (the workflow file's form), list, show with step
states, retry a run or a step, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import StepRetry, WorkflowRunList, WorkflowRunOut, WorkflowSubmit
from taskwheel.server.routes import PathId
from taskwheel.workflows import RunStatus, Workflow, WorkflowRunFilter

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/workflow-runs", tags=["workflows"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Operator = Annotated[Access, Depends(namespace_access(Role.OPERATE))]


@router.post("", status_code=201, response_model=WorkflowRunOut, summary="Start a run")
def submit(access: Operator, body: WorkflowSubmit) -> WorkflowRunOut:
    """Start a run of the workflow, checked against the app's tasks first: a cycle, an
    unknown step or task, or arguments a task cannot take are refused (naming the
    field) and nothing is written."""
    spec = access.state.app.compile(Workflow.from_dict(body.workflow),
                                    namespace=access.namespace, on_failure=body.on_failure)
    return WorkflowRunOut.of(access.client.submit(spec).record)


@router.get("", response_model=WorkflowRunList, summary="Runs, newest first")
def list_runs(
    access: Reader, status: RunStatus | None = None, name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WorkflowRunList:
    runs = access.client.list_workflow_runs(WorkflowRunFilter(status=status, name=name,
                                                              limit=limit))
    return WorkflowRunList(runs=[WorkflowRunOut.of(run) for run in runs])


@router.get("/{run_id}", response_model=WorkflowRunOut, summary="A run with its steps")
def show(access: Reader, run_id: PathId) -> WorkflowRunOut:
    return WorkflowRunOut.of(access.client.workflow_run(run_id).record)


@router.post("/{run_id}/retry", response_model=WorkflowRunOut, summary="Retry a run or a step")
def retry(access: Operator, run_id: PathId, body: StepRetry | None = None) -> WorkflowRunOut:
    """Run the failed steps (or ``step``) again, with every step after them that did
    not succeed."""
    step = None if body is None else body.step
    return WorkflowRunOut.of(access.client.retry_workflow_run(run_id, step))


@router.post("/{run_id}/cancel", response_model=WorkflowRunOut, summary="Cancel a run")
def cancel(access: Operator, run_id: PathId) -> WorkflowRunOut:
    return WorkflowRunOut.of(access.client.cancel_workflow_run(run_id))
