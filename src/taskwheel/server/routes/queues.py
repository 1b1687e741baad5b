"""Queues (depth by state and priority, the oldest ready job's age), workers and
statistics; pausing and resuming queues and tasks, and queues' maximum depths; the
namespace's quota; the caller's own key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from taskwheel.gates import GateKind
from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    FairWeightIn,
    FairWeightList,
    FairWeightOut,
    KeyOut,
    NamespaceWeightIn,
    NamespaceWeightOut,
    PauseIn,
    PauseList,
    PauseOut,
    QueueAgingIn,
    QueueAgingList,
    QueueAgingOut,
    QueueLimitIn,
    QueueLimitList,
    QueueLimitOut,
    QueueList,
    QueueOut,
    QueueReserveIn,
    QueueReserveList,
    QueueReserveOut,
    QuotaIn,
    QuotaOut,
    ResumedOut,
    StatsOut,
    WorkerList,
    WorkerOut,
)

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["queues and workers"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Operate = Annotated[Access, Depends(namespace_access(Role.OPERATE))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]
Operator = Annotated[Access, Depends(namespace_access(Role.ADMIN, operator=True))]


@router.get("/queues", response_model=QueueList, summary="Queues and their depth")
def queues(access: Reader) -> QueueList:
    return QueueList(queues=[QueueOut.of(q) for q in access.client.stats().queues])


@router.get("/workers", response_model=WorkerList, summary="Workers, alive or not")
def workers(access: Reader) -> WorkerList:
    return WorkerList(workers=[WorkerOut.of(w) for w in access.client.stats().workers])


@router.get("/stats", response_model=StatsOut, summary="Queues and workers")
def stats(access: Reader) -> StatsOut:
    found = access.client.stats()
    return StatsOut(queues=[QueueOut.of(q) for q in found.queues],
                    workers=[WorkerOut.of(w) for w in found.workers])


@router.get("/pauses", response_model=PauseList, summary="Paused queues and tasks")
def pauses(access: Reader) -> PauseList:
    return PauseList(pauses=[PauseOut.of(p) for p in access.client.pauses()])


@router.post("/queues/{queue}/pause", response_model=PauseOut, summary="Pause a queue")
def pause_queue(access: Operate, queue: str, body: PauseIn | None = None) -> PauseOut:
    """No worker claims the queue's jobs until it is resumed (by hand, or at ``until``);
    running ones finish, enqueues still land. Pausing a paused queue keeps its jobs held
    and gives it the new ``until``."""
    return PauseOut.of(access.client.pause_queue(queue, until=None if body is None
                                                 else body.until))


@router.post("/queues/{queue}/resume", response_model=ResumedOut, summary="Resume a queue")
def resume_queue(access: Operate, queue: str) -> ResumedOut:
    """404 when the queue is not paused."""
    released = access.client.resume_queue(queue)
    return ResumedOut(kind=GateKind.QUEUE, name=queue, released=released)


@router.post("/tasks/{task}/pause", response_model=PauseOut, summary="Pause a task")
def pause_task(access: Operate, task: str, body: PauseIn | None = None) -> PauseOut:
    """No worker claims the task's jobs, in any queue, until it is resumed (by hand, or
    at ``until``)."""
    return PauseOut.of(access.client.pause_task(task, until=None if body is None
                                                else body.until))


@router.post("/tasks/{task}/resume", response_model=ResumedOut, summary="Resume a task")
def resume_task(access: Operate, task: str) -> ResumedOut:
    """404 when the task is not paused."""
    released = access.client.resume_task(task)
    return ResumedOut(kind=GateKind.TASK, name=task, released=released)


@router.get("/queue-limits", response_model=QueueLimitList,
            summary="Queues with a maximum depth")
def queue_limits(access: Reader) -> QueueLimitList:
    return QueueLimitList(limits=[QueueLimitOut.of(q) for q in access.client.queue_limits()])


@router.put("/queues/{queue}/limit", response_model=QueueLimitOut,
            summary="Set a queue's maximum depth")
def set_queue_limit(access: Admin, queue: str, body: QueueLimitIn) -> QueueLimitOut:
    """Enqueues that would leave more jobs waiting to run in the queue are refused (429,
    nothing written)."""
    return QueueLimitOut.of(access.client.set_queue_limit(queue, body.max_depth))


@router.delete("/queues/{queue}/limit", status_code=204, response_class=Response,
               summary="Remove a queue's maximum depth")
def remove_queue_limit(access: Admin, queue: str) -> Response:
    access.client.remove_queue_limit(queue)
    return Response(status_code=204)


@router.get("/fairness", response_model=FairWeightList,
            summary="The namespace's fairness keys and weights")
def fair_weights(access: Reader) -> FairWeightList:
    return FairWeightList(weights=[FairWeightOut.of(w) for w in access.client.fair_weights()])


@router.put("/fairness/{key}", response_model=FairWeightOut,
            summary="Set a fairness key's weight")
def set_fair_weight(access: Admin, key: str, body: FairWeightIn) -> FairWeightOut:
    """Jobs of the key written from now on take their share of claims by it."""
    return FairWeightOut.of(access.client.set_fair_weight(key, body.weight))


@router.get("/weight", response_model=NamespaceWeightOut,
            summary="The namespace's weight between namespaces")
def namespace_weight(access: Reader) -> NamespaceWeightOut:
    return NamespaceWeightOut(namespace=access.client.namespace,
                              weight=access.client.namespace_weight())


@router.put("/weight", response_model=NamespaceWeightOut,
            summary="Set the namespace's weight between namespaces")
def set_namespace_weight(access: Operator, body: NamespaceWeightIn) -> NamespaceWeightOut:
    """Only an operator's admin key sets it: a tenant does not raise its own share.
    Workers that serve the namespace with others divide their claims by it from their
    next claim on."""
    found = access.client.set_namespace_weight(body.weight)
    return NamespaceWeightOut(namespace=found.namespace, weight=found.weight)


@router.delete("/weight", status_code=204, response_class=Response,
               summary="Remove the namespace's weight (it weighs 1 again)")
def remove_namespace_weight(access: Operator) -> Response:
    access.client.remove_namespace_weight()
    return Response(status_code=204)


@router.get("/queue-aging", response_model=QueueAgingList, summary="Queues that age")
def queue_aging(access: Reader) -> QueueAgingList:
    return QueueAgingList(queues=[QueueAgingOut.of(a) for a in access.client.queue_aging()])


@router.put("/queues/{queue}/aging", response_model=QueueAgingOut,
            summary="Make a queue's waiting jobs gain priority")
def set_queue_aging(access: Admin, queue: str, body: QueueAgingIn) -> QueueAgingOut:
    return QueueAgingOut.of(access.client.set_queue_aging(queue, body.rate, cap=body.cap))


@router.delete("/queues/{queue}/aging", status_code=204, response_class=Response,
               summary="Stop aging a queue's jobs")
def remove_queue_aging(access: Admin, queue: str) -> Response:
    access.client.remove_queue_aging(queue)
    return Response(status_code=204)


@router.get("/queue-reserves", response_model=QueueReserveList,
            summary="Queues that keep a share of their claims for their lower bands")
def queue_reserves(access: Reader) -> QueueReserveList:
    return QueueReserveList(queues=[QueueReserveOut.of(r)
                                    for r in access.client.queue_reserves()])


@router.put("/queues/{queue}/reserve", response_model=QueueReserveOut,
            summary="Keep a share of a queue's claims for its lower bands")
def set_queue_reserve(access: Admin, queue: str, body: QueueReserveIn) -> QueueReserveOut:
    return QueueReserveOut.of(access.client.set_queue_reserve(queue, body.share,
                                                              below=body.below))


@router.delete("/queues/{queue}/reserve", status_code=204, response_class=Response,
               summary="Keep no share of a queue's claims")
def remove_queue_reserve(access: Admin, queue: str) -> Response:
    access.client.remove_queue_reserve(queue)
    return Response(status_code=204)


@router.get("/quota", response_model=QuotaOut, summary="The namespace's quota")
def get_quota(access: Reader) -> QuotaOut:
    return QuotaOut.of(access.client.quota())


@router.put("/quota", response_model=QuotaOut, summary="Set the namespace's quota")
def set_quota(access: Operator, body: QuotaIn) -> QuotaOut:
    """Only an operator's admin key (one of every namespace) sets quotas: a tenant does
    not raise its own limits. Null limits are none."""
    return QuotaOut.of(access.client.set_quota(
        max_queued=body.max_queued, max_enqueue_rate=body.max_enqueue_rate,
        max_active_schedules=body.max_active_schedules))


@router.get("/key", response_model=KeyOut, summary="The key of this request")
def whoami(access: Reader) -> KeyOut:
    return KeyOut.of(access.principal.key)
