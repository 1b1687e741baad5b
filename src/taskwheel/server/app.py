"""The HTTP server's application: `create_app` builds it over a store and the task
registry of an `App`.

Every API route lives under ``/api/v1``, one router per area (the dashboard's pages,
`dashboard`, are at ``/``); every error is a problem
details answer (`problems`); every request is authenticated by one dependency
(`auth`). Requests with a body must say ``Content-Type: application/json`` (else 415)
and stay under ``max_body_bytes`` (else 413): both refused before any route runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskwheel.app import App
from taskwheel.server import dashboard
from taskwheel.server.batching import GroupCommit
from taskwheel.server.fast_enqueue import FastEnqueue
from taskwheel.server.problems import PROBLEM_MEDIA_TYPE, Problem, install_handlers
from taskwheel.server.routes import (
    alerts,
    claims,
    dead_jobs,
    jobs,
    limits,
    queues,
    rates,
    schedules,
    stream,
    webhooks,
    workflows,
)
from taskwheel.server.state import ServerSettings, ServerState
from taskwheel.server.wakeups import WakeUps
from taskwheel.stores.base import Store

if TYPE_CHECKING:
    from taskwheel.metrics import Exposition

API_TITLE = "taskwheel"
_ERROR_STATUSES = {
    "400": "Malformed JSON", "401": "No valid API key", "403": "The key's role is too low",
    "404": "Not found (or in a namespace the key does not cover)",
    "409": "The state forbids it", "413": "Body too large", "415": "Not JSON",
    "422": "Invalid input (the field is named)", "429": "Over the namespace's quota",
    "503": "The store is unavailable",
}


def create_app(
    store: Store, app: App, settings: ServerSettings | None = None
) -> FastAPI:
    """The API over ``store``, checking jobs, schedules and workflows against ``app``'s
    tasks (``app``'s own store and namespace are not used: each request names its
    namespace).

    Example:
        >>> api = create_app(tasks.app.store, tasks.app)
        >>> uvicorn.run(api, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    settings = settings or ServerSettings()
    wake_ups = WakeUps(store.notifier)
    metrics = _metrics(store) if settings.metrics else None

    @contextlib.asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        yield
        await wake_ups.aclose()  # the long polls' listener
        if metrics is not None:
            metrics[1]()  # stop counting this store's events
        await api.state.live_feed.aclose()  # the dashboard's streams

    api = FastAPI(
        lifespan=lifespan,
        title=API_TITLE, version="1",
        summary="Jobs, schedules and workflows of every namespace, over HTTP.",
        description=(
            "Authenticate with `Authorization: Bearer <key>` (`taskwheel keys create`). "
            "Each route names its namespace; a key of another namespace gets 404, a key "
            "whose role is too low 403. Errors are RFC 9457 problem details."
        ),
    )
    api.state.taskwheel = ServerState(store=store, app=app, settings=settings,
                                      enqueues=GroupCommit(store))
    api.state.wake_ups = wake_ups
    install_handlers(api)
    routers = (jobs.router, dead_jobs.router, schedules.router, workflows.router,
               queues.router, rates.router, limits.router, claims.router, webhooks.router,
               alerts.router)
    for router in routers:
        api.include_router(router)
    api.include_router(webhooks.receiver)  # signed, not keyed: no role
    if metrics is not None:
        api.add_route("/metrics", _scrape(metrics[0]), include_in_schema=False)
    api.include_router(stream.router)  # keyed as the API, but not in its document
    dashboard.install(api, store, live_interval=settings.live_interval)  # pages at /
    api.add_middleware(FastEnqueue)  # inside BodyGuard: sizes and media types checked
    api.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    roles = {(route.path_format, method.lower()): _role(route)
             for router in routers for route in router.routes if isinstance(route, APIRoute)
             for method in route.methods or ()}
    api.openapi = lambda: _openapi(api, roles)  # type: ignore[method-assign]
    return api


def _metrics(store: Store) -> tuple[Exposition, Callable[[], None]]:
    from taskwheel.metrics import metrics_exposition

    return metrics_exposition(store)


def _scrape(exposition: Exposition) -> Callable[[Request], Response]:
    """``GET /metrics``: the event metrics of this process and the store's gauges, in
    Prometheus's text format (rendered in a thread: the gauges query the store)."""
    from taskwheel.metrics import CONTENT_TYPE

    def scrape(_request: Request) -> Response:
        return Response(exposition.render(), media_type=CONTENT_TYPE)

    return scrape


def _role(route: APIRoute) -> str:
    """What the route's access dependency asks of a key (see `auth.namespace_access`)."""
    found = [str(getattr(dependency.call, "taskwheel_role", ""))
             for dependency in route.dependant.dependencies]
    return next(role for role in found if role)


def _openapi(api: FastAPI, roles: dict[tuple[str, str], str]) -> dict[str, Any]:
    """FastAPI's document, with every error answer declared as problem details and
    what each operation needs of a key as ``x-taskwheel-role``."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    from fastapi.openapi.utils import get_openapi

    from taskwheel.server.problems import ProblemDetails

    document = get_openapi(title=api.title, version=api.version, summary=api.summary,
                           description=api.description, routes=api.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
    problem = {"content": {PROBLEM_MEDIA_TYPE: {
        "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in _ERROR_STATUSES.items():
                responses[status] = {"description": description, **problem}
    for (path, method), role in roles.items():
        document["paths"][path][method]["x-taskwheel-role"] = role
    api.openapi_schema = document
    return document


class BodyGuard:
    """Refuses, before any route runs, a body over ``max_body_bytes`` (413; the body is
    read at most that far), a body that is not JSON (415), and a NUL in the query."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            await _answer(Problem(422, "invalid-input", "Invalid Input",
                                  "query: NUL characters are not accepted", field="query"),
                          scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(_too_large(self.max_body_bytes), scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _answer(_too_large(self.max_body_bytes), scope, receive, send)
                return
        if body and not _is_json(headers.get(b"content-type", b"")):
            await _answer(Problem(415, "unsupported-media-type", "Unsupported Media Type",
                                  "send the body as JSON (Content-Type: application/json)",
                                  field="content-type"), scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body,
                                        "more_body": False}], receive), send)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/")
                                             and media.endswith(b"+json"))


def _too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "Content Too Large",
                   f"the body is over this server's limit of {limit} bytes", field="body")


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _answer(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    await problem.response()(scope, receive, send)
