"""The single enqueue's short way through the server: ``POST
/api/v1/namespaces/{namespace}/jobs`` answered below FastAPI's routing when every check
passes.

A single enqueue is the request a busy service sends most, and FastAPI's way to its
handler (routing, the dependency tree, the exception middleware, the response model's
second validation) cost more CPU than the rest of the request together. This layer
takes the request the route would take and does the same things with the same code:
the body validated by the route's own model (`EnqueueRequest`), the job request built
by the route's own `build_request`, the key read and checked as `auth` does and the job
written by the group commit (`GroupCommit.enqueue_keyed`: the key is read by the
request's group on the one hop to a thread that writes it, after the request arrived,
so a revoke holds at the next request), the answer rendered from `EnqueuedOut`.
Whenever anything is off (no key, a key refused, a namespace it does not cover, a role
too low, bad JSON, a field refused), it writes nothing and hands the request, body
included, to the FastAPI route, whose answer is then the one given: every refusal is
the route's own. Only the enqueue's own error (a quota, a store error) is answered
here, as the route's exception handlers would (`problems.problem_of`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.keys import ApiKey, Role, prefix_of
from taskwheel.server.auth import state_of_app
from taskwheel.server.batching import KeyRefused
from taskwheel.server.models import EnqueuedOut, EnqueueRequest
from taskwheel.server.problems import problem_of
from taskwheel.server.routes.jobs import build_request
from taskwheel.validators import validate_name

log = logging.getLogger("taskwheel.server")

_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/jobs")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastEnqueue:
    """An ASGI layer in front of the API (inside `BodyGuard`, which has already
    refused oversized and non-JSON bodies). Counts the requests it answered itself in
    ``answered`` (for tests)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or (match := _PATH.fullmatch(scope["path"])) is None):
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "http.request" or message.get("more_body", False):
            await self.app(scope, _replay(message, receive), send)
            return
        answer = await self._try(scope, match.group(1), message.get("body", b""))
        if answer is None:
            await self.app(scope, _replay(message, receive), send)
            return
        status, body, headers = answer
        self.answered += 1
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _try(
        self, scope: Scope, namespace: str, body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """The answer, or None to let the route answer."""
        presented = _bearer(scope)
        prefix = None if presented is None else prefix_of(presented)
        if presented is None or prefix is None:
            return None
        state = state_of_app(scope["app"])
        try:
            validate_name(namespace, "namespace")
            new = build_request(state.app, namespace,
                                EnqueueRequest.model_validate(json.loads(body)))
        except (ValueError, InvalidInput, ValidationError):  # JSONDecodeError included
            return None

        def allows(key: ApiKey | None) -> bool:
            return (key is not None and key.matches(presented) and not key.revoked
                    and key.covers(namespace) and key.role.allows(Role.OPERATE))

        try:
            # The key is read by the request's group, on the hop that writes it.
            job, existing = await state.enqueues.enqueue_keyed(new, (prefix, allows))
        except KeyRefused:
            return None
        except Exception as exc:  # answered as the route's handlers answer it
            if not isinstance(exc, TaskwheelError):
                log.exception("single enqueue failed")
            problem = problem_of(exc).response()
            return problem.status_code, bytes(problem.body), [
                (name, value) for name, value in problem.raw_headers
                if name != b"content-length"]
        out = EnqueuedOut.of_enqueued(job, existing).model_dump_json().encode()
        return (200 if existing else 201), out, _JSON_HEADERS


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            # As FastAPI's HTTPBearer reads it: the scheme, one space, the rest.
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


def _replay(message: Message, then: Receive) -> Receive:
    pending: list[Any] = [message]

    async def receive() -> Message:
        if pending:
            out: Message = pending.pop()
            return out
        return await then()

    return receive
