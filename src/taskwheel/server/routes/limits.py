"""Gates per key (`taskwheel.limits`): each key's concurrency limit, slots in use and
waiting jobs; setting a limit at run time; pausing and resuming a key; its circuit
breaker (`taskwheel.breakers`), opened and closed by hand. Keys may hold ``/`` and
``:``: the routes take the rest of the path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    BreakerList,
    KeyLimitIn,
    KeyLimitList,
    KeyLimitOut,
    KeyResumedOut,
    PauseIn,
)

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["key gates"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Operate = Annotated[Access, Depends(namespace_access(Role.OPERATE))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]


@router.get("/limits", response_model=KeyLimitList, summary="Keys and their limits")
def limits(access: Reader) -> KeyLimitList:
    return KeyLimitList(limits=[KeyLimitOut.of(k) for k in access.client.limits()])


@router.post("/limits/{key:path}/pause", response_model=KeyLimitOut, summary="Pause a key")
def pause_key(access: Operate, key: str, body: PauseIn | None = None) -> KeyLimitOut:
    """No job of the key is admitted until it is resumed (by hand, or at ``until``): its
    ready jobs wait, running ones finish. 404 for a key the namespace does not know."""
    return KeyLimitOut.of(access.client.pause_key(key, until=None if body is None
                                                  else body.until))


@router.post("/limits/{key:path}/resume", response_model=KeyResumedOut,
             summary="Resume a key")
def resume_key(access: Operate, key: str) -> KeyResumedOut:
    """404 when the key is not paused, or not known."""
    return KeyResumedOut(key=key, released=access.client.resume_key(key))


@router.get("/limits/{key:path}", response_model=KeyLimitOut, summary="A key's limit")
def get_limit(access: Reader, key: str) -> KeyLimitOut:
    return KeyLimitOut.of(access.client.limit(key))


@router.put("/limits/{key:path}", response_model=KeyLimitOut, summary="Set a key's limit")
def set_limit(access: Admin, key: str, body: KeyLimitIn) -> KeyLimitOut:
    """At most ``limit`` jobs of the key run at once from now on, whatever its task
    declares (null: no limit); raising it admits waiting jobs at once."""
    return KeyLimitOut.of(access.client.set_limit(key, body.limit))


@router.get("/breakers", response_model=BreakerList, summary="Keys with a circuit breaker")
def breakers(access: Reader) -> BreakerList:
    return BreakerList(breakers=[KeyLimitOut.of(k) for k in access.client.breakers()])


@router.post("/breakers/{key:path}/open", response_model=KeyLimitOut,
             summary="Open a key's breaker")
def open_breaker(access: Operate, key: str, body: PauseIn | None = None) -> KeyLimitOut:
    """No job of the key is admitted until ``until`` (none: until closed by hand), then
    one probe at a time. 404 for a key the namespace does not know."""
    return KeyLimitOut.of(access.client.open_breaker(key, until=None if body is None
                                                     else body.until))


@router.post("/breakers/{key:path}/close", response_model=KeyLimitOut,
             summary="Close a key's breaker")
def close_breaker(access: Operate, key: str) -> KeyLimitOut:
    """Its waiting jobs are admitted up to its limit. 404 when it is not open."""
    return KeyLimitOut.of(access.client.close_breaker(key))
