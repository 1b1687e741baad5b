"""Queues (depth by state and priority, the oldest ready job's age), workers and
statistics; the namespace's quota; the caller's own key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    KeyOut,
    QueueList,
    QueueOut,
    QuotaIn,
    QuotaOut,
    StatsOut,
    WorkerList,
    WorkerOut,
)

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["queues and workers"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
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
