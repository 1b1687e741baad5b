"""Who is asking: every request carries ``Authorization: Bearer <key>``; the key is
read from the store on every request (no cache, so a revoke takes effect at the next
request on every server; on SQLite the read runs on the event loop, on PostgreSQL
the keys of concurrent requests are read together, see `ServerState.api_key`), and the
route's namespace and role are checked against it.

Routes name their namespace in the path (``/api/v1/namespaces/{namespace}/...``, as
Temporal's and Hatchet's APIs do). A key of another namespace gets the same 404 for
anything under that namespace whatever exists there, so it learns nothing; a key of the
namespace whose role is too low gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taskwheel.client import Client
from taskwheel.errors import InvalidInput, JobNotFound, ScheduleNotFound, WorkflowRunNotFound
from taskwheel.keys import ApiKey, Role, prefix_of
from taskwheel.server.problems import Problem, not_found, problem_of
from taskwheel.server.state import ServerState
from taskwheel.validators import ALL_NAMESPACES, validate_name

_bearer = HTTPBearer(auto_error=False, description="An API key: `taskwheel keys create`.")

# The dashboard's cookie, and the header a write authenticated by it must carry.
KEY_COOKIE = "taskwheel_key"
DASHBOARD_HEADER = "x-taskwheel-dashboard"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail,
                   headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The key a request was made with."""

    key: ApiKey


def state_of(request: Request) -> ServerState:
    return state_of_app(request.app)


def state_of_app(app: Any) -> ServerState:
    """The server's state, held by its FastAPI application."""
    state = app.state.taskwheel
    assert isinstance(state, ServerState)
    return state


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The request's key (its bearer token, else the dashboard's cookie), or 401."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        presented = credentials.credentials
    elif credentials is None and (cookie := request.cookies.get(KEY_COOKIE)):
        if request.method not in _READS and request.headers.get(DASHBOARD_HEADER) != "1":
            raise _unauthorized("a write authenticated by the dashboard's cookie must send "
                                "X-Taskwheel-Dashboard: 1")
        presented = cookie
    else:
        raise _unauthorized("send an API key: Authorization: Bearer <key>")
    prefix = prefix_of(presented)
    state = state_of(request)
    key = None if prefix is None else await state.api_key(prefix)
    return _principal(key, presented)


def principal_of(request: Request, presented: str) -> Principal:
    """The key ``presented`` stands for, or 401 (for a synchronous route: the
    dashboard's pages)."""
    prefix = prefix_of(presented)
    key = None if prefix is None else state_of(request).store.get_api_key(prefix)
    return _principal(key, presented)


def _principal(key: ApiKey | None, presented: str) -> Principal:
    if key is None or not key.matches(presented):
        raise _unauthorized("unknown API key")
    if key.revoked:
        raise _unauthorized(f"API key {key.prefix} was revoked")
    return Principal(key)


def _hidden(request: Request, namespace: str) -> Problem:
    """The 404 for a namespace the key does not cover: what the route answers for an
    id or name that does not exist, else that the namespace does not exist; either way
    the same whatever the namespace holds."""
    params = request.path_params
    try:
        if "job_id" in params:
            return problem_of(JobNotFound(int(params["job_id"])))
        if "run_id" in params:
            return problem_of(WorkflowRunNotFound(int(params["run_id"])))
    except ValueError:
        pass
    if "name" in params:
        return problem_of(ScheduleNotFound(str(params["name"])))
    return not_found(f"namespace {namespace!r} not found")


@dataclass(frozen=True, slots=True)
class Access:
    """What a route handler acts with: the namespace's client, and the app whose task
    registry checks what it writes."""

    client: Client
    state: ServerState
    principal: Principal

    @property
    def namespace(self) -> str:
        return self.client.namespace


# What the OpenAPI document says each operation needs (``x-taskwheel-role``): a role, or
# ``operator`` (an admin key of every namespace).
OPERATOR = "operator"


def namespace_access(
    role: Role, *, operator: bool = False
) -> Callable[..., Coroutine[Any, Any, Access]]:
    """A dependency: the namespace of the path, for a key that covers it (else 404) with
    at least ``role`` (else 403); with ``operator``, only a key of every namespace."""

    # One asynchronous dependency that reads the key (`ServerState.read`) and checks it:
    # FastAPI runs each synchronous dependency on a thread of its own, and a hop to a
    # thread and back cost a single-enqueue request more than its enqueue did.
    async def dependency(
        namespace: str, request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Access:
        principal = await authenticate(request, credentials)
        return access_to(request, principal, namespace, role, operator=operator)

    required = OPERATOR if operator else role.value
    dependency.__name__ = f"{required}_access"
    dependency.taskwheel_role = required  # type: ignore[attr-defined]
    return dependency


def access_to(
    request: Request, principal: Principal, namespace: str, role: Role, *,
    operator: bool = False,
) -> Access:
    """``namespace`` for ``principal``: 404 if its key does not cover it, 403 if its role
    is below ``role`` (or, with ``operator``, if it is not a key of every namespace)."""
    if not principal.key.covers(namespace):
        raise _hidden(request, namespace)
    if not principal.key.role.allows(role):
        raise Problem(403, "forbidden", "Forbidden",
                      f"this needs a key with role {role.value} or higher; this key's "
                      f"role is {principal.key.role.value}")
    if operator and principal.key.namespace != ALL_NAMESPACES:
        raise Problem(403, "forbidden", "Forbidden",
                      "this needs an admin key of every namespace (an operator's)")
    try:
        validate_name(namespace, "namespace")
    except InvalidInput as exc:
        raise not_found(f"namespace {namespace!r} not found") from exc
    state = state_of(request)
    return Access(Client(state.store, namespace), state, principal)
