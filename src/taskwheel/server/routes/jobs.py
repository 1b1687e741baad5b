"""Jobs: enqueue one or a batch; get, list (filters, cursor pages), cancel, retry, and
the history of attempts; cancel, retry and delete in bulk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from taskwheel.app import App
from taskwheel.client import Client
from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.jobs import Job, JobFilter, NewJob
from taskwheel.keys import Role
from taskwheel.lifecycle import JobStatus
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    AttemptList,
    AttemptOut,
    BulkFailure,
    BulkResult,
    EnqueueBatch,
    EnqueuedList,
    EnqueuedOut,
    EnqueueRequest,
    ExplanationOut,
    JobList,
    JobOut,
    JobSelection,
)
from taskwheel.server.problems import invalid_input, problem_of
from taskwheel.server.routes import PathId

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/jobs", tags=["jobs"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Operator = Annotated[Access, Depends(namespace_access(Role.OPERATE))]


def build_request(app: App, namespace: str, body: EnqueueRequest, where: str = "") -> NewJob:
    """The job ``body`` asks for in ``namespace``, checked against ``app``'s tasks (a
    bad field raises `InvalidInput`, named ``where.field`` as a 422)."""
    options: dict[str, Any] = body.model_dump(
        exclude={"task", "args", "kwargs"}, exclude_none=True)
    try:
        return app.request(body.task, body.args, body.kwargs, namespace=namespace,
                           **options)
    except InvalidInput as exc:
        if where:
            raise invalid_input(f"{where}.{exc.field}", exc.reason) from None
        raise


# The enqueues are asynchronous and write on a thread of their own: a synchronous route
# costs FastAPI a second hop to a thread, to check the answer against its model. Single
# enqueues are written in groups (`batching.GroupCommit`): one transaction for the
# requests that arrive while the previous group commits, each with its own answer.
@router.post("", status_code=201, response_model=EnqueuedOut, summary="Enqueue a job",
             responses={200: {"model": EnqueuedOut,
                              "description": "The job that holds the idempotency key"}})
async def enqueue(access: Operator, body: EnqueueRequest, response: Response) -> EnqueuedOut:
    """Create a job (201, once committed); with an idempotency key that a job of the
    namespace holds, that job (200, ``existing``: nothing was created)."""
    job, existing = await access.state.enqueues.enqueue(
        build_request(access.state.app, access.namespace, body))
    if existing:
        response.status_code = 200
    return EnqueuedOut.of_enqueued(job, existing)


@router.post("/batch", status_code=201, response_model=EnqueuedList,
             summary="Enqueue jobs in one transaction")
async def enqueue_batch(access: Operator, body: EnqueueBatch) -> EnqueuedList:
    """Create every job or none (the first bad one is named, as ``jobs[i].field``);
    each answered job says whether it ``existing`` already (its idempotency key)."""
    def write() -> EnqueuedList:  # checking a big batch takes a while: not on the loop
        requests = [build_request(access.state.app, access.namespace, item, f"jobs[{i}]")
                    for i, item in enumerate(body.jobs)]
        handles = access.client.enqueue_many(requests)
        return EnqueuedList(jobs=[EnqueuedOut.of_enqueued(handle.record, handle.existing)
                                  for handle in handles])

    return await run_in_threadpool(write)


@router.get("", response_model=JobList, summary="List jobs, newest first")
def list_jobs(  # noqa: PLR0917 - FastAPI reads query parameters off the signature
    access: Reader,
    status: JobStatus | None = None,
    queue: str | None = None,
    task: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
) -> JobList:
    before = _cursor(cursor)
    jobs = access.client.list_jobs(JobFilter(status=status, queue=queue, task=task,
                                             limit=limit, before_id=before))
    next_cursor = str(jobs[-1].id) if len(jobs) == limit else None
    return JobList(jobs=[JobOut.of(job) for job in jobs], next_cursor=next_cursor)


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise invalid_input("cursor", "not a cursor this server gave")
    return int(cursor)


@router.post("/cancel", response_model=BulkResult, summary="Cancel jobs by ids or filter")
def cancel_jobs(access: Operator, body: JobSelection) -> BulkResult:
    return _bulk(access.client, body, access.client.cancel_job)


@router.post("/retry", response_model=BulkResult, summary="Retry jobs by ids or filter")
def retry_jobs(access: Operator, body: JobSelection) -> BulkResult:
    return _bulk(access.client, body, access.client.retry_job)


@router.post("/delete", response_model=BulkResult,
             summary="Delete jobs by ids or filter, with their attempts")
def delete_jobs(access: Operator, body: JobSelection) -> BulkResult:
    """Each selected job is deleted for good with its history (``done``: the jobs as they
    were); a running job, or a step of a workflow run still going, is refused and kept
    (``failed``: cancel it first)."""
    client = access.client
    return _bulk(client, body, lambda job_id: client.delete_jobs([job_id])[0])


def _bulk(client: Client, selection: JobSelection, act: Callable[[int], Job]) -> BulkResult:
    """Each selected job in turn, each in its own transaction: one that cannot be
    changed (gone, or in a state that forbids it) is reported, the others done."""
    if (selection.ids is None) == (selection.filter is None):
        raise invalid_input("ids", "give ids or filter (one of them)")
    if selection.ids is not None:
        ids = list(dict.fromkeys(selection.ids))
    else:
        assert selection.filter is not None
        where = selection.filter
        ids = [job.id for job in client.list_jobs(JobFilter(
            status=where.status, queue=where.queue, task=where.task, limit=where.limit))]
    done: list[JobOut] = []
    failed: list[BulkFailure] = []
    for job_id in ids:
        try:
            done.append(JobOut.of(act(job_id)))
        except TaskwheelError as exc:
            failed.append(BulkFailure(id=job_id, detail=problem_of(exc).detail))
    return BulkResult(done=done, failed=failed)


@router.get("/{job_id}", response_model=JobOut, summary="Get a job")
def get_job(access: Reader, job_id: PathId) -> JobOut:
    return JobOut.of(access.client.job(job_id).record)


@router.get("/{job_id}/attempts", response_model=AttemptList, summary="A job's attempts")
def attempts(access: Reader, job_id: PathId) -> AttemptList:
    access.client.job(job_id)  # 404 for a job that does not exist
    return AttemptList(attempts=[AttemptOut.of(a) for a in access.client.attempts(job_id)])


@router.get("/{job_id}/explanation", response_model=ExplanationOut,
            summary="Why a job is not running")
def explanation(access: Reader, job_id: PathId) -> ExplanationOut:
    """What holds the job at this instant (due later, waiting for steps, no live worker,
    jobs ahead, backing off, ...) or where it stands (running, dead and why): each reason
    with a stable code, a sentence and its details."""
    return ExplanationOut.of(access.client.explain(job_id))


@router.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a job")
def cancel_job(access: Operator, job_id: PathId) -> JobOut:
    """Cancel a waiting job at once, or ask the worker running it to stop."""
    return JobOut.of(access.client.cancel_job(job_id))


@router.post("/{job_id}/retry", response_model=JobOut, summary="Retry a finished job")
def retry_job(access: Operator, job_id: PathId) -> JobOut:
    return JobOut.of(access.client.retry_job(job_id))
