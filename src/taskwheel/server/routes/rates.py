"""Rate limits per key (`taskwheel.rates`): each key's rate, burst, tokens and jobs
waiting for tokens; setting a rate at run time. Keys may hold ``/`` and ``:``: the
routes take the path up to their last segment (these are registered before the key
gates' ``/limits/{key}``, which would take the whole rest)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from taskwheel.keys import Role
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import KeyRateIn, KeyRateList, KeyRateOut

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["rate limits"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]


@router.get("/rates", response_model=KeyRateList, summary="Rate-limited keys")
def rates(access: Reader) -> KeyRateList:
    return KeyRateList(rates=[KeyRateOut.of(rate) for rate in access.client.rates()])


@router.get("/limits/{key:path}/rate", response_model=KeyRateOut, summary="A key's rate")
def get_rate(access: Reader, key: str) -> KeyRateOut:
    """404 for a key without a rate limit."""
    return KeyRateOut.of(access.client.rate(key))


@router.put("/limits/{key:path}/rate", response_model=KeyRateOut, summary="Set a key's rate")
def set_rate(access: Admin, key: str, body: KeyRateIn) -> KeyRateOut:
    """The key's jobs start at ``rate`` at most, with ``burst``, from the next admission
    pass on, whatever its task declares. 422 naming the field for a malformed rate or
    burst; 404 when only ``burst`` is given for a key without a rate."""
    return KeyRateOut.of(access.client.set_rate(key, body.rate, burst=body.burst))
