"""The pull protocol, for workers in any language: register, claim with a long poll,
heartbeat, checkpoint, complete or fail with the fencing token.

A worker registers (``POST /workers``) and is given a worker id; it then claims
(``POST /claims``), which answers at once when jobs are ready and otherwise waits up
to ``wait`` seconds, woken by the store's notifications (`wakeups`) and holding no
database connection meanwhile. Every claimed job carries its ``fence``: the worker
names it in every report, and a report whose fence is no longer the job's (its lease
passed to another attempt) is answered 409 and changes nothing. A failure is retried
as the job's task's retry policy says, the decision the Python worker makes
(`taskwheel.worker.execution.decide_for`); a task the server's app does not define has
the default policy. Claiming and reporting need the ``operate`` role.

The worker id is the capability of the worker's leases: it is random (122 bits), and
whoever holds it may heartbeat that worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from taskwheel.jobs import AttemptOutcome, Job, Outcome
from taskwheel.keys import Role
from taskwheel.lifecycle import JobStatus
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import Answer, JobOut
from taskwheel.server.models import Request as Body
from taskwheel.server.problems import Problem, invalid_input
from taskwheel.server.routes import PathId
from taskwheel.server.wakeups import WakeUps
from taskwheel.stores.base import WorkerRegistration
from taskwheel.stores.claims import ClaimRequest
from taskwheel.validators import validate_name
from taskwheel.worker.execution import Execution, decide_for

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["pull protocol"])

Operator = Annotated[Access, Depends(namespace_access(Role.OPERATE))]

MAX_WAIT = 60.0  # seconds a claim may wait: under the usual proxies' idle timeouts
MAX_LEASE_TTL = 3600.0
DEFAULT_LEASE_TTL = 30.0
# A worker id as the server makes it: the worker's name, then 32 random hex digits.
WorkerId = Annotated[str, Field(min_length=1, max_length=200)]
Seconds = Annotated[float, Field(gt=0, le=MAX_LEASE_TTL)]
Fence = Annotated[int, Field(ge=0, le=2**63 - 1)]


# -- bodies ------------------------------------------------------------------------------------


class RegisterIn(Body):
    """A worker of another language, as it shows among the workers."""

    name: str = Field("http", min_length=1, max_length=100,
                      description="Goes first in the worker id (a host name, say).")
    queues: list[str] = Field(min_length=1, max_length=100)
    concurrency: int = Field(1, ge=1, le=10_000)
    heartbeat_interval: float = Field(10.0, gt=0, le=MAX_LEASE_TTL)


class RegisterOut(Answer):
    worker_id: str


class ClaimIn(Body):
    worker_id: WorkerId
    queues: list[str] = Field(min_length=1, max_length=100)
    limit: int = Field(1, ge=1, le=1000)
    lease_ttl: Seconds = DEFAULT_LEASE_TTL
    wait: float = Field(0.0, ge=0, le=MAX_WAIT,
                        description="Seconds to wait for work when none is ready.")


class ClaimOut(Answer):
    jobs: list[JobOut]


class HeartbeatIn(Body):
    lease_ttl: Seconds = DEFAULT_LEASE_TTL
    jobs: dict[str, Fence] = Field(
        default_factory=dict, description="The jobs the worker runs: {job id: fence}.")


class HeldJob(Answer):
    id: int
    cancel_requested: bool


class HeartbeatOut(Answer):
    held: list[HeldJob] = Field(description="Jobs whose leases were renewed.")
    lost: list[int] = Field(description="Jobs named whose lease passed to another attempt: "
                                        "stop them, their reports would be refused.")


class CheckpointIn(Body):
    fence: Fence
    state: Any = None


class CompleteIn(Body):
    fence: Fence
    result: Any = None


class FailIn(Body):
    fence: Fence
    error: str = Field(max_length=65_536)
    traceback: str | None = Field(None, max_length=1_048_576)
    timed_out: bool = False


class ReportIn(Body):
    """How one attempt ended: ``succeeded`` with its ``result``, or ``failed`` /
    ``timed_out`` with its ``error`` (and ``traceback``)."""

    job_id: Fence
    fence: Fence
    outcome: Literal["succeeded", "failed", "timed_out"]
    result: Any = None
    error: str | None = Field(None, max_length=65_536)
    traceback: str | None = Field(None, max_length=1_048_576)


class ReportsIn(Body):
    reports: list[ReportIn] = Field(min_length=1, max_length=1000)


class ReportOut(Answer):
    job_id: int
    status: JobStatus | None = Field(
        description="Where the job went (succeeded, queued or scheduled for a retry, dead, "
                    "cancelled); null when the report was refused as stale.")
    stale: bool = Field(description="The fence was not the job's running attempt's (its "
                                    "lease passed to another attempt, or it ended): "
                                    "nothing was changed for this job.")


class ReportsOut(Answer):
    results: list[ReportOut]


# -- routes --------------------------------------------------------------------------------------


@router.post("/workers", status_code=201, response_model=RegisterOut,
             summary="Register a worker of the pull protocol")
def register(access: Operator, body: RegisterIn, request: Request) -> RegisterOut:
    """Give the worker an id; it shows among the workers while it heartbeats."""
    name = validate_name(body.name, "name")
    queues = [validate_name(queue, f"queues[{i}]") for i, queue in enumerate(body.queues)]
    worker_id = f"{name}:{uuid.uuid4().hex}"
    host = request.client.host if request.client else "unknown"
    access.state.store.register_worker(WorkerRegistration(
        id=worker_id, namespace=access.namespace, hostname=f"{name}@{host}", pid=0,
        queues=queues, concurrency=body.concurrency, pool="http",
        heartbeat_interval=body.heartbeat_interval))
    return RegisterOut(worker_id=worker_id)


@router.delete("/workers/{worker_id}", status_code=204, response_class=Response,
               summary="Unregister a worker (it stopped)")
def unregister(access: Operator, worker_id: str) -> Response:
    access.state.store.unregister_worker(worker_id)
    return Response(status_code=204)


@router.post("/claims", response_model=ClaimOut, summary="Claim jobs, waiting for work")
async def claim(access: Operator, body: ClaimIn, request: Request) -> ClaimOut:
    """Up to ``limit`` ready jobs of ``queues``, each under a lease of ``lease_ttl``
    seconds and with its fencing token (``fence``); with none ready, waits up to
    ``wait`` seconds for one, woken by the commit that makes it ready."""
    queues = tuple(validate_name(q, f"queues[{i}]") for i, q in enumerate(body.queues))
    store = access.state.store
    wanted = ClaimRequest(body.worker_id, (access.namespace,), queues, body.limit,
                          body.lease_ttl)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + body.wait
    jobs, next_due = await _claim(access, wanted)
    if jobs or body.wait == 0:
        return ClaimOut(jobs=jobs)
    wake_ups = _wake_ups(request)
    async with wake_ups.waiting(access.namespace) as woken:
        while True:
            woken.clear()  # before looking: a commit meanwhile sets it again
            jobs, next_due = await _claim(access, wanted)
            left = give_up - loop.time()
            if jobs or left <= 0:
                return ClaimOut(jobs=jobs)
            timeout = left if wake_ups.listening else min(left, wake_ups.fallback_poll)
            if next_due is not None:  # a delayed job falls due: claim it then
                timeout = min(timeout, max(0.0, next_due - store.now()) + 0.0005)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout)


async def _claim(access: Access, wanted: ClaimRequest) -> tuple[list[JobOut], float | None]:
    found = await run_in_threadpool(access.state.store.claim, wanted)
    return [JobOut.of(job) for job in found.jobs], found.next_due


def _wake_ups(request: Request) -> WakeUps:
    wake_ups = request.app.state.wake_ups
    assert isinstance(wake_ups, WakeUps)
    return wake_ups


# The routes a worker calls for every job or every few seconds are asynchronous and do
# their store work in one hop to a thread: a synchronous route costs FastAPI a second hop,
# to check its answer against its model.


@router.post("/workers/{worker_id}/heartbeat", response_model=HeartbeatOut,
             summary="Keep a worker's leases")
async def heartbeat(access: Operator, worker_id: str, body: HeartbeatIn) -> HeartbeatOut:
    """Renew by ``lease_ttl`` the leases of exactly the jobs named ({job id: fence}, the
    attempts the worker runs) and mark it alive; answers which of them it still holds
    (and whether someone asked to cancel them), and which it lost. A lease it holds but
    does not name lapses and its job is rescued: no lease outlives its work."""
    named = {_job_id(key): fence for key, fence in body.jobs.items()}
    held = await run_in_threadpool(access.state.store.heartbeat, worker_id, body.lease_ttl,
                                   named)
    still = [HeldJob(id=job_id, cancel_requested=held[job_id])
             for job_id in named if job_id in held]
    return HeartbeatOut(held=still, lost=[job_id for job_id in named if job_id not in held])


def _job_id(key: str) -> int:
    if not key.isdigit() or len(key) > 19 or int(key) > 2**63 - 1:
        raise Problem(422, "invalid-input", "Invalid Input",
                      f"jobs.{key}: not a job id", field=f"jobs.{key}")
    return int(key)


@router.post("/jobs/{job_id}/checkpoint", status_code=204, response_class=Response,
             summary="Save a running job's progress")
def checkpoint(access: Operator, job_id: PathId, body: CheckpointIn) -> Response:
    """Keep ``state`` as the job's checkpoint (a retry of the job gets it back as
    ``checkpoint``); 409 when ``fence`` is stale."""
    _running(access, job_id, body.fence)
    state = _json(body.state, "state")
    if not access.state.store.save_checkpoint(job_id, body.fence, state):
        raise _stale(job_id, body.fence)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/complete", response_model=JobOut,
             summary="Report a job succeeded")
async def complete(access: Operator, job_id: PathId, body: CompleteIn) -> JobOut:
    result = _json(body.result, "result")
    return await run_in_threadpool(_report, access, job_id, body.fence,
                                   Execution(AttemptOutcome.SUCCEEDED, result_json=result))


@router.post("/jobs/{job_id}/fail", response_model=JobOut, summary="Report a job failed")
async def fail(access: Operator, job_id: PathId, body: FailIn) -> JobOut:
    """The job is retried as its task's retry policy says, or dies when its attempts
    are used up; a job someone asked to cancel ends cancelled."""
    outcome = AttemptOutcome.TIMED_OUT if body.timed_out else AttemptOutcome.FAILED
    return await run_in_threadpool(
        _report, access, job_id, body.fence,
        Execution(outcome, error=body.error, traceback=body.traceback))


@router.post("/reports", response_model=ReportsOut,
             summary="Report how many attempts ended, in one transaction")
async def report_many(access: Operator, body: ReportsIn) -> ReportsOut:
    """What ``complete`` and ``fail`` do, for up to 1,000 attempts at once (a worker that
    runs many jobs reports them together): one read of the jobs, one transaction for
    every outcome. Each report is judged alone: a stale fence, or a job of another
    namespace, is answered ``stale`` and changes nothing, without failing the others."""
    executions = [_execution(i, report) for i, report in enumerate(body.reports)]
    return await run_in_threadpool(_report_many, access, body.reports, executions)


def _execution(i: int, report: ReportIn) -> Execution:
    if report.outcome == "succeeded":
        return Execution(AttemptOutcome.SUCCEEDED,
                         result_json=_json(report.result, f"reports[{i}].result"))
    if report.error is None:
        raise invalid_input(f"reports[{i}].error", "a failed attempt needs its error")
    outcome = (AttemptOutcome.TIMED_OUT if report.outcome == "timed_out"
               else AttemptOutcome.FAILED)
    return Execution(outcome, error=report.error, traceback=report.traceback)


def _report_many(
    access: Access, reports: list[ReportIn], executions: list[Execution]
) -> ReportsOut:
    jobs = {job.id: job for job in access.client.get_jobs([r.job_id for r in reports])}
    decided: dict[int, Outcome] = {}
    for report, execution in zip(reports, executions, strict=True):
        job = jobs.get(report.job_id)
        if (job is None or job.status is not JobStatus.RUNNING or job.fence != report.fence
                or report.job_id in decided):
            continue  # stale (or named twice: the first report counts)
        decided[report.job_id] = _decide(access, job, execution)
    stale = set(access.state.store.finish_attempts(list(decided.values()))) if decided else set()
    results = []
    for report in reports:
        outcome = decided.get(report.job_id)
        ok = outcome is not None and outcome.fence == report.fence and report.job_id not in stale
        results.append(ReportOut(job_id=report.job_id, status=outcome.status if ok and outcome
                                 else None, stale=not ok))
    return ReportsOut(results=results)


def _decide(access: Access, job: Job, execution: Execution) -> Outcome:
    """Where the job goes after ``execution``: its task's retry policy (the default one
    for a task the server's app does not define), as the Python worker decides."""
    return decide_for(job, access.state.app.tasks.get(job.task), execution,
                      job.cancel_requested)


def _report(access: Access, job_id: int, fence: int, execution: Execution) -> JobOut:
    store = access.state.store
    job = _running(access, job_id, fence)
    if store.finish_attempts([_decide(access, job, execution)]):
        raise _stale(job_id, fence)
    return JobOut.of(store.get_job(access.namespace, job_id))


def _running(access: Access, job_id: int, fence: int) -> Job:
    """The job (404 in another namespace) while ``fence`` is its running attempt's."""
    job = access.client.job(job_id).record
    if job.status is not JobStatus.RUNNING or job.fence != fence:
        raise _stale(job_id, fence)
    return job


def _json(value: Any, field: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError as exc:  # NaN or Infinity: JSON has neither
        raise invalid_input(field, str(exc)) from None


def _stale(job_id: int, fence: int) -> Problem:
    return Problem(409, "stale-fence", "Conflict",
                   f"job {job_id}: fence {fence} is not its running attempt's (its lease "
                   f"passed to another attempt, or it ended); nothing was changed",
                   field="fence")
