"""The dead-letter queue: list, replay by ids or by filter, purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    DeadSelection,
    JobList,
    JobOut,
    Purged,
    PurgeSelection,
    Replayed,
)
from taskwheel.server.problems import invalid_input

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/dead-jobs", tags=["dead-letter queue"])


@router.get("", response_model=JobList, summary="Dead jobs, newest first")
def list_dead(
    access: Annotated[Access, Depends(namespace_access(Role.READ))],
    queue: str | None = None,
    task: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    jobs = access.client.list_dead(queue=queue, task=task, limit=limit)
    return JobList(jobs=[JobOut.of(job) for job in jobs], next_cursor=None)


@router.post("/replay", response_model=Replayed, summary="Replay dead jobs by ids or filter")
def replay(
    access: Annotated[Access, Depends(namespace_access(Role.OPERATE))], body: DeadSelection
) -> Replayed:
    """Queue dead jobs again with a fresh set of attempts, in one transaction: those of
    ``ids`` (every one must be dead), or the dead jobs matching ``filter`` (``{}``: every
    dead job)."""
    if (body.ids is None) == (body.filter is None):
        raise invalid_input("ids", "give ids or filter (one of them)")
    if body.ids is not None:
        return Replayed(replayed=access.client.replay_dead(list(dict.fromkeys(body.ids))))
    assert body.filter is not None
    if body.filter.queue is None and body.filter.task is None:
        return Replayed(replayed=access.client.replay_dead(None))
    matching = access.client.list_dead(queue=body.filter.queue, task=body.filter.task,
                                       limit=10_000)
    if not matching:
        return Replayed(replayed=[])
    return Replayed(replayed=access.client.replay_dead([job.id for job in matching]))


@router.post("/purge", response_model=Purged, summary="Delete dead jobs for good")
def purge(
    access: Annotated[Access, Depends(namespace_access(Role.ADMIN))],
    body: PurgeSelection | None = None,
) -> Purged:
    """Every dead job of the namespace; with ``{"ids": [...]}``, the dead ones among
    those (a dead-letter group); the others are left as they are."""
    ids = None if body is None else list(dict.fromkeys(body.ids))
    return Purged(purged=access.client.purge_dead(ids))
